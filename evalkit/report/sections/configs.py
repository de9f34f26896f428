"""Section 6: configs and provenance, side by side, with rows whose values differ highlighted."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from ...records import Comparison, RunRecord
from .common import TargetHead

__all__ = ["KVRow", "KVTable", "ConfigView", "build_configs", "CONFIG_FIRST"]

# Shown first, in this order, when present (matched on the last part of a dotted key).
CONFIG_FIRST = ("r", "lora_alpha", "lora_dropout", "target_modules", "learning_rate", "lr", "num_epochs",
                "num_train_epochs", "epochs", "max_steps", "batch_size", "per_device_train_batch_size",
                "gradient_accumulation_steps", "effective_batch_size", "train_subset", "max_seq_len", "seed")


@dataclass(frozen=True)
class KVRow:
    key: str
    values: tuple[str, ...]  # one per target ("" when absent)
    differs: bool  # the targets that have this field disagree (an absent field alone is no difference)
    mono: bool  # hashes, paths, command lines: shown in monospace


@dataclass(frozen=True)
class KVTable:
    title: str
    rows: tuple[KVRow, ...]


@dataclass(frozen=True)
class ConfigView:
    targets: tuple[TargetHead, ...]
    tables: tuple[KVTable, ...]
    comparison: tuple[tuple[str, str], ...]  # Comparison.provenance, flattened


def _display(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}" if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        if all(isinstance(x, (str, int, float, bool)) or x is None for x in v):
            return ", ".join(_display(x) for x in v)
        return json.dumps(v, ensure_ascii=False, default=str)
    return str(v)


def _flatten(d: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(d, Mapping):
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping) and v:
                out.update(_flatten(v, key + "."))
            else:
                out[key] = _display(v)
    elif d is not None:
        out[prefix.rstrip(".") or "value"] = _display(d)
    return out


def _config_rank(key: str) -> tuple[int, str]:
    last = key.rsplit(".", 1)[-1]
    return (CONFIG_FIRST.index(last) if last in CONFIG_FIRST else len(CONFIG_FIRST), key)


_MONO = re.compile(r"(hash|sha|path|command|argv|cmd|file|dir|id)$|_modules$")


def _kv_table(title: str, per_target: Sequence[Mapping[str, str]], keys: Optional[Sequence[str]] = None) -> KVTable:
    if keys is None:
        keys = list(dict.fromkeys(k for m in per_target for k in m))
    rows = []
    for k in keys:
        values = tuple(m.get(k, "") for m in per_target)
        present = {m[k] for m in per_target if k in m}
        rows.append(KVRow(k, values, len(present) > 1, bool(_MONO.search(k.rsplit(".", 1)[-1]))))
    return KVTable(title, tuple(rows))


def build_configs(comp: Optional[Comparison], heads: Sequence[TargetHead], runs: Mapping[str, RunRecord]) -> ConfigView:
    configs, data, target_info, prov = [], [], [], []
    for h in heads:
        run = runs[h.name]
        t = run.target
        training = t.training or {}
        configs.append(_flatten(training.get("config")))
        data.append(_flatten({k: v for k, v in training.items() if k != "config"}))
        target_info.append({k: v for k, v in (("run kind", run.kind), ("target kind", t.kind), ("path", t.path),
                                              ("base_model", t.base_model), ("base_hash", t.base_hash),
                                              ("adapter_hash", t.adapter_hash)) if v})
        p = _flatten(run.provenance)
        p.update(_flatten(run.settings, "settings."))
        if run.engine:
            p.update(_flatten(run.engine, "engine."))
        prov.append(p)
    keys = sorted({k for m in configs for k in m}, key=_config_rank)
    tables = [_kv_table("Training configuration", configs, keys), _kv_table("Training data and run", data),
              _kv_table("Model identity", target_info), _kv_table("Provenance and settings", prov)]
    comp_prov = tuple(_flatten(comp.provenance).items()) if comp is not None else ()
    return ConfigView(tuple(heads), tuple(t for t in tables if t.rows), comp_prov)
