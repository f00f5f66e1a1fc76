"""Statistics for honest GAN hyperparameter studies.

Design rules (each one prevents a mistake the original project made):

* Small samples get exact p-values. With 3 seeds per arm an asymptotic
  Mann-Whitney test can print p = 0.04 although the exact test cannot go below
  0.1, so the normal approximation is only used for large groups.
* Every table of comparisons is corrected for multiplicity (Holm for the
  `significant` flag, Benjamini-Hochberg reported alongside).
* Every comparison says whether significance was even *reachable* with the
  seeds it had, so "no difference" is never read as "no effect".
* Effect sizes with confidence intervals are always reported next to p-values.
* Only completed runs with finite metric values are used; what was dropped is
  counted and reported in a `warning` column instead of silently vanishing.

All table-level functions return tidy pandas DataFrames; the scalar helpers
return plain dicts so they can be merged into rows.
"""
from __future__ import annotations

import itertools
import math
import re

from typing import Optional

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import brentq
from statsmodels.stats.multitest import multipletests

# --- method-selection thresholds (documented because they decide p-values) ---
# scipy's "auto" rule uses the exact MWU distribution when a group has <= 8
# values and there are no ties.  The exact distribution is cheap, so we use it
# up to 20 per group: GAN studies rarely have more seeds than that.
EXACT_MAX_N = 20
# With ties scipy's exact distribution is invalid; instead we enumerate every
# relabelling of the pooled data (exact permutation test) up to this many.
PERMUTATION_ENUM_MAX = 200_000
# Up to this many values per group Cliff's delta's score interval gets a continuity correction: without it the
# interval covers only ~90% at 3 vs 3 (benchmarks/check_interval_coverage.py measures it).
CONTINUITY_MAX_N = 5
# Below this group size the normal approximation is never used; if enumeration
# is too big we fall back to a seeded Monte Carlo permutation test instead.
ASYMPTOTIC_MIN_N = 10
MC_RESAMPLES = 99_999
DEFAULT_SEED = 0

METHOD_WORDS = {
    "exact": "exact Mann-Whitney",
    "exact-permutation": "exact permutation Mann-Whitney, ties present",
    "permutation-mc": "Monte Carlo permutation Mann-Whitney, ties present",
    "asymptotic": "asymptotic Mann-Whitney",
    "not tested": "not tested",
}


# ----------------------------------------------------------------------------
# Scalar building blocks
# ----------------------------------------------------------------------------
def _clean(values) -> np.ndarray:
    """Float array without NaN/inf (non-finite metrics mean a broken run)."""
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def min_achievable_p(n1: int, n2: int, alternative: str = "two-sided") -> float:
    """Smallest p an exact Mann-Whitney U test can return for sizes n1, n2.

    Reached by perfect separation: one of C(n1+n2, n1) equally likely
    arrangements (two for two-sided).  3 vs 3 -> 0.1, 5 vs 5 -> 0.0079.
    """
    if n1 < 1 or n2 < 1:
        return 1.0
    tails = 2 if alternative == "two-sided" else 1
    return min(1.0, tails / math.comb(n1 + n2, n1))


def mann_whitney(a, b, alternative: str = "two-sided", seed: int = DEFAULT_SEED) -> dict:
    """Mann-Whitney U test of `a` vs `b` with the method chosen for validity.

    * no ties and min(n) <= EXACT_MAX_N: scipy's exact distribution;
    * ties and <= PERMUTATION_ENUM_MAX arrangements: exact permutation test
      (full enumeration, scipy's exact distribution assumes no ties);
    * ties, too many arrangements, small group: seeded Monte Carlo permutation;
    * otherwise (both groups large): asymptotic with tie/continuity correction.

    Returns dict(U, p, method, n1, n2, ties, min_p); U is the statistic of `a`.
    """
    a, b = _clean(a), _clean(b)
    n1, n2 = len(a), len(b)
    out = dict(U=np.nan, p=np.nan, method="not tested", n1=n1, n2=n2, ties=False,
               min_p=min_achievable_p(n1, n2, alternative))
    if n1 == 0 or n2 == 0:
        return out
    pooled = np.concatenate([a, b])
    ties = len(np.unique(pooled)) < len(pooled)
    n_arrangements = math.comb(n1 + n2, n1)
    if not ties and min(n1, n2) <= EXACT_MAX_N:
        method, kw = "exact", dict(method="exact")
    elif ties and n_arrangements <= PERMUTATION_ENUM_MAX:
        method, kw = "exact-permutation", dict(method=stats.PermutationMethod(n_resamples=np.inf))
    elif min(n1, n2) < ASYMPTOTIC_MIN_N:
        method = "permutation-mc"
        kw = dict(method=stats.PermutationMethod(n_resamples=MC_RESAMPLES, batch=1000,
                                                 rng=np.random.default_rng(seed)))
    else:
        method, kw = "asymptotic", dict(method="asymptotic", use_continuity=True)
    res = stats.mannwhitneyu(a, b, alternative=alternative, **kw)
    out.update(U=float(res.statistic), p=float(res.pvalue), method=method, ties=bool(ties))
    return out


def _auc_newcombe_ci(theta: float, n1: int, n2: int, confidence: float,
                     continuity: Optional[bool] = None) -> tuple[float, float]:
    """Newcombe (2006) 'method 5' score interval for theta = P(A>B) + P(A=B)/2.

    Wilson-style: solves (|theta_hat - t| - c)^2 = z^2 V(t) with the Hanley-McNeil
    variance evaluated at t.  Unlike bootstrap or Wald intervals it does not
    collapse to a point under perfect separation (ubiquitous with 3-5 seeds).
    With few seeds theta_hat takes only n1*n2 + 1 values and the plain interval
    undercovers (90% at 3 vs 3), so up to CONTINUITY_MAX_N per group a continuity
    correction c = 1 / (2 n1 n2) widens it (coverage measured by
    benchmarks/check_interval_coverage.py: at least nominal at every n it tries).
    """
    z = stats.norm.ppf(0.5 + confidence / 2)
    n_star = (n1 + n2) / 2 - 1
    if continuity is None:
        continuity = min(n1, n2) <= CONTINUITY_MAX_N
    c = 1 / (2 * n1 * n2) if continuity else 0.0

    def f(t):
        var = t * (1 - t) / (n1 * n2) * (1 + n_star * ((1 - t) / (2 - t) + t / (1 + t)))
        return max(abs(theta - t) - c, 0.0) ** 2 - z * z * var

    # f <= 0 within c of theta_hat and f >= 0 at 0 and 1; the brackets start c off theta_hat (and just off it
    # without correction, because f(0) = 0 trivially when theta_hat = 0, and likewise at 1).
    eps = 1e-12
    lo = 0.0 if theta - c <= eps or f(0.0) <= 0 else brentq(f, 0.0, theta - max(c, eps))
    hi = 1.0 if theta + c >= 1 - eps or f(1.0) <= 0 else brentq(f, theta + max(c, eps), 1.0)
    return lo, hi


def cliffs_delta(a, b, confidence: float = 0.95) -> dict:
    """Cliff's delta of `a` relative to `b`: P(a > b) - P(a < b), in [-1, 1].

    Equals the rank-biserial correlation 2U/(n1 n2) - 1.  Negative means `a`
    tends to be smaller.  CI: Newcombe's score interval for the AUC mapped
    through delta = 2 AUC - 1 (see `_auc_newcombe_ci` for why not bootstrap).
    """
    a, b = _clean(a), _clean(b)
    if len(a) == 0 or len(b) == 0:
        return dict(cliffs_delta=np.nan, ci_low=np.nan, ci_high=np.nan)
    diff = np.sign(a[:, None] - b[None, :])
    delta = float(diff.mean())
    lo, hi = _auc_newcombe_ci((delta + 1) / 2, len(a), len(b), confidence)
    return dict(cliffs_delta=delta, ci_low=2 * lo - 1, ci_high=2 * hi - 1)


def _u_null_cdf(n1: int, n2: int) -> np.ndarray:
    """Exact null CDF of U (no ties) by the standard counting recursion.

    count(i, j, u) = count(i-1, j, u-j) + count(i, j-1, u): the largest pooled
    value either belongs to the first sample (beating all j others) or not.
    """
    prev = [np.ones(1) for _ in range(n2 + 1)]
    for i in range(1, n1 + 1):
        cur = [np.ones(1)]
        for j in range(1, n2 + 1):
            h = np.zeros(i * j + 1)
            h[j:] += prev[j]
            h[: len(cur[j - 1])] += cur[j - 1]
            cur.append(h)
        prev = cur
    counts = prev[n2]
    return np.cumsum(counts) / counts.sum()


def hodges_lehmann(a, b, confidence: float = 0.95) -> dict:
    """Hodges-Lehmann shift of `a` relative to `b` (median of all a_i - b_j).

    CI: distribution-free Moses interval [D_(k), D_(n1 n2 + 1 - k)] of the
    sorted pairwise differences, with k from the exact null distribution of U
    (normal approximation when n1*n2 > 2500).  When the sample is too small for
    the requested coverage (e.g. 3 vs 3 at 95 %) the CI is NaN with a note,
    because no finite interval has that coverage.
    """
    a, b = _clean(a), _clean(b)
    out = dict(hl_shift=np.nan, ci_low=np.nan, ci_high=np.nan, note="")
    if len(a) == 0 or len(b) == 0:
        out["note"] = "empty sample"
        return out
    d = np.sort((a[:, None] - b[None, :]).ravel())
    n1, n2, m = len(a), len(b), len(d)
    out["hl_shift"] = float(np.median(d))
    alpha = 1 - confidence
    if m <= 2500:
        cdf = _u_null_cdf(n1, n2)
        ok = np.flatnonzero(cdf <= alpha / 2)  # P(U <= k-1) <= alpha/2
        k = int(ok[-1]) + 1 if len(ok) else 0
    else:
        z = stats.norm.ppf(1 - alpha / 2)
        k = int(np.floor(m / 2 - z * np.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)))
    if k < 1:
        out["note"] = (f"{n1} vs {n2} values too few for a {confidence:.0%} "
                       f"Hodges-Lehmann CI")
    else:
        out.update(ci_low=float(d[k - 1]), ci_high=float(d[m - k]))
    return out


def median_ci(values, confidence: float = 0.95) -> dict:
    """Median with its exact distribution-free interval [x_(k), x_(n+1-k)] (order statistics).

    The number of seeds below the true median is Binomial(n, 1/2) for any continuous metric, so the interval
    between the k-th smallest and k-th largest value covers the median with probability
    1 - 2 P(Bin(n, 1/2) < k), exactly; k is the largest that keeps this at least `confidence`. Below 6 values no
    order-statistic interval reaches 95 %: the range is returned with the coverage it does have (n = 3: 75 %,
    n = 5: 93.75 %) in `coverage`, and a note. A bootstrap interval covers only 46-88 % at 2-4 seeds.
    """
    x = np.sort(_clean(values))
    n = len(x)
    out = dict(median=float(np.median(x)) if n else np.nan, ci_low=np.nan, ci_high=np.nan, n=n,
               coverage=np.nan, note="")
    if n < 2:
        out["note"] = f"{n} value(s): no interval"
        return out
    k_all = np.arange(1, n // 2 + 1)
    cover = 1 - 2 * stats.binom.cdf(k_all - 1, n, 0.5)
    ok = k_all[cover >= confidence - 1e-12]
    k = int(ok[-1]) if len(ok) else 1
    out.update(ci_low=float(x[k - 1]), ci_high=float(x[n - k]), coverage=float(cover[k - 1]))
    if not len(ok):
        out["note"] = f"range of {n} values: covers the median {cover[0]:.0%} of the time (no {confidence:.0%} interval)"
    return out


def interquartile_mean(values) -> float:
    """Mean of the middle 50 % of the values (rliable's IQM, Agarwal et al. 2021), trimming floor(n/4) from
    each end; with 3 values it is the middle one (rliable's formula trims nothing there and returns the plain
    mean: [2.0, 2.1, 50.0] -> 18.0), so from 3 seeds on one failed seed cannot dominate it. With 1-2 values it is
    their mean."""
    x = _clean(values)
    if len(x) == 3:
        return float(np.median(x))
    return float(stats.trim_mean(x, 0.25)) if len(x) else np.nan


# The trimmed-t quantile is taken at this two-sided level for a nominal 95 % interval: at 4-12 seeds the plain
# 95 % quantile covers only 92-93 % when n is a multiple of 4 (check_interval_coverage.py, normal, skewed and
# bad-seed noise); this one covers 94.5-97 % at every n there.
IQM_T_LEVEL = {0.95: 0.97}


def iqm_ci(values, confidence: float = 0.95) -> dict:
    """IQM with a Tukey-McLaughlin trimmed-t interval (winsorized variance, n - 2g - 1 degrees of freedom).

    From 4 values. A bootstrap interval covers 86-90 % at 4-6 seeds. With 2-3 values the IQM is a median (or a
    mean of two): the range is returned with its exact coverage of the median in `coverage`, as `median_ci`
    does.
    """
    x = np.sort(_clean(values))
    n = len(x)
    out = dict(iqm=interquartile_mean(x), ci_low=np.nan, ci_high=np.nan, n=n, coverage=np.nan, note="")
    if n < 4:
        m = median_ci(x, confidence)
        out.update(ci_low=m["ci_low"], ci_high=m["ci_high"], coverage=m["coverage"], note=m["note"])
        return out
    g = n // 4
    w = x.copy()
    w[:g], w[n - g:] = x[g], x[n - g - 1]
    se = np.std(w, ddof=1) / ((1 - 2 * g / n) * np.sqrt(n))
    level = IQM_T_LEVEL.get(round(confidence, 6), confidence)
    t = stats.t.ppf(0.5 + level / 2, n - 2 * g - 1)
    out.update(ci_low=out["iqm"] - t * se, ci_high=out["iqm"] + t * se, coverage=confidence)
    return out


def probability_of_improvement(a, b, lower_is_better: bool = True, confidence: float = 0.95) -> dict:
    """P(a run of `a` is better than a run of `b`) + P(tie)/2 (rliable's probability of improvement, the
    Mann-Whitney AUC), with the same continuity-corrected score interval as Cliff's delta (a bootstrap interval
    collapses to [1, 1] when the seeds separate: 36 % coverage at 3 vs 3)."""
    a, b = _clean(a), _clean(b)
    out = dict(poi=np.nan, ci_low=np.nan, ci_high=np.nan)
    if len(a) == 0 or len(b) == 0:
        return out
    d = cliffs_delta(b, a, confidence) if lower_is_better else cliffs_delta(a, b, confidence)
    out.update(poi=(d["cliffs_delta"] + 1) / 2, ci_low=(d["ci_low"] + 1) / 2, ci_high=(d["ci_high"] + 1) / 2)
    return out


def aggregate_table(runs: pd.DataFrame, metric: str, baseline, group: str = "variation",
                    lower_is_better: bool = True, confidence: float = 0.95) -> pd.DataFrame:
    """Per group (completed runs with a finite metric): n, median, IQM with its CI, and the probability that a
    run of the group beats a run of the baseline, with its CI (rliable's aggregates). `iqm_ci_coverage` is the
    IQM interval's coverage where it is below `confidence` (2-3 runs: the range)."""
    _require_columns(runs, [group, metric])
    done = runs[runs["status"] == "completed"] if "status" in runs else runs
    values = {g: _clean(pd.to_numeric(d[metric], errors="coerce")) for g, d in done.groupby(group, sort=False)}
    ref = values.get(baseline, np.array([]))
    rows = []
    for g, x in values.items():
        agg = iqm_ci(x, confidence)
        row = {group: g, "n": len(x), "median": float(np.median(x)) if len(x) else np.nan, "iqm": agg["iqm"],
               "iqm_ci_low": agg["ci_low"], "iqm_ci_high": agg["ci_high"], "iqm_ci_coverage": agg["coverage"]}
        if g != baseline:
            p = probability_of_improvement(x, ref, lower_is_better, confidence)
            row.update(poi=p["poi"], poi_ci_low=p["ci_low"], poi_ci_high=p["ci_high"])
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------
# Run-table helpers and validation
# ----------------------------------------------------------------------------
def _require_columns(df: pd.DataFrame, cols, what: str = "column") -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"unknown {what}(s) {missing}; available columns: {list(df.columns)}. "
                         "Check the spelling or add the column when gathering runs.")


def _validate_metric(runs: pd.DataFrame, metric: str, group: str) -> None:
    _require_columns(runs, [group], "group column")
    if metric not in runs.columns:
        numeric = list(runs.select_dtypes("number").columns)
        raise ValueError(f"unknown metric column {metric!r}; numeric columns are {numeric}")
    if not pd.api.types.is_numeric_dtype(runs[metric]):
        raise ValueError(f"metric column {metric!r} is not numeric (dtype {runs[metric].dtype}); "
                         "convert it with pd.to_numeric first")


def _usable_groups(runs: pd.DataFrame, metric: str, group: str) -> dict:
    """Per group: usable values plus human-readable notes about what was dropped.

    Only status == "completed" runs count (a diverged run has no meaningful
    final FID and mixing it in biases the comparison); without a `status`
    column every run is assumed completed.
    """
    out = {}
    for name, g in runs.groupby(group, sort=False):
        notes = []
        if "status" in g.columns:
            bad = g["status"] != "completed"
            if bad.any():
                counts = ", ".join(f"{s} {c}" for s, c in g.loc[bad, "status"].value_counts().items())
                notes.append(f"failed/diverged runs excluded from {name}: {int(bad.sum())} ({counts})")
            g = g[~bad]
        vals = pd.to_numeric(g[metric], errors="coerce").to_numpy(float)
        finite = np.isfinite(vals)
        if (~finite).any():
            notes.append(f"non-finite {metric} excluded from {name}: {int((~finite).sum())}")
        if "seed" in g.columns and g.loc[finite, "seed"].duplicated().any():
            notes.append(f"duplicate seeds in {name}: {int(g.loc[finite, 'seed'].duplicated().sum())}")
        out[name] = dict(values=vals[finite], notes=notes)
    return out


def _compare_pair(ref: dict, other: dict, ref_name, other_name, confidence: float, seed: int) -> dict:
    """All statistics for `other` relative to `ref` (effects are other - ref)."""
    x, y = other["values"], ref["values"]
    notes = ref["notes"] + other["notes"]
    mr, mo = median_ci(y, confidence), median_ci(x, confidence)
    row = dict(n_ref=len(y), n_other=len(x),
               median_ref=mr["median"], median_ref_ci_low=mr["ci_low"], median_ref_ci_high=mr["ci_high"],
               median_ref_ci_coverage=mr["coverage"], median_other=mo["median"], median_other_ci_low=mo["ci_low"],
               median_other_ci_high=mo["ci_high"], median_other_ci_coverage=mo["coverage"])
    if len(x) < 2 or len(y) < 2:
        small = ", ".join(f"{n} ({len(v)})" for n, v in ((ref_name, y), (other_name, x)) if len(v) < 2)
        notes.append(f"fewer than 2 usable runs in {small}; not tested")
        row.update(U=np.nan, p=np.nan, method="not tested", min_p=np.nan,
                   cliffs_delta=np.nan, cliffs_delta_ci_low=np.nan, cliffs_delta_ci_high=np.nan,
                   hl_shift=np.nan, hl_shift_ci_low=np.nan, hl_shift_ci_high=np.nan)
    else:
        mw, cd, hl = mann_whitney(x, y, seed=seed), cliffs_delta(x, y, confidence), hodges_lehmann(x, y, confidence)
        if hl["note"]:
            notes.append(hl["note"])
        row.update(U=mw["U"], p=mw["p"], method=mw["method"], min_p=mw["min_p"],
                   cliffs_delta=cd["cliffs_delta"], cliffs_delta_ci_low=cd["ci_low"],
                   cliffs_delta_ci_high=cd["ci_high"], hl_shift=hl["hl_shift"],
                   hl_shift_ci_low=hl["ci_low"], hl_shift_ci_high=hl["ci_high"])
    row["_notes"] = notes
    return row


def _finalize(rows: list[dict], alpha: float, lower_is_better: bool) -> pd.DataFrame:
    """Multiplicity correction, reachability, direction and warning text."""
    df = pd.DataFrame(rows)
    tested = df["p"].notna().to_numpy()
    m = int(tested.sum())
    df["n_comparisons"], df["alpha"] = m, alpha
    df["p_holm"] = df["p_bh"] = np.nan
    if m:
        df.loc[tested, "p_holm"] = multipletests(df.loc[tested, "p"], alpha, "holm")[1]
        df.loc[tested, "p_bh"] = multipletests(df.loc[tested, "p"], alpha, "fdr_bh")[1]
    # Best case for a row: every test hits its exact-test floor min_p.  Holm
    # adjusted p-values are monotone in each raw p, so Holm applied to the
    # floors is the smallest adjusted p this row could ever get (m * min_p when
    # all rows have the same seed counts).
    df["min_p_holm"] = np.nan
    if m:
        df.loc[tested, "min_p_holm"] = multipletests(df.loc[tested, "min_p"], alpha, "holm")[1]
    df["reachable"] = tested & (df["min_p_holm"] < alpha).to_numpy()
    df["significant"] = (df["p_holm"] < alpha).fillna(False).astype(bool)
    delta = df["cliffs_delta"]
    df["direction"] = np.select([delta < 0, delta > 0, delta == 0], ["lower", "higher", "equal"], "")
    df["better"] = (delta < 0) if lower_is_better else (delta > 0)
    df["lower_is_better"] = lower_is_better
    warn = []
    for r in df.to_dict("records"):
        notes = list(r["_notes"])
        if not np.isnan(r["p"]) and not r["reachable"]:
            notes.insert(0, f"{r['n_other']} vs {r['n_ref']} seeds: smallest possible Holm-adjusted p "
                            f"is {r['min_p_holm']:.2g} > {alpha:g}, so significance is unreachable")
        warn.append("; ".join(notes))
    df["warning"] = warn
    return df.drop(columns="_notes")


_STAT_COLS = ["U", "p", "method", "min_p", "p_holm", "p_bh", "min_p_holm", "n_comparisons", "alpha",
              "significant", "reachable", "cliffs_delta", "cliffs_delta_ci_low", "cliffs_delta_ci_high",
              "hl_shift", "hl_shift_ci_low", "hl_shift_ci_high", "direction", "better",
              "lower_is_better", "warning"]


def _rename(df: pd.DataFrame, ref: str, other: str) -> pd.DataFrame:
    return df.rename(columns=lambda c: c.replace("_ref", f"_{ref}").replace("_other", f"_{other}"))


def compare_to_baseline(runs: pd.DataFrame, metric: str, baseline, group: str = "variation",
                        lower_is_better: bool = True, alpha: float = 0.05,
                        confidence: float = 0.95, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """One row per non-baseline group: `group` vs `baseline` on `metric`.

    Effects (cliffs_delta, hl_shift) are variation relative to baseline, so a
    negative value means the variation has lower metric values.  p_holm and
    p_bh are adjusted over all tested rows of this table; `significant` uses
    Holm; `reachable` says whether the best possible outcome could have been
    significant; `better` is the direction of the point estimate only.
    """
    _validate_metric(runs, metric, group)
    groups = _usable_groups(runs, metric, group)
    if baseline not in groups:
        raise ValueError(f"baseline {baseline!r} not found in column {group!r}; "
                         f"present: {list(groups)}. Pass the study's baseline name.")
    rows = []
    for name, g in groups.items():
        if name == baseline:
            continue
        row = _compare_pair(groups[baseline], g, baseline, name, confidence, seed)
        rows.append({group: name, "baseline": baseline, "metric": metric, **row})
    if not rows:
        raise ValueError(f"only the baseline {baseline!r} is present in {group!r}; nothing to compare")
    df = _finalize(rows, alpha, lower_is_better)
    front = [group, "baseline", "metric", "n_ref", "n_other", "median_ref", "median_ref_ci_low",
             "median_ref_ci_high", "median_ref_ci_coverage", "median_other", "median_other_ci_low",
             "median_other_ci_high", "median_other_ci_coverage"]
    return _rename(df[front + _STAT_COLS], "baseline", "variation")


def pairwise_comparisons(runs: pd.DataFrame, metric: str, group: str = "variation",
                         lower_is_better: bool = True, alpha: float = 0.05,
                         confidence: float = 0.95, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """All unordered pairs (a, b) of groups; effects are b relative to a.

    Columns mirror `compare_to_baseline` with `_a`/`_b` suffixes; Holm and BH
    are applied over all k(k-1)/2 pairs, which is why pairwise tables need
    many more seeds than baseline comparisons to reach significance.
    """
    _validate_metric(runs, metric, group)
    groups = _usable_groups(runs, metric, group)
    if len(groups) < 2:
        raise ValueError(f"need at least two groups in {group!r} for pairwise comparisons")
    rows = [{f"{group}_a": a, f"{group}_b": b, "metric": metric,
             **_compare_pair(groups[a], groups[b], a, b, confidence, seed)}
            for a, b in itertools.combinations(groups, 2)]
    df = _finalize(rows, alpha, lower_is_better)
    front = [f"{group}_a", f"{group}_b", "metric", "n_ref", "n_other", "median_ref",
             "median_ref_ci_low", "median_ref_ci_high", "median_ref_ci_coverage", "median_other",
             "median_other_ci_low", "median_other_ci_high", "median_other_ci_coverage"]
    return _rename(df[front + _STAT_COLS], "a", "b")


def kruskal_all(runs: pd.DataFrame, metric: str, group: str = "variation",
                n_resamples: int = 9999, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """Kruskal-Wallis H test across all groups (one-row DataFrame).

    `p` is scipy's chi-square approximation; `p_permutation` is a seeded
    permutation p (exact enumeration when small) and should be preferred when
    groups have fewer than 5 runs.  epsilon_squared = H / (n - 1).
    """
    _validate_metric(runs, metric, group)
    groups = _usable_groups(runs, metric, group)
    notes = [n for g in groups.values() for n in g["notes"]]
    usable = {k: g["values"] for k, g in groups.items() if len(g["values"]) > 0}
    if len(usable) < len(groups):
        notes.append(f"groups without usable runs dropped: {[k for k in groups if k not in usable]}")
    single = [k for k, v in usable.items() if len(v) == 1]
    if single:  # one run says nothing about a configuration's spread (and the permutation test needs two)
        notes.append(f"groups with a single usable run dropped: {single}")
        usable = {k: v for k, v in usable.items() if len(v) > 1}
    row = dict(metric=metric, k=len(usable), n_total=sum(map(len, usable.values())),
               H=np.nan, df=len(usable) - 1, p=np.nan, p_permutation=np.nan, epsilon_squared=np.nan,
               n_per_group=", ".join(f"{k}: {len(v)}" for k, v in usable.items()))
    samples = list(usable.values())
    if len(samples) < 2 or row["n_total"] <= len(samples) or np.ptp(np.concatenate(samples)) == 0:
        notes.append("not enough distinct data for Kruskal-Wallis")
    else:
        res = stats.kruskal(*samples)
        perm = stats.permutation_test(samples, lambda *s, axis: stats.kruskal(*s, axis=axis).statistic,
                                      vectorized=True, n_resamples=n_resamples, alternative="greater",
                                      rng=np.random.default_rng(seed))
        row.update(H=float(res.statistic), p=float(res.pvalue), p_permutation=float(perm.pvalue),
                   epsilon_squared=float(res.statistic) / (row["n_total"] - 1))
        if min(map(len, samples)) < 5:
            notes.append("groups with < 5 runs: chi-square p is approximate, use p_permutation")
    row["warning"] = "; ".join(notes)
    return pd.DataFrame([row])


# ----------------------------------------------------------------------------
# Factorial designs
# ----------------------------------------------------------------------------
def _merge_confounded(d: pd.DataFrame, factors: list) -> tuple:
    """Factors whose levels determine each other among the runs (e.g. two fields every variation changes
    together) cannot be told apart: each pair is merged into one factor "a & b". Returns (runs, factors,
    descriptions of the merged groups)."""
    groups = []
    for f in factors:
        for g in groups:
            pairs = d[[g[0], f]].astype(str).drop_duplicates()
            if pairs[g[0]].is_unique and pairs[f].is_unique:
                g.append(f)
                break
        else:
            groups.append([f])
    merged = [g for g in groups if len(g) > 1]
    if not merged:
        return d, factors, []
    d = d.copy()
    for g in merged:
        d[" & ".join(g)] = d[g].astype(str).agg(", ".join, axis=1)
    return d, [" & ".join(g) for g in groups], [" & ".join(g) for g in merged]


def factorial_model(runs: pd.DataFrame, metric: str, factors: list[str],
                    interactions="auto", robust: bool = True) -> pd.DataFrame:
    """Type-II ANOVA of `metric ~ C(f1) * C(f2) * ...` (statsmodels OLS).

    interactions="auto" fits interactions only when every factor-level cell is
    observed with >= 2 runs: otherwise interaction terms are not estimable (or
    eat all residual degrees of freedom) and main effects only are fitted.
    With robust=True the aligned rank transform (ART, Wobbrock et al. 2011) is
    added (rows with analysis="aligned-rank", robust=True): for each term the
    response is aligned (residuals + that term's estimated effect), ranked and
    refit, which is robust to FID outliers and valid for interactions where a
    plain rank transform is not.  Alignment is exact for balanced designs.
    """
    factors = list(factors)
    if not factors:
        raise ValueError("factors must name at least one column")
    _require_columns(runs, factors, "factor column")
    _validate_metric(runs, metric, factors[0])
    d = runs[runs["status"] == "completed"] if "status" in runs.columns else runs
    d = d[np.isfinite(pd.to_numeric(d[metric], errors="coerce"))].dropna(subset=factors)
    n_dropped = len(runs) - len(d)
    d, factors, confounded = _merge_confounded(d, factors)
    names = {f"_f{i}": f for i, f in enumerate(factors)}
    data = pd.DataFrame({k: d[f].to_numpy() for k, f in names.items()})
    data["_y"] = d[metric].to_numpy(float)
    for k, f in names.items():
        levels = data[k].unique()
        if len(levels) < 2:
            raise ValueError(f"factor {f!r} has a single level ({levels.tolist()}) among usable runs; "
                             "drop it from `factors` or add variations that change it")
    cells = data.groupby(list(names)).size()
    n_cells = int(np.prod([data[k].nunique() for k in names]))
    full = len(cells) == n_cells and cells.min() >= 2
    if interactions == "auto":
        interactions = full and len(factors) > 1
    note = ("main effects + interactions" if interactions else
            "main effects only: " + ("single factor" if len(factors) == 1 else
                                     "interactions need every cell observed with >= 2 runs"))
    if n_dropped:
        note += f"; {n_dropped} runs dropped (not completed / non-finite / missing factor)"
    if confounded:
        note += "; confounded (always changed together, so one joint effect): " + "; ".join(confounded)
    op = " * " if interactions else " + "

    def rhs(coding=""):
        return op.join(f"C({k}{coding})" for k in names)

    def pretty(term):
        return re.sub(r"C\((_f\d+)(?:, Sum)?\)", lambda m: names[m.group(1)], term)

    import statsmodels.formula.api as smf  # local: keeps `import analysis.stats` light
    from statsmodels.stats.anova import anova_lm

    fit = smf.ols(f"_y ~ {rhs()}", data).fit()
    if fit.df_resid < 1:
        raise ValueError(f"no residual degrees of freedom ({len(data)} runs for "
                         f"{int(fit.df_model) + 1} parameters); add seeds")
    tab = anova_lm(fit, typ=2).reset_index(names="term")
    tab["analysis"], tab["robust"] = "ols", False
    out = [tab]
    if robust:
        # ART: sum-to-zero coding so each term's columns carry exactly its effect.
        sfit = smf.ols(f"_y ~ {rhs(', Sum')}", data).fit()
        X = pd.DataFrame(sfit.model.exog, columns=sfit.model.exog_names)
        term_of = [re.sub(r"\[[^\]]*\]", "", c) for c in X.columns]
        art = []
        for term in dict.fromkeys(term_of):
            if term == "Intercept":
                continue
            cols = [c for c, t in zip(X.columns, term_of) if t == term]
            aligned = sfit.resid.to_numpy() + X[cols].to_numpy() @ sfit.params[cols].to_numpy()
            rfit = smf.ols(f"_r ~ {rhs(', Sum')}", data.assign(_r=stats.rankdata(aligned))).fit()
            art.append(anova_lm(rfit, typ=2).loc[[term]].reset_index(names="term"))
        art = pd.concat(art, ignore_index=True)
        art["analysis"], art["robust"] = "aligned-rank", True
        out.append(art)
    res = pd.concat(out, ignore_index=True).rename(columns={"PR(>F)": "p"})
    ss_resid = float(tab.loc[tab["term"] == "Residual", "sum_sq"].iloc[0])
    res["partial_eta_sq"] = np.where(res["term"] == "Residual", np.nan,
                                     res["sum_sq"] / (res["sum_sq"] + ss_resid))
    res.loc[res["robust"], "partial_eta_sq"] = np.nan  # rank SS are not on the metric's scale
    res["term"] = res["term"].map(pretty)
    res["metric"], res["model"], res["n"], res["note"] = metric, ("interaction" if interactions else "main"), len(data), note
    return res[["metric", "analysis", "robust", "model", "term", "df", "sum_sq", "F", "p",
                "partial_eta_sq", "n", "note"]]


# ----------------------------------------------------------------------------
# Training-stability measures from per-epoch / per-batch logs
# ----------------------------------------------------------------------------
def longest_streak_in_band(values, low: float, high: float) -> int:
    """Length of the longest run of consecutive values inside [low, high] (NaN = outside)."""
    best = cur = 0
    for v in np.asarray(values, dtype=float):
        cur = cur + 1 if low <= v <= high else 0
        best = max(best, cur)
    return best


def _order_cols(df: pd.DataFrame, order=None) -> list[str]:
    return list(order) if order is not None else [c for c in ("epoch", "step") if c in df.columns]


def rolling_mean(df: pd.DataFrame, column: str, window: int, by=("variation", "seed"),
                 order=None, min_periods: int = 1) -> pd.DataFrame:
    """Trailing rolling mean of `column` within each `by` group, in log order.

    Returns `by + order + [column, f"{column}_rolling_mean"]`; rows are sorted
    by group then `order` (default: epoch, step where present) so a shuffled
    log never smooths across unrelated steps.
    """
    by = [c for c in by if c in df.columns] if by else []
    order = _order_cols(df, order)
    _require_columns(df, [column, *order])
    d = df.sort_values(by + order, kind="stable")[by + order + [column]].reset_index(drop=True)
    roll = lambda s: s.rolling(window, min_periods=min_periods).mean()
    d[f"{column}_rolling_mean"] = d.groupby(by, sort=False)[column].transform(roll) if by else roll(d[column])
    return d


def epochs_to_threshold(epochs: pd.DataFrame, metric: str, threshold: float,
                        lower_is_better: bool = True, by=("variation", "seed"),
                        epoch_col: str = "epoch") -> pd.DataFrame:
    """First epoch at which `metric` reaches `threshold` per run (NaN if never).

    "Reaches" means <= threshold when lower is better (FID), else >=.
    Columns: by + ["epochs_to_threshold", "reached"].
    """
    by = list(by)
    _require_columns(epochs, [*by, metric, epoch_col])
    rows = []
    for key, g in epochs.sort_values(epoch_col).groupby(by, sort=True, dropna=False):
        v = g[metric].to_numpy(float)
        hit = (v <= threshold) if lower_is_better else (v >= threshold)
        first = g[epoch_col].to_numpy()[hit][0] if hit.any() else np.nan
        rows.append({**dict(zip(by, key)), "epochs_to_threshold": first, "reached": bool(hit.any())})
    return pd.DataFrame(rows, columns=by + ["epochs_to_threshold", "reached"])


def stability_table(batches: pd.DataFrame, band=(0.3, 0.7), window: int = 50,
                    tail_frac: float = 0.2, by=None) -> pd.DataFrame:
    """Per-run stability summary from per-batch logs.

    Columns: longest_streak_in_band / frac_in_band of raw `d_acc_fake` (the
    discriminator neither winning nor losing), longest_streak_smoothed_in_band
    on its `window`-step rolling mean (batch-level accuracy is noisy), and for
    each of d_loss, g_loss, d_acc_real, d_acc_fake present: mean and std over
    the last `tail_frac` of steps (late oscillation) and the count of
    non-finite values (a sign of divergence).
    """
    by = list(by) if by else [c for c in ("variation", "seed", "run_id") if c in batches.columns]
    _require_columns(batches, ["d_acc_fake", *by])
    low, high = band
    order = _order_cols(batches)
    rows = []
    for key, g in batches.sort_values(by + order, kind="stable").groupby(by, sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        acc = g["d_acc_fake"].to_numpy(float)
        smooth = pd.Series(acc).rolling(window, min_periods=1).mean().to_numpy()
        tail = g.iloc[len(g) - max(1, math.ceil(tail_frac * len(g))):]
        row = {**dict(zip(by, key)), "n_steps": len(g),
               "longest_streak_in_band": longest_streak_in_band(acc, low, high),
               "frac_in_band": float(np.mean((acc >= low) & (acc <= high))),
               "longest_streak_smoothed_in_band": longest_streak_in_band(smooth, low, high)}
        for c in ("d_loss", "g_loss", "d_acc_real", "d_acc_fake"):
            if c in g.columns:
                t = tail[c].to_numpy(float)
                t = t[np.isfinite(t)]
                row[f"{c}_tail_mean"] = t.mean() if len(t) else np.nan
                row[f"{c}_tail_std"] = t.std(ddof=1) if len(t) > 1 else np.nan
                row[f"{c}_nonfinite"] = int((~np.isfinite(g[c].to_numpy(float))).sum())
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------
# Plain-language report
# ----------------------------------------------------------------------------
def _num(x: float) -> str:
    return "nan" if not np.isfinite(x) else (f"{x:,.0f}" if abs(x) >= 1000 else f"{x:#.3g}".rstrip("."))


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"= {p:.2g}"


def _metric_label(metric: str) -> str:
    return re.sub(r"\b(fid|kid|is)\b", lambda m: m.group(1).upper(), metric.replace("_", " "))


def summarize_in_words(comparison_df: pd.DataFrame, metric: str | None = None,
                       alpha: float | None = None) -> list[str]:
    """Plain-language sentences for a `compare_to_baseline` or `pairwise_comparisons` table.

    Each sentence gives medians, Cliff's delta with CI, Holm-adjusted p, the
    test used and seed counts; non-significant rows say "no detectable
    difference" and, when significance was unreachable, say so explicitly.
    """
    df = comparison_df
    if df.empty:
        return []
    metric = metric or str(df["metric"].iloc[0])
    alpha = float(df["alpha"].iloc[0]) if alpha is None else alpha
    label = _metric_label(metric)
    lib = bool(df["lower_is_better"].iloc[0]) if "lower_is_better" in df else True
    pairwise = "baseline" not in df.columns
    if pairwise:
        ca, cb = df.columns[:2]
        ref_n, oth_n, ref_m, oth_m = "n_a", "n_b", "median_a", "median_b"
    else:
        ref_n, oth_n, ref_m, oth_m = "n_baseline", "n_variation", "median_baseline", "median_variation"
    m = int(df["n_comparisons"].iloc[0])
    noun = "comparison" if m == 1 else "comparisons"
    first = (f"{m} pairwise {noun}" if pairwise else
             f"{m} {'variation' if m == 1 else 'variations'} compared with the baseline "
             f"({df['baseline'].iloc[0]!s})")
    out = [f"{first} on {label} ({'lower' if lib else 'higher'} is better); p-values are "
           f"Holm-adjusted over all {m} comparisons, alpha = {alpha:g}."]
    for r in df.to_dict("records"):
        subj, obj = ((f"{r[cb]}", f"{r[ca]}") if pairwise else
                     (f"Variation {r[df.columns[0]]}", "the baseline"))
        extra = [w for w in r["warning"].split("; ") if w and "unreachable" not in w]
        if not np.isfinite(r["p"]):
            out.append(f"{subj} could not be compared with {obj}: {'; '.join(extra)}.")
            continue
        stats_txt = (f"median {_num(r[oth_m])} vs {_num(r[ref_m])}, Cliff's delta "
                     f"{r['cliffs_delta']:.2f} [{r['cliffs_delta_ci_low']:.2f}, {r['cliffs_delta_ci_high']:.2f}]")
        test_txt = (f"Holm-adjusted p {_p(r['p_holm'])} ({METHOD_WORDS.get(r['method'], r['method'])}, "
                    f"{r[oth_n]} vs {r[ref_n]} seeds)")
        if r["p_holm"] < alpha:
            verdict = "better" if r["better"] else "worse"
            s = f"{subj} had {r['direction']} {label} ({verdict}) than {obj} ({stats_txt}); {test_txt}."
        else:
            s = f"{subj}: no detectable difference in {label} from {obj} ({stats_txt}); {test_txt}."
            if not r["reachable"]:
                s += (f" Note that with {r[oth_n]} vs {r[ref_n]} seeds and {m} comparisons significance "
                      f"is unreachable (smallest possible Holm-adjusted p = {r['min_p_holm']:.2g} > "
                      f"{alpha:g}): this is not evidence of no effect; run more seeds.")
        if extra:
            s += " Caveats: " + "; ".join(extra) + "."
        out.append(s)
    return out
