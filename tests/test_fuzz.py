"""Property-based fuzzing (hypothesis) of what users hand ganlib: Config values, parameter files, study files and
the files of a run directory. Each property: the input is accepted, or refused with ganlib's own error that names
the problem; never a hang (every example has a deadline), never a raw exception, never a write.

Bounded in time: a few hundred examples per property, derandomized so CI sees the same inputs every run.
"""
import json
import os
from dataclasses import fields

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import tiny
from ganlib.config import Config, ConfigError
from ganlib.rundir import RunDirectory, RunDirectoryError
from ganlib.safe_io import InputFileError, parse_yaml

FUZZ = settings(max_examples=int(os.environ.get("GANLIB_FUZZ_EXAMPLES", 150)), deadline=2000, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
FIELDS = [f.name for f in fields(Config)]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-10 ** 30, max_value=10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["", "0", "1e-4", "fashion_mnist", "folder", "../../etc", "balanced", "hinge", "spectral"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                         st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=12)


def _config_error_or_config(mapping):
    try:
        config = Config.from_dict(mapping)
    except ConfigError as e:
        assert "Invalid configuration" in str(e) or "unknown key" in str(e), e
        assert len(str(e)) < 2000  # a value is never echoed whole
        return None
    assert isinstance(config.hash, str)
    return config


@FUZZ
@given(st.dictionaries(st.sampled_from(FIELDS), values, max_size=4))
def test_config_from_any_values_is_a_config_or_a_config_error(mapping):
    _config_error_or_config(mapping)


@FUZZ
@given(st.dictionaries(st.text(max_size=12), values, max_size=3))
def test_unknown_keys_are_named(mapping):
    _config_error_or_config(mapping)


@FUZZ
@given(st.one_of(st.text(max_size=300), values.map(lambda v: json.dumps(v, default=str)),
                 st.builds(lambda a, n: "a: &a [" + ", ".join(["x"] * 9) + "]\n" + "".join(
                     f"b{i}: &b{i} [" + ", ".join([f"*{'a' if i == 0 else f'b{i - 1}'}"] * a) + "]\n" for i in range(n)),
                           st.integers(1, 12), st.integers(0, 9))))
def test_a_parameters_file_is_parsed_or_refused_by_name(text):
    from ganlib.notebook_support import config_from_namespace

    try:
        data = parse_yaml(text, "parameters file p.yaml")
    except InputFileError as e:
        assert "p.yaml" in str(e)
        return
    if not isinstance(data, dict):
        return  # the CLI says "is not a mapping of ganlib.Config fields"
    try:
        config_from_namespace(data)
    except ConfigError as e:
        assert len(str(e)) < 2000


study_values = st.fixed_dictionaries(
    {"name": st.one_of(st.sampled_from(["s", "a/b", "..", "x" * 300]), st.text(max_size=20)),
     "baseline": st.one_of(st.just({"dataset": "digits", "epochs": 1}), st.dictionaries(st.sampled_from(FIELDS), values,
                                                                                          max_size=3), values)},
    optional={"seeds": values, "variations": st.lists(st.dictionaries(st.sampled_from(FIELDS + ["name"]), values,
                                                                      max_size=3), max_size=3),
              "grid": st.dictionaries(st.sampled_from(FIELDS), st.lists(scalars, max_size=4), max_size=2),
              "resources": st.dictionaries(st.sampled_from(["workers", "threads_per_run", "gpus"]), values, max_size=2),
              "search": values, "primary_metric": values, "metrics": values, "factors": values})


@FUZZ
@given(study_values)
def test_a_study_file_is_a_study_or_a_study_error(data):
    from analysis.study import StudyError, study_from_dict

    try:
        study = study_from_dict(data)
    except StudyError as e:
        assert len(str(e)) < 3000
        return
    assert study.runs()


RUN_FILES = ["config.json", "summary.json", "metrics/epochs.csv", "metrics/batches.csv", "checkpoints/state.npz"]


@FUZZ
@given(st.dictionaries(st.sampled_from(RUN_FILES), st.one_of(
    st.binary(max_size=300), values.map(lambda v: json.dumps(v, default=str).encode()),
    st.just(b"epoch,step,d_loss\n1,1,0.5\nabc,2,0.1\n"), st.just(b"[" * 5000 + b"]" * 5000)), min_size=1, max_size=3))
def test_whatever_a_run_directory_holds_it_is_read_or_refused_untouched(tmp_path_factory, files):
    from ganlib.run import check_run_directory

    path = tmp_path_factory.mktemp("run")
    for name, data in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_bytes(data)
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    run = RunDirectory(path)
    for read in (run.read_summary, run.read_epochs, run.read_batches, lambda: check_run_directory(run, tiny())):
        try:
            read()
        except (RunDirectoryError, ConfigError):
            pass
    assert {p: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before  # nothing written


@pytest.mark.parametrize("payload", [np.zeros(3), np.array(["a"], dtype=object)])
def test_fuzz_helpers_are_honest(tmp_path, payload):
    """The properties above can fail: an object array in a checkpoint is refused, which they rely on."""
    from ganlib.rundir import load_arrays

    np.savez(tmp_path / "s.npz", x=payload)
    if payload.dtype == object:
        with pytest.raises(RunDirectoryError, match="pickled"):
            load_arrays(tmp_path / "s.npz")
    else:
        assert load_arrays(tmp_path / "s.npz")["x"].shape == (3,)
    assert os.path.exists(tmp_path / "s.npz")
