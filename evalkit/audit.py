"""The data audit: is the validation split evidence of generalization, are the held-out suites held out?

``audit_data(train, val, suites)`` looks only at the data (no model) and returns a
:class:`~evalkit.records.DataAudit`: ``evalkit audit`` writes it as ``audit.json``; ``evalkit train`` stores
its warnings in ``evalkit.json``; ``evalkit eval`` / ``compare`` put it in ``RunRecord.audit`` and its
warnings in ``RunRecord.notices``. Definitions (docs/audit.md):

* near duplicate: normalized edit distance <= 0.10 after lowercasing and collapsing whitespace
  (``memorization.near_copy``, the same test as the ``near_verbatim`` flag), searched with the near-copy
  index; exact duplicate: equal after that normalization;
* skeleton: an answer with its slot values masked (``memorization.skeleton``); ``train_answer_template_share``
  is the share of training answers covered by the 10 most common skeletons shared by >= 2 answers.

Warnings (code, when):

* ``val_leak``: ``val_answer_near_dup_rate`` >= 0.20, or ``val_answer_skeleton_match_rate`` >= 0.50 -- then
  the validation loss, the loss gap and membership inference against validation answers measure recall of
  training answers, not generalization; only held-out prompts about new situations are evidence.
* ``heldout_leak``: in some suite, >= 0.20 of the prompts or of the references near-duplicate training ones.
* ``templated_answers``: ``train_answer_template_share`` >= 0.50.
* ``val_missing``: no validation split was given (nothing to check; membership inference has no non-members).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .data import Conversation, PromptItem, bundled_path, load_conversations, load_suite
from .errors import DataError
from .io import sha256_file
from .memorization.near_copy import NEAR_VERBATIM_MAX_DISTANCE, NearCopyIndex, normalize_text
from .memorization.skeleton import SkeletonIndex
from .metrics.diversity import distinct_n
from .records import AUDIT_SCHEMA_VERSION, DataAudit, Notice

__all__ = ["VAL_LEAK_NEAR_DUP_RATE", "VAL_LEAK_SKELETON_RATE", "HELDOUT_LEAK_RATE", "TEMPLATED_SHARE",
           "catalog_names", "audit_data", "audit_files", "audit_warnings_for_training"]

VAL_LEAK_NEAR_DUP_RATE = 0.20
VAL_LEAK_SKELETON_RATE = 0.50
HELDOUT_LEAK_RATE = 0.20
TEMPLATED_SHARE = 0.50
TOP_SKELETONS = 10
_EXAMPLES = 5  # example pairs kept per finding


def catalog_names(path: Optional[Path] = None) -> list[str]:
    """Challenge names of a catalog JSON ({"challenges": [{"name_en", "name_ko", ...}]}); default: the bundled one."""
    path = Path(path) if path is not None else bundled_path("benchmarks/eco/catalog.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: no such catalog file; check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e}); a catalog is {{\"challenges\": [{{\"name_en\": ...}}]}}") \
            from None
    items = data.get("challenges") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise DataError(f"{path}: no 'challenges' list; a catalog is {{\"challenges\": [{{\"name_en\": ...}}]}}")
    return [c[k] for c in items if isinstance(c, dict) for k in c if k.startswith("name") and isinstance(c[k], str)]


def _near_dups(index: NearCopyIndex, texts: Sequence[tuple[str, str]]):
    """(share within the threshold, share exactly equal after normalization, example pairs).

    The rates equal brute force (``NearCopyIndex.within_many`` is exact within the threshold); an example
    names a training answer within the threshold, not necessarily the nearest one."""
    if not texts:
        return None, None, []
    found = index.within_many([t for _, t in texts])
    near = [(qid, m) for (qid, _), m in zip(texts, found) if m is not None and m.distance <= NEAR_VERBATIM_MAX_DISTANCE]
    exact = sum(1 for _, m in near if m.distance == 0.0)
    examples = [{"id": qid, "train_id": m.train_id, "distance": round(m.distance, 4)}
                for qid, m in sorted(near, key=lambda p: p[1].distance)[:_EXAMPLES]]
    return len(near) / len(texts), exact / len(texts), examples


def _fmt_examples(ex: list[dict]) -> str:
    return ", ".join(f"{e['id']} ~ train {e['train_id']} (distance {e['distance']:.2f})" for e in ex[:2])


def audit_data(train: Sequence[Conversation], val: Optional[Sequence[Conversation]] = None,
               suites: Sequence[Sequence[PromptItem]] = (), *, catalog: Sequence[str] = (),
               inputs: Optional[dict] = None) -> DataAudit:
    """Audit a training set against its validation split and held-out suites (see the module docstring)."""
    t0 = time.perf_counter()
    train_answers = [(c.id, c.answer) for c in train]
    answer_index = NearCopyIndex.build(train_answers)
    prompt_index = NearCopyIndex.build([(c.id, c.user) for c in train])
    skeletons = SkeletonIndex.build(train_answers, catalog)
    summary: dict[str, float] = {
        "train_answer_distinct_4": distinct_n([a for _, a in train_answers], 4),
        "train_answer_template_share": skeletons.top_share(TOP_SKELETONS, min_count=2),
        "train_answer_exact_dup_rate": 1.0 - len({normalize_text(a) for _, a in train_answers}) / len(train_answers),
    }
    n = {"train": len(train)}
    examples: dict[str, list] = {}
    warnings: list[Notice] = []
    if val:
        n["val"] = len(val)
        near, exact, ex = _near_dups(answer_index, [(c.id, c.answer) for c in val])
        summary["val_answer_near_dup_rate"], summary["val_answer_exact_dup_rate"] = near, exact
        examples["val_answer_near_dups"] = ex
        summary["val_prompt_near_dup_rate"], _, examples["val_prompt_near_dups"] = \
            _near_dups(prompt_index, [(c.id, c.user) for c in val])
        matched = skeletons.matches([c.answer for c in val], nearest=False)
        summary["val_answer_skeleton_match_rate"] = float(np.mean([m is not None for m in matched]))
        if near >= VAL_LEAK_NEAR_DUP_RATE or summary["val_answer_skeleton_match_rate"] >= VAL_LEAK_SKELETON_RATE:
            warnings.append(Notice("val_leak", (
                f"{near:.0%} of the {len(val)} validation answers are near-copies of training answers "
                f"({exact:.0%} exact) and {summary['val_answer_skeleton_match_rate']:.0%} follow a training template's "
                f"skeleton (e.g. {_fmt_examples(ex) or 'skeletons only'}): validation loss, the val-based loss gap "
                "and membership inference are no evidence of generalization; judge by held-out prompts about new "
                "situations")))
    else:
        warnings.append(Notice("val_missing", "no validation split: nothing to check it against, and membership "
                                              "inference has no non-members of the training distribution"))
    per_suite: dict[str, dict[str, float]] = {}
    for items in suites:
        if not items:
            continue
        name = items[0].suite
        s: dict[str, float] = {"n": float(len(items))}
        s["heldout_prompt_near_dup_rate"], _, pex = _near_dups(prompt_index, [(p.id, p.prompt) for p in items])
        refs = [(p.id, p.reference) for p in items if p.reference]
        rex: list = []
        if refs:
            s["heldout_reference_near_dup_rate"], _, rex = _near_dups(answer_index, refs)
        per_suite[name] = s
        examples[f"{name}_near_dups"] = pex + rex
        worst = max(s["heldout_prompt_near_dup_rate"], s.get("heldout_reference_near_dup_rate", 0.0))
        if worst >= HELDOUT_LEAK_RATE:
            warnings.append(Notice("heldout_leak", (
                f"suite {name}: {s['heldout_prompt_near_dup_rate']:.0%} of its {len(items)} prompts and "
                f"{s.get('heldout_reference_near_dup_rate', 0.0):.0%} of its references near-copy training ones "
                f"(e.g. {_fmt_examples(pex + rex)}): it is not held out; remove those items or use another suite")))
    if per_suite:
        summary["heldout_prompt_near_dup_rate"] = max(s["heldout_prompt_near_dup_rate"] for s in per_suite.values())
        n["heldout"] = int(sum(s["n"] for s in per_suite.values()))
    share = summary["train_answer_template_share"]
    if share >= TEMPLATED_SHARE:
        top = skeletons.counts.most_common(1)[0]
        warnings.append(Notice("templated_answers", (
            f"{share:.0%} of the {len(train)} training answers follow one of {TOP_SKELETONS} answer skeletons "
            f"(the most common, {top[1]} answers: \"{top[0][:80]}\"): the model can learn the frames instead of "
            "the task; check answers to new prompts for skeleton replay")))
    return DataAudit(schema_version=AUDIT_SCHEMA_VERSION, summary=summary, n=n, suites=per_suite,
                     warnings=tuple(warnings), examples=examples,
                     settings={"near_dup_max_distance": NEAR_VERBATIM_MAX_DISTANCE,
                               "val_leak_near_dup_rate": VAL_LEAK_NEAR_DUP_RATE,
                               "val_leak_skeleton_rate": VAL_LEAK_SKELETON_RATE,
                               "heldout_leak_rate": HELDOUT_LEAK_RATE, "templated_share": TEMPLATED_SHARE,
                               "top_skeletons": TOP_SKELETONS, "catalog_names": len(catalog)},
                     inputs=inputs or {}, runtime_s=round(time.perf_counter() - t0, 3))


def _file_info(path: Path, n: int) -> dict:
    return {"path": str(path), "sha256": sha256_file(Path(path)), "n": n}


def audit_files(train_path: Path, val_path: Optional[Path] = None, suite_paths: Sequence[Path] = (),
                catalog_path: Optional[Path] = None) -> DataAudit:
    """Load the files (one-line DataError on bad input) and audit them."""
    train = load_conversations(Path(train_path))
    val = load_conversations(Path(val_path)) if val_path is not None else None
    suites = [load_suite(Path(p)) for p in suite_paths]
    inputs = {"train": _file_info(train_path, len(train))}
    if val is not None:
        inputs["val"] = _file_info(val_path, len(val))
    inputs["suites"] = [_file_info(p, len(s)) for p, s in zip(suite_paths, suites)]
    return audit_data(train, val, suites, catalog=catalog_names(catalog_path), inputs=inputs)


def audit_warnings_for_training(train: Sequence[Conversation], val: Sequence[Conversation]) -> dict:
    """What `evalkit train` stores in evalkit.json under "audit": the summary and the warnings."""
    a = audit_data(train, val, catalog=catalog_names())
    return {"schema_version": a.schema_version, "summary": a.summary,
            "warnings": [{"code": w.code, "message": w.message} for w in a.warnings]}
