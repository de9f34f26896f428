"""Confidence intervals and paired significance tests for comparing two runs.

Pure numpy/scipy, deterministic for a given ``seed``. Used by evalkit/comparison.py.

Choices (lm-eval #3831 asks for exactly these paired tests):

* **Resample pairs, not values.** Both runs answered the same prompts, so prompt difficulty is
  shared; ``paired_bootstrap`` draws prompt indices with replacement and recomputes the mean of
  the per-prompt differences ``b - a``. Its percentile interval is far narrower than an unpaired
  one when prompts vary more than models do (they usually do).
* **The p-value comes from a rank / exact test, not from the bootstrap.** A bootstrap p-value at
  2000 resamples cannot go below 1/2000 and is noisy near 0.05; the tests below are exact or
  have a closed form and need no resampling:

  - continuous per-prompt scores (ROUGE, novelty, span length, NLL): **Wilcoxon signed-rank**
    on the differences, ``zero_method="pratt"``.
  - 0/1 flags (verbatim, template_leak, ...): **exact McNemar** test -- only discordant pairs
    carry information; under H0 a prompt that changed is equally likely to change either way, so
    ``p = binomtest(n01, n01 + n10, 0.5)`` (two-sided). No discordant pair -> p = 1.

  **One tie policy** for both: a prompt where the two runs score the same (a zero difference, a
  concordant pair) carries no evidence about the direction of the change and is left out of the
  test statistic. McNemar does that by construction; for Wilcoxon it is Pratt's (1959) method:
  the zeros are ranked with the other differences (so the ranks of the non-zero ones are the
  same as with the zeros present) and then dropped from the signed-rank sum. (The earlier
  "zsplit" kept them, splitting their ranks between the signs, which treated ties the opposite
  way from McNemar.) The size of the change, zeros included, is ``delta`` and its interval.
  Pratt has no exact null distribution with zeros, so the exact test is used only when n <= 50
  with no zeros and no tied magnitudes, the normal approximation (tie-corrected) otherwise.
  All-zero differences -> p = 1.

* **Corpus figures paired by example id** (membership-inference AUC, loss gaps): both runs scored
  the same training / validation examples, so ``paired_auc_delta`` and ``paired_gap_delta``
  resample example ids (members and non-members, or train and val, separately) and recompute the
  figure of both runs on the same resample; the interval is the percentile interval of the
  difference, the p-value the two-sided bootstrap p, 2 min(P*(delta <= 0), P*(delta >= 0))
  (resolution 1/n_boot; there is no rank test for a difference of AUCs on shared examples short
  of DeLong's, and the bootstrap needs no normality).
* Other corpus-level figures (distinct-n, ...) have no per-prompt values to pair;
  ``unpaired_delta`` reports the plain difference and no p-value. We do not invent one.
* **Multiplicity**: a comparison tests ~25 metrics per candidate. ``holm`` gives Holm's (1979)
  step-down adjusted p-values (family-wise error control, valid under any dependence between the
  metrics, which are strongly correlated here); the comparison stores them as ``Delta.p_adjusted``
  over every p-valued delta of the comparison, and the report colours significance by them. The
  gate's relative rules are pre-registered single hypotheses and use the raw p-value.

Non-finite values are dropped pairwise before any computation; ``n`` says how many pairs were used.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from scipy import stats as _st

__all__ = [
    "PairedResult",
    "bootstrap_ci",
    "paired_bootstrap",
    "wilcoxon_p",
    "mcnemar_p",
    "unpaired_delta",
    "is_binary",
    "holm",
    "weighted_mean_diff",
    "resampled_rows_ci",
    "paired_auc_delta",
    "paired_gap_delta",
]

_EXACT_WILCOXON_MAX_N = 50  # exact null distribution up to here (cheap; scipy's own "auto" cut-off is similar)
_CHUNK = 1 << 22  # max resample indices held in memory at once (~32 MiB of int64)


@dataclass(frozen=True)
class PairedResult:
    delta: float  # mean(b - a) over the pairs
    ci_low: float  # percentile bootstrap interval of that mean (1 - alpha)
    ci_high: float
    p_value: float  # from the paired test named in ``test``
    n: int  # pairs used (after dropping non-finite values)
    test: str  # "wilcoxon" | "mcnemar"


def _as_array(values: Sequence[float] | np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=float).reshape(-1)


def _resampled_stat(values: np.ndarray, stat: Callable, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``stat`` of ``n_boot`` resamples (with replacement) of ``values``; vectorized in chunks."""
    n = values.size
    out = np.empty(n_boot, dtype=float)
    rows = max(1, _CHUNK // max(n, 1))
    done = 0
    while done < n_boot:
        k = min(rows, n_boot - done)
        idx = rng.integers(0, n, size=(k, n))
        sample = values[idx]
        try:
            res = np.asarray(stat(sample, axis=1), dtype=float)
            if res.shape != (k,):
                raise TypeError("stat did not reduce along axis 1")
        except TypeError:  # a stat without an ``axis`` argument: one call per resample
            res = np.array([float(stat(row)) for row in sample])
        out[done:done + k] = res
        done += k
    return out


def _percentile_interval(boot: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.percentile(boot, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(lo), float(hi)


def _check(n_boot: int, alpha: float) -> None:
    if n_boot < 1:
        raise ValueError(f"n_boot must be a positive int. Got {n_boot!r} instead.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1). Got {alpha!r} instead.")


def bootstrap_ci(values: Sequence[float] | np.ndarray, stat: Callable = np.mean, n_boot: int = 2000,
                 seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile bootstrap interval (1 - alpha) of ``stat(values)``.

    Non-finite values are dropped. One value gives (v, v); no value raises ValueError.
    """
    _check(n_boot, alpha)
    x = _as_array(values)
    x = x[np.isfinite(x)]
    if x.size == 0:
        raise ValueError("bootstrap_ci needs at least one finite value")
    if x.size == 1:
        v = float(stat(x))
        return v, v
    rng = np.random.default_rng(seed)
    return _percentile_interval(_resampled_stat(x, stat, n_boot, rng), alpha)


def is_binary(*arrays: np.ndarray) -> bool:
    """True when every value is 0 or 1 (flags)."""
    return all(np.isin(np.asarray(a, dtype=float), (0.0, 1.0)).all() for a in arrays)


def wilcoxon_p(diffs: Sequence[float] | np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (zero_method="pratt", see above).

    All-zero (or empty) differences -> 1.0. Exact when n <= 50 with no zeros and no tied
    magnitudes, normal approximation with tie correction otherwise.
    """
    d = _as_array(diffs)
    d = d[np.isfinite(d)]
    if d.size == 0 or not np.any(d != 0):
        return 1.0
    mags = np.abs(d)
    exact = d.size <= _EXACT_WILCOXON_MAX_N and np.all(d != 0) and np.unique(mags).size == mags.size
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-n "normal approximation may be inaccurate" warnings
        res = _st.wilcoxon(d, zero_method="pratt", method="exact" if exact else "approx")
    p = float(res.pvalue)
    return 1.0 if not math.isfinite(p) else min(1.0, max(0.0, p))


def mcnemar_p(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Exact two-sided McNemar p-value for paired 0/1 outcomes.

    n01 = pairs with a=0, b=1; n10 = pairs with a=1, b=0; p = binomtest(n01, n01 + n10, 0.5).
    No discordant pair -> 1.0.
    """
    x, y = _as_array(a), _as_array(b)
    if x.shape != y.shape:
        raise ValueError(f"mcnemar_p needs equal-length inputs. Got {x.size} and {y.size}.")
    x, y = x != 0, y != 0
    n01 = int(np.sum(~x & y))
    n10 = int(np.sum(x & ~y))
    if n01 + n10 == 0:
        return 1.0
    return float(min(1.0, _st.binomtest(n01, n01 + n10, 0.5, alternative="two-sided").pvalue))


def paired_bootstrap(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, n_boot: int = 2000,
                     seed: int = 0, alpha: float = 0.05, test: Optional[str] = None) -> PairedResult:
    """Paired comparison of candidate ``b`` against baseline ``a`` (same order = same prompt).

    ``delta`` = mean(b - a); the interval resamples pairs; ``p_value`` from ``test``:
    "wilcoxon", "mcnemar", or None to pick McNemar when every value is 0/1 and Wilcoxon otherwise.
    Pairs with a non-finite value on either side are dropped. No pair raises ValueError;
    one pair gives a zero-width interval and p = 1.0.
    """
    _check(n_boot, alpha)
    x, y = _as_array(a), _as_array(b)
    if x.shape != y.shape:
        raise ValueError(f"paired_bootstrap needs equal-length inputs. Got {x.size} and {y.size}.")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n == 0:
        raise ValueError("paired_bootstrap needs at least one finite pair")
    if test is None:
        test = "mcnemar" if is_binary(x, y) else "wilcoxon"
    if test not in ("wilcoxon", "mcnemar"):
        raise ValueError(f"test must be 'wilcoxon', 'mcnemar' or None. Got {test!r} instead.")
    d = y - x
    delta = float(np.mean(d))
    if n == 1 or not np.any(d != d[0]):
        lo = hi = delta  # every resample has the same mean
    else:
        lo, hi = _percentile_interval(_resampled_stat(d, np.mean, n_boot, np.random.default_rng(seed)), alpha)
    if n == 1:
        p = 1.0
    else:
        p = mcnemar_p(x, y) if test == "mcnemar" else wilcoxon_p(d)
    return PairedResult(delta=delta, ci_low=lo, ci_high=hi, p_value=p, n=n, test=test)


def unpaired_delta(baseline: Optional[float], candidate: Optional[float]) -> Optional[float]:
    """candidate - baseline for a corpus-level figure; None when either is missing or non-finite."""
    if baseline is None or candidate is None:
        return None
    try:
        b, c = float(baseline), float(candidate)
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(b) and math.isfinite(c)):
        return None
    return c - b


def holm(p_values: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm step-down adjusted p-values (None stays None): p_(i) * (m - i + 1), made monotone, capped at 1.

    Written out (5 lines) rather than taken from statsmodels, which evalkit does not otherwise need.
    """
    idx = [i for i, p in enumerate(p_values) if p is not None and math.isfinite(p)]
    order = sorted(idx, key=lambda i: p_values[i])
    out: list[Optional[float]] = [None] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, float(p_values[i]) * (len(order) - rank)))
        out[i] = running
    return out


def _count_matrix(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of n items is drawn in each of n_boot resamples with replacement: (n_boot, n)."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def weighted_mean_diff(a: Sequence[float], a_weights: Sequence[float], b: Sequence[float],
                       b_weights: Sequence[float], n_boot: int = 2000, seed: int = 0,
                       alpha: float = 0.05) -> tuple[float, float, float]:
    """(wmean(b) - wmean(a), interval): two independent groups, each resampled with replacement.

    wmean(x) = sum w x / sum w (a token-weighted mean NLL with w = tokens per example). Used for the
    loss gaps (b = val or held-out, a = train) and extraction_gap (weights 1).
    """
    _check(n_boot, alpha)
    xa, wa, xb, wb = (_as_array(v) for v in (a, a_weights, b, b_weights))
    if not len(xa) or not len(xb) or xa.shape != wa.shape or xb.shape != wb.shape:
        raise ValueError("weighted_mean_diff needs non-empty groups with one weight per value")
    rng = np.random.default_rng(seed)
    ca, cb = _count_matrix(len(xa), n_boot, rng), _count_matrix(len(xb), n_boot, rng)
    boot = (cb @ (wb * xb)) / (cb @ wb) - (ca @ (wa * xa)) / (ca @ wa)
    lo, hi = _percentile_interval(boot, alpha)
    return float((wb * xb).sum() / wb.sum() - (wa * xa).sum() / wa.sum()), lo, hi


def resampled_rows_ci(columns: Sequence[Sequence[float]], stat: Callable[[np.ndarray], np.ndarray],
                      n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> tuple[float, float]:
    """Percentile interval of ``stat`` over resampled rows (items drawn jointly across ``columns``).

    ``stat`` maps the column sums over a resample, an array (n_boot, k) of count-weighted sums, to
    n_boot values: enough for pooled ratios such as novelty (novel n-grams / all n-grams).
    """
    _check(n_boot, alpha)
    x = np.column_stack([_as_array(c) for c in columns])
    if not len(x):
        raise ValueError("resampled_rows_ci needs at least one row")
    counts = _count_matrix(len(x), n_boot, np.random.default_rng(seed))
    return _percentile_interval(np.asarray(stat(counts @ x), dtype=float), alpha)


def _bootstrap_p(boot: np.ndarray) -> float:
    return float(min(1.0, 2 * min(np.mean(boot <= 0), np.mean(boot >= 0))))


def paired_auc_delta(a_member: Sequence[float], a_nonmember: Sequence[float], b_member: Sequence[float],
                     b_nonmember: Sequence[float], n_boot: int = 2000, seed: int = 0,
                     alpha: float = 0.05) -> PairedResult:
    """AUC(b) - AUC(a) on the same examples (row i of a_member and b_member is one example id).

    Members and non-members are resampled separately, the same draw for both runs. The AUC of a
    resample is computed from the pairwise comparison matrix and the draw counts (vectorized).
    """
    _check(n_boot, alpha)
    am, an, bm, bn = (_as_array(v) for v in (a_member, a_nonmember, b_member, b_nonmember))
    if am.shape != bm.shape or an.shape != bn.shape or not len(am) or not len(an):
        raise ValueError("paired_auc_delta needs the same non-empty members and non-members in both runs")

    def cmp(m, n):
        return (m[:, None] > n[None, :]) + 0.5 * (m[:, None] == n[None, :])

    ma, mb = cmp(am, an), cmp(bm, bn)
    rng = np.random.default_rng(seed)
    c1, c0 = _count_matrix(len(am), n_boot, rng), _count_matrix(len(an), n_boot, rng)
    norm = len(am) * len(an)
    boot = (np.einsum("bi,ij,bj->b", c1, mb, c0) - np.einsum("bi,ij,bj->b", c1, ma, c0)) / norm
    lo, hi = _percentile_interval(boot, alpha)
    return PairedResult(delta=float(mb.mean() - ma.mean()), ci_low=lo, ci_high=hi, p_value=_bootstrap_p(boot),
                        n=int(min(len(am), len(an))), test="paired_bootstrap_ids")


def paired_gap_delta(a_train: Sequence[float], b_train: Sequence[float], train_w: Sequence[float],
                     a_other: Sequence[float], b_other: Sequence[float], other_w: Sequence[float],
                     n_boot: int = 2000, seed: int = 0, alpha: float = 0.05) -> PairedResult:
    """gap(b) - gap(a), gap = wmean(other) - wmean(train), on the same example ids in both runs.

    Weights are the tokens per example (the same text, so the same count in both runs when both used
    one max_length; the mean of the two runs' counts otherwise).
    """
    _check(n_boot, alpha)
    at, bt, wt, ao, bo, wo = (_as_array(v) for v in (a_train, b_train, train_w, a_other, b_other, other_w))
    if at.shape != bt.shape or ao.shape != bo.shape or not len(at) or not len(ao):
        raise ValueError("paired_gap_delta needs the same non-empty train and other examples in both runs")
    rng = np.random.default_rng(seed)
    ct, co = _count_matrix(len(at), n_boot, rng), _count_matrix(len(ao), n_boot, rng)

    def gap(c_t, c_o, t, o):
        return (c_o @ (wo * o)) / (c_o @ wo) - (c_t @ (wt * t)) / (c_t @ wt)

    boot = gap(ct, co, bt, bo) - gap(ct, co, at, ao)
    ones_t, ones_o = np.ones((1, len(at))), np.ones((1, len(ao)))
    delta = float(gap(ones_t, ones_o, bt, bo)[0] - gap(ones_t, ones_o, at, ao)[0])
    lo, hi = _percentile_interval(boot, alpha)
    return PairedResult(delta=delta, ci_low=lo, ci_high=hi, p_value=_bootstrap_p(boot),
                        n=int(min(len(at), len(ao))), test="paired_bootstrap_ids")
