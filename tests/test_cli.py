"""The `ganlib` command line: each subcommand as a user types it (in-process, through ganlib.cli.main)."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from ganlib.cli import main
from tiny import TINY


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    params = [x for k, v in TINY.items() for x in ("-p", k, str(v))]
    assert main(["train", *params, "-p", "lr", "2e-4", "--run-dir", str(out), "--verbose", "0"]) == 0
    return out


def test_train_takes_the_notebooks_parameters(run_dir):
    import json

    config = json.loads((run_dir / "config.json").read_text())
    assert config["g_lr"] == 2e-4 and config["subset"] == 64  # "2e-4" read as a number, as papermill does
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_train_refuses_a_typo_before_training(tmp_path, capsys):
    assert main(["train", "-p", "lrr", "2e-4", "--run-dir", str(tmp_path / "r")]) == 2
    assert "did you mean 'lr'" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_train_from_a_yaml_file(tmp_path):
    import yaml

    (tmp_path / "params.yaml").write_text(yaml.safe_dump({**TINY, "epochs": 1}))
    assert main(["train", "-f", str(tmp_path / "params.yaml"), "--run-dir", str(tmp_path / "r"), "--verbose", "0"]) == 0


def test_sample_and_text_write_pictures(run_dir, tmp_path):
    assert main(["sample", str(run_dir), "-n", "8", "--scale", "2", "--out", str(tmp_path / "s.png")]) == 0
    assert Image.open(tmp_path / "s.png").size[0] > 28
    with pytest.warns(UserWarning, match="ignores its labels"):  # 4 training steps: the labels mean nothing yet
        assert main(["text", str(run_dir), "1 2\n34", "--out", str(tmp_path / "t.png")]) == 0
    picture = np.asarray(Image.open(tmp_path / "t.png"))
    assert picture.shape[0] > picture.shape[1] / 3  # two rows of glyphs
    with pytest.raises(SystemExit, match="not a run directory"):
        main(["sample", str(tmp_path / "nothing")])


def test_plot_takes_run_directories_and_csv_logs(run_dir, tmp_path):
    assert main(["plot", str(run_dir), "--window", "2", "--out", str(tmp_path / "a.png")]) == 0
    csv = run_dir / "metrics" / "batches.csv"
    assert main(["plot", str(csv), str(run_dir), "--kinds", "loss", "--out", str(tmp_path / "b.png")]) == 0
    assert Image.open(tmp_path / "b.png").size[0] > 100
    with pytest.raises(SystemExit, match="neither a run directory nor a CSV"):
        main(["plot", str(tmp_path / "a.png")])


def test_forwarded_commands_and_the_console_script(tmp_path, capsys):
    assert main(["plan", str(tmp_path / "none"), "--effect", "3"]) == 2  # analysis.plan's own exit code
    with pytest.raises(SystemExit) as stop:
        main(["sweep", "--help"])
    assert stop.value.code == 0 and "study file" in capsys.readouterr().out
    assert main(["catalog"]) == 0 and "wgan_gp" in capsys.readouterr().out
    script = subprocess.run([sys.executable, "-m", "ganlib.cli", "--help"], capture_output=True, text=True, check=True)
    assert all(c in script.stdout for c in ("train", "sweep", "report", "sample", "text", "plot", "explore"))


def test_the_installed_console_script():
    """pyproject.toml's [project.scripts] entry, as `pip install -e .` installs it beside the interpreter."""
    from pathlib import Path

    script = Path(sys.executable).parent / "ganlib"
    assert script.exists(), "reinstall: pip install -e . (scripts/setup.sh does when pyproject.toml changed)"
    out = subprocess.run([str(script), "catalog"], capture_output=True, text=True, check=True).stdout
    assert "datasets:" in out and "recipes:" in out


def test_a_batch_log_per_epoch_is_summarised_and_an_epoch_log_per_batch_is_refused(run_dir):
    from ganlib.curves import run_curves

    per_epoch = run_curves(run_dir / "metrics" / "batches.csv", per="epoch")
    assert per_epoch["epoch"].tolist() == [1, 2] and "step" not in per_epoch  # 2 epochs of 2 batches
    with pytest.raises(ValueError, match="epoch log, give per='epoch'"):
        run_curves(run_dir / "metrics" / "epochs.csv", per="batch")
    assert len(run_curves(run_dir / "metrics" / "epochs.csv", per="epoch")) == 2


@pytest.mark.parametrize("name", ["sweep", "report", "plan"])
def test_forwarded_commands_say_ganlib_in_their_help(name):
    out = subprocess.run([sys.executable, "-m", "ganlib", name, "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith(f"usage: ganlib {name}")
