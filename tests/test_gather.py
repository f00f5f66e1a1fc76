"""analysis.gather on hand-made run directories (written through ganlib.rundir, as training writes them)."""
import numpy as np
import pandas as pd
import pytest

from analysis import gather as G
from analysis.study import study_from_dict
from analysis.studydir import StudyDirectory
from ganlib.rundir import RunDirectory

from tiny import TINY  # noqa: E402

BASE = {**TINY, "epochs": 3, "steps_per_epoch": 10}


def make_run(run_dir, config, status="completed", final=None, eval_fid=None, steps=30):
    run = RunDirectory(run_dir)
    run.write_config(config)
    run.update_summary(status=status, config_hash=config.hash, attempts=1, epochs_completed=3,
                       train_seconds_total=1.5, final_metrics=final or {}, error=None)
    rows = [dict(epoch=e, d_loss=1.0, g_loss=0.7, d_acc_real=0.6, d_acc_fake=0.5, seconds=0.5) for e in (1, 2, 3)]
    for row, fid in zip(rows, eval_fid or []):
        row["eval_fid"] = fid
    run.append_rows(run.epochs_file, rows)
    rng = np.random.default_rng(0)
    run.append_rows(run.batches_file, [dict(epoch=1 + s // 10, step=s + 1, d_loss=1.0, g_loss=0.7,
                                            d_acc_real=0.6, d_acc_fake=float(rng.uniform())) for s in range(steps)])


@pytest.fixture
def study_dir(tmp_path):
    study = study_from_dict(dict(name="g", baseline=BASE, variations=[{"name": "v", "lr": 1e-4}], seeds=2))
    d = tmp_path / "g"
    d.mkdir()
    (d / "study.yaml").write_text(study.to_yaml())
    runs = {r.run_id: r for r in study.runs()}
    folder = lambda run_id: StudyDirectory(d).run_dir(runs[run_id].variation, runs[run_id].seed)  # noqa: E731
    make_run(folder("baseline/seed0"), runs["baseline/seed0"].config,
             final={"fid": 10.0, "kid": 0.1, "extractor": "domain_classifier", "n_samples": 100},
             eval_fid=[12.0, 9.0, None])
    make_run(folder("baseline/seed1"), runs["baseline/seed1"].config, final={"fid": 11.0})
    corrupt = folder("v/seed0")
    make_run(corrupt, runs["v/seed0"].config)
    (corrupt / "summary.json").write_text("{not json")  # e.g. a disk filled up
    return d  # v/seed1 was never started


def test_runs_and_epochs_tables(study_dir):
    t = G.gather(study_dir)
    runs = t.runs.set_index("run_id")
    assert list(runs.index) == ["baseline/seed0", "baseline/seed1", "v/seed0", "v/seed1"]
    assert list(runs["status"]) == ["completed", "completed", "corrupt", "missing"]
    for col in ["study", "variation", "seed", "run_dir", "notebook", "error", "config_hash", "lr", "d_lr", "dataset",
                "epochs_completed", "train_seconds", "attempts", "final_fid", "final_kid", "final_n_samples",
                "best_fid", "best_fid_epoch", "extractor", "read_error"]:
        assert col in t.runs.columns, col
    b0 = runs.loc["baseline/seed0"]
    assert (b0.final_fid, b0.final_kid, b0.best_fid, b0.best_fid_epoch, b0.extractor) == \
        (10.0, 0.1, 9.0, 2, "domain_classifier")
    assert np.isnan(runs.loc["baseline/seed1", "best_fid"]) and runs.loc["baseline/seed1", "final_fid"] == 11.0
    assert "summary.json unreadable" in runs.loc["v/seed0", "read_error"]
    assert runs.loc["v/seed1", "error"] == "not started" and runs.loc["v/seed1", "d_lr"] == 1e-4  # from the study
    assert len(runs.loc["v/seed0", "config_hash"]) == 10  # from config.json when summary.json is unreadable
    assert list(t.epochs.columns[:5]) == ["study", "variation", "seed", "run_id", "epoch"]
    assert len(t.epochs) == 9 and t.epochs["eval_fid"].notna().sum() == 2
    assert len(t.stability) == 3 and {"frac_in_band", "longest_streak_in_band"} <= set(t.stability.columns)
    # rolling means kept every `window` steps and at the last one
    assert list(t.rolling.query("run_id == 'baseline/seed0'")["step"]) == [30]
    for name in ("runs", "epochs", "stability", "rolling"):
        saved = pd.read_parquet(study_dir / "tables" / f"{name}.parquet")
        assert len(saved) == len(getattr(t, name))
        as_csv = pd.read_csv(study_dir / "tables" / f"{name}.csv")  # the same table for other tools
        assert list(as_csv.columns) == list(saved.columns) and len(as_csv) == len(saved)


def test_batches_on_demand_and_streaming(study_dir):
    b = G.load_batches(study_dir, run_ids=["baseline/seed1"])
    assert set(b["run_id"]) == {"baseline/seed1"} and len(b) == 30
    stability, rolling = G.batch_summaries(study_dir, window=10)
    assert len(stability) == 3 and list(rolling.query("run_id == 'v/seed0'")["step"]) == [10, 20, 30]
    window_mean = b["d_acc_fake"].iloc[10:20].mean()
    row = rolling.query("run_id == 'baseline/seed1' and step == 20")
    assert row["d_acc_fake_rolling_mean"].iloc[0] == pytest.approx(window_mean)


def test_without_study_yaml_and_mixed_types(tmp_path, capsys):
    from ganlib.config import Config

    d = tmp_path / "s"
    make_run(d / "runs" / "a" / "seed0", Config(**BASE))
    make_run(d / "runs" / "b" / "seed4", Config(**BASE, real_label=[0.7, 1.0]))  # a list in one run only
    assert G.main([str(d)]) == 0
    runs = pd.read_parquet(d / "tables" / "runs.parquet")
    assert list(runs["run_id"]) == ["a/seed0", "b/seed4"] and list(runs["seed"]) == [0, 4]
    assert list(runs["real_label"]) == ["1.0", "[0.7, 1.0]"]
    assert "tables written" in capsys.readouterr().out


def test_classes_table_holds_each_runs_class_aware_metrics(tmp_path):
    study = study_from_dict(dict(name="c", baseline=BASE, seeds=1))
    d = tmp_path / "c"
    d.mkdir()
    (d / "study.yaml").write_text(study.to_yaml())
    run = study.runs()[0]
    folder = StudyDirectory(d).run_dir(run.variation, run.seed)
    make_run(folder, run.config, final={"fid": 5.0, "intra_fid": 7.0})
    RunDirectory(folder).update_summary(
        dataset={"classes": ["shirt", "shoe"]},
        final_class_metrics={"class": [0, 1], "fid": [6.0, 8.0], "recall": [0.5, 0.1], "coverage": [0.7, 0.2],
                             "n_real": [50, 50], "n_fake": [50, 50]})
    t = G.gather(d)
    assert list(t.classes["class_name"]) == ["shirt", "shoe"]
    assert list(t.classes["recall"]) == [0.5, 0.1] and list(t.classes["run_id"]) == ["baseline/seed0"] * 2
    assert t.runs.loc[0, "final_intra_fid"] == 7.0
    assert len(pd.read_parquet(d / "tables" / "classes.parquet")) == 2
