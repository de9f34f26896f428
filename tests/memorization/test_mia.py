"""Membership-inference scores (signs, hand-computed values) and their ROC evaluation."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from evalkit.memorization.mia import (
    evaluate_scores,
    loss_score,
    minkpp_moments,
    minkpp_score,
    ref_score,
    roc_auc,
    roc_points,
    tpr_at_fpr,
    zlib_score,
)
from evalkit.records import MembershipExample


def test_scores_are_oriented_higher_is_member():
    # a training answer has lower NLL than a held-out one: it must score higher on every score
    assert loss_score(0.5) > loss_score(2.0)
    assert loss_score(0.5) == -0.5
    text = "reuse the tumbler every day"
    assert zlib_score(0.5, text) > zlib_score(2.0, text)
    assert zlib_score(2.0, text) == -2.0 / len(zlib.compress(text.encode("utf-8")))
    # ref: fine-tuning lowered the NLL by 0.7 nats/token relative to the base model
    assert ref_score(1.3, 2.0) == pytest.approx(0.7)
    assert ref_score(2.0, 2.0) == 0.0


def test_minkpp_hand_computed():
    lp = [-1.0, -2.0, -3.0, -4.0, -5.0]
    mu = [-1.0] * 5
    sigma = [1.0, 1.0, 1.0, 2.0, 2.0]
    # z = [0, -1, -2, -1.5, -2]; lowest 40% (2 tokens): -2, -2
    assert minkpp_score(lp, mu, sigma, k=0.4) == pytest.approx(-2.0)
    # k * T < 1 still keeps one token (the reference int(T * k) would average nothing)
    assert minkpp_score(lp, mu, sigma, k=0.1) == pytest.approx(-2.0)
    assert minkpp_score(lp, mu, sigma, k=1.0) == pytest.approx(np.mean([0, -1, -2, -1.5, -2]))
    # sigma = 0 (one-hot distribution) contributes z = 0 instead of dividing by zero
    assert minkpp_score([-1.0, 0.0], [-2.0, 0.0], [1.0, 0.0], k=1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="'k'"):
        minkpp_score(lp, mu, sigma, k=0)
    with pytest.raises(ValueError, match="empty"):
        minkpp_score([], [], [])


def test_minkpp_moments():
    with np.errstate(divide="ignore"):  # p = 0 -> log p = -inf, which must contribute 0
        lp = np.log(np.array([[0.5, 0.5, 0.0], [0.9, 0.1, 0.0]]))
    mu, sigma = minkpp_moments(lp)
    assert mu[0] == pytest.approx(math.log(0.5)) and sigma[0] == pytest.approx(0.0, abs=1e-7)
    m1 = 0.9 * math.log(0.9) + 0.1 * math.log(0.1)
    s1 = math.sqrt(0.9 * math.log(0.9) ** 2 + 0.1 * math.log(0.1) ** 2 - m1**2)
    assert mu[1] == pytest.approx(m1) and sigma[1] == pytest.approx(s1)


def test_auc_separated_reversed_and_hand_computed():
    assert roc_auc([3, 4, 5], [0, 1, 2]) == 1.0
    assert roc_auc([0, 1, 2], [3, 4, 5]) == 0.0  # members are the positive class
    # pairs (member, non-member): 3>2, 3>1, 2=2 (1/2), 2>1 -> 3.5 / 4
    assert roc_auc([3, 2], [2, 1]) == pytest.approx(0.875)


def test_auc_equals_sklearn_with_ties():
    rng = np.random.default_rng(0)
    m = rng.integers(0, 6, 80).astype(float)
    n = rng.integers(0, 5, 120).astype(float)
    y = np.r_[np.ones(80), np.zeros(120)]
    assert roc_auc(m, n) == pytest.approx(roc_auc_score(y, np.r_[m, n]))


def test_auc_identical_distributions_is_chance():
    rng = np.random.default_rng(1)
    auc = roc_auc(rng.normal(size=2000), rng.normal(size=2000))
    assert abs(auc - 0.5) < 0.05  # standard error ~0.009


def test_tpr_at_fpr_uses_last_point_at_or_below_target():
    member = [10.0, 9.0, 8.0, 1.0]
    nonmember = [0.0] * 99 + [9.5]  # 100 non-members, one scoring high
    # thresholds: 10 -> TPR 1/4 at FPR 0; 9.5 -> FPR 0.01; 9, 8, 1 -> TPR 2/4..4/4 still at FPR 0.01
    assert tpr_at_fpr(member, nonmember, 0.01) == 1.0
    assert tpr_at_fpr(member, nonmember, 0.0099) == 0.25  # MIMIR's strict '<' would give this at 1%
    assert tpr_at_fpr([1, 2], [3, 4], 0.01) == 0.0


def test_auc_interval_equals_a_brute_force_stratified_bootstrap():
    """Twin: resample members and non-members separately with index draws, AUC by sklearn, percentiles;
    then the Hanley-McNeil floor of the definition. Different random streams: equal within Monte-Carlo error."""
    from evalkit.memorization.mia import auc_interval, hanley_mcneil_se

    rng = np.random.default_rng(2)
    m, n = rng.normal(0.8, 1, 150), rng.normal(0, 1, 90)
    draw = np.random.default_rng(11)
    boot = [roc_auc_score([1] * len(m) + [0] * len(n), np.r_[m[draw.integers(0, len(m), len(m))],
                                                           n[draw.integers(0, len(n), len(n))]])
            for _ in range(3000)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    auc = roc_auc_score([1] * len(m) + [0] * len(n), np.r_[m, n])
    se = hanley_mcneil_se(auc, len(m), len(n))
    want = (min(lo, auc - 1.959964 * se), max(hi, auc + 1.959964 * se))
    got = auc_interval(m, n, n_boot=3000, seed=0)
    assert got == pytest.approx(want, abs=0.012)
    assert got == auc_interval(m, n, n_boot=3000, seed=0)  # seeded
    assert got != auc_interval(m, n, n_boot=3000, seed=1)


def test_roc_points_downsampled_and_monotone():
    rng = np.random.default_rng(3)
    curve = roc_points(rng.normal(1, 1, 500), rng.normal(0, 1, 500), max_points=21)
    assert len(curve.fpr) == len(curve.tpr) <= 21
    assert (curve.fpr[0], curve.tpr[0], curve.fpr[-1], curve.tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert all(np.diff(curve.fpr) >= 0) and all(np.diff(curve.tpr) >= 0)


def _examples(n_member, n_nonmember, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_member + n_nonmember):
        member = i < n_member
        out.append(MembershipExample(f"e{i}", member, {
            "loss": float(rng.normal()),  # no signal
            "ref": float(rng.normal(5 if member else 0, 0.5)),  # perfect separation
            "zlib": float(rng.normal(0.3 if member else 0, 1)),
        }))
    return out


def test_evaluate_scores_headline_is_ref_not_the_max():
    ex = _examples(60, 40)
    ex[0] = MembershipExample("e0", True, {**ex[0].scores, "loss": float("nan")})
    s = evaluate_scores(ex, n_boot=200)
    assert s.primary == "ref" and s.mia_auc == 1.0 and s.best_score == "ref"
    assert abs(s.scores["loss"].auc - 0.5) < 0.2
    assert s.scores["loss"].n_member == 59  # the NaN was left out ...
    assert any("non-finite" in w for w in s.warnings)  # ... and said so
    assert not s.tpr_reliable and any("40 non-members" in w for w in s.warnings)
    # 40 non-members cannot bound a 1% FPR: the figure is the TPR at zero false positives, named so
    assert set(s.summary) == {"mia_auc", "mia_tpr_at_0fp", "mia_auc_loss", "mia_auc_ref", "mia_auc_zlib"}
    assert s.summary["mia_tpr_at_0fp"] == 1.0 and s.n["mia_tpr_at_0fp"] == 40 and s.n["mia_auc"] == 40
    assert s.summary["mia_auc_ref"] == 1.0 and s.intervals["mia_auc"] == s.scores["ref"].auc_ci
    assert s.intervals["mia_auc"][0] < 1.0  # perfect separation never gives the point interval (1, 1)
    assert set(s.roc) == {"loss", "ref", "zlib"} and s.roc["ref"]["tpr"][-1] == 1.0


def test_evaluate_scores_falls_back_to_loss_and_flags_reliable_tpr():
    ex = [MembershipExample(e.id, e.member, {"loss": e.scores["ref"]}) for e in _examples(120, 300)]
    s = evaluate_scores(ex, n_boot=100)
    assert s.primary == "loss" and s.mia_auc == 1.0 and s.mia_tpr_at_1fpr == 1.0
    assert s.tpr_reliable and s.warnings == () and s.summary["mia_tpr_at_1fpr"] == 1.0
    assert "mia_tpr_at_0fp" not in s.summary
    # members scoring LOWER must give AUC 0, not 1: the sign is never flipped silently
    flipped = [MembershipExample(e.id, e.member, {"loss": -e.scores["loss"]}) for e in ex]
    assert evaluate_scores(flipped, n_boot=50).mia_auc == 0.0


def test_evaluate_scores_without_both_classes():
    s = evaluate_scores([MembershipExample("a", True, {"loss": 1.0})], n_boot=10)
    assert s.mia_auc is None and s.summary == {} and len(s.warnings) == 2


def test_ez_mia_hand_computed():
    from evalkit.memorization.mia import ez_score

    target = [-0.5, -1.0, -2.0, -0.1, -3.0]
    base = [-1.0, -0.5, -2.5, -0.2, -1.0]
    correct = [False, False, False, True, False]  # token 4 is the target's argmax: not in the error zone
    # D on the error zone: +0.5, -0.5, +0.5, -2.0 -> (0.5 + 0.5) / (0.5 + 2.0) = 0.4
    assert ez_score(target, base, correct) == pytest.approx(0.4)
    assert ez_score(target, base, [True, True, True, True, False]) == 0.0  # fewer than 2 error-zone tokens
    assert ez_score([-1.0, -1.0], [-2.0, -3.0], [False, False]) == pytest.approx(3.0 / 1e-6)  # no negative D


def test_auc_interval_has_a_hanley_mcneil_floor_at_perfect_separation():
    from evalkit.memorization.mia import auc_interval, hanley_mcneil_se

    # Hanley-McNeil at AUC 0.95, n = 40 + 40: half-width 1.96 * SE ~ 0.05 (the shared doc's table)
    assert 1.96 * hanley_mcneil_se(0.95, 40, 40) == pytest.approx(0.05, abs=0.003)
    lo, hi = auc_interval(np.arange(40) + 100.0, np.arange(40), n_boot=200)
    assert hi == 1.0 and lo == pytest.approx(1 - 1.959964 * hanley_mcneil_se(1 - 1 / 80, 40, 40))
    assert 0.95 < lo < 0.99


def test_blind_baseline_sees_vocabulary_not_models():
    from evalkit.memorization.blind import blind_scores

    rng = np.random.default_rng(0)
    words = ["bus", "cycle", "lentil", "tap", "shower", "bulb", "repair", "walk"]
    same = [" ".join(rng.choice(words, 8)) for _ in range(80)]
    labels = [i < 40 for i in range(80)]
    shifted = [t + (" winter heating" if m else " summer garden") for t, m in zip(same, labels)]
    sep = blind_scores(shifted, labels)
    none = blind_scores(same, labels)
    assert roc_auc([v for v, m in zip(sep, labels) if m], [v for v, m in zip(sep, labels) if not m]) > 0.95
    assert abs(roc_auc([v for v, m in zip(none, labels) if m], [v for v, m in zip(none, labels) if not m]) - 0.5) < 0.2
    assert blind_scores(["a", "b", "c"], [True, False, False]) is None  # one member: nothing to cross-validate