"""Budget curves: the best primary metric you can expect if you can afford k trials of a sampled design.

Lucic et al. (2018, "Are GANs Created Equal?") compare GAN variants by the distribution of what random search
finds, not by one best run; Dodge et al. (2019, "Show Your Work") give the unbiased estimator of the expected
best of k trials drawn from n observed ones (with replacement):

    E[max of k] = sum_i v_(i) [ (i/n)^k - ((i-1)/n)^k ],   v_(1) <= ... <= v_(n)

(for a lower-is-better metric, the same for the minimum). A trial's value is the mean of its seeds' values
(a trial is one hyperparameter setting; its seeds estimate what that setting gives). Trials with no value (every
seed failed or recorded no metric) are left out and counted (`failed_trials`). Bands are percentile bootstrap
intervals over trials.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd


def expected_best(values, k: int, lower_is_better: bool = True) -> float:
    """Expected best of k draws with replacement from `values` (Dodge et al. 2019)."""
    v = np.sort(np.asarray(values, float))
    if lower_is_better:
        return -expected_best(-v, k, lower_is_better=False)
    n = len(v)
    if n == 0:
        return float("nan")
    i = np.arange(1, n + 1)
    weights = (i / n) ** k - ((i - 1) / n) ** k
    return float(np.dot(weights, v))


def _curve(values: np.ndarray, ks: np.ndarray, lower_is_better: bool) -> np.ndarray:
    return np.array([expected_best(values, int(k), lower_is_better) for k in ks])


def expected_best_curve(values, ks: Optional[Sequence[int]] = None, lower_is_better: bool = True,
                        n_boot: int = 1000, confidence: float = 0.95, seed: int = 0) -> pd.DataFrame:
    """[k, expected, ci_low, ci_high] for k = 1..n (or `ks`): the expected best of k trials with a bootstrap
    band (trials resampled with replacement)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    n = len(values)
    ks = np.arange(1, n + 1) if ks is None else np.asarray(list(ks), int)
    if n == 0:
        return pd.DataFrame({"k": ks, "expected": np.nan, "ci_low": np.nan, "ci_high": np.nan})
    expected = _curve(values, ks, lower_is_better)
    if n < 2:
        low = high = np.full(len(ks), np.nan)
    else:
        rng = np.random.default_rng(seed)
        boot = np.array([_curve(values[rng.integers(0, n, n)], ks, lower_is_better) for _ in range(n_boot)])
        tail = (1 - confidence) / 2 * 100
        low, high = np.percentile(boot, tail, axis=0), np.percentile(boot, 100 - tail, axis=0)
    return pd.DataFrame({"k": ks, "expected": expected, "ci_low": low, "ci_high": high})


def trial_values(runs: pd.DataFrame, metric: str, trials: Sequence[str], by: Optional[str] = None) -> pd.DataFrame:
    """One row per trial: its mean `metric` over completed seeds (NaN when none has a value), seeds used,
    and the `by` column (a searched choice, e.g. `loss`) when given."""
    rows = []
    for trial in trials:
        r = runs[runs["variation"] == trial]
        done = r[r["status"] == "completed"] if "status" in r else r
        values = pd.to_numeric(done[metric], errors="coerce").dropna() if metric in done else pd.Series(dtype=float)
        row = {"variation": trial, "value": float(values.mean()) if len(values) else np.nan, "seeds": len(values)}
        if by is not None:
            row[by] = r[by].iloc[0] if by in r and len(r) else None
        rows.append(row)
    return pd.DataFrame(rows, columns=["variation", "value", "seeds"] + ([by] if by else []))


def budget_curves(runs: pd.DataFrame, metric: str, trials: Sequence[str], lower_is_better: bool = True,
                  by: Optional[str] = None, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Tidy [group, k, expected, ci_low, ci_high, trials, failed_trials]: one curve for all trials, or one per
    value of `by` (the trials that drew it)."""
    table = trial_values(runs, metric, trials, by)
    groups = [("all trials", table)] if by is None else [(str(g), d) for g, d in table.groupby(by, sort=False)]
    frames = []
    for name, d in groups:
        curve = expected_best_curve(d["value"], lower_is_better=lower_is_better, n_boot=n_boot, seed=seed)
        curve.insert(0, "group", name)
        curve["trials"] = int(d["value"].notna().sum())
        curve["failed_trials"] = int(d["value"].isna().sum())
        frames.append(curve)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["group", "k", "expected", "ci_low", "ci_high", "trials", "failed_trials"])


def compare_budgets(runs: pd.DataFrame, metric: str, trials: Sequence[str], by: str, a, b,
                    lower_is_better: bool = True, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """At each budget k (up to the smaller group's trials): expected best of choice `a` and of `b`, their
    difference a - b with a bootstrap interval (each group's trials resampled independently), and the
    bootstrap probability that `a`'s expected best is better than `b`'s."""
    table = trial_values(runs, metric, trials, by)
    va = table.loc[table[by].astype(str) == str(a), "value"].dropna().to_numpy()
    vb = table.loc[table[by].astype(str) == str(b), "value"].dropna().to_numpy()
    n = min(len(va), len(vb))
    if n == 0:
        return pd.DataFrame(columns=["k", f"expected {a}", f"expected {b}", "difference", "ci_low", "ci_high",
                                     f"P({a} better)"])
    ks = np.arange(1, n + 1)
    ea, eb = _curve(va, ks, lower_is_better), _curve(vb, ks, lower_is_better)
    rng = np.random.default_rng(seed)
    diffs = np.array([_curve(va[rng.integers(0, len(va), len(va))], ks, lower_is_better)
                      - _curve(vb[rng.integers(0, len(vb), len(vb))], ks, lower_is_better) for _ in range(n_boot)])
    better = (diffs < 0) if lower_is_better else (diffs > 0)
    return pd.DataFrame({"k": ks, f"expected {a}": ea, f"expected {b}": eb, "difference": ea - eb,
                         "ci_low": np.percentile(diffs, 2.5, axis=0), "ci_high": np.percentile(diffs, 97.5, axis=0),
                         f"P({a} better)": better.mean(axis=0) + 0.5 * (diffs == 0).mean(axis=0)})
