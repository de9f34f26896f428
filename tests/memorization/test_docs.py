"""docs/memorization.md names every memorization metric and states the thresholds the code uses."""

from pathlib import Path

from evalkit.memorization import NEAR_VERBATIM_MAX_DISTANCE, VERBATIM_MIN_TOKENS, SpanIndex
from evalkit.metrics.registry import METRICS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "memorization.md").read_text(encoding="utf-8")

OURS = ["verbatim_rate", "near_verbatim_rate", "longest_span_mean", "extraction_rate", "heldout_extraction_rate",
        "mia_auc", "mia_tpr_at_1fpr", "mia_tpr_at_0fp", "mia_auc_loss", "mia_auc_zlib", "mia_auc_ref",
        "mia_auc_minkpp", "mia_auc_ezmia", "mia_auc_base_null", "mia_auc_blind", "extraction_gap",
        "canary_extraction_rate", "canary_exposure"]


def test_every_memorization_metric_is_registered_and_documented():
    assert [m for m in OURS if m not in METRICS] == []
    assert [m for m in OURS if f"`{m}`" not in DOC] == []


def test_documented_thresholds_match_the_code():
    assert f"`VERBATIM_MIN_TOKENS = {VERBATIM_MIN_TOKENS}`" in DOC
    assert f"`NEAR_VERBATIM_MAX_DISTANCE = {NEAR_VERBATIM_MAX_DISTANCE:.2f}`" in DOC
    index = SpanIndex.build([])
    assert f"k = {index.k}, s = {index.stride}" in DOC
