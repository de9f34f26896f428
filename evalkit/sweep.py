"""Train a grid of adapters: the seed's plan (target-module ladder x learning rates x r/alpha), resumable.

A sweep file (YAML or TOML)::

    base_config:            # TrainConfig fields shared by every variant (or  config: path/to/train.yaml)
      num_epochs: 1
    grid:                   # the cartesian product of these lists; any TrainConfig field, plus r_alpha
      target_modules: [[q_proj, v_proj], [q_proj, k_proj, v_proj, o_proj], all7]
      learning_rate: [5e-5, 2e-5, 1e-5]
      r_alpha: [[16, 32], [8, 16]]      # (r, lora_alpha) pairs, varied together
    out: reports/sweeps/seed-plan

Each variant trains into ``OUT/<name>`` with a readable name built from its grid values
(``qv_lr5e-05_r16a32``). A variant whose folder already holds the same finished adapter is skipped, and
temp folders of killed runs are removed, so rerunning a sweep resumes it. ``OUT/index.json`` (rewritten
atomically after every variant) maps each name to its overrides, folder, status and final losses.
"""

from __future__ import annotations

import datetime as _dt
import gc
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .config import TrainConfig, apply_overrides, config_fields, read_mapping, targets_label
from .errors import ConfigError, EvalkitError, did_you_mean
from .io import write_json_atomic

__all__ = ["SweepPlan", "Variant", "SweepResult", "load_sweep", "run_sweep", "variant_name", "INDEX_NAME",
           "SWEEP_KEYS", "PAIR_KEYS"]

INDEX_NAME = "index.json"
SWEEP_KEYS = ("base_config", "config", "grid", "out")
# Grid keys that vary several fields together.
PAIR_KEYS = {"r_alpha": ("r", "lora_alpha")}

# How each field appears in a variant name (value formatting in _part).
_SHORT = {"learning_rate": "lr", "r": "r", "lora_alpha": "a", "lora_dropout": "do", "num_epochs": "ep",
          "max_steps": "steps", "train_subset": "n", "seed": "seed", "batch_size": "bs", "canaries": "can",
          "weight_decay": "wd", "gradient_accumulation_steps": "ga", "warmup_ratio": "wr", "warmup_steps": "ws",
          "lr_scheduler": "", "bias": "bias-", "max_length": "len", "base": "", "eval_subset": "evaln"}


@dataclass(frozen=True)
class Variant:
    """One point of the grid: its name, the fields it sets and the full validated config."""

    name: str
    overrides: dict
    config: TrainConfig = field(repr=False)
    folder: Path = field(repr=False)


@dataclass(frozen=True)
class SweepPlan:
    file: Optional[Path]
    base: dict
    grid: dict
    out: Path
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class SweepResult:
    out: Path
    index: dict
    trained: tuple[str, ...]
    skipped: tuple[str, ...]


# ---------------------------------------------------------------------- names


def _num(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-") or "x"


def _part(key: str, cfg: TrainConfig) -> str:
    if key == "target_modules":
        return _slug(targets_label(cfg.target_modules))
    if key == "r_alpha":
        return f"r{cfg.r}a{_num(cfg.lora_alpha)}"
    value = getattr(cfg, key)
    if key == "base":
        return _slug(Path(value).stem if value != "default" else value)
    if key in ("train_data", "val_data"):
        return _slug(Path(value).stem if value else "bundled")
    if isinstance(value, bool):
        return key if value else f"no-{key}"
    prefix = _SHORT.get(key, key.replace("_", "") + "-")
    return _slug(f"{prefix}{'all' if value is None else _num(value)}")


def variant_name(grid_keys: Sequence[str], cfg: TrainConfig) -> str:
    """Readable folder name of a variant: its grid values in grid order, e.g. ``qv_lr5e-05_r16a32``."""
    return "_".join(_part(k, cfg) for k in grid_keys) or "base"


# ---------------------------------------------------------------------- loading


def _grid(raw: Any, where: str) -> dict[str, list]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: 'grid' must be a mapping of setting -> list of values, e.g. "
                          "grid: {learning_rate: [5e-5, 2e-5]}")
    names = config_fields()
    grid: dict[str, list] = {}
    for key, values in raw.items():
        if key not in names and key not in PAIR_KEYS:
            hint = did_you_mean(str(key), names + list(PAIR_KEYS))
            raise ConfigError(f"{where}: unknown grid key '{key}'.{hint} Grid keys are TrainConfig settings "
                              f"(see docs/config.md) or {', '.join(PAIR_KEYS)}")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: grid '{key}' must be a non-empty list of values. Got {values!r} instead.")
        if key in PAIR_KEYS:
            for v in values:
                if not (isinstance(v, list) and len(v) == len(PAIR_KEYS[key])):
                    raise ConfigError(f"{where}: each grid '{key}' value must be a list "
                                      f"[{', '.join(PAIR_KEYS[key])}], e.g. [16, 32]. Got {v!r} instead.")
            clash = [f for f in PAIR_KEYS[key] if f in raw]
            if clash:
                raise ConfigError(f"{where}: grid '{key}' and '{clash[0]}' both set {clash[0]}; keep one")
        grid[key] = values
    return grid


def load_sweep(path: Path | None, *, out: Optional[Path] = None, overrides: Sequence[str] = (),
               spec: Optional[dict] = None) -> SweepPlan:
    """Read a sweep file (or an already-parsed ``spec`` mapping) and validate every variant up front."""
    if spec is None:
        if path is None:
            raise ConfigError("a sweep needs a sweep file (YAML or TOML with base_config, grid, out)")
        path = Path(path)
        spec, _lines = read_mapping(path, what="sweep")
    where = str(path) if path is not None else "sweep"
    for key in spec:
        if key not in SWEEP_KEYS:
            hint = did_you_mean(str(key), SWEEP_KEYS)
            raise ConfigError(f"{where}: unknown sweep key '{key}'.{hint} A sweep file has "
                              f"{', '.join(SWEEP_KEYS)}")
    base: dict[str, Any] = {}
    if spec.get("config") is not None:
        cfg_path = Path(str(spec["config"])).expanduser()
        if not cfg_path.is_absolute() and path is not None and (path.parent / cfg_path).is_file():
            cfg_path = path.parent / cfg_path  # relative to the sweep file first, then to the current folder
        base, _lines = read_mapping(cfg_path)
        for key in base:
            if key not in config_fields():
                raise ConfigError(f"{_lines.where(str(key))}: unknown setting '{key}'."
                                  f"{did_you_mean(str(key), config_fields())} See docs/config.md")
    inline = spec.get("base_config") or {}
    if not isinstance(inline, dict):
        raise ConfigError(f"{where}: 'base_config' must be a mapping of TrainConfig settings")
    for key in inline:
        if key not in config_fields():
            raise ConfigError(f"{where}: base_config: unknown setting '{key}'."
                              f"{did_you_mean(str(key), config_fields())} See docs/config.md")
    base = apply_overrides({**base, **inline}, overrides)
    grid = _grid(spec.get("grid"), where)

    out_value = out if out is not None else spec.get("out")
    if out_value is None:
        raise ConfigError(f"{where}: no output folder; add 'out: reports/sweeps/NAME' to the file or pass --out")
    out_dir = Path(str(out_value)).expanduser()

    keys = list(grid)
    variants: list[Variant] = []
    seen: dict[str, dict] = {}
    for combo in itertools.product(*(grid[k] for k in keys)):
        values: dict[str, Any] = {}
        for key, value in zip(keys, combo):
            if key in PAIR_KEYS:
                values.update(dict(zip(PAIR_KEYS[key], value)))
            else:
                values[key] = value
        try:
            cfg = TrainConfig(**{**base, **values})
        except ConfigError as e:
            raise ConfigError(f"{where}: variant {values}: {e}") from None
        name = variant_name(keys, cfg)
        applied = cfg.to_dict()
        chosen = {k: applied[k] for k in values}
        if name in seen:
            raise ConfigError(f"{where}: grid values {seen[name]} and {chosen} give the same variant '{name}'; "
                              "remove one")
        seen[name] = chosen
        variants.append(Variant(name, chosen, cfg, out_dir / name))
    return SweepPlan(path, base, grid, out_dir, tuple(variants))


# ---------------------------------------------------------------------- running


def _index(plan: SweepPlan, entries: dict) -> dict:
    return {"format": 1, "sweep": str(plan.file) if plan.file else None, "out": str(plan.out),
            "base_config": plan.base, "grid": plan.grid,
            "updated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "variants": entries}


def _entry(v: Variant, status: str, record: Optional[dict] = None, error: Optional[str] = None,
           skipped: bool = False) -> dict:
    """status: pending | done | failed | interrupted; skipped: done before this run (left as it was)."""
    final = (record or {}).get("final")
    entry = {"overrides": v.overrides, "folder": v.name, "status": status, "skipped": skipped,
             "final": dict(final) if final else None,
             "runtime_s": (record or {}).get("runtime_s")}
    if error:
        entry["error"] = error
    return entry


def _dry_status(v: Variant) -> str:
    from .runtime.train import read_record, same_run

    try:
        record = read_record(v.folder)
    except EvalkitError:
        return "different adapter"
    if record is None:
        return "to train"
    done = all((v.folder / n).is_file() for n in ("adapter_config.json", "adapter_model.safetensors"))
    return "done" if done and same_run(record, v.config) else "different adapter"


def run_sweep(plan: SweepPlan, *, dry_run: bool = False, overwrite: bool = False, progress: bool = True,
              console: Callable[[str], None] = print) -> SweepResult:
    """Train every variant of ``plan`` in order (skipping finished ones); see the module docstring."""
    from .runtime.train import train

    n = len(plan.variants)
    if dry_run:
        console(f"{n} variant(s) into {plan.out}:")
        for v in plan.variants:
            shown = " ".join(f"{k}={targets_label(x) if k == 'target_modules' else x}" for k, x in v.overrides.items())
            console(f"  {v.name:<28} {_dry_status(v):<17} {shown}")
        return SweepResult(plan.out, _index(plan, {}), (), ())

    entries = {v.name: _entry(v, "pending") for v in plan.variants}
    index_path = plan.out / INDEX_NAME
    write_json_atomic(index_path, _index(plan, entries))
    trained, skipped = [], []
    for i, v in enumerate(plan.variants, 1):
        console(f"[{i}/{n}] {v.name}")
        try:
            result = train(v.config, v.folder, overwrite=overwrite, progress=progress, console=console)
        except KeyboardInterrupt:
            entries[v.name] = _entry(v, "interrupted")
            write_json_atomic(index_path, _index(plan, entries))
            raise
        except EvalkitError as e:
            entries[v.name] = _entry(v, "failed", error=str(e))
            write_json_atomic(index_path, _index(plan, entries))
            raise type(e)(f"sweep variant '{v.name}' ({i}/{n}): {e} (the finished variants are kept; "
                          "rerun the sweep to resume)") from None
        (skipped if result.up_to_date else trained).append(v.name)
        entries[v.name] = _entry(v, "done", result.record, skipped=result.up_to_date)
        write_json_atomic(index_path, _index(plan, entries))
        del result
        gc.collect()
    index = _index(plan, entries)
    return SweepResult(plan.out, index, tuple(trained), tuple(skipped))
