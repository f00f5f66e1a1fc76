"""The exact user command: `papermill notebooks/train.py out.ipynb -p lr 2e-4` (through our papermill plugin)."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT

PAPERMILL = os.path.join(os.path.dirname(sys.executable), "papermill")
from tiny import TINY  # noqa: E402


def run_papermill(tmp_path, *args):
    return subprocess.run([PAPERMILL, os.path.join(ROOT, "notebooks", "train.py"), "out.ipynb", *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_exact_command_with_params_file(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(TINY))
    proc = run_papermill(tmp_path, "-p", "lr", "2e-4", "-f", "params.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    notebook = json.loads((tmp_path / "out.ipynb").read_text())
    injected = [c for c in notebook["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "lr = 0.0002" in "".join(injected[0]["source"])
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert json.loads((runs[0] / "config.json").read_text())["g_lr"] == 2e-4
    assert (runs[0] / "samples" / "epoch_0002.png").exists()
    assert (runs[0] / "models" / "generator.keras").exists()
    outputs = [o for c in notebook["cells"] for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)  # samples and curves are shown
    assert "application/vnd.jupyter.widget-view+json" in notebook["cells"][-1]["outputs"][0]["data"]  # the form


def test_typo_in_parameter_fails_before_training(tmp_path):
    proc = run_papermill(tmp_path, "-p", "lrr", "2e-4")
    assert proc.returncode != 0
    assert "did you mean 'lr'" in proc.stderr + proc.stdout
    assert not (tmp_path / "runs").exists()


def test_invalid_value_fails_naming_the_field(tmp_path):
    proc = run_papermill(tmp_path, "-p", "lr", "-1")
    assert proc.returncode != 0 and "Invalid configuration: lr=-1" in proc.stderr + proc.stdout  # as typed


def test_the_training_notebook_declares_every_config_field():
    """papermill warns "Passed unknown parameter" for a field the parameters cell does not list (ada_target was
    missing); every Config field is a parameter of notebooks/train.py."""
    from dataclasses import fields

    import papermill

    from ganlib import Config

    declared = set(papermill.inspect_notebook(os.path.join(ROOT, "notebooks", "train.py")))
    assert {f.name for f in fields(Config)} <= declared
