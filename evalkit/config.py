"""Training configuration: one dataclass, read from YAML or TOML, overridden with ``key=value``.

Every field carries its help text (docs/config.md is written from it) and is validated in
``__post_init__`` with messages that name the parameter, show the value and say what was expected::

    The 'r' parameter must be a positive int. Got -4 instead.

:func:`load_config` reads a file, applies ``key=value`` overrides (values parsed as YAML scalars or
lists: ``learning_rate=5e-5``, ``target_modules=[q_proj,v_proj]``) and prefixes any error with
``file:line`` when the key can be located. No torch import here: configs load in milliseconds.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

from .errors import ConfigError, did_you_mean
from .io import parse_toml

__all__ = [
    "TrainConfig",
    "TARGET_MODULE_SHORTHANDS",
    "BIAS_CHOICES",
    "SCHEDULERS",
    "load_config",
    "read_mapping",
    "parse_override",
    "apply_overrides",
    "config_fields",
]

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
FFN = ["gate_proj", "up_proj", "down_proj"]
# Shorthands accepted for target_modules. "all-linear" is peft's own: every linear layer but the output head.
TARGET_MODULE_SHORTHANDS: dict[str, Union[list[str], str]] = {
    "attention": ATTENTION,
    "all7": ATTENTION + FFN,  # the seed's "almost full fine-tuning"
    "all-linear": "all-linear",
}
BIAS_CHOICES = ("none", "all", "lora_only")
# transformers' SchedulerType values that need no extra arguments.
SCHEDULERS = ("linear", "cosine", "cosine_with_restarts", "polynomial", "constant", "constant_with_warmup",
              "inverse_sqrt")


def _help(text: str, **kw) -> Any:
    return field(metadata={"help": text}, **kw)


@dataclass
class TrainConfig:
    """Everything that decides what `evalkit train` produces (see docs/config.md)."""

    # --- model and data
    base: str = _help('Base model: "default" (the bundled SmolLM2-135M-Instruct), a Hugging Face model folder, '
                      'or a .gguf file.', default="default")
    train_data: Optional[str] = _help("Training conversations (JSON Lines). Default: the bundled "
                                      "benchmarks/eco/train.jsonl.", default=None)
    val_data: Optional[str] = _help("Validation conversations (JSON Lines). Default: the bundled "
                                    "benchmarks/eco/val.jsonl.", default=None)
    train_subset: Optional[int] = _help("Use only N training conversations, the first N after a shuffle seeded "
                                        "with `seed` (\"less data\"). null = all.", default=None)
    eval_subset: Optional[int] = _help("Use only the first N validation conversations for the val_loss logged "
                                       "during training (caps evaluation cost). null = all.", default=None)
    # --- LoRA (peft.LoraConfig)
    r: int = _help("LoRA rank.", default=16)
    lora_alpha: float = _help("LoRA scaling numerator: updates are scaled by lora_alpha / r.", default=32)
    lora_dropout: float = _help("Dropout on the LoRA input, in [0, 1).", default=0.05)
    target_modules: Union[list[str], str] = _help(
        'Modules that get LoRA adapters: a list of names (["q_proj", "v_proj"]), a comma-separated string, or a '
        'shorthand: "attention" (q,k,v,o_proj), "all7" (attention + gate,up,down_proj: the seed) or '
        '"all-linear" (every linear layer but the output head).',
        default_factory=lambda: ["q_proj", "v_proj"])
    bias: str = _help('Which biases to train: "none", "all" or "lora_only".', default="none")
    task_type: str = _help('peft task type; only "CAUSAL_LM" (accepted so a LoraConfig can be pasted as is).',
                           default="CAUSAL_LM")
    # --- optimisation (transformers.TrainingArguments)
    learning_rate: float = _help("Peak learning rate (AdamW).", default=2e-4)
    num_epochs: float = _help("Passes over the training data (fractions allowed); ignored when max_steps > 0.",
                              default=1.0)
    max_steps: int = _help("Optimizer steps to run; overrides num_epochs when > 0. -1 = use num_epochs.",
                           default=-1)
    batch_size: int = _help("Conversations per device per forward pass.", default=8)
    gradient_accumulation_steps: int = _help("Forward passes per optimizer step (effective batch = "
                                             "batch_size x this).", default=1)
    max_length: int = _help("Tokens per conversation; longer ones are cut from the right.", default=256)
    warmup_ratio: float = _help("Fraction of the steps spent warming the learning rate up from 0, in [0, 1); "
                                "ignored when warmup_steps > 0.", default=0.0)
    warmup_steps: int = _help("Warm-up steps; overrides warmup_ratio when > 0.", default=0)
    weight_decay: float = _help("AdamW weight decay.", default=0.0)
    lr_scheduler: str = _help(f"Learning-rate schedule: {', '.join(SCHEDULERS)}.", default="linear")
    seed: int = _help("Seed for LoRA initialisation, data order, train_subset and canaries.", default=0)
    eval_steps: int = _help("Log train loss and evaluate val loss every N optimizer steps (and at the end).",
                            default=10)
    eval_batch_size: Optional[int] = _help("Validation batch size. null = 2 x batch_size.", default=None)
    # --- memorization probes
    canaries: int = _help("Plant N synthetic canary secrets into training answers (seeded) to measure "
                          "memorization later; 0 = none.", default=0)
    canary_repeats: int = _help("Each conversation holding a canary appears this many times in the training data "
                                "(the memorization dose: duplicated data is memorized far more).", default=1)
    # --- loading
    chat_template_from_config: bool = _help("Take the chat template from the model's config.json (where the "
                                            "seed put it) instead of the tokenizer files.", default=False)
    trust_remote_code: bool = _help("Allow model code from the model folder to run (only for folders you trust).",
                                    default=False)
    device: Optional[str] = _help('"cpu", "cuda", "cuda:1", ...; null = CUDA (bf16) when available, else CPU '
                                  '(fp32).', default=None)

    def __post_init__(self) -> None:
        self.base = _string(self.base, "base")
        self.train_data = _opt_string(self.train_data, "train_data")
        self.val_data = _opt_string(self.val_data, "val_data")
        self.train_subset = _opt_positive_int(self.train_subset, "train_subset")
        self.eval_subset = _opt_positive_int(self.eval_subset, "eval_subset")
        self.r = _positive_int(self.r, "r")
        self.lora_alpha = _number(self.lora_alpha, "lora_alpha", "a positive number", lambda v: v > 0)
        if float(self.lora_alpha).is_integer():
            self.lora_alpha = int(self.lora_alpha)  # 32, not 32.0, in the saved config
        self.lora_dropout = _number(self.lora_dropout, "lora_dropout", "a float in [0, 1)", lambda v: 0 <= v < 1)
        self.target_modules = _target_modules(self.target_modules)
        self.bias = _choice(self.bias, "bias", BIAS_CHOICES)
        if isinstance(self.task_type, str) and self.task_type.upper() == "CAUSAL_LM":
            self.task_type = "CAUSAL_LM"
        self.task_type = _choice(self.task_type, "task_type", ("CAUSAL_LM",))
        self.learning_rate = _number(self.learning_rate, "learning_rate", "a positive float", lambda v: v > 0)
        self.num_epochs = _number(self.num_epochs, "num_epochs", "a positive number", lambda v: v > 0)
        self.max_steps = _int(self.max_steps, "max_steps", "-1 or a positive int", lambda v: v == -1 or v > 0)
        self.batch_size = _positive_int(self.batch_size, "batch_size")
        self.gradient_accumulation_steps = _positive_int(self.gradient_accumulation_steps,
                                                         "gradient_accumulation_steps")
        self.max_length = _int(self.max_length, "max_length", "an int >= 8", lambda v: v >= 8)
        self.warmup_ratio = _number(self.warmup_ratio, "warmup_ratio", "a float in [0, 1)", lambda v: 0 <= v < 1)
        self.warmup_steps = _int(self.warmup_steps, "warmup_steps", "a non-negative int", lambda v: v >= 0)
        self.weight_decay = _number(self.weight_decay, "weight_decay", "a non-negative float", lambda v: v >= 0)
        self.lr_scheduler = _choice(self.lr_scheduler, "lr_scheduler", SCHEDULERS)
        self.seed = _int(self.seed, "seed", "a non-negative int", lambda v: v >= 0)
        self.eval_steps = _positive_int(self.eval_steps, "eval_steps")
        self.eval_batch_size = _opt_positive_int(self.eval_batch_size, "eval_batch_size")
        self.canaries = _int(self.canaries, "canaries", "a non-negative int", lambda v: v >= 0)
        self.canary_repeats = _positive_int(self.canary_repeats, "canary_repeats")
        self.chat_template_from_config = _bool(self.chat_template_from_config, "chat_template_from_config")
        self.trust_remote_code = _bool(self.trust_remote_code, "trust_remote_code")
        self.device = _opt_string(self.device, "device")

    # ------------------------------------------------------------------ views

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, in field order (what evalkit.json records under "config")."""
        d = dataclasses.asdict(self)
        if isinstance(d["target_modules"], list):
            d["target_modules"] = list(d["target_modules"])
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """Build from a mapping; unknown keys raise ConfigError with a suggestion."""
        names = config_fields()
        for key in values:
            if key not in names:
                raise _unknown_key(key, names)
        return cls(**values)

    @property
    def effective_eval_batch_size(self) -> int:
        return self.eval_batch_size or 2 * self.batch_size

    @property
    def targets_label(self) -> str:
        """Short readable label of target_modules: "qv", "qkvo", "all7", "all-linear", or the joined names."""
        return targets_label(self.target_modules)


# ---------------------------------------------------------------------- validation helpers


def _err(name: str, expected: str, value: Any) -> ConfigError:
    err = ConfigError(f"The '{name}' parameter must be {expected}. Got {value!r} instead.")
    err.param = name  # lets load_config prefix the file:line of this key
    return err


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _as_number(v: Any) -> Any:
    """Numbers, and strings YAML leaves unparsed ("5e-5" is a string in YAML 1.1), as float."""
    if isinstance(v, bool):
        return v
    if isinstance(v, str):
        try:
            return float(v.strip().replace("_", ""))
        except ValueError:
            return v
    return v


def _number(v: Any, name: str, expected: str, ok) -> float:
    v = _as_number(v)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
        raise _err(name, expected, v)
    return float(v)


def _int(v: Any, name: str, expected: str, ok) -> int:
    v = _as_number(v)
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # "1e3" -> 1000
    if not _is_int(v) or not ok(v):
        raise _err(name, expected, v)
    return int(v)


def _positive_int(v: Any, name: str) -> int:
    return _int(v, name, "a positive int", lambda x: x > 0)


def _opt_positive_int(v: Any, name: str) -> Optional[int]:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "null", "none")):
        return None
    return _int(v, name, "a positive int or null", lambda x: x > 0)


def _string(v: Any, name: str) -> str:
    if not isinstance(v, str) or not v.strip():
        raise _err(name, "a non-empty string", v)
    return v.strip()


def _opt_string(v: Any, name: str) -> Optional[str]:
    if v is None or (isinstance(v, str) and v.strip().lower() in ("", "null", "none")):
        return None
    if isinstance(v, Path):
        return str(v)
    return _string(v, name)


def _bool(v: Any, name: str) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
        return v.strip().lower() in ("true", "yes", "1", "on")
    raise _err(name, "true or false", v)


def _choice(v: Any, name: str, choices: Sequence[str]) -> str:
    if isinstance(v, str) and v in choices:
        return v
    hint = did_you_mean(v, choices) if isinstance(v, str) else ""
    err = ConfigError(f"The '{name}' parameter must be one of {', '.join(map(repr, choices))}. "
                      f"Got {v!r} instead.{hint}")
    raise _with_param(err, name)


def _with_param(err: ConfigError, name: str) -> ConfigError:
    err.param = name
    return err


_MODULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")


def _target_modules(v: Any) -> Union[list[str], str]:
    expected = ('a non-empty list of module names (e.g. ["q_proj", "v_proj"]) or one of '
                + ", ".join(repr(k) for k in TARGET_MODULE_SHORTHANDS))
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, str):
        s = v.strip()
        if s in TARGET_MODULE_SHORTHANDS:
            short = TARGET_MODULE_SHORTHANDS[s]
            return list(short) if isinstance(short, list) else short
        v = [p.strip() for p in s.strip("[]").split(",") if p.strip()]
    if not isinstance(v, list) or not v or not all(isinstance(m, str) for m in v):
        raise _err("target_modules", expected, v)
    out: list[str] = []
    for m in v:
        m = m.strip()
        if m in TARGET_MODULE_SHORTHANDS and len(v) == 1:
            return _target_modules(m)
        if not _MODULE_NAME.match(m):
            hint = did_you_mean(m, list(TARGET_MODULE_SHORTHANDS) + ATTENTION + FFN)
            raise _with_param(ConfigError(f"The 'target_modules' parameter must be {expected}. Got {v!r} instead "
                                          f"({m!r} is not a module name).{hint}"), "target_modules")
        if m not in out:
            out.append(m)
    return out


_ABBREV = {"q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o", "gate_proj": "g", "up_proj": "u",
           "down_proj": "d"}


def targets_label(targets: Union[list[str], str]) -> str:
    if isinstance(targets, str):
        return targets
    if sorted(targets) == sorted(ATTENTION + FFN):
        return "all7"
    if all(t in _ABBREV for t in targets):
        order = list(_ABBREV)
        return "".join(_ABBREV[t] for t in sorted(targets, key=order.index))
    return "+".join(targets)


def config_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _unknown_key(key: str, names: Sequence[str]) -> ConfigError:
    aliases = {"lr": "learning_rate", "alpha": "lora_alpha", "dropout": "lora_dropout", "epochs": "num_epochs",
               "num_train_epochs": "num_epochs", "rank": "r", "lora_r": "r", "per_device_train_batch_size":
               "batch_size", "lr_scheduler_type": "lr_scheduler", "model": "base", "base_model": "base",
               "model_name_or_path": "base", "max_seq_length": "max_length", "modules": "target_modules"}
    hint = f" Did you mean '{aliases[key]}'?" if key in aliases else did_you_mean(key, names)
    known = "" if hint else f" Known settings: {', '.join(names)}."
    err = ConfigError(f"unknown setting '{key}'.{hint}{known} See docs/config.md")
    err.param = key
    return err


# ---------------------------------------------------------------------- files and overrides


def read_mapping(path: Path, what: str = "config") -> tuple[dict[str, Any], "_LineFinder"]:
    """Parse a YAML or TOML file into a dict; ConfigError with file:line on a syntax error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such {what} file; check the path"
                          + (" (it is a folder)" if path.is_dir() else ""))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the file as UTF-8") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    suffix = path.suffix.lower()
    if suffix == ".toml":
        data = parse_toml(text, str(path), ConfigError)
    elif suffix in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
            if getattr(e, "context", None) == "while scanning a simple key" and getattr(e, "context_mark", None):
                mark = e.context_mark  # "key value" without ':' — the key's line, not the next one
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            problem = getattr(e, "problem", None) or str(e).splitlines()[0]
            raise ConfigError(f"{where}: not valid YAML ({problem}); fix the syntax (indentation, ':' after "
                              "each key, quotes)") from None
    else:
        raise ConfigError(f"{path}: unknown {what} file type {suffix or '(none)'!r}; use .yaml, .yml or .toml")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings (key: value), got a {type(data).__name__}")
    return data, _LineFinder(path, text)


class _LineFinder:
    """Line number of a top-level key (best effort: 'key:' in YAML, 'key =' in TOML)."""

    def __init__(self, path: Path, text: str):
        self.path, self.lines = path, text.splitlines()

    def where(self, key: Optional[str]) -> str:
        if key:
            pat = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*[:=]")
            for i, line in enumerate(self.lines, 1):
                if pat.match(line):
                    return f"{self.path}:{i}"
        return str(self.path)


_TEXT_FIELDS = ("base", "train_data", "val_data", "device")


def parse_override(item: str) -> tuple[str, Any]:
    """'key=value' -> (key, value); the value is read as a YAML scalar or flow list."""
    import yaml

    if not isinstance(item, str) or "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value (e.g. learning_rate=5e-5)")
    key, raw = item.split("=", 1)
    key = key.strip().replace("-", "_")
    if not key:
        raise ConfigError(f"override {item!r} has no key; write key=value (e.g. r=8)")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw.strip()  # a plain string the YAML parser dislikes
    if isinstance(value, dict):  # no setting takes a mapping: 'a: b' was meant as text (a path with ': ')
        value = raw.strip()
    if key in _TEXT_FIELDS and value is not None and not isinstance(value, str):
        value = raw.strip()  # base=2024 is a folder name, not a number
    return key, value


def apply_overrides(values: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``values`` with each 'key=value' applied in order (later wins)."""
    out = dict(values)
    names = config_fields()
    for item in overrides:
        key, value = parse_override(item)
        if key not in names:
            err = _unknown_key(key, names)
            raise ConfigError(f"override {item!r}: {err}")
        out[key] = value
    return out


def load_config(path: Union[str, Path, None] = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML / TOML training config (or the defaults when ``path`` is None) and apply overrides.

    Relative ``train_data`` / ``val_data`` / ``base`` paths in a file are taken relative to the current
    folder (like every CLI path), not to the file.
    """
    values: dict[str, Any] = {}
    finder: Optional[_LineFinder] = None
    if path is not None:
        values, finder = read_mapping(Path(path))
        names = config_fields()
        for key in values:
            if key not in names:
                err = _unknown_key(str(key), names)
                raise ConfigError(f"{finder.where(str(key))}: {err}")
    overridden = {parse_override(item)[0] for item in overrides}
    values = apply_overrides(values, overrides)
    try:
        return TrainConfig(**values)
    except ConfigError as err:
        param = getattr(err, "param", None)
        if param in overridden:
            raise ConfigError(f"override {param}={values.get(param)!r}: {err}") from None
        if finder is not None and param is not None:
            raise ConfigError(f"{finder.where(param)}: {err}") from None
        raise

