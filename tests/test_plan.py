"""Seed planning (analysis.plan) on synthetic pilots with known answers."""
import numpy as np
import pandas as pd
import pytest

from analysis.plan import PlanError, parse_effect, plan, power_curve, seed_spread


def pilot(sd=1.0, groups=4, seeds=6, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame([dict(variation=f"v{g}", seed=s, status="completed", final_fid=10 * g + rng.normal(0, sd))
                         for g in range(groups) for s in range(seeds)])


def test_the_spread_is_the_seed_noise_not_the_differences_between_configurations():
    spread = seed_spread(pilot(sd=2.0, groups=6, seeds=8), "final_fid")
    assert len(spread) == 48 and 1.5 < np.std(spread, ddof=1) < 2.6  # the groups are 10 apart: not in the spread


def test_power_follows_the_exact_test_known_answers():
    noise = np.random.default_rng(1).normal(0, 1, 4000)
    curve = power_curve(noise, effect=1.0, seed_counts=(3, 5, 10, 17, 20), simulations=600).set_index("seeds")
    assert curve.loc[3, "power"] == 0 and not curve.loc[3, "reachable"]  # 3 vs 3: p >= 0.1, never detected
    # d = 1 with normal noise: Mann-Whitney needs about 17-18 seeds per arm for 80% power (t-test: 17)
    assert 0.15 < curve.loc[5, "power"] < 0.4 and 0.68 < curve.loc[17, "power"] < 0.88
    assert curve["power"].is_monotonic_increasing or curve["power"].diff().min() > -0.05


def test_a_large_effect_needs_few_seeds_and_several_comparisons_need_more():
    runs = pilot(sd=1.0)
    one = plan(runs, "final_fid", "3", simulations=300)
    assert one["seeds"] in (4, 5) and one["effect"] == 3.0
    many = plan(runs, "final_fid", "3", comparisons=10, simulations=300)
    assert many["seeds"] > one["seeds"]  # alpha / 10: 4 vs 4 cannot reach p <= 0.005


def test_effects_as_percentages_and_bad_pilots():
    assert parse_effect("10%", 50.0) == pytest.approx(5.0) and parse_effect("-2", 1.0) == 2.0
    with pytest.raises(PlanError, match="percentage"):
        parse_effect("big", 1.0)
    with pytest.raises(PlanError, match="at least 4"):
        seed_spread(pilot(groups=3, seeds=1), "final_fid")
    with pytest.raises(PlanError, match="no column"):
        seed_spread(pilot(), "final_kid")


def test_command_prints_a_recommendation(tmp_path, capsys):
    from analysis.plan import main
    from analysis.studydir import StudyDirectory

    directory = StudyDirectory(tmp_path / "pilot")
    directory.write_table("runs", pilot(sd=1.0))
    assert main([str(directory.path), "--effect", "3", "--simulations", "200", "--comparisons", "1"]) == 0
    out = capsys.readouterr().out
    assert "RECOMMENDATION:" in out and "seeds per configuration" in out
    assert main([str(tmp_path / "none"), "--effect", "3"]) == 2


def test_the_report_rule_is_p_below_alpha_and_a_three_seed_pilot_has_no_zero_deviations():
    noise = np.random.default_rng(2).normal(0, 1, 500)
    # 3 vs 3 can reach p = 0.1 exactly: never "p < 0.1", so never detected at alpha 0.1
    curve = power_curve(noise, effect=50.0, seed_counts=(3, 4), alpha=0.1, simulations=100).set_index("seeds")
    assert curve.loc[3, "power"] == 0 and not curve.loc[3, "reachable"] and curve.loc[4, "power"] == 1
    spread = seed_spread(pilot(groups=2, seeds=3), "final_fid")  # centred on the mean: the middle seed is not 0
    assert len(spread) == 6 and (np.abs(spread) > 1e-9).all()


def test_the_plan_allows_for_the_pilots_own_uncertainty():
    from analysis.plan import pooled_sd, say_recommendation, sd_upper_bound
    from scipy import stats

    runs = pilot(sd=1.0, groups=2, seeds=3)
    sd, df = pooled_sd(runs, "final_fid")
    assert df == 4 and sd == pytest.approx(np.sqrt(sum(d["final_fid"].var(ddof=1) for _, d in runs.groupby("variation")) / 2))
    assert sd_upper_bound(1.0, 4, 0.9) == pytest.approx(np.sqrt(4 / stats.chi2.ppf(0.1, 4)))
    result = plan(runs, "final_fid", str(2 * sd), simulations=300)
    assert result["sd_upper"] > 1.8 * sd  # 4 degrees of freedom: the noise may be twice what the pilot saw
    assert result["seeds"] is None or result["seeds"] >= result["seeds_at_estimate"]
    text = say_recommendation(result)
    assert "upper bound" in text and "one pilot in 10" in text


def test_the_study_size_itself_is_on_the_curve():
    noise = np.random.default_rng(3).normal(0, 1, 500)
    curve = power_curve(noise, effect=1.0, seed_counts=(5, 7, 9), simulations=50)
    assert list(curve["seeds"]) == [5, 7, 9]
