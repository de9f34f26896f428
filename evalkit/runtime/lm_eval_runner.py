"""Run lm-evaluation-harness tasks on the engine's active target, with no second model load.

lm-eval's ``HFLM`` takes an already initialized model: we hand it the engine's model (the base, or the
PEFT-wrapped base with the active adapter switched on by the engine) and the engine's tokenizer, then
call ``lm_eval.simple_evaluate`` with ``log_samples=True`` so every document's outcome comes back.
Results are cached per target and task like every other engine result (key: base hash, adapter hash,
the task files' hash, limit, chat template, lm-eval version, batch size), so a re-run of ``compare``
runs nothing that is already known. The model-free half (records, pairing, MDE) is evalkit/retention.py.
"""

from __future__ import annotations

import functools
import logging

from ..cache import cache_key
from ..records import LmEvalTask, from_dict, to_dict
from ..retention import LmEvalSpec, require_lm_eval, tasks_from_results

__all__ = ["run_lm_eval"]


def run_lm_eval(engine, spec: LmEvalSpec, *, batch_size: int = 16) -> dict[str, LmEvalTask]:
    """Every task of ``spec`` on the engine's active target: lm-eval task name -> LmEvalTask.

    A group (e.g. ``mmlu``) gives its own entry (no documents) and one per subtask.
    """
    from importlib.metadata import version

    require_lm_eval()
    # the engine's own key fields (template, device/dtype) + what changes lm-eval's answers
    settings = engine._settings(**spec.settings(), lm_eval_version=version("lm_eval"), batch_size=batch_size)
    keys = {t: cache_key("lm_eval", engine.base_ref.content_hash, engine.active_adapter_hash, settings, t)
            for t in spec.tasks}
    hits = engine.cache.get_many(keys.values()) if engine.cache is not None else {}
    out: dict[str, LmEvalTask] = {}
    manager = None
    for task, key in keys.items():
        if key in hits:
            out.update({name: from_dict(LmEvalTask, d, where=f"evaluation cache, lm-eval task {name}")
                        for name, d in hits[key].items()})
            continue
        if manager is None:
            manager = _task_manager(spec)
        computed = _evaluate(engine, spec, manager, task, batch_size)
        if engine.cache is not None:
            engine.cache.put_many([(key, {name: to_dict(t) for name, t in computed.items()})])
        out.update(computed)
    return out


@functools.lru_cache(maxsize=4)
def _manager(paths: tuple[str, ...], defaults: bool):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=list(paths), include_defaults=defaults)


def _task_manager(spec: LmEvalSpec):
    """lm-eval's task index: only the include paths when they hold every task asked for (indexing lm-eval's
    own ~15,000 task YAMLs takes minutes on a small CPU machine), lm-eval's full index otherwise."""
    from ..errors import ConfigError

    # HFLM warns that a pre-initialized model ignores its loading options: that is the point here
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    paths = tuple(str(p) for p in spec.include_paths)
    manager = _manager(paths, False)
    if not set(spec.tasks) <= set(manager.all_tasks):
        manager = _manager(paths, True)
    unknown = [t for t in spec.tasks if t not in manager.all_tasks]
    if unknown:
        raise ConfigError(f"--lm-eval-tasks: unknown lm-eval task(s) {', '.join(unknown)}; evalkit's own task is "
                          f"'evalkit_retention' (or 'default'), hub tasks need their data online or cached, your "
                          f"own task folders go in --lm-eval-include-path")
    return manager


def _evaluate(engine, spec: LmEvalSpec, manager, task: str, batch_size: int) -> dict[str, LmEvalTask]:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    from ..errors import DataError

    with engine.activated() as model:
        lm = HFLM(pretrained=model, tokenizer=engine.tokenizer, batch_size=batch_size)
        try:
            results = simple_evaluate(model=lm, tasks=[task], task_manager=manager, limit=spec.limit,
                                      log_samples=True, apply_chat_template=spec.apply_chat_template)
        except OSError as e:  # datasets' offline / missing-file errors (ConnectionError, FileNotFoundError)
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DataError(f"lm-eval task {task}: its documents could not be loaded ({type(e).__name__}: "
                            f"{first[:200]}); hub tasks need the network or a cached copy, local tasks their "
                            "data files") from None
    return tasks_from_results(results)
