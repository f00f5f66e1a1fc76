"""Sampled study designs (analysis.design) and budget curves (analysis.budget), on known answers."""
import itertools

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.budget import (budget_curves, compare_budgets, expected_best, expected_best_curve, median_best_interval,
                             p_any_usable, trial_values)
from analysis.study import StudyError, study_from_dict
from tiny import TINY

SPACE = {"lr": {"loguniform": [5.0e-5, 1.0e-3]}, "filters": {"logint": [8, 32]}, "loss": {"choice": ["bce", "hinge"]},
         "beta1": {"uniform": [0.0, 0.9]}, "depth": {"int": [1, 2]}}


def study(design="sobol", trials=6, space=None, **extra):
    return study_from_dict(dict(name="s", baseline=TINY, seeds=2,
                                search=dict(design=design, trials=trials, space=space or SPACE, **extra)))


@pytest.mark.parametrize("design", ["random", "sobol", "halton", "lhs"])
def test_designs_are_deterministic_and_within_their_ranges(design):
    a, b = study(design), study(design)
    assert [t.overrides for t in a.trials] == [t.overrides for t in b.trials]
    assert [t.name for t in a.trials] == [f"trial{i:03d}" for i in range(6)]
    for t in a.trials:
        o = t.overrides
        assert 5e-5 <= o["lr"] <= 1e-3 and 8 <= o["filters"] <= 32 and o["loss"] in ("bce", "hinge")
        assert 0 <= o["beta1"] <= 0.9 and o["depth"] in (1, 2)
        assert t.config.g_lr == o["lr"] and t.config.loss == o["loss"]  # every trial is a full, valid Config
    assert len(a.runs()) == (1 + 6) * 2  # the baseline and every trial, with every seed
    assert study(design, seed=1).trials[0].overrides != a.trials[0].overrides


@pytest.mark.parametrize("design", ["random", "sobol", "halton"])
def test_more_trials_keep_the_trials_already_drawn(design):
    small, large = study(design, trials=4), study(design, trials=9)
    assert [(t.name, t.config.hash) for t in large.trials[:4]] == [(t.name, t.config.hash) for t in small.trials]


def test_a_quasi_random_design_covers_a_range_evenly():
    points = [t.overrides["beta1"] for t in study("sobol", trials=16, space={"beta1": {"uniform": [0.0, 0.9]}}).trials]
    counts = np.histogram(points, bins=4, range=(0, 0.9))[0]
    assert counts.tolist() == [4, 4, 4, 4]  # a scrambled Sobol prefix of 16 is perfectly stratified


def test_the_resolved_study_file_round_trips():
    s = study()
    again = study_from_dict(yaml.safe_load(s.to_yaml()))
    assert [(v.name, v.config.hash) for v in again.variations] == [(v.name, v.config.hash) for v in s.variations]
    assert "search" in s.to_dict() and not any(v["name"].startswith("trial") for v in s.to_dict()["variations"])


@pytest.mark.parametrize("search, message", [
    (dict(design="grid", trials=3, space=SPACE), "search.design"),
    (dict(trials=0, space=SPACE), "search.trials"),
    (dict(trials=3, space={"lrr": {"uniform": [0, 1]}}), "not ganlib.Config fields"),
    (dict(trials=3, space={"lr": {"loguniform": [0, 1e-3]}}), "low > 0"),
    (dict(trials=3, space={"lr": {"uniform": [1e-3, 1e-4]}}), "low < high"),
    (dict(trials=3, space={"lr": {"normal": [0, 1]}}), "not a kind of range"),
    (dict(trials=3, space={"filters": {"int": [8.5, 16]}}), "integer bounds"),
    (dict(trials=3, space={"seed": {"int": [0, 9]}}), "seed"),
    (dict(trials=3, space={"lr": {"uniform": [1e-4, 1e-3]}}, extra=1), "unknown key"),
    (dict(trials=5, space={"loss": {"choice": ["bce", "hinge"]}}), "too few distinct points"),
    (dict(trials=3, space={"lr": {"uniform": [5, 20]}}), "lr"),  # a drawn value Config refuses, named
])
def test_bad_search_blocks_are_refused_before_anything_runs(search, message):
    with pytest.raises(StudyError, match=message):
        study_from_dict(dict(name="s", baseline=TINY, seeds=1, search=search))


# ---------------------------------------------------------------------------------------------- budget curves
def brute_force_expected_best(values, k, lower_is_better):
    best = min if lower_is_better else max
    return np.mean([best(c) for c in itertools.combinations(values, k)])


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("lower", [True, False])
def test_expected_best_equals_enumerating_every_set_of_k_trials(k, lower):
    values = [3.0, 1.0, 4.0, 1.5, 9.0]
    assert expected_best(values, k, lower) == pytest.approx(brute_force_expected_best(values, k, lower))


def test_expected_best_known_values_and_unbiased_at_every_k():
    assert expected_best([1, 2, 3], 1, lower_is_better=False) == pytest.approx(2.0)  # one trial: the mean
    assert expected_best([1, 2, 3], 2, lower_is_better=False) == pytest.approx(8 / 3)  # pairs: 2, 3, 3
    assert expected_best([1, 2, 3], 3, lower_is_better=True) == pytest.approx(1.0)  # every trial: the best
    assert np.isnan(expected_best([1, 2, 3], 4))  # more trials than were run: no estimate
    # unbiased: averaged over many studies of 8 trials, the estimate of E[min of 4] matches the truth
    rng = np.random.default_rng(0)
    estimates = [expected_best(rng.normal(0, 1, 8), 4) for _ in range(4000)]
    truth = rng.normal(0, 1, (400_000, 4)).min(axis=1).mean()
    assert np.mean(estimates) == pytest.approx(truth, abs=0.02)


def test_curve_is_monotone_with_an_exact_band_for_the_median_best():
    values = np.random.default_rng(0).normal(50, 10, 20)
    curve = expected_best_curve(values, lower_is_better=True)
    assert list(curve["k"]) == list(range(1, 21))
    assert (np.diff(curve["expected"]) <= 1e-12).all()  # more trials never make the expected best worse
    assert curve["expected"].iloc[-1] == pytest.approx(values.min())  # all 20 trials: the best one
    # k = 1: the band is the exact interval of the median of single trials
    from analysis.stats import median_ci
    m = median_ci(values)
    assert (curve["median_low"].iloc[0], curve["median_high"].iloc[0]) == (m["ci_low"], m["ci_high"])
    # the optimistic side needs more trials as k grows: at k = 20 only the upper bound of a minimum exists
    assert np.isnan(curve["median_low"].iloc[-1]) and np.isfinite(curve["median_high"].iloc[-1])


def test_median_best_band_covers_what_it_claims():
    rng = np.random.default_rng(1)
    k, n = 3, 30
    truth = np.median(rng.lognormal(0, 1, (400_000, k)).min(axis=1))
    hits = []
    for _ in range(1500):
        low, high = median_best_interval(rng.lognormal(0, 1, n), k)
        hits.append(low <= truth <= high)
    assert np.mean(hits) >= 0.93


def synthetic_runs(seed=0, n_per=12):
    """Trials of two losses: hinge's FID ~ N(30, 4), bce's ~ N(40, 4), two seeds each; one trial failed."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(2 * n_per):
        loss = "hinge" if i % 2 else "bce"
        for s in (0, 1):
            rows.append(dict(variation=f"trial{i:03d}", seed=s, loss=loss, status="completed",
                             final_fid=rng.normal(30 if loss == "hinge" else 40, 4)))
    rows.append(dict(variation="trial024", seed=0, loss="bce", status="failed", final_fid=np.nan))
    return pd.DataFrame(rows), [f"trial{i:03d}" for i in range(2 * n_per + 1)]


def test_trial_values_average_the_seeds_and_keep_failures_as_missing():
    runs, trials = synthetic_runs()
    table = trial_values(runs, "final_fid", trials, by="loss")
    first = runs[runs["variation"] == "trial000"]["final_fid"].mean()
    assert table.loc[0, "value"] == pytest.approx(first) and table.loc[0, "seeds learned"] == "2 / 2"
    assert np.isnan(table.iloc[-1]["value"]) and not table.iloc[-1]["usable"]


def test_a_lone_survivor_of_a_mostly_failed_trial_is_not_ranked():
    runs = pd.DataFrame([dict(variation="t0", seed=s, status="completed", verdict="learned", final_fid=30.0 + s)
                         for s in range(3)]
                        + [dict(variation="t1", seed=0, status="completed", verdict="learned", final_fid=5.0),
                           dict(variation="t1", seed=1, status="diverged", verdict=None, final_fid=np.nan),
                           dict(variation="t1", seed=2, status="completed", verdict="did_not_learn", final_fid=300.0)])
    table = trial_values(runs, "final_fid", ["t0", "t1"])
    assert list(table["usable"]) == [True, False] and "1 of 3 seeds learned" in table.loc[1, "note"]
    curves = budget_curves(runs, "final_fid", ["t0", "t1"])
    assert curves["trials"].iloc[0] == 1 and curves["unusable_trials"].iloc[0] == 1
    assert curves["expected"].iloc[0] == pytest.approx(31.0)  # the survivor's 5.0 never counts
    assert p_any_usable(2, 1, 1) == pytest.approx(0.5) and p_any_usable(2, 1, 2) == 1.0
    assert p_any_usable(10, 4, 2) == pytest.approx(1 - (4 * 3) / (10 * 9))


def test_budget_curves_per_choice_and_their_comparison():
    runs, trials = synthetic_runs()
    curves = budget_curves(runs, "final_fid", trials, by="loss")
    assert set(curves["group"]) == {"bce", "hinge"}
    bce = curves[curves["group"] == "bce"]
    assert bce["trials"].iloc[0] == 12 and bce["unusable_trials"].iloc[0] == 1
    at1 = curves[curves["k"] == 1].set_index("group")["expected"]
    assert at1["hinge"] < at1["bce"] - 5  # hinge is ~10 FID better on average
    per_k, test = compare_budgets(runs, "final_fid", trials, "loss", "hinge", "bce")
    assert len(per_k) == 12 and (per_k["difference"] < 0).all()
    assert test["n_a"] == test["n_b"] == 12 and test["p"] < 0.001 and test["cliffs_delta"] < -0.8
    assert test["ci_high"] < 0
    assert len(budget_curves(runs, "final_fid", trials)) == 24  # one curve over all usable trials


def test_logint_gives_its_end_points_their_full_share():
    """Each integer owns [i - 0.5, i + 0.5) of the log-uniform draw; drawing on [1, 4] itself gave 4 only 9.6 %."""
    from analysis.design import Dimension

    dim = Dimension("filters", "logint", (1, 4))
    u = (np.arange(200_000) + 0.5) / 200_000
    drawn = np.array([dim.value(x) for x in u])
    width = np.log(4.5) - np.log(0.5)
    for i in range(1, 5):
        assert np.mean(drawn == i) == pytest.approx((np.log(i + 0.5) - np.log(i - 0.5)) / width, abs=1e-4)
    assert np.mean(drawn == 4) > 0.11
