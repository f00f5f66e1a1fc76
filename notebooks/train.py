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
# data
dataset = "mnist_subset"
data_dir = None
subset = None
image_size = None
channels = None
on_bad_image = "skip"
# model
model = "dcgan"
latent_dim = 100
conditional = True
embedding_dim = 50
filters = 64
g_filters = None
d_filters = None
filter_growth = 1.0
depth = 2
g_depth = None
d_depth = None
upsampling = "transpose"
leaky_slope = 0.2
g_leaky_slope = None
d_leaky_slope = None
dropout = 0.4
norm = "none"
g_norm = None
d_norm = None
weight_init = "glorot"
# loss and training tricks
loss = "bce"
gp_weight = 10.0
clip_value = 0.01
r1_weight = 0.0
real_label = 1.0
fake_label = 0.0
d_steps = 1
ema = 0.0
# optimization
optimizer = "adam"
g_optimizer = None
d_optimizer = None
lr = 0.0002
g_lr = None
d_lr = None
beta1 = 0.5
g_beta1 = None
d_beta1 = None
beta2 = 0.999
g_beta2 = None
d_beta2 = None
lr_schedule = "constant"
batch_size = 128
epochs = 10
steps_per_epoch = None
seed = 0
precision = "float32"
# outputs
sample_interval = 1
checkpoint_interval = 1
metric_interval = 0
metric_samples = 1000
grid_size = 10
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
from ganlib.run import train

summary = train(config, run_dir, verbose=verbose)
print(f"status: {summary['status']}" + (f" ({summary['error']})" if summary.get("error") else ""))

# %% [markdown]
# ## Results: samples from the fixed benchmark noise, learning curves, metrics

# %%
from ganlib.notebook_support import show_run

show_run(run_dir)
