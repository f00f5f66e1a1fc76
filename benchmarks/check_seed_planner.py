"""Does the seed planner keep its promise? (a check by simulation, not a speed benchmark)

    python benchmarks/check_seed_planner.py [--pilots 40]

For each noise model (normal; "bad seeds": with probability 0.15 a seed is 4 SD worse) and pilot size (2
configurations x 3, 4, 5 seeds), `--pilots` pilots are drawn; `analysis.plan.plan` recommends seeds for an effect
of 1 and 1.5 SD at power 0.8 (alpha 0.05, one comparison). The true power of each recommendation is then measured
under the true noise (4,000 simulated studies, the report's test). Prints, per row, the share of pilots whose
recommendation has true power >= 0.8 (the promise: >= 0.8), the lowest true power, and the median recommendation;
"estimate" is the same for a planner that trusts the pilot's SD (what ganlib did before). A recommendation of
"more than 40 seeds" counts as kept when 40 seeds do fall short of the power (its min power is then 0 or 1).
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from analysis.plan import ASSURANCE, _detect, plan  # noqa: E402

NOISE = {
    "normal": lambda rng, shape: rng.normal(0, 1, shape),
    "bad seeds": lambda rng, shape: rng.normal(0, 1, shape) + 4.0 * (rng.random(shape) < 0.15),
}


def true_power(noise, effect, n, rng, studies=4000, cache={}):
    key = (noise, effect, n)
    if key not in cache:
        a = NOISE[noise](rng, (studies, n))
        b = NOISE[noise](rng, (studies, n)) + effect
        cache[key] = float(_detect(a, b, 0.05).mean())
    return cache[key]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pilots", type=int, default=40)
    parser.add_argument("--simulations", type=int, default=400, help="the planner's own simulations per n")
    parser.add_argument("--assurance", type=float, default=ASSURANCE, help=f"the planner's assurance ({ASSURANCE})")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{'noise':>9} {'pilot':>5} {'effect':>6} | {'kept':>5} {'min power':>9} {'median n':>8} | "
          f"{'estimate: kept':>14} {'min power':>9} {'median n':>8}   ({args.pilots} pilots each)")
    for noise in NOISE:
        for pilot_seeds in (3, 4, 5):
            for effect in (1.0, 1.5):
                got = {"bound": [], "estimate": []}
                for i in range(args.pilots):
                    values = NOISE[noise](rng, 2 * pilot_seeds)
                    runs = pd.DataFrame({"variation": ["a"] * pilot_seeds + ["b"] * pilot_seeds,
                                         "status": "completed", "m": values})
                    r = plan(runs, "m", str(effect), simulations=args.simulations, seed=i, assurance=args.assurance)
                    most = int(r["curve"]["seeds"].max())
                    for key, n in (("bound", r["seeds"]), ("estimate", r["seeds_at_estimate"])):
                        if n is None:  # "more than `most` seeds": kept when `most` seeds indeed fall short
                            got[key].append((most + 1, 0.0 if true_power(noise, effect, most, rng) < 0.8 else 1.0))
                        else:
                            got[key].append((n, true_power(noise, effect, n, rng)))
                cells = []
                for key in ("bound", "estimate"):
                    ns, powers = np.array(got[key]).T
                    cells.append(f"{np.mean(powers >= 0.8):>{5 if key == 'bound' else 14}.2f} {powers.min():9.2f} "
                                 f"{np.median(ns):8.0f}")
                print(f"{noise:>9} {pilot_seeds:5d} {effect:6.1f} | {cells[0]} | {cells[1]}", flush=True)


if __name__ == "__main__":
    main()
