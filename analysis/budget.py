"""Budget curves: the best primary metric you can expect if you can afford k trials of a sampled design.

Lucic et al. (2018, "Are GANs Created Equal?") compare GAN variants by the distribution of what random search
finds, not by one best run; Dodge et al. (2019, "Show Your Work") estimate the expected best of k trials from n
observed ones. Their formula draws the k trials with replacement and is biased (+1.09 FID at k = n = 16 in
benchmarks/check_interval_coverage.py); this module uses the without-replacement form, the U-statistic whose
kernel is the best of k distinct trials, which is unbiased for every k <= n:

    E[max of k] = sum_i v_(i) C(i-1, k-1) / C(n, k),   v_(1) <= ... <= v_(n)

(for a lower-is-better metric, the same for the minimum).

No interval for an expected best has its nominal coverage with a few dozen trials (a mean of a skewed quantity:
bootstrap and jackknife bands covered 37-95 % in simulation). The band drawn is instead the exact,
distribution-free 95 % interval of the *median* best of k (the value a search of k trials beats half the time):
the best of k is below the q-quantile of single trials with probability 1/2 for q = 1 - 2^(-1/k) (minimum), so
order statistics of the trials bound it exactly, as they bound a median. Where a side would need more trials
than there are, that side is missing (NaN) rather than made up.

A trial's value is the mean of its seeds that completed and learned (ganlib.verdict). A trial counts only when
at least half of its seeds learned: otherwise its value would be a lone survivor's (`usable` False, the reason in
`note`). Unusable trials are left out of the curves and counted; `p_usable` is the probability that k trials
drawn from all of them include at least one usable trial.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import gammaln

from ganlib.verdict import enough_learned


def _log_comb(n, k):
    return gammaln(np.asarray(n, float) + 1) - gammaln(np.asarray(k, float) + 1) - gammaln(np.asarray(n - k, float) + 1)


def expected_best(values, k: int, lower_is_better: bool = True) -> float:
    """Expected best of k distinct trials drawn from `values` (unbiased; k <= len(values))."""
    v = np.sort(np.asarray(values, float))
    n = len(v)
    if n == 0 or not 1 <= k <= n:
        return float("nan")
    if lower_is_better:
        v = v[::-1]  # the minimum of k is the maximum of the negated values: weights run from the top
    i = np.arange(1, n + 1)
    weights = np.zeros(n)
    ok = i >= k
    weights[ok] = np.exp(_log_comb(i[ok] - 1, k - 1) - _log_comb(n, k))
    return float(np.dot(weights, v))


def median_best_interval(values, k: int, lower_is_better: bool = True, confidence: float = 0.95) -> tuple:
    """(low, high): exact order-statistic interval of the median best of k trials; a side that would need a
    value beyond the observed trials is NaN (the bound there is open)."""
    v = np.sort(np.asarray(values, float))
    n = len(v)
    if n == 0:
        return np.nan, np.nan
    q = 1 - 0.5 ** (1 / k) if lower_is_better else 0.5 ** (1 / k)  # quantile of one trial the best of k sits at
    tail = (1 - confidence) / 2
    below = stats.binom.cdf(np.arange(n + 1), n, q)  # P(#values below the quantile <= j)
    # lower bound v_(l): P(quantile < v_(l)) = P(#below <= l-1) <= tail; upper v_(u): P(#below >= u) <= tail
    lows = np.flatnonzero(below[:n] <= tail)  # index j = l-1
    highs = np.flatnonzero(below[:n] >= 1 - tail)  # index j = u-1
    low = float(v[lows[-1]]) if len(lows) else np.nan
    high = float(v[highs[0]]) if len(highs) else np.nan
    return low, high


def expected_best_curve(values, ks: Optional[Sequence[int]] = None, lower_is_better: bool = True,
                        confidence: float = 0.95) -> pd.DataFrame:
    """[k, expected, median_low, median_high] for k = 1..n (or `ks`): the expected best of k trials and the
    exact interval of the median best of k."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    n = len(values)
    ks = np.arange(1, n + 1) if ks is None else np.asarray(list(ks), int)
    rows = [(k, expected_best(values, int(k), lower_is_better),
             *median_best_interval(values, int(k), lower_is_better, confidence)) for k in ks]
    return pd.DataFrame(rows, columns=["k", "expected", "median_low", "median_high"]).astype({"k": int})


def trial_values(runs: pd.DataFrame, metric: str, trials: Sequence[str], by: Optional[str] = None) -> pd.DataFrame:
    """One row per trial: the mean `metric` of its seeds that completed and learned, how many seeds learned of
    how many ran, whether it is `usable` (at least half learned and a value exists), and why not (`note`); the
    `by` column (a searched choice, e.g. `loss`) when given."""
    rows = []
    for trial in trials:
        r = runs[runs["variation"] == trial]
        ok = r[r["status"] == "completed"] if "status" in r else r
        if "verdict" in ok:
            ok = ok[ok["verdict"] != "did_not_learn"]
        values = pd.to_numeric(ok[metric], errors="coerce").dropna() if metric in ok else pd.Series(dtype=float)
        usable = enough_learned(len(values), len(r))
        note = "" if usable else ("no seed learned" if len(values) == 0 else
                                  f"only {len(values)} of {len(r)} seeds learned: not ranked")
        row = {"variation": trial, "value": float(values.mean()) if usable else np.nan,
               "seeds learned": f"{len(values)} / {len(r)}", "usable": usable, "note": note}
        if by is not None:
            row[by] = r[by].iloc[0] if by in r and len(r) else None
        rows.append(row)
    return pd.DataFrame(rows, columns=["variation", "value", "seeds learned", "usable", "note"] + ([by] if by else []))


def p_any_usable(total: int, unusable: int, k: int) -> float:
    """P(k trials drawn without replacement from `total` include at least one of the total - unusable)."""
    if k > total:
        return np.nan
    if unusable < k:
        return 1.0
    return float(1 - np.exp(_log_comb(unusable, k) - _log_comb(total, k)))


def budget_curves(runs: pd.DataFrame, metric: str, trials: Sequence[str], lower_is_better: bool = True,
                  by: Optional[str] = None, confidence: float = 0.95) -> pd.DataFrame:
    """Tidy [group, k, expected, median_low, median_high, p_usable, trials, unusable_trials]: one curve for all
    trials, or one per value of `by` (the trials that drew it); k runs up to the usable trials."""
    table = trial_values(runs, metric, trials, by)
    groups = [("all trials", table)] if by is None else [(str(g), d) for g, d in table.groupby(by, sort=False)]
    frames = []
    for name, d in groups:
        usable = d.loc[d["usable"], "value"]
        curve = expected_best_curve(usable, lower_is_better=lower_is_better, confidence=confidence)
        curve.insert(0, "group", name)
        curve["p_usable"] = [p_any_usable(len(d), int((~d["usable"]).sum()), int(k)) for k in curve["k"]]
        curve["trials"] = len(usable)
        curve["unusable_trials"] = int((~d["usable"]).sum())
        frames.append(curve)
    columns = ["group", "k", "expected", "median_low", "median_high", "p_usable", "trials", "unusable_trials"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def compare_budgets(runs: pd.DataFrame, metric: str, trials: Sequence[str], by: str, a, b,
                    lower_is_better: bool = True) -> tuple[pd.DataFrame, dict]:
    """Two searched choices: (per budget k up to the smaller group's usable trials: the expected best of `a` and
    of `b` and their difference, a - b; one test of single trials: the report's exact Mann-Whitney test and
    Cliff's delta of a's usable trial values against b's). No interval is given for a difference of expected
    bests: none has its nominal coverage at these trial counts (see the module docstring)."""
    from analysis.stats import cliffs_delta, mann_whitney

    table = trial_values(runs, metric, trials, by)
    usable = table[table["usable"]]
    va = usable.loc[usable[by].astype(str) == str(a), "value"].to_numpy()
    vb = usable.loc[usable[by].astype(str) == str(b), "value"].to_numpy()
    ks = np.arange(1, min(len(va), len(vb)) + 1)
    ea = np.array([expected_best(va, int(k), lower_is_better) for k in ks])
    eb = np.array([expected_best(vb, int(k), lower_is_better) for k in ks])
    per_k = pd.DataFrame({"k": ks, f"expected {a}": ea, f"expected {b}": eb, "difference": ea - eb})
    test = {"n_a": len(va), "n_b": len(vb), "p": np.nan, "cliffs_delta": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if len(va) >= 2 and len(vb) >= 2:
        d = cliffs_delta(va, vb)
        test.update(p=mann_whitney(va, vb)["p"], cliffs_delta=d["cliffs_delta"], ci_low=d["ci_low"], ci_high=d["ci_high"])
    return per_k, test
