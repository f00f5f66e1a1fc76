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
# # Train one GAN configuration
#
# Run with papermill, e.g. `papermill notebooks/train.py out.ipynb -p lr 2e-4` or `-f params.yaml`.
# Every value of the `parameters` cell is a field of `ganlib.Config` (see `docs/configuration.md`); `None` for
# a `g_*`/`d_*` field means "same as the shared value" (`lr`, `beta1`, ...). The run is written to `run_dir`
# (default `runs/<dataset>-<config hash>`, format in `docs/run-directory.md`); running again with the same
# `run_dir` resumes an interrupted run and leaves a finished one as it is.

# %%
_names_before_parameters = set(globals())

# %% tags=["parameters"]
# recipe: a named starting point (balanced, dcgan, sngan, wgan_gp, tutorial; see docs/configuration.md).
# Fields left as None below come from it; any value you pass overrides it.
recipe = "balanced"
# data
dataset = "mnist_subset"
data_dir = None
subset = None
image_size = None
channels = None
on_bad_image = "skip"
# model
model = None
latent_dim = 100
conditional = True
embedding_dim = 50
d_conditioning = None
filters = None
g_filters = None
d_filters = None
filter_growth = None
depth = None
g_depth = None
d_depth = None
upsampling = None
leaky_slope = None
g_leaky_slope = None
d_leaky_slope = None
dropout = None
norm = None
g_norm = None
d_norm = None
weight_init = None
# loss and training tricks
loss = None
gp_weight = None
clip_value = 0.01
r1_weight = 0.0
real_label = 1.0
fake_label = 0.0
d_steps = None
ema = 0.0  # a fixed EMA decay per step; ema_kimg (a half-life) is the usual way
ema_kimg = None  # generator EMA half-life in thousands of images (0: off), with a ramp-up (ema_rampup)
ema_rampup = 0.05
mbstd_group = None  # minibatch standard-deviation feature in D (0: off)
mode_seeking = None  # mode-seeking regularization weight (0: off)
augment = None  # DiffAugment policy, e.g. translation,cutout (empty: off)
ada_target = 0.0  # adaptive augmentation: target of E[sign(D(real))], 0.6 in ADA (0: off)
ada_kimg = 100.0  # adaptive augmentation speed: thousands of images from 0 to 1
# optimization
optimizer = None
g_optimizer = None
d_optimizer = None
lr = None
g_lr = None
d_lr = None
beta1 = None
g_beta1 = None
d_beta1 = None
beta2 = None
g_beta2 = None
d_beta2 = None
lr_schedule = "constant"
batch_size = None
epochs = 20
steps_per_epoch = None
seed = 0
precision = "auto"  # mixed_bfloat16 where the CPU computes bf16 natively, else float32
# outputs
sample_interval = 1
checkpoint_interval = 1
metric_interval = 0
metric_samples = 1000
grid_size = 10
tensorboard = False  # also write run_dir/tensorboard (`tensorboard --logdir runs`)
divergence_patience = 3
init_from = None
threads = 0
# where the run goes (not part of the configuration)
run_dir = None
verbose = 2

# %% [markdown]
# ## Configuration
# Validated before any data is loaded: a bad value stops here with a message naming the field.

# %%
_given = {k: v for k, v in globals().items() if k not in _names_before_parameters and not k.startswith("_")}
import ganlib
from ganlib.notebook_support import config_from_namespace

config, run_dir = config_from_namespace(_given, extra=("run_dir", "verbose"))
print(f"ganlib {ganlib.__version__}; config hash {config.hash}; run directory {run_dir}")

# %% [markdown]
# ## Data preview

# %%
from ganlib.notebook_support import show_dataset_preview

show_dataset_preview(config)

# %% [markdown]
# ## Training

# %%
from ganlib.notebook_support import outcome_line
from ganlib.run import train

summary = train(config, run_dir, verbose=verbose)
print(outcome_line(summary))

# %% [markdown]
# ## Results: samples from the fixed benchmark noise, learning curves, metrics

# %%
from ganlib.notebook_support import show_run

show_run(run_dir)

# %% [markdown]
# ## Train a variation (in Jupyter)
# A form of every configuration field, starting from this run's values and validated as you type (the same
# errors as above); its Train button trains the changed configuration into its own `runs/<dataset>-<hash>`
# with live progress. Under papermill it is shown but nothing is trained.

# %%
from ganlib.settings_form import SettingsForm

SettingsForm.from_run(run_dir).widget
