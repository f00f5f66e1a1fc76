"""Coverage of the report's 95% intervals at the seed counts people use (a check, not a speed benchmark).

    python benchmarks/check_interval_coverage.py [--reps 4000]

Simulates two configurations of n seeds with normal noise and a known shift, and counts how often each interval
holds the true value: Cliff's delta (score interval, with the continuity correction ganlib applies up to
CONTINUITY_MAX_N seeds, and without it) and the Hodges-Lehmann shift. True delta for a shift mu with unit noise:
2 Phi(mu / sqrt 2) - 1. Prints one row per (n, mu).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
from scipy.stats import norm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from analysis.stats import _auc_newcombe_ci, cliffs_delta, hodges_lehmann  # noqa: E402


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=4000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[3, 4, 5, 6, 8, 10])
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{'n':>3} {'shift':>5} {'delta':>6} | {'cliff (used)':>12} {'cliff plain':>11} {'cliff cc':>8} "
          f"{'HL shift':>8}   ({args.reps} simulated pairs of configurations each)")
    for n in args.sizes:
        for mu in (0.0, 1.0, 2.0):
            true = 2 * norm.cdf(mu / np.sqrt(2)) - 1
            used = plain = cc = hl = hl_n = 0
            for _ in range(args.reps):
                a, b = rng.normal(mu, 1, n), rng.normal(0, 1, n)
                d = cliffs_delta(a, b)
                used += d["ci_low"] <= true <= d["ci_high"]
                theta = (d["cliffs_delta"] + 1) / 2
                for flag in (False, True):
                    lo, hi = _auc_newcombe_ci(theta, n, n, 0.95, continuity=flag)
                    hit = 2 * lo - 1 <= true <= 2 * hi - 1
                    plain, cc = (plain + hit, cc) if not flag else (plain, cc + hit)
                h = hodges_lehmann(a, b)
                if np.isfinite(h["ci_low"]):
                    hl_n += 1
                    hl += h["ci_low"] <= mu <= h["ci_high"]
            r = args.reps
            hl_text = f"{hl / hl_n:8.3f}" if hl_n else f"{'none':>8}"
            print(f"{n:3d} {mu:5.1f} {true:6.3f} | {used / r:12.3f} {plain / r:11.3f} {cc / r:8.3f} {hl_text}")


if __name__ == "__main__":
    main()
