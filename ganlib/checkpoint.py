"""Resume points: every piece of training state in one atomically written, pickle-free .npz file.

Saved: generator, discriminator (and EMA generator) variables including normalization statistics and dropout
seeds, both optimizers' variables (moments, iteration counters), the trainer's noise RNG state, the epoch and the
hash of the configuration that trained it (a checkpoint is never resumed under another configuration).
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from .rundir import RunDirectoryError, atomic_path, load_arrays


def _state_variables(trainer) -> dict:
    groups = {
        "generator": trainer.generator.variables,
        "discriminator": trainer.discriminator.variables,
        "g_optimizer": trainer.g_optimizer.variables,
        "d_optimizer": trainer.d_optimizer.variables,
        "noise_seed": [trainer.noise_seed.state],
    }
    if trainer.ema_generator is not None:
        groups["ema_generator"] = trainer.ema_generator.variables
    if trainer.augment_p is not None:  # ADA's probability: a resume continues from it, bit-identically
        groups["ada"] = [trainer.augment_p]
    return {f"{group}/{i:04d}": v for group, variables in groups.items() for i, v in enumerate(variables)}


def save(trainer, path: Path, epoch: int) -> None:
    arrays = {key: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for key, v in _state_variables(trainer).items()}
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, epoch=np.int64(epoch), config_hash=np.array(trainer.config.hash), **arrays)


def peek(path: Path) -> Tuple[Optional[int], Optional[str]]:
    """(epoch, configuration hash) of the checkpoint at `path`, without a model: (None, None) when there is none;
    the hash is None for a checkpoint saved before ganlib recorded it."""
    path = Path(path)
    if not path.exists():
        return None, None
    saved = load_arrays(path, keys=("epoch", "config_hash"))
    epoch, value = saved.get("epoch"), saved.get("config_hash")
    return (int(epoch) if epoch is not None else None), (str(value) if value is not None else None)


def load(trainer, path: Path) -> Optional[int]:
    """Restore the state saved at `path` into a compiled trainer; returns the epoch it was saved at.

    The file is read without unpickling (see `ganlib.rundir.load_arrays`) and checked whole before any variable
    is assigned, so a refused checkpoint leaves the trainer untouched."""
    path = Path(path)
    if not path.exists():
        return None
    variables = _state_variables(trainer)
    saved = load_arrays(path, keys=set(variables) | {"epoch", "config_hash"})  # anything else is never read
    saved_hash = saved.get("config_hash")
    if saved_hash is not None and str(saved_hash) != trainer.config.hash:
        raise RunDirectoryError(f"Checkpoint {path} was saved by configuration {saved_hash}, not this one "
                                f"({trainer.config.hash}). Use a new run directory for a changed configuration.")
    missing = sorted((set(variables) | {"epoch"}) - set(saved))
    if missing:
        raise RunDirectoryError(f"Checkpoint {path} does not match this configuration's models (missing "
                                f"{missing[:3]}...). Use a new run directory for a changed configuration.")
    for key, v in variables.items():
        if tuple(saved[key].shape) != tuple(v.shape):
            raise RunDirectoryError(f"Checkpoint {path}: {key} has shape {saved[key].shape}, model expects {v.shape}.")
    for key, v in variables.items():
        v.assign(saved[key])
    return int(saved["epoch"])
