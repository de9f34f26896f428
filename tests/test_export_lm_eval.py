"""`evalkit export lm-eval SUITE DIR`: the task YAML, its data copy, and what it refuses."""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from evalkit.errors import ConfigError
from evalkit.export_lm_eval import export_lm_eval_task


class _TaskLoader(yaml.SafeLoader):
    """yaml.SafeLoader that reads lm-eval's `!function module.name` tag as a string."""


_TaskLoader.add_constructor("!function", lambda loader, node: f"!function {loader.construct_scalar(node)}")


def _suite(tmp_path, rows, name="held_out"):
    p = tmp_path / f"{name}.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return p


ROWS = [{"id": "a", "prompt": "How do I cut my heating bill?", "reference": "Lower the thermostat by one degree."},
        {"id": "b", "prompt": "텀블러가 좋아요?", "reference": "네, 일회용 컵을 줄여요."},
        {"id": "c", "prompt": 'Quotes "and" {{braces}}', "reference": "Fine."}]


def test_yaml_has_the_generate_until_task(tmp_path):
    path = export_lm_eval_task(_suite(tmp_path, ROWS), tmp_path / "out", max_gen_toks=40)
    assert path.name == "held_out.yaml"
    task = yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskLoader)
    assert task["task"] == "held_out"
    assert task["dataset_path"] == "json"
    assert task["output_type"] == "generate_until"
    assert task["test_split"] == "test"
    assert task["doc_to_text"] == "{{prompt}}" and task["doc_to_target"] == "{{reference}}"
    assert task["generation_kwargs"] == {"until": [], "max_gen_toks": 40, "do_sample": False}
    metric = task["metric_list"][0]
    assert metric["metric"] == "!function utils.rouge_l"
    assert metric["aggregation"] == "mean" and metric["higher_is_better"] is True
    data = tmp_path / "out" / "held_out.jsonl"
    assert task["dataset_kwargs"]["data_files"]["test"] == str(data.resolve())
    assert (tmp_path / "out" / "utils.py").is_file()


def test_data_copy_has_one_row_per_prompt(tmp_path):
    export_lm_eval_task(_suite(tmp_path, ROWS), tmp_path / "out")
    rows = [json.loads(x) for x in (tmp_path / "out" / "held_out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert rows[1] == {"id": "b", "prompt": "텀블러가 좋아요?", "reference": "네, 일회용 컵을 줄여요."}


def test_task_name_and_stop_strings(tmp_path):
    path = export_lm_eval_task(_suite(tmp_path, ROWS, name="eco-held.out v2"), tmp_path / "o", task=None,
                               until=["</s>", "\n\n"])
    task = yaml.load(path.read_text(encoding="utf-8"), Loader=_TaskLoader)
    assert task["task"] == "eco_held_out_v2"
    assert task["generation_kwargs"]["until"] == ["</s>", "\n\n"]


def test_multi_turn_prompts_are_refused_with_one_line(tmp_path):
    rows = [{"id": "m", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                     {"role": "assistant", "content": "Hello."}]}]
    with pytest.raises(ConfigError) as e:
        export_lm_eval_task(_suite(tmp_path, rows), tmp_path / "out")
    msg = str(e.value)
    assert "\n" not in msg and "single user turn" in msg and "held_out.jsonl" in msg
    assert not (tmp_path / "out" / "held_out.yaml").exists()


def test_utils_metric_scores_rouge_l(tmp_path):
    export_lm_eval_task(_suite(tmp_path, ROWS), tmp_path / "out")
    spec = importlib.util.spec_from_file_location("exported_utils", tmp_path / "out" / "utils.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.rouge_l(["the cat sat down"], ["the cat sat"]) == pytest.approx(2 * 1.0 * 0.75 / 1.75)


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="lm_eval not installed (the [bench] extra)")
def test_lm_eval_loads_the_exported_task(tmp_path):
    from lm_eval.tasks import TaskManager, get_task_dict

    export_lm_eval_task(_suite(tmp_path, ROWS), tmp_path / "out", max_gen_toks=12)
    tasks = get_task_dict(["held_out"], TaskManager(include_path=str(tmp_path / "out")))
    task = tasks["held_out"]
    docs = list(task.test_docs())
    assert len(docs) == 3
    assert task.doc_to_text(docs[1]) == "텀블러가 좋아요?"
    assert task.config.generation_kwargs["max_gen_toks"] == 12
