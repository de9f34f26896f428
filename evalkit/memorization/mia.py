"""Membership-inference (MIA) scores and their evaluation.

Every score is oriented so that HIGHER = MORE LIKELY A MEMBER (a training answer), and members are
the positive class of every ROC computation. Inputs are mean NLLs per answer token (nats/token;
lower = the model finds the text more likely) or per-token log-probabilities.

Scores (formulas as in docs/memorization.md):
  loss    = -NLL                                   (Yeom et al. 2018)
  zlib    = -NLL / len(zlib.compress(text))        (Carlini et al. 2021; MIMIR attacks/zlib.py
                                                    computes NLL / zlib bytes and calls lower = member)
  ref     = -(NLL_target - NLL_base)               (base-calibrated; for a LoRA the base model is a
                                                    free reference)
  minkpp  = mean of the lowest k% of z_t = (log p(x_t) - mu_t) / sigma_t   (Min-K%++, Zhang et al. 2024;
                                                    optional: its statistics cost ~30% of scoring)
  ezmia   = sum of positive D_t / sum of |negative D_t| over the tokens where the target's argmax is
            not x_t, D_t = log p_target(x_t) - log p_base(x_t)   (EZ-MIA, arXiv 2601.12104)

Nulls, computed on the same members and non-members (never part of the headline or of best_score):
  base_loss = -NLL_base: the LOSS score of the base model alone. It never saw the data, so its AUC must
              be ~0.5; an interval that excludes 0.5 means the split is shifted (``mia_auc_base_null``).
  blind     = out-of-fold score of a bag-of-words classifier that never sees a model (memorization/blind.py,
              ``mia_auc_blind``): how separable members and non-members are from their text alone.

Headline: ``mia_auc`` is the AUC of the "ref" score for an adapter, of "loss" for the base model (whose
ref and ezmia scores are 0 by construction). It is fixed in advance, not the best of several scores:
taking the maximum AUC over scores on the same examples is optimistically biased (with four scores near
0.5 the max is noticeably above 0.5 by chance). The ref score is the principled choice for a LoRA: the
base model it was trained from is the reference model calibration needs, at no cost, and it removes
"this text is just easy" from the loss. The best-AUC score is reported too (``best_score``), as
information only.

AUC interval: stratified percentile bootstrap, floored by the Hanley-McNeil (1982) normal interval
AUC +- 1.96 SE, whichever is wider on each side, clipped to [0, 1]. At perfect separation (AUC 1 or
0) the bootstrap gives (1, 1) and the Hanley-McNeil SE is 0 too, so the SE is evaluated at the AUC
moved one half-step of resolution inwards, 1 - 1/(2 n_min) (n_min = the smaller class): the
interval never collapses to a point.

TPR at low FPR: the TPR of the last ROC point whose FPR is <= 1% (every threshold kept). MIMIR's
run.py takes the last point with FPR strictly < the target; the two differ only when some threshold
gives exactly 1% FPR. The figure is reported as ``mia_tpr_at_1fpr`` only with at least
MIN_NONMEMBERS_FOR_TPR = 300 non-members: with zero false positives among n non-members the one-sided
95% upper bound on the FPR is 1 - 0.05^(1/n) ~ 3/n, which is <= 1% only from n ~ 300. With fewer it
is reported as ``mia_tpr_at_0fp``: the share of members scoring above every non-member (TPR at zero
false positives), with its n.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Sequence

import numpy as np

from ..records import MembershipExample

# scipy.stats and sklearn.metrics are imported inside the functions that use them: together they
# take ~1.5 s to import, which every `evalkit` command importing this package would pay.

__all__ = [
    "SCORE_NAMES",
    "MIN_NONMEMBERS_FOR_TPR",
    "loss_score",
    "zlib_score",
    "ref_score",
    "minkpp_score",
    "minkpp_moments",
    "ez_score",
    "hanley_mcneil_se",
    "auc_interval",
    "tpr_at_zero_fp",
    "NULL_SCORES",
    "roc_auc",
    "tpr_at_fpr",
    "RocCurve",
    "roc_points",
    "ScoreEvaluation",
    "MiaSummary",
    "evaluate_scores",
]

SCORE_NAMES = ("loss", "zlib", "ref", "minkpp", "ezmia")  # the scores with a registered mia_auc_<name>
NULL_SCORES = {"base_loss": "mia_auc_base_null", "blind": "mia_auc_blind"}  # null score -> summary name
MIN_NONMEMBERS_FOR_TPR = 300  # the FPR bound with 0 false positives is ~3/n: <= 1% from n ~ 300
EZ_MIN_TOKENS = 2  # EZ-MIA is 0 with fewer error-zone tokens (the reference implementation's rule)
_EZ_FLOOR = 1e-6  # sum |negative D| is floored so an error zone with no negative D ranks highest, finitely


# ---------------------------------------------------------------- scores (higher = member)


def loss_score(nll: float) -> float:
    """-NLL (Yeom et al. 2018)."""
    return -float(nll)


def zlib_score(nll: float, text: str) -> float:
    """-NLL / zlib-compressed length of the text in bytes (Carlini et al. 2021).

    Dividing by the compressed size discounts texts that are likely because they are repetitive.
    """
    return -float(nll) / len(zlib.compress(text.encode("utf-8")))


def ref_score(nll: float, base_nll: float) -> float:
    """-(NLL_target - NLL_base): how much more likely fine-tuning made the text."""
    return -(float(nll) - float(base_nll))


def minkpp_score(token_logprobs: Sequence[float], mu: Sequence[float], sigma: Sequence[float], k: float = 0.2) -> float:
    """Min-K%++ (Zhang et al. 2024): mean of the lowest k fraction of z_t = (log p(x_t) - mu_t) / sigma_t.

    ``mu_t``, ``sigma_t``: mean and standard deviation of log p(v) under the model's next-token
    distribution at step t (see ``minkpp_moments``). A step with sigma_t = 0 (a one-hot
    distribution, where log p(x_t) = mu_t) contributes z_t = 0. The number of steps kept is
    max(1, floor(k * T)) -- the reference implementation's int(T * k), but never empty.
    """
    if not 0.0 < k <= 1.0:
        raise ValueError(f"The 'k' parameter must be in (0, 1]. Got {k!r} instead.")
    lp = np.asarray(token_logprobs, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if lp.ndim != 1 or lp.shape != mu.shape or lp.shape != sigma.shape:
        raise ValueError(f"token_logprobs, mu and sigma must be 1-D of one length. Got shapes "
                         f"{lp.shape}, {mu.shape}, {sigma.shape} instead.")
    if not len(lp):
        raise ValueError("token_logprobs is empty: Min-K%++ needs at least one token")
    z = np.zeros_like(lp)
    ok = sigma > 0
    z[ok] = (lp[ok] - mu[ok]) / sigma[ok]
    keep = max(1, int(len(z) * k))
    return float(np.mean(np.sort(z)[:keep]))


def ez_score(target_logprobs: Sequence[float], base_logprobs: Sequence[float],
             target_correct: Sequence[bool]) -> float:
    """EZ-MIA (arXiv 2601.12104; JetBrains-Research/ez-mia ``mia/ez_score.py``).

    On the "error zone" -- tokens where the target's argmax is not the actual token -- with
    D_t = log p_target(x_t) - log p_base(x_t): sum of the positive D_t / sum of |negative D_t|.
    0.0 with fewer than EZ_MIN_TOKENS such tokens. The denominator is floored at 1e-6 (a zone whose
    every D_t is >= 0 is the most member-like, and stays finite for the ROC).
    """
    t = np.asarray(target_logprobs, dtype=np.float64)
    b = np.asarray(base_logprobs, dtype=np.float64)
    ok = np.asarray(target_correct, dtype=bool)
    if t.ndim != 1 or t.shape != b.shape or t.shape != ok.shape:
        raise ValueError(f"target_logprobs, base_logprobs and target_correct must be 1-D of one length. Got "
                         f"shapes {t.shape}, {b.shape}, {ok.shape} instead.")
    d = (t - b)[~ok]
    if len(d) < EZ_MIN_TOKENS:
        return 0.0
    return float(d[d > 0].sum() / max(float(-d[d < 0].sum()), _EZ_FLOOR))


def minkpp_moments(log_probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mu_t, sigma_t) from a (T, V) array of next-token log-probabilities.

    mu_t = sum_v p(v) log p(v); sigma_t^2 = sum_v p(v) (log p(v))^2 - mu_t^2 (clipped at 0 against
    rounding). Entries with p(v) = 0 (log p = -inf) contribute 0.
    """
    lp = np.asarray(log_probs, dtype=np.float64)
    p = np.exp(lp)
    finite = np.isfinite(lp)
    plp = np.where(finite, p * np.where(finite, lp, 0.0), 0.0)
    mu = plp.sum(-1)
    var = np.where(finite, plp * np.where(finite, lp, 0.0), 0.0).sum(-1) - mu**2
    return mu, np.sqrt(np.maximum(var, 0.0))


# ---------------------------------------------------------------- evaluation


def _pair(member: Sequence[float], nonmember: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    m = np.asarray(member, dtype=np.float64).ravel()
    n = np.asarray(nonmember, dtype=np.float64).ravel()
    if not len(m) or not len(n):
        raise ValueError(f"need at least one member and one non-member score. Got {len(m)} and {len(n)} instead.")
    if not (np.isfinite(m).all() and np.isfinite(n).all()):
        raise ValueError("scores must be finite (drop NaN/inf before evaluating)")
    return m, n


def roc_auc(member: Sequence[float], nonmember: Sequence[float]) -> float:
    """ROC AUC with members as the positive class: P(member score > non-member score), ties 1/2.

    Equal to ``sklearn.metrics.roc_auc_score`` (tests check it); computed from ranks (the
    Mann-Whitney U statistic) because the bootstrap calls it a thousand times and sklearn's input
    validation costs ~10x the arithmetic.
    """
    from scipy.stats import rankdata

    m, n = _pair(member, nonmember)
    ranks = rankdata(np.concatenate([m, n]))  # average ranks: ties count 1/2
    return float((ranks[: len(m)].sum() - len(m) * (len(m) + 1) / 2) / (len(m) * len(n)))


def _roc(member, nonmember, drop_intermediate: bool):
    from sklearn.metrics import roc_curve

    m, n = _pair(member, nonmember)
    y = np.concatenate([np.ones(len(m)), np.zeros(len(n))])
    fpr, tpr, _ = roc_curve(y, np.concatenate([m, n]), pos_label=1, drop_intermediate=drop_intermediate)
    return fpr, tpr


def tpr_at_fpr(member: Sequence[float], nonmember: Sequence[float], fpr: float = 0.01) -> float:
    """TPR of the last ROC point with FPR <= ``fpr`` (see the module docstring for MIMIR's '<')."""
    if not 0.0 <= fpr <= 1.0:
        raise ValueError(f"The 'fpr' parameter must be in [0, 1]. Got {fpr!r} instead.")
    # Keep every threshold: dropping collinear points (sklearn's default) can remove the last
    # point under the target on a diagonal stretch of the curve.
    f, t = _roc(member, nonmember, drop_intermediate=False)
    return float(t[np.flatnonzero(f <= fpr)[-1]])  # f[0] == 0, so there is always one


def hanley_mcneil_se(auc: float, n_member: int, n_nonmember: int) -> float:
    """Standard error of an AUC (Hanley & McNeil 1982): Q1 = A/(2-A), Q2 = 2A^2/(1+A),
    SE^2 = (A(1-A) + (n1-1)(Q1-A^2) + (n2-1)(Q2-A^2)) / (n1 n2)."""
    a, n1, n2 = float(auc), int(n_member), int(n_nonmember)
    if n1 < 1 or n2 < 1:
        raise ValueError(f"need at least one member and one non-member. Got {n1} and {n2} instead.")
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    var = (a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n2 - 1) * (q2 - a * a)) / (n1 * n2)
    return math.sqrt(max(var, 0.0))


def auc_interval(member: Sequence[float], nonmember: Sequence[float], n_boot: int = 1000, seed: int = 0,
                 z: float = 1.959964) -> tuple[float, float]:
    """95% interval of the AUC: the bootstrap, floored by Hanley-McNeil (module docstring)."""
    m, n = _pair(member, nonmember)
    auc = roc_auc(m, n)
    # a stratified bootstrap (members and non-members resampled separately), vectorized: a resample's AUC is
    # counts_m @ C @ counts_n / (n1 n2) with C the pairwise comparison matrix (ties 1/2)
    rng = np.random.default_rng(seed)
    cmp = (m[:, None] > n[None, :]) + 0.5 * (m[:, None] == n[None, :])
    cm = rng.multinomial(len(m), np.full(len(m), 1 / len(m)), size=n_boot)
    cn = rng.multinomial(len(n), np.full(len(n), 1 / len(n)), size=n_boot)
    boot = np.einsum("bi,ij,bj->b", cm, cmp, cn) / (len(m) * len(n))
    lo, hi = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
    half_step = 1.0 / (2 * min(len(m), len(n)))
    se = hanley_mcneil_se(min(max(auc, half_step), 1.0 - half_step), len(m), len(n))
    return max(0.0, min(lo, auc - z * se)), min(1.0, max(hi, auc + z * se))


def tpr_at_zero_fp(member: Sequence[float], nonmember: Sequence[float]) -> float:
    """Share of members scoring strictly above every non-member (the TPR at zero false positives)."""
    m, n = _pair(member, nonmember)
    return float(np.mean(m > n.max()))


class RocCurve(NamedTuple):
    fpr: list[float]
    tpr: list[float]


def roc_points(member: Sequence[float], nonmember: Sequence[float], max_points: int = 101) -> RocCurve:
    """The ROC curve for plotting: at most ``max_points`` vertices, first (0, 0) and last (1, 1) kept."""
    if max_points < 2:
        raise ValueError(f"The 'max_points' parameter must be >= 2. Got {max_points!r} instead.")
    f, t = _roc(member, nonmember, drop_intermediate=True)
    if len(f) > max_points:
        keep = np.unique(np.round(np.linspace(0, len(f) - 1, max_points)).astype(int))
        f, t = f[keep], t[keep]
    return RocCurve([round(float(x), 6) for x in f], [round(float(x), 6) for x in t])


@dataclass(frozen=True)
class ScoreEvaluation:
    """How well one score separates members from non-members."""

    name: str
    auc: float
    auc_ci: tuple[float, float]  # 95%: stratified percentile bootstrap, Hanley-McNeil floor
    tpr_at_1fpr: float  # TPR of the last ROC point with FPR <= 1% (meaningful from 300 non-members)
    tpr_at_0fp: float  # share of members above every non-member
    roc: RocCurve
    n_member: int
    n_nonmember: int

    @property
    def n(self) -> int:
        return min(self.n_member, self.n_nonmember)


@dataclass(frozen=True)
class MiaSummary:
    """All MIA scores evaluated on one target; ``mia_*`` are the registered headline metrics."""

    scores: dict[str, ScoreEvaluation] = field(default_factory=dict)
    primary: Optional[str] = None  # the score mia_auc reports ("ref" for an adapter, "loss" for the base)
    mia_auc: Optional[float] = None
    mia_auc_ci: Optional[tuple[float, float]] = None
    mia_tpr_at_1fpr: Optional[float] = None
    tpr_reliable: bool = False  # True: >= MIN_NONMEMBERS_FOR_TPR non-members, mia_tpr_at_1fpr is reported
    best_score: Optional[str] = None  # highest AUC among SCORE_NAMES (information only; not used for mia_auc)
    n_member: int = 0
    n_nonmember: int = 0
    warnings: tuple[str, ...] = ()

    def _names(self) -> dict[str, str]:
        """evaluated score -> its summary name (mia_auc_<score>, or the null's name)."""
        return {n: NULL_SCORES.get(n, f"mia_auc_{n}") for n in self.scores if n in SCORE_NAMES or n in NULL_SCORES}

    @property
    def summary(self) -> dict[str, float]:
        """Values for RunRecord.summary (registered names only)."""
        out: dict[str, float] = {}
        if self.mia_auc is not None:
            head = self.scores[self.primary]
            out["mia_auc"] = self.mia_auc
            if self.tpr_reliable:
                out["mia_tpr_at_1fpr"] = head.tpr_at_1fpr
            else:
                out["mia_tpr_at_0fp"] = head.tpr_at_0fp
        for score, name in self._names().items():
            out[name] = self.scores[score].auc
        return out

    @property
    def intervals(self) -> dict[str, tuple[float, float]]:
        """95% intervals for RunRecord.intervals."""
        out = {name: self.scores[score].auc_ci for score, name in self._names().items()}
        if self.mia_auc_ci is not None:
            out["mia_auc"] = self.mia_auc_ci
        return out

    @property
    def n(self) -> dict[str, int]:
        """n behind each summary value for RunRecord.n: per class, the smaller."""
        out = {name: self.scores[score].n for score, name in self._names().items()}
        if self.mia_auc is not None:
            head = self.scores[self.primary]
            out["mia_auc"] = head.n
            out["mia_tpr_at_1fpr" if self.tpr_reliable else "mia_tpr_at_0fp"] = head.n_nonmember
        return out

    @property
    def roc(self) -> dict[str, dict[str, list[float]]]:
        """ROC points per score ({"loss": {"fpr": [...], "tpr": [...]}, ...}) for RunRecord.curves."""
        return {n: {"fpr": ev.roc.fpr, "tpr": ev.roc.tpr} for n, ev in self.scores.items()}


def evaluate_scores(examples: Sequence[MembershipExample], n_boot: int = 1000, seed: int = 0,
                    primary: Optional[str] = None) -> MiaSummary:
    """Evaluate every score present in ``examples`` (see the module docstring for mia_auc).

    ``primary``: the headline score (default "ref" when present, else "loss"). Each score uses the
    examples that carry a finite value of it; a score with no member or no non-member is skipped with
    a warning.
    """
    names = {n for e in examples for n in e.scores}
    ordered = [n for n in (*SCORE_NAMES, *NULL_SCORES) if n in names] + sorted(names - set(SCORE_NAMES)
                                                                               - set(NULL_SCORES))
    warnings: list[str] = []
    results: dict[str, ScoreEvaluation] = {}
    for name in ordered:
        pairs = [(e.member, e.scores[name]) for e in examples if name in e.scores]
        good = [(mem, float(v)) for mem, v in pairs if v is not None and math.isfinite(v)]
        if len(good) < len(pairs):
            warnings.append(f"score '{name}': {len(pairs) - len(good)} non-finite values left out")
        member = [v for mem, v in good if mem]
        nonmember = [v for mem, v in good if not mem]
        if not member or not nonmember:
            warnings.append(f"score '{name}': needs members and non-members, got {len(member)} and "
                            f"{len(nonmember)}; not evaluated")
            continue
        results[name] = ScoreEvaluation(
            name=name,
            auc=roc_auc(member, nonmember),
            auc_ci=auc_interval(member, nonmember, n_boot=n_boot, seed=seed),
            tpr_at_1fpr=tpr_at_fpr(member, nonmember, 0.01),
            tpr_at_0fp=tpr_at_zero_fp(member, nonmember),
            roc=roc_points(member, nonmember),
            n_member=len(member),
            n_nonmember=len(nonmember),
        )
    n_member = sum(1 for e in examples if e.member)
    n_nonmember = len(examples) - n_member
    if primary is None:
        primary = "ref" if "ref" in results else "loss"
    if primary not in results:
        warnings.append(f"no '{primary}' score: mia_auc not reported")
        return MiaSummary(scores=results, n_member=n_member, n_nonmember=n_nonmember,
                          best_score=_best(results), warnings=tuple(warnings))
    head = results[primary]
    reliable = head.n_nonmember >= MIN_NONMEMBERS_FOR_TPR
    if not reliable:
        warnings.append(f"only {head.n_nonmember} non-members: TPR at 1% FPR needs at least "
                        f"{MIN_NONMEMBERS_FOR_TPR} to be bounded; reported as mia_tpr_at_0fp (TPR at zero "
                        f"false positives, n={head.n_nonmember})")
    return MiaSummary(scores=results, primary=primary, mia_auc=head.auc, mia_auc_ci=head.auc_ci,
                      mia_tpr_at_1fpr=head.tpr_at_1fpr if reliable else None, tpr_reliable=reliable,
                      best_score=_best(results), n_member=n_member, n_nonmember=n_nonmember,
                      warnings=tuple(warnings))


def _best(results: dict[str, ScoreEvaluation]) -> Optional[str]:
    # max() keeps the first of equal AUCs, i.e. the earlier name in SCORE_NAMES order; nulls never win
    attacks = [n for n in results if n not in NULL_SCORES]
    return max(attacks, key=lambda n: results[n].auc) if attacks else None
