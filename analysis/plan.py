"""Seed planning: how many seeds a study needs to detect an effect, estimated from a pilot.

    python -m analysis.plan studies/quick --effect 5            # a shift of 5 in the primary metric's units
    python -m analysis.plan studies/quick --effect 10% --metric final_fid --power 0.9

The seed-to-seed noise is taken from the pilot (any gathered study): each completed run's deviation from its
configuration's mean, pooled over configurations (the pooled SD has N - G degrees of freedom for N runs in G
configurations). A pilot of a few seeds estimates that noise poorly (with 2 x 3 seeds the true SD is up to 1.6
times the estimate in one pilot of five), so the planner plans for an upper confidence bound of the SD at
`assurance` (0.9 by default: chi-square bound on the pooled variance) rather than the estimate itself, and says so.
For each number of seeds n, `simulations` studies are simulated: two configurations of n seeds, each seed a draw
of the pilot's deviations rescaled to that SD, one configuration shifted by the effect; each is tested with the
report's test (two-sided Mann-Whitney, exact up to 20 seeds) and counts as detected when p < alpha / comparisons
(Holm's first step, when a study tests several variations against its baseline; the report's rule is p < alpha).
The recommendation is the smallest n whose power reaches the requested power. `benchmarks/check_seed_planner.py`
checks the promise: across simulated pilots (normal noise and occasional bad seeds, 3-5 pilot seeds), the share
whose recommendation has at least the requested true power.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.stats import EXACT_MAX_N, min_achievable_p

SEED_COUNTS = (2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 25, 30, 40)
MIN_PILOT_RUNS = 4
MAX_EFFECT = 1e12  # beyond it shifted values lose every digit of the noise (float64): a typo, not an effect
ASSURANCE = 0.9  # benchmarks/check_seed_planner.py: 0.8 kept the promise in only 78-97 % of simulated pilots


class PlanError(ValueError):
    pass


def _deviations(runs: pd.DataFrame, metric: str, group: str) -> pd.DataFrame:
    """Each completed run's `metric` minus its configuration's mean ("deviation"), with the configuration's size
    ("size"), for configurations of 2 or more seeds (a lone run says nothing about the spread)."""
    if metric not in runs:
        raise PlanError(f"the runs table has no column {metric!r}")
    done = runs[runs["status"] == "completed"] if "status" in runs else runs
    ok = done[np.isfinite(pd.to_numeric(done[metric], errors="coerce"))]
    values = pd.to_numeric(ok[metric])
    by = values.groupby(ok[group])
    table = pd.DataFrame({"group": ok[group], "deviation": values - by.transform("mean"),
                          "size": by.transform("size")})
    table = table[table["size"] > 1]
    if len(table) < MIN_PILOT_RUNS:
        raise PlanError(f"{len(table)} completed runs with a finite {metric} in configurations of 2 or more seeds; "
                        f"a pilot needs at least {MIN_PILOT_RUNS} (e.g. 2 configurations x 2 seeds)")
    return table


def seed_spread(runs: pd.DataFrame, metric: str, group: str = "variation") -> np.ndarray:
    """Deviations of each completed run's `metric` from its group's mean, each scaled by sqrt(n / (n - 1)) for a
    group of n (deviations from a centre fitted to the same seeds understate the noise): with equal groups their
    mean square is the pooled variance. The planner resamples them as the seed noise."""
    table = _deviations(runs, metric, group)
    return (table["deviation"] * np.sqrt(table["size"] / (table["size"] - 1))).to_numpy(float)


def pooled_sd(runs: pd.DataFrame, metric: str, group: str = "variation") -> tuple[float, int]:
    """(pooled within-configuration SD, its degrees of freedom N - G) of the pilot's completed runs."""
    table = _deviations(runs, metric, group)
    df = len(table) - table["group"].nunique()
    return float(np.sqrt((table["deviation"] ** 2).sum() / df)), int(df)


def sd_upper_bound(sd: float, df: int, assurance: float = ASSURANCE) -> float:
    """One-sided upper confidence bound of a normal SD estimated with `df` degrees of freedom."""
    return float(sd * np.sqrt(df / stats.chi2.ppf(1 - assurance, df)))


def _detect(a: np.ndarray, b: np.ndarray, level: float) -> np.ndarray:
    """Per simulated study (rows): whether the report's two-sided Mann-Whitney test has p < level."""
    method = "exact" if a.shape[1] <= EXACT_MAX_N else "asymptotic"
    return stats.mannwhitneyu(a, b, axis=1, method=method).pvalue < level


def power_curve(spread, effect: float, seed_counts: Sequence[int] = SEED_COUNTS, alpha: float = 0.05,
                comparisons: int = 1, simulations: int = 400, seed: int = 0, scale: float = 1.0) -> pd.DataFrame:
    """[seeds, power, min_p, reachable] per number of seeds per configuration, seeds drawn from `spread`
    multiplied by `scale`."""
    spread = np.asarray(spread, float) * scale
    level = alpha / max(1, comparisons)
    rng = np.random.default_rng(seed)
    rows = []
    for n in sorted(set(int(n) for n in seed_counts)):
        floor = min_achievable_p(n, n)
        power = 0.0
        if floor < level:
            a = rng.choice(spread, (simulations, n))
            b = rng.choice(spread, (simulations, n)) + effect
            # a tiny jitter breaks the ties that resampling a small pilot creates, so the exact test applies
            jitter = 1e-9 * max(1.0, float(np.abs(spread).max()))
            a, b = a + rng.normal(0, jitter, a.shape), b + rng.normal(0, jitter, b.shape)
            power = float(_detect(a, b, level).mean())
        rows.append({"seeds": n, "power": power, "min_p": floor, "reachable": floor < level})
    return pd.DataFrame(rows)


def recommend(curve: pd.DataFrame, power: float = 0.8) -> Optional[int]:
    enough = curve[curve["power"] >= power]
    return int(enough["seeds"].iloc[0]) if len(enough) else None


def parse_effect(text: str, reference: float) -> float:
    """'5' -> 5.0 (metric units); '10%' -> 10% of `reference` (the pilot's median)."""
    text = str(text).strip()
    try:
        value = abs(float(text[:-1]) / 100 * reference) if text.endswith("%") else abs(float(text))
    except ValueError:
        raise PlanError(f"--effect {text[:40]!r}: give a number in the metric's units (5) or a percentage of the "
                        "pilot's median (10%)") from None
    if not np.isfinite(value) or value > MAX_EFFECT:
        raise PlanError(f"--effect {text[:40]!r}: give a finite effect of at most {MAX_EFFECT:g} in the metric's units")
    return value


def plan(runs: pd.DataFrame, metric: str, effect, power: float = 0.8, alpha: float = 0.05, comparisons: int = 1,
         simulations: int = 400, seed: int = 0, assurance: float = ASSURANCE,
         seed_counts: Sequence[int] = SEED_COUNTS) -> dict:
    """Power curves at the pilot's SD and at its upper `assurance` bound; `seeds` is the recommendation for the
    bound (reaching `power` unless the pilot underestimated the noise, which happens in 1 - assurance of pilots),
    `seeds_at_estimate` what the pilot's SD alone would suggest."""
    spread = seed_spread(runs, metric)
    sd, df = pooled_sd(runs, metric)
    done = runs[runs["status"] == "completed"] if "status" in runs else runs
    median = float(np.nanmedian(pd.to_numeric(done[metric], errors="coerce")))
    shift = parse_effect(effect, median)
    if shift == 0:
        raise PlanError("--effect must be non-zero")
    if sd == 0:
        raise PlanError(f"every pilot seed of a configuration has the same {metric}: no noise to plan with")
    rms = float(np.sqrt(np.mean(spread ** 2)))
    upper = sd_upper_bound(sd, df, assurance)
    curves = {name: power_curve(spread, shift, seed_counts, alpha, comparisons, simulations, seed, target / rms)
              for name, target in (("estimate", sd), ("bound", upper))}
    curve = curves["bound"].assign(power_at_estimate=curves["estimate"]["power"])
    return dict(metric=metric, effect=shift, median=median, sd=sd, sd_upper=upper, df=df, assurance=assurance,
                pilot_runs=len(spread), curve=curve, seeds=recommend(curves["bound"], power),
                seeds_at_estimate=recommend(curves["estimate"], power), power=power, alpha=alpha,
                comparisons=comparisons)


def main(argv=None, prog: str = "python -m analysis.plan") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0],
                                     epilog="Example: python -m analysis.plan studies/quick --effect 10%")
    parser.add_argument("study_dir", help="a gathered study (the pilot), e.g. studies/quick")
    parser.add_argument("--effect", required=True, help="the difference to detect: metric units (5) or a "
                        "percentage of the pilot's median (10%%)")
    parser.add_argument("--metric", help="default: the study's primary_metric")
    parser.add_argument("--power", type=float, default=0.8, help="wanted probability of detecting it (0.8)")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--comparisons", type=int, default=None,
                        help="tests the study will make (default: its variations other than the baseline)")
    parser.add_argument("--simulations", type=int, default=400)
    args = parser.parse_args(argv)
    from analysis.studydir import StudyDirectory, StudyNotReady

    try:
        directory = StudyDirectory(args.study_dir).check_ready()
    except StudyNotReady as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    definition = directory.definition()
    runs = directory.read_table("runs")
    metric = args.metric or definition.get("primary_metric") or "final_fid"
    comparisons = args.comparisons or max(1, runs["variation"].nunique() - 1)
    if not 0 < args.power < 1 or not 0 < args.alpha < 1:
        parser.error("--power and --alpha are probabilities between 0 and 1")
    try:
        result = plan(runs, metric, args.effect, args.power, args.alpha, comparisons, args.simulations)
    except PlanError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"pilot: {directory.path} ({result['pilot_runs']} runs); {metric}: median {result['median']:.4g}, "
          f"seed-to-seed SD {result['sd']:.4g} ({result['df']} degrees of freedom; planned for "
          f"{result['sd_upper']:.4g}, its {result['assurance']:.0%} upper bound)")
    print(f"effect to detect: {result['effect']:.4g} ({metric} units); two-sided Mann-Whitney, detected when "
          f"p < {args.alpha} / {comparisons} comparison(s)")
    print(result["curve"].to_string(index=False, formatters={"power": "{:.2f}".format, "power_at_estimate": "{:.2f}".format,
                                                             "min_p": "{:.3g}".format}))
    print(say_recommendation(result))
    return 0


def say_recommendation(result: dict) -> str:
    """The recommendation in one sentence, with how sure it is."""
    most = int(result["curve"]["seeds"].max())
    need, guess = result["seeds"], result["seeds_at_estimate"]
    bound = (f"planned for the {result['assurance']:.0%} upper bound of the pilot's seed noise, so it falls short "
             f"only if this pilot underestimated the noise, as about one pilot in "
             f"{round(1 / (1 - result['assurance']))} does")
    sure = (f"{need} seeds per configuration for power {result['power']:g} ({bound})" if need else
            f"more than {most} seeds per configuration for power {result['power']:g} ({bound}); or look for a "
            "larger effect or less seed noise")
    plain = (f"; if the noise is exactly the pilot's, {guess} would do" if guess and guess != need else "")
    return "RECOMMENDATION: " + sure + plain + "."


if __name__ == "__main__":
    sys.exit(main())
