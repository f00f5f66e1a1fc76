# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Evaluate a trained generator
#
# Run headless with papermill, e.g. `papermill notebooks/evaluate.py out.ipynb -p run_dir runs/<name>`.
# `run_dir` is a *completed* run directory. The notebook scores its final generator (FID, KID, precision/recall,
# density/coverage, classifier scores; written to `metrics/final_eval.json`), sets those numbers beside the
# score of *real* data against real data at the same sample size (the best any generator can do), and looks for
# memorization (generated images next to their nearest training images) and mode collapse (distances between
# generated images compared with distances between real ones).
#
# Features come from the dataset's domain classifier (trained once, cached in `~/.cache/ganlib/feature_nets`),
# or from Keras' ImageNet InceptionV3 with the environment variable `GANLIB_FEATURES=inception` and its weights
# file (not the FID Inception network of published FIDs: its numbers are comparable with each other, not papers).
# Numbers from different extractors or sample sizes are not comparable; every result says which produced it.

# %%
_names_before_parameters = set(globals())

# %% tags=["parameters"]
run_dir = None       # a completed run directory; None: the most recently finished run under runs/
n = None             # samples per side; None: the run's metric_samples
neighbours = 16      # generated images shown beside their nearest training image
space = "pixel"      # nearest neighbours in "pixel" or "feature" space
output_dir = None    # None: <run_dir>/metrics

# %%
_given = {k: v for k, v in globals().items() if k not in _names_before_parameters and not k.startswith("_")}
from pathlib import Path

from ganlib.notebook_support import check_parameters, finished_run_dir

check_parameters(_given, ["run_dir", "n", "neighbours", "space", "output_dir"])
run_dir = finished_run_dir(run_dir, notebook="notebooks/evaluate.py")
output_dir = Path(output_dir or Path(run_dir) / "metrics")
output_dir.mkdir(parents=True, exist_ok=True)

# %%
import matplotlib.pyplot as plt
import pandas as pd

from ganlib import metrics as M
from ganlib.data import load_for_config
from ganlib.rundir import RunDirectory

run = RunDirectory(run_dir)
config = run.read_config()
result = M.evaluate_run(run_dir, n=n)
train = load_for_config(config, "train")
extractor = M.get_extractor(config.dataset, train.image_shape, config.data_dir)
reference = M.real_vs_real_reference(config.dataset, result["n_samples"], train.image_shape[0],
                                     train.image_shape[2], config.data_dir, extractor=extractor)
print(f"run {run.path.name}: {result['model']}, {result['n_samples']} samples per side, features: "
      f"{result['extractor']} (test accuracy {result['extractor_accuracy']})")

# %% [markdown]
# ## Scores, beside real data
# `real data` compares two disjoint sets of real images (split says which): FID/KID there are the floor set by
# sampling noise, precision/recall/coverage the ceiling. Lower FID/KID is better; precision is fidelity
# (fakes inside the real manifold), recall and coverage are diversity, density ~1 for real-like samples.

# %%
names = ["fid", "kid", "precision", "recall", "density", "coverage", "classifier_score", "label_accuracy"]
table = pd.DataFrame({"generator": {k: result.get(k) for k in names},
                      "real data": {k: reference.get(k) for k in names}})
print(f"reference split: {reference['split']}")
table

# %% [markdown]
# ## Memorization: nearest training images
# Each generated image (left) beside the training image closest to it. A distance near 0 is a copy. The histogram
# sets the distances of generated images beside those of real test images to the same training set.

# %%
evaluator = M.default_evaluator(config, train.num_classes, n=result["n_samples"])
generator = run.load_model(result["model"])
samples, _ = evaluator.samples(generator)
kwargs = dict(space=space, extractor=extractor if space == "feature" else None)
idx, dist = M.nearest_training_neighbours(samples, train.images, **kwargs)
_, real_dist = M.nearest_training_neighbours(evaluator.real_images, train.images, **kwargs)
M.plot_neighbours(samples[:neighbours], train.images, idx[:neighbours], output_dir / "neighbours.png",
                  distances=dist[:neighbours])
plt.show()
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist([dist, real_dist], bins=40, label=["generated", "real (test)"], histtype="step")
ax.set(xlabel=f"distance to nearest training image ({space})", ylabel="images")
ax.legend(frameon=False)
plt.show()
print(f"closest generated image: distance {dist.min():.3f}; closest real test image: {real_dist.min():.3f}")

# %% [markdown]
# ## Mode collapse: distances between samples
# Pairwise distances among generated images against those among real test images, in feature space. A
# generated distribution shifted towards 0 means the samples are too similar to each other.

# %%
fake_feats, real_feats = extractor(samples), evaluator.real_features
distances = pd.concat([pd.DataFrame({"set": name, "distance": M.pairwise_distances_summary(f)})
                       for name, f in (("generated", fake_feats), ("real", real_feats))])
distances.boxplot("distance", by="set", figsize=(5, 3))
plt.suptitle("")
plt.show()
distances.groupby("set")["distance"].describe()
