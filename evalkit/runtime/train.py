"""Train one LoRA adapter with transformers' Trainer, logging train and validation loss like the seed's table.

    result = train(load_config("configs/seed.yaml"), Path("adapters/seed"))

What lands in the output folder (all or nothing: training runs in a hidden temp sibling that is renamed
at the end, and removed on any failure or Ctrl-C):

* ``adapter_model.safetensors`` + ``adapter_config.json`` — the PEFT adapter (``PeftModel.from_pretrained``);
* ``training_log.jsonl`` — one row every ``eval_steps`` optimizer steps and at the end:
  ``{"step", "epoch", "train_loss", "val_loss", "learning_rate"}`` (train_loss = mean since the previous row);
* ``evalkit.json`` — provenance: config, base model, data hashes, chat template, canaries, versions, final losses.

An output folder holding the same finished adapter (same config, data and base weights) is left as it is
("up to date"), which makes sweeps resumable; one holding a different adapter needs ``overwrite=True``.
Loss is computed on assistant tokens only (templates.encode_conversation).
"""

from __future__ import annotations

import os


import contextlib
import datetime as _dt
import json
import math
import random
import shlex
import shutil
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .. import __version__
from ..config import TrainConfig, targets_label
from ..data import Conversation, bundled_path, load_conversations
from ..errors import ConfigError, DataError, EvalkitError
from ..io import sha256_file
from ..outputs import publish_dir, staging_dir
from ..provenance import versions
from ..records import AdapterRecord, TrainingLogRow, from_dict, read_adapter_record, save_record, to_dict

__all__ = ["train", "TrainResult", "FORMAT", "RECORD_NAME", "LOG_NAME", "data_paths", "same_run",
           "read_record", "temp_prefix", "clean_stale_temps"]

FORMAT = 1
RECORD_NAME = "evalkit.json"
LOG_NAME = "training_log.jsonl"
DEFAULT_TRAIN = "benchmarks/eco/train.jsonl"
DEFAULT_VAL = "benchmarks/eco/val.jsonl"
# Config fields that do not change what is trained (the data files are compared by content hash instead).
_IDENTITY_EXCLUDE = ("train_data", "val_data")


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` did. ``record`` is the adapter's evalkit.json; ``model`` the trained PeftModel
    (None when the folder was already up to date)."""

    out_dir: Path
    record: dict
    up_to_date: bool
    final_step: int
    train_loss: Optional[float]
    val_loss: Optional[float]
    runtime_s: float
    model: Any = field(default=None, repr=False, compare=False)


# ---------------------------------------------------------------------- data and identity


def data_paths(config: TrainConfig) -> tuple[Path, Path]:
    """(train, val) paths: the configured files, else the bundled eco split."""
    train_path = Path(config.train_data).expanduser() if config.train_data else bundled_path(DEFAULT_TRAIN)
    val_path = Path(config.val_data).expanduser() if config.val_data else bundled_path(DEFAULT_VAL)
    return train_path, val_path


def _identity(config_dict: dict, base_hash: Optional[str], train_sha: Optional[str],
              val_sha: Optional[str]) -> dict:
    cfg = {k: v for k, v in config_dict.items() if k not in _IDENTITY_EXCLUDE}
    return {"config": cfg, "base": base_hash, "train": train_sha, "val": val_sha}


def _record_identity(record: AdapterRecord) -> dict:
    """The identity of a recorded run; its config re-validated, so settings added since take their defaults."""
    cfg = dict(record.config)
    try:
        cfg = TrainConfig.from_dict(cfg).to_dict()
    except (EvalkitError, TypeError):
        pass  # a setting that no longer exists: compared as is, so it differs
    train, val = record.data.get("train"), record.data.get("val")
    return _identity(cfg, record.base.content_hash, train.sha256 if train else None, val.sha256 if val else None)


def same_run(record: AdapterRecord, config: TrainConfig, base_hash: Optional[str] = None, train_sha: Optional[str] = None,
             val_sha: Optional[str] = None) -> bool:
    """Whether an evalkit.json describes this config (and, when given, these base weights and data)."""
    mine = _identity(config.to_dict(), base_hash, train_sha, val_sha)
    theirs = _record_identity(record)
    for key in ("base", "train", "val"):
        if mine[key] is None:
            theirs[key] = None
    return mine == theirs


read_record = read_adapter_record  # the folder's evalkit.json (None when absent; RecordError when corrupt)


def _finished(out_dir: Path) -> bool:
    return all((out_dir / n).is_file() for n in ("adapter_config.json", "adapter_model.safetensors", RECORD_NAME))


def _describe_difference(record: AdapterRecord, identity: dict) -> str:
    theirs = _record_identity(record)
    diffs = [k for k in identity["config"] if identity["config"].get(k) != theirs["config"].get(k)]
    parts = []
    if diffs:
        shown = ", ".join(f"{k}={theirs['config'].get(k)!r} (now {identity['config'].get(k)!r})" for k in diffs[:3])
        parts.append(f"config differs: {shown}" + (" ..." if len(diffs) > 3 else ""))
    if theirs["base"] != identity["base"]:
        parts.append("base model weights differ")
    if theirs["train"] != identity["train"] or theirs["val"] != identity["val"]:
        parts.append("training/validation data differ")
    return "; ".join(parts) or "its record differs"


# ---------------------------------------------------------------------- output folder handling


def temp_prefix(out_dir: Path) -> str:
    return f".{Path(out_dir).name}.tmp-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale_temps(out_dir: Path) -> int:
    """Remove temp folders a killed run of this output folder left behind (their process is gone)."""
    out_dir = Path(out_dir)
    parent = out_dir.parent
    n = 0
    if not parent.is_dir():
        return 0
    for p in parent.glob(temp_prefix(out_dir) + "*"):
        pid = p.name[len(temp_prefix(out_dir)):].split("-", 1)[0]
        if p.is_dir() and pid.isdigit() and (int(pid) == os.getpid() or not _pid_alive(int(pid))):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n


def _check_out_dir(out_dir: Path, identity: dict, overwrite: bool) -> Optional[AdapterRecord]:
    """The finished record when ``out_dir`` already holds this very adapter; raise when it holds another."""
    if not out_dir.exists():
        return None
    if not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir} is a file; choose a folder")
    if not any(out_dir.iterdir()):
        return None
    record = read_record(out_dir) if (out_dir / RECORD_NAME).is_file() else None
    if record is None:
        raise ConfigError(f"--out {out_dir} is a non-empty folder that is not an evalkit adapter (no {RECORD_NAME}); "
                          "choose another --out (evalkit never deletes folders it did not write)")
    if _finished(out_dir) and _record_identity(record) == identity:
        return record
    if overwrite:
        return None
    raise ConfigError(f"--out {out_dir} already holds a different adapter ({_describe_difference(record, identity)}); "
                      "choose another --out, or pass --overwrite to replace it")


def _make_parents(folder: Path) -> list[Path]:
    """mkdir -p, returning the folders it created (removed again if the run fails)."""
    created = []
    p = folder
    while not p.exists():
        created.append(p)
        p = p.parent
    for d in reversed(created):
        d.mkdir(exist_ok=True)
    return created


# ---------------------------------------------------------------------- tokenizing


def _cpu_budget() -> int:
    """CPUs this process may use: the affinity mask, capped by a cgroup v2 quota when there is one."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _encode(tokenizer, conversations: list[Conversation], max_length: int) -> tuple[list[dict], list[str]]:
    """Token ids and assistant-only labels, and the ids of the conversations kept: those whose answer is cut
    off entirely by max_length are dropped (nothing to learn from)."""
    from .chat_templates import IGNORE_INDEX, encode_conversation

    rows, kept = [], []
    for c in conversations:
        ids, labels = encode_conversation(tokenizer, list(c.messages), max_length)
        if all(label == IGNORE_INDEX for label in labels):
            continue
        rows.append({"input_ids": ids, "labels": labels})
        kept.append(c.id)
    return rows, kept


class _Collator:
    """Pad a batch to its longest row: input_ids with the pad id, labels with -100, attention_mask 0."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.tensor(r["input_ids"], dtype=torch.long)
            labels[i, :n] = torch.tensor(r["labels"], dtype=torch.long)
            mask[i, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}


# ---------------------------------------------------------------------- canaries


def _plant_canaries(conversations: list[Conversation], n: int, seed: int,
                    repeats: int = 1) -> tuple[list[Conversation], list[dict]]:
    """Plant ``n`` canary secrets into training answers; returns the new list and the canary records.

    With ``repeats`` > 1 each planted conversation is appended ``repeats - 1`` more times, under its own id
    (so evalkit.json's ``used_ids`` still names rows of the training file).
    """
    try:
        from ..memorization.canaries import make_canaries, plant
    except ImportError as e:  # pragma: no cover - the module ships with evalkit
        raise ConfigError(f"canaries={n} needs evalkit.memorization.canaries, which is missing ({e}); "
                          "reinstall evalkit or set canaries=0") from None
    if n > len(conversations):
        raise ConfigError(f"The 'canaries' parameter must be at most the number of training conversations used "
                          f"({len(conversations)}). Got {n} instead.")
    try:
        canaries = make_canaries(n, seed)
        planted = plant([c.answer for c in conversations], canaries, seed)
    except ValueError as e:
        raise ConfigError(f"canaries={n}: {e}") from None
    out = list(conversations)
    records = []
    for canary, (index, new_answer) in zip(canaries, planted):
        c = out[index]
        msgs = [dict(m) for m in c.messages]
        msgs[-1]["content"] = new_answer
        out[index] = Conversation(c.id, tuple(msgs), c.challenge_ids, c.source)
        records.append({"id": canary.id, "text": canary.text, "secret": canary.secret, "train_id": c.id,
                        "repeats": repeats})
        out.extend(Conversation(c.id, tuple(msgs), c.challenge_ids, c.source) for _ in range(1, repeats))
    return out, records


def _check_canaries_fit(tokenizer, conversations: list[Conversation], canaries: list[dict], max_length: int) -> None:
    """A canary cut off by max_length is never trained on, and would make the memorization test meaningless."""
    from .chat_templates import encode_conversation

    by_id = {c.id: c for c in conversations}
    for canary in canaries:
        ids, _ = encode_conversation(tokenizer, list(by_id[canary["train_id"]].messages), 1 << 30)
        if len(ids) > max_length:
            raise ConfigError(f"canary {canary['id']} was planted at the end of training answer "
                              f"{canary['train_id']!r}, which then needs {len(ids)} tokens: max_length={max_length} "
                              "would cut the canary off; raise max_length or set canaries=0")


# ---------------------------------------------------------------------- the loss table


def _fmt(v: Optional[float]) -> str:
    return "-" if v is None else f"{v:.4f}"


def _make_callbacks(log_path: Path, console: Callable[[str], None]):
    """(LossLog, QuietProgress) TrainerCallback classes bound to this run."""
    from transformers import ProgressCallback, TrainerCallback

    class LossLog(TrainerCallback):
        """One row per evaluation: the train loss logged just before it plus the val loss."""

        def __init__(self):
            self.rows: list[dict] = []
            self.pending: dict = {}

        def on_step_end(self, args, state, control, **kw):
            if state.global_step >= state.max_steps:  # always a final row, evaluated
                control.should_log = True
                control.should_evaluate = True
            return control

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                self.pending = {"train_loss": float(logs["loss"]), "learning_rate": logs.get("learning_rate")}

        def on_evaluate(self, args, state, control, metrics=None, **kw):
            val = (metrics or {}).get("eval_loss")
            row = {"step": int(state.global_step), "epoch": round(float(state.epoch or 0.0), 4),
                   "train_loss": self.pending.get("train_loss"),
                   "val_loss": None if val is None else float(val),
                   "learning_rate": self.pending.get("learning_rate")}
            self.pending = {}
            if self.rows and self.rows[-1]["step"] == row["step"]:
                return
            self.rows.append(row)
            with open(log_path, "a", encoding="utf-8") as fh:
                # a diverged run logs NaN losses: recorded as null (JSON has no NaN; the table shows it)
                fh.write(json.dumps({k: None if isinstance(v, float) and not math.isfinite(v) else v
                                     for k, v in row.items()}, allow_nan=False) + "\n")
            if len(self.rows) == 1:
                console(f"{'step':>6} | {'train loss':>10} | {'val loss':>8}")
            console(f"{row['step']:>6} | {_fmt(row['train_loss']):>10} | {_fmt(row['val_loss']):>8}")

    class QuietProgress(ProgressCallback):
        """The progress bar without the raw log dicts (the loss table replaces them)."""

        def on_log(self, args, state, control, logs=None, **kw):
            pass

        def on_prediction_step(self, args, state, control, eval_dataloader=None, **kw):
            pass  # no second bar for each evaluation

        def on_evaluate(self, args, state, control, **kw):
            pass

    return LossLog, QuietProgress


@contextlib.contextmanager
def _quiet_transformers():
    """transformers' own progress bars, info logs and deprecation warnings off (the loss table is the output)."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
            yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


# ---------------------------------------------------------------------- train


def train(config: TrainConfig, out_dir: Path, *, overwrite: bool = False, progress: bool = True,
          console: Callable[[str], None] = print) -> TrainResult:
    """Train one LoRA adapter into ``out_dir`` (see the module docstring)."""
    t0 = time.time()
    out_dir = Path(out_dir)
    train_path, val_path = data_paths(config)
    train_all = load_conversations(train_path)
    val_all = load_conversations(val_path)
    train_sha, val_sha = sha256_file(train_path), sha256_file(val_path)

    from .models import resolve_base

    ref = resolve_base(config.base)
    identity = _identity(config.to_dict(), ref.content_hash, train_sha, val_sha)
    clean_stale_temps(out_dir)
    done = _check_out_dir(out_dir, identity, overwrite)
    if done is not None:
        console(f"{out_dir}: up to date (same config, data and base model); not retrained")
        final = done.final or TrainingLogRow(step=0)
        return TrainResult(out_dir, to_dict(done), True, final.step, final.train_loss, final.val_loss,
                           float(done.runtime_s or 0.0))

    # Data actually used: a seeded subset of the training set, canaries planted, val capped.
    order = list(range(len(train_all)))
    used = train_all
    if config.train_subset is not None:
        random.Random(config.seed).shuffle(order)
        used = [train_all[i] for i in sorted(order[:config.train_subset])]
        if config.train_subset > len(train_all):
            console(f"note: train_subset={config.train_subset} but {train_path} has {len(train_all)} "
                    "conversations; using all of them")
    canary_records: list[dict] = []
    if config.canaries:
        used, canary_records = _plant_canaries(used, config.canaries, config.seed, config.canary_repeats)
    val_used = val_all[:config.eval_subset] if config.eval_subset else val_all
    # The data audit (evalkit/audit.py) of what is trained on: a leaky validation split makes the val
    # loss below no evidence of generalization, so say it before the loss table does.
    from ..audit import audit_warnings_for_training

    audit = audit_warnings_for_training(used, val_used)
    for w in audit["warnings"]:
        console(f"warning [{w['code']}]: {w['message']}")

    import torch

    threads = min(torch.get_num_threads(), _cpu_budget())
    torch.set_num_threads(threads)

    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments, set_seed

    from .models import load_model, load_tokenizer, pick_device
    from .chat_templates import describe

    device, dtype = pick_device(config.device)
    tokenizer = load_tokenizer(ref, chat_template_from_config=config.chat_template_from_config,
                               trust_remote_code=config.trust_remote_code)
    template = tokenizer.evalkit_template
    for w in template.warnings:
        console(f"warning: {w}")

    if canary_records:
        _check_canaries_fit(tokenizer, used, canary_records, config.max_length)
    train_rows, used_ids = _encode(tokenizer, used, config.max_length)
    val_rows, _ = _encode(tokenizer, val_used, config.max_length)
    train_dropped, val_dropped = len(used) - len(train_rows), len(val_used) - len(val_rows)
    for what, rows, dropped, path in (("training", train_rows, train_dropped, train_path),
                                      ("validation", val_rows, val_dropped, val_path)):
        if not rows:
            raise DataError(f"{path}: every {what} answer is cut off by max_length={config.max_length}, so no "
                            "token is left to learn from; raise max_length")
        if dropped:
            console(f"note: {dropped} {what} conversation(s) skipped: their answer starts after "
                    f"max_length={config.max_length} tokens")
    # Evaluation order does not matter for the mean loss: sort by length so batches carry little padding.
    val_rows.sort(key=lambda r: len(r["input_ids"]))

    with _quiet_transformers():
        model = load_model(ref, device=str(device), dtype=dtype, trust_remote_code=config.trust_remote_code)
    _check_targets(model, config)
    set_seed(config.seed)  # LoRA A matrices are initialised randomly
    lora = LoraConfig(r=config.r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=config.target_modules, bias=config.bias, task_type=config.task_type)
    model.config.use_cache = False
    with _quiet_transformers():
        model = get_peft_model(model, lora)
    trainable, total = model.get_nb_trainable_parameters()

    steps_per_epoch = math.ceil(len(train_rows) / (config.batch_size * config.gradient_accumulation_steps))
    total_steps = config.max_steps if config.max_steps > 0 else math.ceil(steps_per_epoch * config.num_epochs)
    console(f"training {targets_label(config.target_modules)} r={config.r} alpha={config.lora_alpha} "
            f"lr={config.learning_rate:g} on {len(train_rows)} conversations ({ref.identity}, {device}): "
            f"{total_steps} steps, {trainable:,} trainable parameters ({100 * trainable / total:.2f}%)")

    created = _make_parents(out_dir.parent)
    tmp = staging_dir(out_dir)  # same prefix as temp_prefix(): clean_stale_temps finds it after a kill
    try:
        log_path = tmp / LOG_NAME
        log_path.touch()
        to_console = console
        if progress and console is print:
            from tqdm.auto import tqdm

            to_console = tqdm.write
        LossLog, QuietProgress = _make_callbacks(log_path, to_console)
        loss_log = LossLog()
        warmup = config.warmup_steps if config.warmup_steps > 0 else config.warmup_ratio
        args = TrainingArguments(
            output_dir=str(tmp / "trainer"),
            per_device_train_batch_size=config.batch_size,
            per_device_eval_batch_size=config.effective_eval_batch_size,
            gradient_accumulation_steps=config.gradient_accumulation_steps,
            learning_rate=config.learning_rate,
            num_train_epochs=config.num_epochs,
            max_steps=config.max_steps,
            warmup_steps=warmup,
            weight_decay=config.weight_decay,
            lr_scheduler_type=config.lr_scheduler,
            seed=config.seed,
            eval_strategy="steps",
            eval_steps=config.eval_steps,
            logging_strategy="steps",
            logging_steps=config.eval_steps,
            save_strategy="no",
            report_to=[],
            bf16=device.type == "cuda" and dtype == torch.bfloat16,
            use_cpu=device.type == "cpu",
            disable_tqdm=not progress,
            dataloader_pin_memory=False,
            remove_unused_columns=False,
            prediction_loss_only=True,
            label_names=["labels"],
        )
        from transformers import PrinterCallback, ProgressCallback

        with _quiet_transformers():
            trainer = Trainer(model=model, args=args, train_dataset=train_rows, eval_dataset=val_rows,
                              data_collator=_Collator(tokenizer.pad_token_id), callbacks=[loss_log])
            trainer.remove_callback(PrinterCallback)
            if progress:
                trainer.remove_callback(ProgressCallback)
                trainer.add_callback(QuietProgress)
            trainer.train()
        model.eval()

        model.save_pretrained(str(tmp), safe_serialization=True)
        shutil.rmtree(tmp / "trainer", ignore_errors=True)
        from .models import adapter_hash

        last = loss_log.rows[-1] if loss_log.rows else {}
        base_info = {"spec": ref.spec, "identity": ref.identity, "content_hash": ref.content_hash}
        record = {
            "format": FORMAT,
            "evalkit_version": __version__,
            "config": config.to_dict(),
            "base": base_info,
            "data": {
                "train": {"path": str(train_path), "sha256": train_sha, "n_examples": len(train_all),
                          "n_used": len(train_rows), "n_cut_off": train_dropped,
                          "used_ids": list(dict.fromkeys(used_ids))},
                "val": {"path": str(val_path), "sha256": val_sha, "n_examples": len(val_all),
                        "n_used": len(val_rows), "n_cut_off": val_dropped},
            },
            "template": describe(template),
            "canaries": canary_records,
            "audit": audit,
            "seed": config.seed,
            "versions": versions(installed=("torch", "transformers", "peft")),
            "adapter_sha256": adapter_hash(tmp),
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "device": str(device),
            "dtype": str(dtype).replace("torch.", ""),
            "trainable_params": int(trainable),
            "runtime_s": round(time.time() - t0, 2),
            "final": {"step": 0, **last},  # the training log's last row, every field of it
            "command": shlex.join(sys.argv),
        }
        typed = from_dict(AdapterRecord, record, where=RECORD_NAME)
        save_record(typed, tmp / RECORD_NAME)  # typed, NaN-free
        record = to_dict(typed)  # what the caller (and sweep's index) sees is exactly what was written
        publish_dir(tmp, out_dir)  # the user's umask, not mkdtemp's 0700
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in created:  # innermost first
            try:
                d.rmdir()
            except OSError:
                break
        raise
    final = record["final"]
    return TrainResult(out_dir, record, False, int(final["step"]), final["train_loss"], final["val_loss"],
                       record["runtime_s"], model)


def _check_targets(model, config: TrainConfig) -> None:
    if isinstance(config.target_modules, str):  # "all-linear": peft resolves it
        return
    from .models import linear_module_names

    linear_names = linear_module_names(model)
    have = set(linear_names)
    missing = [t for t in config.target_modules if t.split(".")[-1] not in have]
    if missing:
        raise ConfigError(f"target_modules {missing} not found in the base model; its linear modules are: "
                          f"{', '.join(linear_names)} (or use \"all-linear\")")

