"""Quality against CPU time: every ganlib recipe (and optionally the tutorial's own loop), side by side.

    python benchmarks/bench_quality.py                        # fashion_mnist, 40 CPU-s x (1, 2, 4), 3 seeds
    python benchmarks/bench_quality.py --recipes balanced,balanced+ema_kimg=0,dcgan --seeds 5
    python benchmarks/bench_quality.py --quick                # a smoke run (the figures mean nothing)

`--budget` is one unit of training CPU time: 40 CPU-s is what the default study's 1,350 steps of the `dcgan`
recipe cost on 2 cores (one thread per run). Each variant trains until 4 units, with this process's CPU seconds
spent in training steps counted (evaluation is not), and is evaluated at 1x, 2x and 4x the unit with ganlib's
default evaluator (the dataset's domain-classifier features, 1,000 generated vs 1,000 test images, the same
latent points for every variant; the EMA generator where the recipe has one, as runs report it).

A variant is a recipe, optionally with fields changed (`balanced+ema_kimg=0`: the default recipe without its EMA).
Printed per variant and budget (median [min-max] over seeds): FID, intra-class FID, recall, coverage and label
accuracy; with the number of seeds whose recall is below 0.05 (a collapsed class structure). Variants:
one per recipe named in `--recipes` (ganlib's `GANTrainer`, default precision), and `loop` for the tutorial's
Keras code and training loop (`bench_train.ReferenceGAN`: Brownlee's cGAN, float32, fakes generated twice).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchutil import machine, median, prepare_tensorflow, save_json, spread, table, versions  # noqa: E402

prepare_tensorflow()

MULTIPLES = (1, 2, 4)  # of the budget unit, where the generator is evaluated
METRICS = ("fid", "intra_fid", "recall", "coverage", "label_accuracy")


def parse_variant(text: str):
    """("balanced", {"ema_kimg": 0.0}) for "balanced+ema_kimg=0": a recipe and fields changed from it."""
    import yaml

    recipe, *changes = text.split("+")
    values = {}
    for change in changes:
        field, _, value = change.partition("=")
        values[field] = value if field == "augment" else yaml.safe_load(value)
    return recipe, values


class RecipeRun:
    """A ganlib recipe trained by GANTrainer, a few steps at a time (the train function fit() calls)."""

    def __init__(self, data, variant, seed, dataset):
        import keras

        from ganlib import Config
        from ganlib.data import training_dataset
        from ganlib.models import build_models
        from ganlib.trainer import GANTrainer, make_optimizer

        recipe, changes = parse_variant(variant)
        self.config = cfg = Config(recipe=recipe, dataset=dataset, seed=seed, metric_samples=0, **changes)
        keras.utils.set_random_seed(seed)
        g, d = build_models(cfg, data.image_shape, data.num_classes)
        self.trainer = GANTrainer(g, d, cfg, data.num_classes)
        steps = 10 ** 6
        self.trainer.compile(make_optimizer(cfg, "g", steps), make_optimizer(cfg, "d", steps))
        self.trainer.make_train_function()
        per_epoch = len(data) // cfg.effective_batch
        self.iterator = iter(training_dataset(data, cfg.effective_batch, seed, 0, 10 ** 4, per_epoch))
        self.precision = cfg.resolved_precision

    @property
    def generator(self):
        return self.trainer.sampling_generator  # the EMA copy when the recipe has one, as runs report

    def run(self, steps):
        for _ in range(steps):
            logs = self.trainer.train_function(self.iterator)
            float(logs["g_loss"])  # wait for the step, as ganlib's RunLogger does


class TutorialLoop:
    def __init__(self, data, seed):
        import keras

        import bench_train

        keras.utils.set_random_seed(seed)
        self.ref = bench_train.ReferenceGAN(data.images, data.labels, data.num_classes, "float32", seed=seed)
        self.generator = self.ref.g_model
        self.precision = "float32"

    def run(self, steps):
        self.ref.run(steps)


def train_with_budget(variant, evaluate, budget: float, chunk: int):
    """[(cpu seconds, metrics)] at MULTIPLES of `budget` CPU seconds of training."""
    points, cpu, marks = [], 0.0, [m * budget for m in MULTIPLES]
    variant.run(1)  # tracing and start-up: not part of the budget
    while marks:
        start = time.process_time()
        variant.run(chunk)
        cpu += time.process_time() - start
        if cpu >= marks[0]:
            while marks and cpu >= marks[0]:
                marks.pop(0)
            m = evaluate(variant.generator)
            points.append((round(cpu, 2), {k: m.get(k, float("nan")) for k in METRICS}))
            print(f"    {cpu:6.1f} CPU-s: " + ", ".join(f"{k} {m.get(k, float('nan')):.3f}" for k in METRICS),
                  flush=True)
    return points


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--budget", type=float, default=40.0, help="CPU seconds of training in one budget unit")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--recipes", default="balanced,balanced+ema_kimg=0,dcgan,sngan,wgan_gp,tutorial",
                        help="comma-separated recipes, each optionally with changed fields (balanced+ema_kimg=0); "
                             "'loop' is the tutorial's own training loop")
    parser.add_argument("--chunk", type=int, default=5, help="training steps between CPU-time checks")
    parser.add_argument("--samples", type=int, default=1000, help="generated and test images per evaluation")
    parser.add_argument("--threads", type=int, default=1,
                        help="TensorFlow threads (1, as a study runs each run: CPU seconds then equal core-seconds)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.seeds, args.samples, args.chunk, args.recipes = 1.0, 1, 100, 1, "balanced+mbstd_group=2,loop"

    from ganlib import Config
    from ganlib.run import configure_threads

    configure_threads(args.threads)
    from ganlib.data import load_dataset
    from ganlib.metrics import default_evaluator
    from ganlib.recipes import RECIPES

    variants = [r for r in args.recipes.split(",") if r]
    parsed = {r: parse_variant(r) for r in variants if r != "loop"}
    unknown = [r for r, (recipe, _) in parsed.items() if recipe not in RECIPES]
    if unknown or not variants:
        parser.error(f"--recipes: unknown {unknown}; choose from loop, {', '.join(RECIPES)}")
    for recipe, changes in parsed.values():  # a bad field or value fails here, before any training
        Config(recipe=recipe, dataset=args.dataset, **changes)
    data = load_dataset(args.dataset, "train")
    if args.quick:
        data = data.take(1024)
    evaluate = default_evaluator(Config(dataset=args.dataset, metric_samples=args.samples), data.num_classes)
    print(f"bench_quality: {data.name} ({len(data)} training images), budget unit {args.budget:g} CPU-s, "
          f"evaluated at {MULTIPLES}x, {args.seeds} seeds, {args.samples} samples per evaluation, "
          f"{args.threads or 'default'} threads; {machine()}")
    results = {}
    for name in variants:
        results[name] = []
        for seed in range(args.seeds):
            print(f"  {name}, seed {seed}", flush=True)
            variant = TutorialLoop(data, seed) if name == "loop" else RecipeRun(data, name, seed, args.dataset)
            points = train_with_budget(variant, evaluate, args.budget, args.chunk)
            results[name].append({"seed": seed, "precision": variant.precision, "points": points})

    rows = []
    for name, runs in results.items():
        for i, multiple in enumerate(MULTIPLES):
            at = [r["points"][i] for r in runs if len(r["points"]) > i]
            row = {"variant": name, "budget": f"{multiple}x", "precision": runs[0]["precision"],
                   "CPU s": round(median([c for c, _ in at]), 1)}
            for k in METRICS:
                values = [m[k] for _, m in at]
                row[k] = spread(values) if all(v == v for v in values) else "n/a"
            row["seeds recall < 0.05"] = f"{sum(m['recall'] < 0.05 for _, m in at)}/{len(at)}"
            rows.append(row)
    print(table(rows, list(rows[0])))
    save_json(args.json, {"benchmark": "quality", "machine": machine(), "versions": versions(),
                          "dataset": args.dataset, "budget_cpu_s": args.budget, "multiples": MULTIPLES,
                          "seeds": args.seeds, "samples": args.samples, "table": rows, "runs": results,
                          "quick": args.quick})
    return 0


if __name__ == "__main__":
    sys.exit(main())
