"""Coverage of every interval the report prints, at the seed counts it is shown for (a check, not a speed benchmark).

    python benchmarks/check_interval_coverage.py [--reps 2000]

Each interval is computed on simulated studies whose true value is known, under three kinds of seed noise:
normal; skewed (lognormal, sigma 0.5); and "bad seeds" (normal, but with probability 0.15 a seed is 4 SD worse).
Prints the share of simulated studies whose 95 % interval holds the true value, next to the coverage the report
claims for it (95 %, or the exact coverage it prints beside a range). Rows:

- median (Overview ranking, Metrics page): `analysis.stats.median_ci`, exact order statistics; below 6 seeds the
  range, printed with its coverage. "bootstrap" is the percentile bootstrap the report used before.
- IQM (Statistics, aggregates): `iqm_ci`, trimmed-t; "bootstrap" as before. True value: the population IQM.
- Cliff's delta and P(better) (Statistics): the score interval (P(better) = (delta + 1) / 2), two configurations
  shifted by 1 SD; "bootstrap" is the P(better) interval the report used before. Hodges-Lehmann shift: Moses.
- budget band (Budget page): `analysis.budget.median_best_interval` for the median best of k trials, where both
  sides exist; and the bias of the expected best of k = n (the old with-replacement formula vs the unbiased one).
Simulation standard error at 2,000 repetitions: ~0.5 points.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from analysis.budget import expected_best, median_best_interval  # noqa: E402
from analysis.stats import cliffs_delta, hodges_lehmann, iqm_ci, median_ci, probability_of_improvement  # noqa: E402

NOISE = {
    "normal": lambda rng, shape: rng.normal(0, 1, shape),
    "skewed": lambda rng, shape: rng.lognormal(0, 0.5, shape),
    "bad seeds": lambda rng, shape: rng.normal(0, 1, shape) + 4.0 * (rng.random(shape) < 0.15),
}


def population(noise, rng, size=2_000_000):
    return np.sort(NOISE[noise](rng, size))


def boot_percentile(x, statistic, rng, reps=1000):
    b = statistic(x[rng.integers(0, len(x), (reps, len(x)))])
    return np.percentile(b, 2.5), np.percentile(b, 97.5)


def row(name, noise, n, claimed, hits, old=None):
    claimed_text = f"{claimed:.3f}" if np.isfinite(claimed) else "  –  "
    old_text = f"{np.mean(old):9.3f}" if old is not None else f"{'':9}"
    print(f"{name:<16} {noise:<9} {n:>5} | {claimed_text:>7} {np.mean(hits):8.3f} | {old_text}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=2000)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    R = args.reps
    print(f"{'interval':<16} {'noise':<9} {'n':>5} | {'claimed':>7} {'measured':>8} | {'bootstrap':>9}   ({R} simulated studies each)")
    for noise in NOISE:
        pop = population(noise, rng)
        true_median = np.median(pop)
        true_iqm = pop[len(pop) // 4: 3 * len(pop) // 4].mean()
        for n in (2, 3, 4, 5, 6, 8, 10):
            hits, old, claimed = [], [], []
            for _ in range(R):
                x = NOISE[noise](rng, n)
                m = median_ci(x)
                hits.append(m["ci_low"] <= true_median <= m["ci_high"])
                claimed.append(m["coverage"])
                lo, hi = boot_percentile(x, lambda b: np.median(b, axis=1), rng)
                old.append(lo <= true_median <= hi)
            row("median", noise, n, np.mean(claimed), hits, old)
        for n in (3, 4, 5, 6, 8, 10):
            hits, old, claimed = [], [], []
            for _ in range(R):
                x = NOISE[noise](rng, n)
                c = iqm_ci(x)
                # with 3 seeds the IQM is the median: its range covers the median, what it estimates there
                truth = true_median if n < 4 else true_iqm
                hits.append(c["ci_low"] <= truth <= c["ci_high"])
                claimed.append(c["coverage"])
                lo, hi = boot_percentile(x, lambda b: stats.trim_mean(b, 0.25, axis=1), rng)
                old.append(lo <= true_iqm <= hi)
            row("IQM", noise, n, np.mean(claimed), hits, old)
        # two configurations 1 SD apart (scale of the noise's normal part; the skewed noise is shifted by 0.5)
        shift = 0.5 if noise == "skewed" else 1.0
        true_delta = np.mean(np.sign(rng.choice(pop, 400_000) + shift - rng.choice(pop, 400_000)))
        for n in (3, 4, 5, 6, 8, 10):
            cd_hits, poi_hits, hl_hits, hl_n, old = [], [], [], 0, []
            for _ in range(R):
                a, b = NOISE[noise](rng, n) + shift, NOISE[noise](rng, n)
                d = cliffs_delta(a, b)
                cd_hits.append(d["ci_low"] <= true_delta <= d["ci_high"])
                p = probability_of_improvement(a, b, lower_is_better=False)
                true_poi = (true_delta + 1) / 2
                poi_hits.append(p["ci_low"] <= true_poi <= p["ci_high"])
                boot = [np.mean(np.sign(a[rng.integers(0, n, n)][:, None] - b[rng.integers(0, n, n)][None, :]))
                        for _ in range(300)]
                lo, hi = (np.percentile(boot, 2.5) + 1) / 2, (np.percentile(boot, 97.5) + 1) / 2
                old.append(lo <= true_poi <= hi)
                h = hodges_lehmann(a, b)
                if np.isfinite(h["ci_low"]):
                    hl_n += 1
                    hl_hits.append(h["ci_low"] <= shift <= h["ci_high"])
            row("Cliff's delta", noise, n, 0.95, cd_hits)
            row("P(better)", noise, n, 0.95, poi_hits, old)
            if noise != "skewed":  # Moses' interval is for a pure shift; the skewed pair is one
                row("HL shift", noise, n, 0.95 if hl_n else np.nan, hl_hits if hl_n else [np.nan])
        # budget: the median best of k trials (lower is better) from n trials
        for n, ks in ((8, (1,)), (16, (1, 2, 3)), (32, (1, 2, 4, 6))):
            for k in ks:
                truth = np.quantile(pop, 1 - 0.5 ** (1 / k))  # median of the minimum of k
                hits, both = [], 0
                for _ in range(R):
                    lo, hi = median_best_interval(NOISE[noise](rng, n), k)
                    if np.isfinite(lo) and np.isfinite(hi):
                        both += 1
                        hits.append(lo <= truth <= hi)
                if both:
                    row(f"budget k={k}", noise, n, 0.95, hits)
    print("\nExpected best of k = n trials (lower is better): mean estimate minus truth over the simulated studies")
    for noise in NOISE:
        for n in (8, 16):
            truth = NOISE[noise](rng, (400_000, n)).min(axis=1).mean()
            old, new = [], []
            for _ in range(R):
                v = np.sort(NOISE[noise](rng, n))
                i = np.arange(1, n + 1)
                old.append(np.dot((i / n) ** n - ((i - 1) / n) ** n, v[::-1]) - truth)  # Dodge et al., with replacement
                new.append(expected_best(v, n) - truth)
            print(f"{noise:<9} n = k = {n:>2}: with replacement {np.mean(old):+.3f} SD, unbiased {np.mean(new):+.3f} SD")


if __name__ == "__main__":
    main()
