"""Study definitions: parsing, grid expansion and the validation errors a user sees before any training."""
from pathlib import Path

import pytest
import yaml

from analysis.study import Study, StudyError, format_value, load_study, study_from_dict
from analysis.studydir import StudyDirectory

STUDIES = Path(__file__).resolve().parents[1] / "analysis" / "studies"
from tiny import TINY as BASE  # noqa: E402


def study(**changes) -> dict:
    data = dict(name="t", question="q?", baseline=dict(BASE), seeds=2,
                variations=[{"name": "small_lr", "lr": 1.0e-4}])
    data.update(changes)
    return data


def error_of(data) -> str:
    with pytest.raises(StudyError) as e:
        study_from_dict(data)
    return str(e.value)


def test_variations_grid_and_runs(tmp_path):
    s = study_from_dict(study(baseline={**BASE, "lr": 2.0e-4}, grid={"d_lr": [1.0e-4, 2.0e-4], "g_lr": [2.0e-4]},
                              seeds=[3, 7]))
    names = [v.name for v in s.variations]
    # d_lr=2e-4,g_lr=2e-4 is the baseline: trained once, under the name "baseline"
    assert names == ["baseline", "small_lr", "d_lr=1e-4,g_lr=2e-4"]
    assert s.variation("small_lr").config.d_lr == 1e-4  # a shared field moves the per-network ones with it
    runs = s.runs()
    assert [r.run_id for r in runs[:2]] == ["baseline/seed3", "baseline/seed7"] and len(runs) == 6
    assert runs[1].config.seed == 7 and runs[1].run_id == "baseline/seed7"
    assert StudyDirectory(tmp_path).run_dir(runs[1].variation, runs[1].seed) == tmp_path / "runs" / "baseline" / "seed7"
    assert [r.variation for r in s.runs(only=["small_lr"])] == ["small_lr", "small_lr"]
    assert s.factors == ["lr", "d_lr", "g_lr"] and s.primary_metric == "final_fid"


def test_yaml_numbers_and_resolved_round_trip(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: t\nbaseline: {dataset: mnist_subset, subset: 64, batch_size: 16, lr: 1e-4}\n"
                    "grid: [{d_lr: [3e-4]}, {filters: [8, 16]}]\nseeds: 5\n")
    s = load_study(path)
    assert s.baseline.lr == 1e-4  # `1e-4` is a number here, not the string yaml.safe_load would make of it
    assert [v.name for v in s.variations] == ["baseline", "d_lr=3e-4", "filters=8", "filters=16"]
    resolved = study_from_dict(yaml.safe_load(s.to_yaml()))  # study.yaml written by the runner is a valid study
    assert [(v.name, v.config.hash) for v in resolved.variations] == [(v.name, v.config.hash) for v in s.variations]
    assert resolved.seeds == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("value,text", [(1e-4, "1e-4"), (2.5e-5, "2.5e-5"), (0.05, "0.05"), (0.0, "0"),
                                        (64, "64"), ([0.7, 1.0], "0.7+1"), ("spectral", "spectral")])
def test_format_value(value, text):
    assert format_value(value) == text


def test_unknown_keys_suggest_the_right_one():
    assert "'varations' (did you mean 'variations'?)" in error_of({**study(), "varations": []})
    msg = error_of(study(variations=[{"name": "x", "d_lrr": 1e-4}]))
    assert "variations[0]" in msg and "did you mean 'd_lr'" in msg
    assert "did you mean 'workers'" in error_of(study(resources={"worker": 2}))
    assert "did you mean 'filters'" in error_of(study(baseline={**BASE, "filter": 8}))


def test_bad_value_names_the_variation_and_field():
    msg = error_of(study(variations=[{"name": "neg_lr", "d_lr": -1.0}]))
    assert "variation 'neg_lr'" in msg and "d_lr=-1.0" in msg and "Allowed" in msg
    assert "baseline" in error_of(study(baseline={**BASE, "loss": "nope"}))
    assert "variation 'filters=0'" in error_of(study(grid={"filters": [8, 0]}))


def test_duplicates():
    assert "Duplicate variation name 'a'" in error_of(study(variations=[{"name": "a", "lr": 1e-4},
                                                                        {"name": "a", "lr": 3e-4}]))
    msg = error_of(study(variations=[{"name": "a", "lr": 1e-4}, {"name": "b", "g_lr": 1e-4, "d_lr": 1e-4}]))
    assert "'b' trains the same configuration as 'a'" in msg
    # an explicit variation that changes nothing real is the baseline again
    assert "same configuration as 'baseline'" in error_of(study(variations=[{"name": "same", "filters": 8}]))


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".", "with space", "x;rm", "/abs", 5])
def test_unsafe_variation_names_are_refused(name):
    assert "Invalid variation name" in error_of(study(variations=[{"name": name, "lr": 1e-4}]))


def test_unnamed_variation_gets_a_generated_name():
    s = study_from_dict(study(variations=[{"lr": 1e-4, "real_label": [0.7, 1.0]}]))
    assert s.variations[1].name == "lr=1e-4,real_label=0.7+1"


def test_unsafe_study_name_and_generated_name():
    assert "Invalid study name" in error_of(study(name="../up"))
    # a generated name would contain a path: the user is told to name the variation
    assert "Invalid variation name" in error_of(study(variations=[{"dataset": "folder", "data_dir": "/x/y"}]))


def test_missing_baseline_seeds_and_other_errors():
    assert "baseline: missing" in error_of({k: v for k, v in study().items() if k != "baseline"})
    assert "fewer than 1 seed" in error_of(study(seeds=0))
    assert "non-empty list" in error_of(study(seeds=[]))
    assert "repeats a seed" in error_of(study(seeds=[1, 1]))
    assert "list the seeds" in error_of(study(baseline={**BASE, "seed": 3}))
    assert "changes nothing" in error_of(study(variations=[{"name": "x"}]))
    assert "expected an integer from 1 to 1024" in error_of(study(resources={"workers": 0}))
    assert "from 1 to 256" in error_of(study(resources={"threads_per_run": 1000}))
    assert "got True" in error_of(study(seeds=True))
    assert "at most 100" in error_of(study(name="n" * 300))
    assert "not among the metrics" in error_of(study(metrics=["fid"], primary_metric="final_kid"))
    assert "did you mean 'd_lr'" in error_of(study(factors=["dlr"]))


def test_file_errors(tmp_path):
    with pytest.raises(StudyError, match="does not exist"):
        load_study(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(StudyError, match="not valid YAML"):
        load_study(tmp_path / "bad.yaml")


def test_shipped_studies_are_valid():
    quick = load_study(STUDIES / "quick.yaml")
    assert len(quick.variations) >= 2 and len(quick.seeds) >= 5 and quick.question
    assert quick.baseline.dataset == "fashion_mnist" and quick.primary_metric == "final_intra_fid"
    assert [v.config.recipe for v in quick.variations] == ["balanced", "dcgan"]
    dcgan = quick.variation("dcgan").config
    assert dcgan.epochs * dcgan.steps_per_epoch > quick.baseline.epochs * quick.baseline.steps_per_epoch  # equal CPU
    emnist = load_study(STUDIES / "emnist.yaml")
    b = emnist.baseline
    assert (b.dataset, b.latent_dim, b.embedding_dim, b.d_filters, b.g_filters, b.leaky_slope, b.lr, b.beta1,
            b.batch_size, b.dropout, b.epochs) == ("emnist_balanced", 100, 50, 64, 64, 0.1, 2e-4, 0.5, 128, 0.4, 100)
    # 1 baseline + 3 x 4 slopes + (9 - 1) filter pairs + (9 - 1) learning-rate pairs + 2 batch sizes
    assert len(emnist.variations) == 31 and emnist.seeds == [0, 1, 2, 3, 4]
    assert emnist.variation("d_filters=128,g_filters=32").config.g_filters == 32
    assert emnist.variation("leaky_slope=0").config.d_leaky_slope == 0.0
    assert isinstance(quick, Study)


def test_every_study_key_is_documented():
    """docs/studies.md's key table names every key a study file may have (and no key the loader refuses)."""
    import re
    from pathlib import Path

    from analysis.study import STUDY_KEYS

    text = (Path(__file__).parent.parent / "docs" / "studies.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| `")]
    documented = {k for line in table for k in re.findall(r"`([a-z_]+)`", line.split("|")[1])}
    assert documented == set(STUDY_KEYS)


def test_metrics_are_checked_against_the_registry_and_leave_the_study_as_written():
    from analysis.study import StudyError, study_from_dict

    s = study_from_dict(dict(name="named", baseline=BASE, seeds=1, metrics=["fid", "label_accuracy"],
                             primary_metric="final_label_accuracy"))
    assert s.name == "named" and s.metrics == ["fid", "label_accuracy"]  # (a loop variable once renamed it)
    with pytest.raises(StudyError, match="'sharpness' is not a metric"):
        study_from_dict(dict(name="s", baseline=BASE, seeds=1, metrics=["fid", "sharpness"]))
    with pytest.raises(StudyError, match="primary_metric: 'final_sharpness' is not a registered metric"):
        study_from_dict(dict(name="s", baseline=BASE, seeds=1, primary_metric="final_sharpness"))
    with pytest.raises(StudyError, match="describes the evaluation"):
        study_from_dict(dict(name="s", baseline=BASE, seeds=1, primary_metric="final_n_samples"))
