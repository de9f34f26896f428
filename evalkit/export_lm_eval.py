"""Write an evalkit prompt suite as an lm-evaluation-harness ``generate_until`` task.

So people can run the same held-out suite in the harness they know:

    evalkit export lm-eval prompts/eco_heldout_en.jsonl tasks/
    lm_eval --model hf --model_args pretrained=BASE,peft=ADAPTER --apply_chat_template \
            --include_path tasks/ --tasks eco_heldout_en --log_samples --output_path out/

The task reads a copy of the suite (``dataset_path: json``), sends ``prompt`` as the user turn,
decodes greedily up to ``max_gen_toks`` and scores ROUGE-L with evalkit's multilingual tokenizer
through ``utils.py`` (lm-eval's own ROUGE loads a hub script and fails offline), so evalkit must be
importable where lm_eval runs. lm-eval adds its EOS string to ``until``; the default ``until: []``
therefore stops where evalkit's generation stops (the end-of-turn token), and on the bundled suite
the two harnesses produce identical greedy answers (benchmarks/README.md, eval_vs_lm_eval).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .data import load_suite
from .errors import ConfigError

__all__ = ["export_lm_eval_task"]

_UTILS = '''"""ROUGE-L for the exported evalkit task (evalkit's multilingual tokenizer)."""
try:
    from evalkit.metrics.rouge import rouge_scores
except ImportError as e:  # lm-eval runs this file: evalkit must be importable in lm-eval's Python
    raise ImportError("this lm-eval task scores ROUGE-L with evalkit: install evalkit in the Python that runs "
                      "lm_eval (pip install evalkit, or PYTHONPATH=<evalkit checkout>)") from e


def rouge_l(references, predictions):
    return rouge_scores(predictions[0], references[0])["rougeL"]
'''


def _task_name(stem: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]+", "_", stem).strip("_")
    if not name:
        raise ConfigError(f"cannot derive an lm-eval task name from {stem!r}; pass --task NAME")
    return name


def export_lm_eval_task(suite: Path, out_dir: Path, *, task: str | None = None, max_gen_toks: int = 96,
                        until: list[str] | None = None) -> Path:
    """Write DIR/<task>.yaml, DIR/<task>.jsonl and DIR/utils.py; returns the YAML path."""
    items = load_suite(Path(suite), require_reference=True)
    for it in items:
        if len(it.messages) != 1:
            raise ConfigError(f"{it.source}: lm-eval tasks take a single user turn; this prompt has "
                              f"{len(it.messages)} messages")
    name = task or _task_name(Path(suite).stem)
    out_dir = Path(out_dir)
    data = out_dir / f"{name}.jsonl"
    rows = [{"id": it.id, "prompt": it.prompt, "reference": it.reference} for it in items]
    stops = json.dumps(until if until is not None else [], ensure_ascii=False)
    yaml = f"""# Exported by `evalkit export lm-eval` from {Path(suite).name} ({len(rows)} prompts).
task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {json.dumps(str(data.resolve()))}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{reference}}}}"
generation_kwargs:
  until: {stops}
  max_gen_toks: {int(max_gen_toks)}
  do_sample: false
metric_list:
  - metric: !function utils.rouge_l
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""
    from .outputs import write_files  # all three files, or none

    files = {data.name: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utils.py": _UTILS,
             f"{name}.yaml": yaml}
    return write_files(out_dir, files, "out")[f"{name}.yaml"]
