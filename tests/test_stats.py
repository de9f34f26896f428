"""evalkit.stats: hand-computed cases, identities, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalkit.stats import (
    bootstrap_ci,
    is_binary,
    mcnemar_p,
    paired_bootstrap,
    unpaired_delta,
    wilcoxon_p,
)


# ---------------------------------------------------------------- bootstrap_ci


def test_bootstrap_ci_constant_values_is_a_point():
    assert bootstrap_ci([0.3] * 10) == (pytest.approx(0.3), pytest.approx(0.3))


def test_bootstrap_ci_brackets_the_mean_and_is_reproducible():
    x = np.random.default_rng(1).normal(0.5, 0.1, size=200)
    lo, hi = bootstrap_ci(x, seed=7)
    assert lo < x.mean() < hi
    # the percentile interval of a mean is close to mean +- 1.96 * sd / sqrt(n)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert hi - lo == pytest.approx(2 * half, rel=0.15)
    assert bootstrap_ci(x, seed=7) == (lo, hi)
    assert bootstrap_ci(x, seed=8) != (lo, hi)


def test_bootstrap_ci_two_values_hand_case():
    # resamples of [0, 1] (n=2) have means 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4:
    # the 2.5th and 97.5th percentiles are 0 and 1.
    assert bootstrap_ci([0.0, 1.0], n_boot=4000) == (0.0, 1.0)


def test_bootstrap_ci_custom_stat_without_axis_and_single_value():
    lo, hi = bootstrap_ci([1, 2, 3, 4, 100], stat=lambda v: float(np.median(v)), n_boot=500)
    assert 1 <= lo <= hi <= 100
    assert bootstrap_ci([5.0]) == (5.0, 5.0)
    assert bootstrap_ci([5.0, float("nan")]) == (5.0, 5.0)


def test_bootstrap_ci_rejects_bad_arguments():
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], alpha=1.5)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], n_boot=0)


# ---------------------------------------------------------------- Wilcoxon / McNemar hand cases


def test_wilcoxon_all_positive_exact_hand_case():
    # 5 positive differences with distinct magnitudes: W- = 0; P(W- = 0) = 1/2^5; two-sided 2/32.
    assert wilcoxon_p([1, 2, 3, 4, 5]) == pytest.approx(2 / 32)


def test_wilcoxon_one_negative_exact_hand_case():
    # d = [1, -2, 3, 4, 5]: W- = 2. Rank subsets with sum <= 2: {}, {1}, {2} -> 3/32; two-sided 6/32.
    assert wilcoxon_p([1, -2, 3, 4, 5]) == pytest.approx(6 / 32)


def test_wilcoxon_all_zero_and_empty_is_one():
    assert wilcoxon_p([0.0, 0.0, 0.0]) == 1.0
    assert wilcoxon_p([]) == 1.0


def test_one_tie_policy_concordant_pairs_never_change_the_p_value():
    # Pratt (Wilcoxon) and McNemar both leave ties out of the statistic: 4 or 30 identical prompts
    # beside the same 6 improvements give the same p (zsplit gave 30 ties more weight than 4)
    assert wilcoxon_p([0.0] * 4 + [1.0] * 6) == pytest.approx(wilcoxon_p([0.0] * 30 + [1.0] * 6))
    assert mcnemar_p([0] * 10, [1] * 6 + [0] * 4) == mcnemar_p([0] * 36, [1] * 6 + [0] * 30) == pytest.approx(2 / 64)
    # one improvement among 30 identical answers is still no evidence
    assert wilcoxon_p([0.0] * 30 + [0.5]) > 0.3


def test_holm_hand_computed():
    from evalkit.stats import holm

    # sorted 0.01, 0.02, 0.04 (m=3): 0.03, 0.04, 0.04 (monotone), None untouched
    assert holm([0.04, 0.01, None, 0.02]) == [pytest.approx(0.04), pytest.approx(0.03), None, pytest.approx(0.04)]
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_paired_auc_delta_matches_brute_force():
    from evalkit.memorization.mia import roc_auc
    from evalkit.stats import paired_auc_delta

    rng = np.random.default_rng(0)
    am, an = rng.normal(0, 1, 30), rng.normal(0, 1, 30)
    bm, bn = am + 1.0 + rng.normal(0, 0.3, 30), an + rng.normal(0, 0.3, 30)
    res = paired_auc_delta(am, an, bm, bn, n_boot=500, seed=0)
    assert res.delta == pytest.approx(roc_auc(bm, bn) - roc_auc(am, an))
    # the same resamples by hand: draw ids, recompute both AUCs
    rng2 = np.random.default_rng(0)
    c1 = rng2.multinomial(30, np.full(30, 1 / 30), size=500)
    c0 = rng2.multinomial(30, np.full(30, 1 / 30), size=500)
    boot = []
    for k in range(500):
        i1, i0 = np.repeat(np.arange(30), c1[k]), np.repeat(np.arange(30), c0[k])
        boot.append(roc_auc(bm[i1], bn[i0]) - roc_auc(am[i1], an[i0]))
    lo, hi = np.percentile(boot, [2.5, 97.5])
    assert (res.ci_low, res.ci_high) == (pytest.approx(lo), pytest.approx(hi))
    assert res.ci_low > 0 and res.p_value < 0.01 and res.n == 30


def test_weighted_mean_diff_is_token_weighted():
    from evalkit.stats import weighted_mean_diff

    # train: (1.0 x 10 tokens, 3.0 x 30 tokens) -> 2.5; val: 4.0 -> gap 1.5
    value, lo, hi = weighted_mean_diff([1.0, 3.0], [10, 30], [4.0, 4.0], [5, 5], n_boot=200)
    assert value == pytest.approx(1.5) and lo <= value <= hi and lo >= 1.0 and hi <= 3.0


def test_mcnemar_exact_hand_case():
    # 6 discordant pairs, all baseline=0 -> candidate=1: p = 2 * 0.5^6 = 0.03125
    a = [0] * 10
    b = [1] * 6 + [0] * 4
    assert mcnemar_p(a, b) == pytest.approx(0.03125)
    # 3 one way, 1 the other: p = 2 * P(X <= 1 | n=4) = 2 * 5/16 = 0.625
    a = [0, 0, 0, 1, 1, 1]
    b = [1, 1, 1, 0, 1, 1]
    assert mcnemar_p(a, b) == pytest.approx(0.625)


def test_mcnemar_no_discordant_pair_is_one():
    assert mcnemar_p([1, 0, 1], [1, 0, 1]) == 1.0


def test_is_binary():
    assert is_binary([0, 1, 1], [0.0, 1.0])
    assert not is_binary([0, 0.5])


# ---------------------------------------------------------------- paired_bootstrap


def test_identical_inputs_give_zero_delta_and_p_one():
    a = np.random.default_rng(0).uniform(0, 1, size=30)
    res = paired_bootstrap(a, a.copy())
    assert res.delta == 0.0
    assert (res.ci_low, res.ci_high) == (0.0, 0.0)
    assert res.p_value == 1.0
    assert res.n == 30
    assert res.test == "wilcoxon"


def test_clear_shift_is_significant_and_ci_excludes_zero():
    rng = np.random.default_rng(3)
    a = rng.uniform(0.2, 0.6, size=40)
    b = a + 0.05 + rng.normal(0, 0.01, size=40)
    res = paired_bootstrap(a, b, seed=1)
    assert res.delta == pytest.approx(float(np.mean(b - a)))
    assert 0 < res.ci_low < res.delta < res.ci_high
    assert res.p_value < 1e-6


def test_pairing_beats_unpaired_spread():
    # prompt difficulty varies a lot, the model difference is small and consistent
    rng = np.random.default_rng(4)
    a = rng.uniform(0.0, 1.0, size=50)
    b = a + 0.01
    res = paired_bootstrap(a, b)
    assert res.ci_low == pytest.approx(0.01) and res.ci_high == pytest.approx(0.01)
    assert res.p_value < 1e-6


def test_paired_hand_case_small():
    res = paired_bootstrap([0.1, 0.2, 0.3, 0.4, 0.5], [0.2, 0.4, 0.6, 0.8, 1.0], n_boot=500)
    assert res.delta == pytest.approx(0.3)
    assert res.p_value == pytest.approx(2 / 32)  # all five differences positive, distinct
    assert 0.1 <= res.ci_low <= res.ci_high <= 0.5


def test_flags_use_mcnemar_automatically():
    a = [0] * 20
    b = [1] * 6 + [0] * 14
    res = paired_bootstrap(a, b)
    assert res.test == "mcnemar"
    assert res.p_value == pytest.approx(0.03125)
    assert res.delta == pytest.approx(0.3)
    assert res.ci_low > 0


def test_explicit_test_and_bad_test():
    res = paired_bootstrap([0, 1, 0, 1], [1, 1, 0, 1], test="wilcoxon")
    assert res.test == "wilcoxon"
    with pytest.raises(ValueError):
        paired_bootstrap([1, 2], [1, 2], test="t")


def test_reproducible_with_seed():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=25), rng.normal(size=25)
    assert paired_bootstrap(a, b, seed=11) == paired_bootstrap(a, b, seed=11)
    assert paired_bootstrap(a, b, seed=11).ci_low != paired_bootstrap(a, b, seed=12).ci_low


def test_nonfinite_pairs_are_dropped_and_edge_sizes():
    res = paired_bootstrap([0.1, float("nan"), 0.3], [0.2, 0.5, float("inf")])
    assert res.n == 1
    assert res.delta == pytest.approx(0.1)
    assert (res.ci_low, res.ci_high, res.p_value) == (pytest.approx(0.1), pytest.approx(0.1), 1.0)
    with pytest.raises(ValueError):
        paired_bootstrap([float("nan")], [1.0])
    with pytest.raises(ValueError):
        paired_bootstrap([1.0, 2.0], [1.0])


def test_large_input_is_chunked_and_fast():
    rng = np.random.default_rng(6)
    a = rng.uniform(size=5000)
    res = paired_bootstrap(a, a + rng.normal(0, 0.1, size=5000), n_boot=2000)
    assert res.n == 5000 and res.ci_low < res.delta < res.ci_high


# ---------------------------------------------------------------- unpaired_delta


def test_unpaired_delta():
    assert unpaired_delta(0.5, 0.75) == pytest.approx(0.25)
    assert unpaired_delta(None, 0.75) is None
    assert unpaired_delta(0.5, float("nan")) is None
