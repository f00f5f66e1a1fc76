"""Seed planning: how many seeds a study needs to detect an effect, estimated from a pilot.

    python -m analysis.plan studies/quick --effect 5            # a shift of 5 in the primary metric's units
    python -m analysis.plan studies/quick --effect 10% --metric final_fid --power 0.9

The spread between seeds is taken from the pilot (any gathered study): each completed run's deviation from its
configuration's median, pooled over configurations (scaled by sqrt(n/(n-1)): deviations from a centre fitted to
the same n seeds understate the noise). For each number of seeds n, `simulations` pilot-sized
studies are simulated: two configurations of n seeds, each seed a draw from that spread, one shifted by the
effect; each is tested with the exact test the report uses (`analysis.stats.mann_whitney`, two-sided) at
alpha / comparisons (Holm's first step, when a study tests several variations against its baseline). The power
at n is the share of simulated studies that detect the effect; the recommendation is the smallest n that
reaches the requested power. The spread is what the pilot showed: with few pilot runs it is itself uncertain,
so read the recommendation as a lower bound.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from analysis.stats import mann_whitney, min_achievable_p

SEED_COUNTS = (2, 3, 4, 5, 6, 8, 10, 12, 15, 20)
MIN_PILOT_RUNS = 4


class PlanError(ValueError):
    pass


def seed_spread(runs: pd.DataFrame, metric: str, group: str = "variation") -> np.ndarray:
    """Deviations of each completed run's `metric` from its group's median, pooled (the pilot's seed noise)."""
    if metric not in runs:
        raise PlanError(f"the runs table has no column {metric!r}")
    done = runs[runs["status"] == "completed"] if "status" in runs else runs
    values = pd.to_numeric(done[metric], errors="coerce")
    ok = done[np.isfinite(values)]
    values = pd.to_numeric(ok[metric])
    deviations = values - values.groupby(ok[group]).transform("median")
    sizes = ok.groupby(group)[metric].transform("size")
    # Deviations from a group's own centre are smaller than the noise itself (by about sqrt((n-1)/n) for n
    # seeds); scaled back, so a small pilot does not promise too few seeds.
    deviations = deviations * np.sqrt(sizes / (sizes - 1).clip(lower=1))
    out = deviations[sizes > 1].to_numpy(float)  # a group of one run says nothing about the spread
    if len(out) < MIN_PILOT_RUNS:
        raise PlanError(f"{len(out)} completed runs with a finite {metric} in configurations of 2 or more seeds; "
                        f"a pilot needs at least {MIN_PILOT_RUNS} (e.g. 2 configurations x 2 seeds)")
    return out


def power_curve(spread, effect: float, seed_counts: Sequence[int] = SEED_COUNTS, alpha: float = 0.05,
                comparisons: int = 1, simulations: int = 400, seed: int = 0) -> pd.DataFrame:
    """[seeds, power, min_p, reachable] per number of seeds per configuration."""
    spread = np.asarray(spread, float)
    level = alpha / max(1, comparisons)
    rng = np.random.default_rng(seed)
    rows = []
    for n in seed_counts:
        floor = min_achievable_p(n, n)
        hits = 0
        if floor <= level:
            for _ in range(simulations):
                a = rng.choice(spread, n)
                b = rng.choice(spread, n) + effect
                # a tiny jitter breaks the ties that resampling a small pilot creates, so the exact test applies
                a, b = a + rng.normal(0, 1e-9, n), b + rng.normal(0, 1e-9, n)
                hits += mann_whitney(a, b)["p"] <= level
        rows.append({"seeds": n, "power": hits / simulations, "min_p": floor, "reachable": floor <= level})
    return pd.DataFrame(rows)


def recommend(curve: pd.DataFrame, power: float = 0.8) -> Optional[int]:
    enough = curve[curve["power"] >= power]
    return int(enough["seeds"].iloc[0]) if len(enough) else None


def parse_effect(text: str, reference: float) -> float:
    """'5' -> 5.0 (metric units); '10%' -> 10% of `reference` (the pilot's median)."""
    text = str(text).strip()
    try:
        if text.endswith("%"):
            return abs(float(text[:-1]) / 100 * reference)
        return abs(float(text))
    except ValueError:
        raise PlanError(f"--effect {text!r}: give a number in the metric's units (5) or a percentage of the "
                        "pilot's median (10%)") from None


def plan(runs: pd.DataFrame, metric: str, effect, power: float = 0.8, alpha: float = 0.05, comparisons: int = 1,
         simulations: int = 400, seed: int = 0) -> dict:
    spread = seed_spread(runs, metric)
    done = runs[runs["status"] == "completed"] if "status" in runs else runs
    median = float(np.nanmedian(pd.to_numeric(done[metric], errors="coerce")))
    shift = parse_effect(effect, median)
    if shift == 0:
        raise PlanError("--effect must be non-zero")
    curve = power_curve(spread, shift, alpha=alpha, comparisons=comparisons, simulations=simulations, seed=seed)
    return dict(metric=metric, effect=shift, median=median, spread_sd=float(np.std(spread, ddof=1)),
                pilot_runs=len(spread), curve=curve, seeds=recommend(curve, power), power=power, alpha=alpha,
                comparisons=comparisons)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.plan", description=__doc__.split("\n\n")[0],
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
          f"seed-to-seed SD {result['spread_sd']:.4g}")
    print(f"effect to detect: {result['effect']:.4g} ({metric} units); two-sided exact Mann-Whitney at "
          f"alpha {args.alpha} / {comparisons} comparison(s)")
    print(result["curve"].to_string(index=False, formatters={"power": "{:.2f}".format, "min_p": "{:.3g}".format}))
    if result["seeds"] is None:
        print(f"RECOMMENDATION: more than {int(result['curve']['seeds'].max())} seeds per configuration for power "
              f"{args.power} (or look for a larger effect / less seed noise)")
    else:
        print(f"RECOMMENDATION: {result['seeds']} seeds per configuration for power {args.power}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
