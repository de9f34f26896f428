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
    on the differences, ``zero_method="zsplit"``. ROUGE differences are exactly zero whenever
    both models give the same answer; "zsplit" keeps those prompts and splits their ranks between
    the two signs, so a candidate that matches the baseline on 90% of prompts is not declared
    significantly different because of the other 10% (the default "wilcox" drops the zeros and
    would be that aggressive). The exact null distribution is used when n <= 50 and there are no
    zeros and no tied magnitudes, the normal approximation (with tie correction) otherwise; the
    method is chosen here, not by scipy's version-dependent "auto". All-zero differences -> p = 1.
  - 0/1 flags (verbatim, template_leak, ...): **exact McNemar** test -- only discordant pairs
    carry information; under H0 a prompt that changed is equally likely to change either way, so
    ``p = binomtest(n01, n01 + n10, 0.5)`` (two-sided). No discordant pair -> p = 1.

* Corpus-level figures (distinct-n, mia_auc, loss_gap, ...) have no per-prompt values to pair;
  ``unpaired_delta`` reports the plain difference and no p-value. We do not invent one.

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
    """Two-sided Wilcoxon signed-rank p-value of paired differences (zero_method="zsplit").

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
        res = _st.wilcoxon(d, zero_method="zsplit", method="exact" if exact else "approx")
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
