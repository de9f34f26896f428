"""Does an adapter copy its own training answers? Pure numpy/scipy/rapidfuzz; no torch here.

* span_index -- longest verbatim word-token span shared with any training answer (``verbatim``)
* near_copy  -- nearest training answer by normalized edit distance (``near_verbatim``)
* mia        -- membership-inference scores (higher = member) and their ROC evaluation
* canaries   -- planted secrets (Carlini et al. 2019): extraction and exposure

Every flag and metric is defined in docs/memorization.md.
"""

from .canaries import (
    CANARY_FRAME,
    SECRET_DIGITS,
    SECRET_SPACE,
    Canary,
    canary_extracted,
    canary_prefix,
    canary_text,
    candidate_secrets,
    exposure,
    make_canaries,
    plant,
)
from .mia import (
    MIN_NONMEMBERS_FOR_TPR,
    SCORE_NAMES,
    MiaSummary,
    RocCurve,
    ScoreEvaluation,
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
from .near_copy import (
    NEAR_VERBATIM_MAX_DISTANCE,
    NearCopyIndex,
    NearestMatch,
    brute_force_nearest,
    normalize_text,
    normalized_edit_distance,
)
from .span_index import VERBATIM_MIN_TOKENS, SpanIndex, SpanMatch, brute_force_longest_span, to_memorization

__all__ = [
    # span_index
    "VERBATIM_MIN_TOKENS",
    "SpanIndex",
    "SpanMatch",
    "brute_force_longest_span",
    "to_memorization",
    # near_copy
    "NEAR_VERBATIM_MAX_DISTANCE",
    "NearCopyIndex",
    "NearestMatch",
    "brute_force_nearest",
    "normalize_text",
    "normalized_edit_distance",
    # mia
    "SCORE_NAMES",
    "MIN_NONMEMBERS_FOR_TPR",
    "loss_score",
    "zlib_score",
    "ref_score",
    "minkpp_score",
    "minkpp_moments",
    "roc_auc",
    "tpr_at_fpr",
    "RocCurve",
    "roc_points",
    "ScoreEvaluation",
    "MiaSummary",
    "evaluate_scores",
    # canaries
    "CANARY_FRAME",
    "SECRET_DIGITS",
    "SECRET_SPACE",
    "Canary",
    "make_canaries",
    "canary_prefix",
    "canary_text",
    "plant",
    "candidate_secrets",
    "exposure",
    "canary_extracted",
]
