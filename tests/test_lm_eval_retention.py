"""Capability retention end to end on the tiny model: the shipped lm-eval task through `compare` of the
base and one adapter, with ONE base-model load, equal to a separate lm-eval run (HFLM from the folder +
peft adapter) of the same task, document by document."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binomtest

pytest.importorskip("lm_eval", reason="lm-eval is not installed (pip install 'evalkit[lm-eval]'; make test installs it)")

from evalkit.evaluate import EvalSettings  # noqa: E402
from evalkit.outputs import write_comparison  # noqa: E402
from evalkit.pipeline import compare_targets  # noqa: E402
from evalkit.records import load_comparison  # noqa: E402
from evalkit.retention import BUNDLED_TASKS_DIR, DEFAULT_TASK, LmEvalSpec, summary_key  # noqa: E402

from .test_engine import _make_adapter  # noqa: E402

TASK_FILE = BUNDLED_TASKS_DIR / DEFAULT_TASK / f"{DEFAULT_TASK}.jsonl"
SETTINGS = EvalSettings(max_new_tokens=4, batch_size=16, train_sample=4, extraction_n=0, n_boot=200, max_length=128)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def adapter(tiny_llama, tmp_path_factory):
    return _make_adapter(tiny_llama, tmp_path_factory.mktemp("lm-eval-adapter") / "qv", 3, ["q_proj", "v_proj"])


def _reference(tiny_llama, peft=None) -> dict:
    """What a user gets from lm-eval alone: a fresh HFLM from the base folder (+ the peft adapter)."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    lm = HFLM(pretrained=str(tiny_llama), peft=None if peft is None else str(peft), batch_size=16, device="cpu")
    res = simple_evaluate(model=lm, tasks=[DEFAULT_TASK], task_manager=TaskManager(include_path=str(BUNDLED_TASKS_DIR), include_defaults=False),
                          log_samples=True)
    samples = sorted(res["samples"][DEFAULT_TASK], key=lambda s: s["doc_id"])
    return {"acc": res["results"][DEFAULT_TASK]["acc,none"], "acc_norm": res["results"][DEFAULT_TASK]["acc_norm,none"],
            "acc_stderr": res["results"][DEFAULT_TASK]["acc_stderr,none"],
            "per_doc": np.array([s["acc"] for s in samples]), "per_doc_norm": np.array([s["acc_norm"] for s in samples]),
            "doc_hash": [s["doc_hash"] for s in samples]}


def test_shipped_task_is_valid_multiple_choice():
    rows = [json.loads(line) for line in TASK_FILE.read_text(encoding="utf-8").splitlines()]
    assert len(rows) >= 100
    assert len({r["id"] for r in rows}) == len(rows) and len({r["question"] for r in rows}) == len(rows)
    for r in rows:
        assert len(r["choices"]) == 4 and len(set(r["choices"])) == 4 and 0 <= r["answer"] < 4
    # the gold answer is not always in the same slot (a model that always picks "A" must not score well)
    positions = np.bincount([r["answer"] for r in rows], minlength=4) / len(rows)
    assert positions.max() < 0.35


def test_compare_runs_lm_eval_on_one_loaded_model_and_matches_lm_eval(tiny_llama, adapter, mini_data, tmp_path,
                                                                     monkeypatch):
    import peft
    import transformers

    loads = {"base": 0, "peft": 0}
    real_base, real_peft = transformers.AutoModelForCausalLM.from_pretrained, peft.PeftModel.from_pretrained

    def counting(name, fn):
        def wrapper(*a, **kw):
            loads[name] += 1
            return fn(*a, **kw)
        return wrapper

    with monkeypatch.context() as m:
        m.setattr(transformers.AutoModelForCausalLM, "from_pretrained", counting("base", real_base))
        m.setattr(peft.PeftModel, "from_pretrained", counting("peft", real_peft))
        cmp = compare_targets(["base", str(adapter)], base=str(tiny_llama), settings=SETTINGS,
                              engine_kwargs={"device": "cpu"}, suites=[mini_data["suite_en"]],
                              train_data=mini_data["train"], val_data=mini_data["val"],
                              lm_eval=LmEvalSpec((DEFAULT_TASK,)))
    assert loads == {"base": 1, "peft": 1}  # one base load for both targets, the adapter wrapped once

    ref_base, ref_adapter = _reference(tiny_llama), _reference(tiny_llama, adapter)
    for name, ref in (("base", ref_base), ("qv", ref_adapter)):
        task = cmp.runs[name].lm_eval[DEFAULT_TASK]
        assert task.n == task.n_total == len(ref["per_doc"]) >= 100
        assert task.metrics["acc"] == pytest.approx(ref["acc"], abs=1e-12)
        assert task.metrics["acc_norm"] == pytest.approx(ref["acc_norm"], abs=1e-12)
        assert task.stderr["acc"] == pytest.approx(ref["acc_stderr"], abs=1e-12)
        assert [d.metrics["acc"] for d in task.docs] == ref["per_doc"].tolist()
        assert [d.doc_hash for d in task.docs] == ref["doc_hash"]
        assert cmp.runs[name].summary[summary_key(DEFAULT_TASK, "acc")] == pytest.approx(ref["acc"], abs=1e-12)
        assert cmp.runs[name].n[summary_key(DEFAULT_TASK, "acc")] == len(ref["per_doc"])

    # the adapter changes some answers, so the paired test has something to test
    a, b = ref_base["per_doc"], ref_adapter["per_doc"]
    n01, n10 = int(np.sum((a == 0) & (b == 1))), int(np.sum((a == 1) & (b == 0)))
    assert n01 + n10 > 0
    (d,) = [d for d in cmp.deltas if d.metric == summary_key(DEFAULT_TASK, "acc")]
    assert d.n_pairs == len(a) and d.test == "paired_bootstrap+mcnemar"
    assert d.delta == pytest.approx(float(np.mean(b - a)), abs=1e-12)
    assert d.p_value == pytest.approx(binomtest(n01, n01 + n10, 0.5).pvalue, abs=1e-12)
    assert d.ci_low <= d.delta <= d.ci_high and d.mde is not None and d.mde > 0

    # stored, read back, and a re-run computes nothing in lm-eval (evaluation cache)
    write_comparison(cmp, tmp_path / "out")
    assert load_comparison(tmp_path / "out" / "comparison.json").runs["qv"].lm_eval[DEFAULT_TASK] == \
        cmp.runs["qv"].lm_eval[DEFAULT_TASK]
    import lm_eval

    monkeypatch.setattr(lm_eval, "simple_evaluate", lambda *a, **k: pytest.fail("lm-eval ran again"))
    again = compare_targets(["base", str(adapter)], base=str(tiny_llama), settings=SETTINGS,
                            engine_kwargs={"device": "cpu"}, suites=[mini_data["suite_en"]],
                            train_data=mini_data["train"], val_data=mini_data["val"],
                            lm_eval=LmEvalSpec((DEFAULT_TASK,)))
    assert again.runs["qv"].lm_eval == cmp.runs["qv"].lm_eval
