"""notebooks/evaluate.py: metrics of a finished run, under papermill."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, tiny

PAPERMILL = os.path.join(os.path.dirname(sys.executable), "papermill")


@pytest.mark.slow
def test_evaluate_notebook_writes_final_eval(tmp_path):
    from ganlib.run import train

    run_dir = tmp_path / "run"
    train(tiny(dataset="digits", image_size=16, subset=None, batch_size=16), run_dir, verbose=0)
    proc = subprocess.run([PAPERMILL, os.path.join(ROOT, "notebooks", "evaluate.py"), "out.ipynb",
                           "-p", "run_dir", str(run_dir), "-p", "n", "64"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((run_dir / "metrics" / "final_eval.json").read_text())
    assert result["n_samples"] == 64 and result["fid"] >= 0 and "extractor" in result
    typo = subprocess.run([PAPERMILL, os.path.join(ROOT, "notebooks", "evaluate.py"), "out2.ipynb",
                           "-p", "run_dri", str(run_dir)], cwd=tmp_path, capture_output=True, text=True)
    assert typo.returncode != 0 and "did you mean 'run_dir'" in typo.stderr + typo.stdout
