"""ganlib.verdict: a finished run that did not learn is flagged, with the reason; a healthy one is not."""
import pandas as pd

from ganlib.verdict import DID_NOT_LEARN, LEARNED, UNVERIFIED, judge

UNTRAINED = {"fid": 117.0, "label_accuracy": 0.1}


def _epochs(d_acc_real, d_acc_fake, sample_std):
    n = len(d_acc_real)
    return pd.DataFrame({"epoch": range(1, n + 1), "d_acc_real": d_acc_real, "d_acc_fake": d_acc_fake,
                         "sample_std": [sample_std] * n})


HEALTHY_LOG = _epochs([0.7, 0.65, 0.7, 0.68], [0.4, 0.6, 0.66, 0.65], 0.35)


def test_healthy_run_learned():
    v = judge({"fid": 12.0, "label_accuracy": 0.85}, UNTRAINED, HEALTHY_LOG, 10, True)
    assert v["verdict"] == LEARNED and v["reasons"] == []
    assert v["checks"]["label_accuracy"]["limit"] == 0.2


def test_labels_at_chance_did_not_learn():
    v = judge({"fid": 20.0, "label_accuracy": 0.107}, UNTRAINED, HEALTHY_LOG, 10, True)
    assert v["verdict"] == DID_NOT_LEARN
    assert "label accuracy 0.107 is at chance" in v["reasons"][0]
    # the same numbers from an unconditional model: labels are not judged
    assert judge({"fid": 20.0, "label_accuracy": 0.107}, UNTRAINED, HEALTHY_LOG, 10, False)["verdict"] == LEARNED


def test_black_images_with_a_winning_discriminator_did_not_learn():
    log = _epochs([0.97, 0.997, 0.999, 1.0], [0.78, 1.0, 1.0, 1.0], 1e-6)
    v = judge({"fid": 111.7, "label_accuracy": 0.1}, UNTRAINED, log, 10, True)
    assert v["verdict"] == DID_NOT_LEARN
    text = " | ".join(v["reasons"])
    assert "no better than an untrained generator" in text
    assert "nearly identical" in text
    assert "discriminator won for 3 of 4 epochs" in text


def test_without_metrics_only_the_log_is_judged():
    assert judge(None, None, HEALTHY_LOG, 10, True)["verdict"] == UNVERIFIED
    log = _epochs([1.0] * 3, [1.0] * 3, 0.3)
    assert judge(None, None, log, 10, True)["verdict"] == DID_NOT_LEARN


def test_non_finite_fid_did_not_learn():
    assert judge({"fid": float("nan")}, UNTRAINED, HEALTHY_LOG, 10, False)["verdict"] == DID_NOT_LEARN


def test_little_variety_is_a_caution_not_a_failure():
    v = judge({"fid": 12.0, "label_accuracy": 0.85, "recall": 0.012, "coverage": 0.18}, UNTRAINED, HEALTHY_LOG, 10,
              True)
    assert v["verdict"] == LEARNED and v["reasons"] == []
    assert len(v["cautions"]) == 1 and v["cautions"][0].startswith("little variety: recall 0.012 < 0.1")
    assert v["cautions"] == ["little variety: recall 0.012 < 0.1 (real images ~0.9), coverage 0.18: samples of a "
                             "class look alike"]
    # recall at the threshold or above, or not measured: no caution
    for metrics in ({"fid": 12.0, "label_accuracy": 0.85, "recall": 0.1}, {"fid": 12.0, "label_accuracy": 0.85}):
        assert judge(metrics, UNTRAINED, HEALTHY_LOG, 10, True)["cautions"] == []
    # a run that did not learn keeps its reasons; the caution comes beside them
    failed = judge({"fid": 111.7, "label_accuracy": 0.1, "recall": 0.0}, UNTRAINED, HEALTHY_LOG, 10, True)
    assert failed["verdict"] == DID_NOT_LEARN and failed["cautions"]


def test_the_notebook_line_shows_a_caution_after_the_verdict():
    from ganlib.notebook_support import outcome_line

    line = outcome_line({"status": "completed", "verdict": "learned", "verdict_reasons": [],
                         "verdict_cautions": ["little variety: recall 0.010 < 0.1"]})
    assert line == "status: completed; verdict: learned\ncaution: little variety: recall 0.010 < 0.1"
    assert "caution" not in outcome_line({"status": "completed", "verdict": "learned", "verdict_reasons": []})


def _with_gap(log, train, heldout):
    log = log.copy()
    log["d_real_train"], log["d_real_heldout"] = train, heldout
    log["d_overfit_gap"] = log["d_real_train"] - log["d_real_heldout"]
    return log


def test_a_memorizing_discriminator_is_a_caution_judged_at_the_last_epoch():
    from ganlib.verdict import MEMORIZED_GAP

    metrics = {"fid": 12.0, "label_accuracy": 0.85, "recall": 0.5}
    over = MEMORIZED_GAP + 0.05
    memorized = _with_gap(HEALTHY_LOG, [0.1, 0.3, 0.6, 0.2 + over], [0.1, 0.1, 0.1, 0.2])
    v = judge(metrics, UNTRAINED, memorized, 10, True)
    assert v["verdict"] == LEARNED and v["reasons"] == []
    assert v["cautions"] == [f"the discriminator memorized the training images: E[sign D] {0.2 + over:.2f} on "
                             f"training images, 0.20 on held-out ones (gap {over:.2f} >= {MEMORIZED_GAP:g}): watch "
                             "FID over the epochs, and compare `augment` where it stalls"]
    # a gap that was large earlier but is not at the end, one just under the threshold, or no signal: no caution
    recovered = _with_gap(HEALTHY_LOG, [0.1, 0.9, 0.9, 0.3], [0.1, 0.1, 0.1, 0.2])
    under = _with_gap(HEALTHY_LOG, [0.3] * 4, [0.3 - MEMORIZED_GAP + 0.01] * 4)
    for log in (recovered, under, HEALTHY_LOG):
        assert judge(metrics, UNTRAINED, log, 10, True)["cautions"] == []
    # both cautions together, variety first
    both = judge({**metrics, "recall": 0.01}, UNTRAINED, memorized, 10, True)["cautions"]
    assert [c.split(":")[0] for c in both] == ["little variety", "the discriminator memorized the training images"]
