"""Quality at a fixed CPU budget: every ganlib recipe and the tutorial's own training loop, side by side.

    python benchmarks/bench_quality.py                       # fashion_mnist, 60 CPU-s x 3 seeds x 5 variants
    python benchmarks/bench_quality.py --budget 120 --seeds 5
    python benchmarks/bench_quality.py --quick               # a smoke run (the figures mean nothing)

Each variant trains for the same budget of *this process's CPU seconds* spent in training steps (evaluation
time is not counted), evaluated at fixed fractions of the budget with ganlib's default evaluator (the dataset's
domain-classifier features, 1,000 generated vs 1,000 test images, the same latent points for every variant):

* `tutorial loop`: the tutorial's Keras code and training loop (`bench_train.ReferenceGAN`: Brownlee's cGAN,
  128 filters, batch 128, `train_on_batch`, fakes generated twice), in float32 as the tutorial runs;
* one row per recipe of `ganlib.recipes` (dcgan, sngan, wgan_gp, tutorial) trained by `GANTrainer`, in
  ganlib's default precision (`auto`: printed).

Printed per variant (median [min-max] over seeds): final FID, final label accuracy (share of generated images
the domain classifier assigns to the requested class; chance = 1/classes), CPU seconds, and the CPU seconds at
which it first reached the tutorial loop's final median FID (at an evaluation point, so an upper bound) with
their ratio to the tutorial loop's budget ("CPU time to reach the tutorial's final FID").
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _benchutil import machine, median, prepare_tensorflow, save_json, table, versions  # noqa: E402

prepare_tensorflow()

FRACTIONS = (0.125, 0.25, 0.375, 0.5, 0.75, 1.0)  # of the budget, where the generator is evaluated


class RecipeRun:
    """A ganlib recipe trained by GANTrainer, a few steps at a time (the train function fit() calls)."""

    def __init__(self, data, recipe, seed, dataset):
        import keras

        from ganlib import Config
        from ganlib.data import training_dataset
        from ganlib.models import build_models
        from ganlib.trainer import GANTrainer, make_optimizer

        self.config = cfg = Config(recipe=recipe, dataset=dataset, seed=seed, metric_samples=0)
        keras.utils.set_random_seed(seed)
        g, d = build_models(cfg, data.image_shape, data.num_classes)
        self.trainer = GANTrainer(g, d, cfg, data.num_classes)
        steps = 10 ** 6
        self.trainer.compile(make_optimizer(cfg, "g", steps), make_optimizer(cfg, "d", steps))
        self.trainer.make_train_function()
        per_epoch = len(data) // cfg.effective_batch
        self.iterator = iter(training_dataset(data, cfg.effective_batch, seed, 0, 10 ** 4, per_epoch))
        self.generator = g
        self.precision = cfg.resolved_precision

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
    """[(cpu seconds, metrics)] at FRACTIONS of `budget` CPU seconds of training."""
    points, cpu, marks = [], 0.0, [f * budget for f in FRACTIONS]
    variant.run(1)  # tracing and start-up: not part of the budget
    while marks:
        start = time.process_time()
        variant.run(chunk)
        cpu += time.process_time() - start
        if cpu >= marks[0]:
            while marks and cpu >= marks[0]:
                marks.pop(0)
            m = evaluate(variant.generator)
            points.append((round(cpu, 2), {k: m[k] for k in ("fid", "label_accuracy", "recall", "precision")}))
            print(f"    {cpu:6.1f} CPU-s: FID {m['fid']:7.2f}, label accuracy {m['label_accuracy']:.3f}", flush=True)
    return points


def first_reaching(points, target):
    return next((cpu for cpu, m in points if m["fid"] <= target), None)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--budget", type=float, default=60.0, help="CPU seconds of training per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--recipes", default="dcgan,sngan,wgan_gp,tutorial")
    parser.add_argument("--chunk", type=int, default=5, help="training steps between CPU-time checks")
    parser.add_argument("--samples", type=int, default=1000, help="generated and test images per evaluation")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    if args.quick:
        args.budget, args.seeds, args.samples, args.chunk, args.recipes = 2.0, 1, 100, 1, "dcgan"

    from ganlib import Config
    from ganlib.data import load_dataset
    from ganlib.metrics import default_evaluator

    data = load_dataset(args.dataset, "train")
    if args.quick:
        data = data.take(1024)
    evaluate = default_evaluator(Config(dataset=args.dataset, metric_samples=args.samples), data.num_classes)
    print(f"bench_quality: {data.name} ({len(data)} training images), budget {args.budget:g} CPU-s per run, "
          f"{args.seeds} seeds, {args.samples} samples per evaluation; {machine()}")
    variants = ["tutorial loop"] + [r for r in args.recipes.split(",") if r]
    results = {}
    for name in variants:
        results[name] = []
        for seed in range(args.seeds):
            print(f"  {name}, seed {seed}", flush=True)
            variant = TutorialLoop(data, seed) if name == "tutorial loop" else RecipeRun(data, name, seed, args.dataset)
            points = train_with_budget(variant, evaluate, args.budget, args.chunk)
            results[name].append({"seed": seed, "precision": variant.precision, "points": points})

    target = median([r["points"][-1][1]["fid"] for r in results["tutorial loop"]])
    tutorial_cpu = median([r["points"][-1][0] for r in results["tutorial loop"]])
    rows = []
    for name, runs in results.items():
        finals = [r["points"][-1] for r in runs]
        reach = [first_reaching(r["points"], target) for r in runs]
        reached = [x for x in reach if x is not None]
        row = {"variant": name, "precision": runs[0]["precision"],
               "FID": f"{median([m['fid'] for _, m in finals]):.1f} [{min(m['fid'] for _, m in finals):.1f}-"
                      f"{max(m['fid'] for _, m in finals):.1f}]",
               "label acc": f"{median([m['label_accuracy'] for _, m in finals]):.3f} "
                            f"[{min(m['label_accuracy'] for _, m in finals):.3f}-"
                            f"{max(m['label_accuracy'] for _, m in finals):.3f}]",
               "CPU s": median([c for c, _ in finals]),
               "reached tutorial FID": f"{len(reached)}/{len(runs)}",
               "CPU s to reach": median(reached) if len(reached) == len(runs) else "not by all seeds",
               "ratio to tutorial": (round(median(reached) / tutorial_cpu, 3) if len(reached) == len(runs)
                                     else "-")}
        rows.append(row)
    print(f"\ntutorial loop's final median FID (the target): {target:.2f} at {tutorial_cpu:.1f} CPU-s")
    print(table(rows, list(rows[0])))
    save_json(args.json, {"benchmark": "quality", "machine": machine(), "versions": versions(),
                          "dataset": args.dataset, "budget_cpu_s": args.budget, "seeds": args.seeds,
                          "samples": args.samples, "target_fid": target, "tutorial_cpu_s": tutorial_cpu,
                          "table": rows, "runs": results, "quick": args.quick})
    return 0


if __name__ == "__main__":
    sys.exit(main())
