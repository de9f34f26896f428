"""The one provenance builder: when, with which versions and which command a record was made."""

from __future__ import annotations

import importlib.metadata
import platform
import sys
import time
from typing import Any, Iterable, Optional

from . import __version__

__all__ = ["provenance", "versions"]

# reported when loaded: whatever computed the record's numbers (scipy: the comparison's p-values)
_MODULES = ("torch", "transformers", "peft", "numpy", "scipy", "sklearn", "rouge_score", "vllm", "lm_eval")
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "rouge_score": "rouge-score", "lm_eval": "lm_eval", "vllm": "vllm"}


def versions(installed: Iterable[str] = ()) -> dict[str, str]:
    """Versions of python, evalkit, every module of ``_MODULES`` that is loaded, and of the modules named in
    ``installed`` from their installed distributions even when not loaded (a fully cached eval imports no
    torch, yet its cached numbers came from it)."""
    out = {"python": platform.python_version(), "evalkit": __version__}
    for mod in dict.fromkeys((*_MODULES, *installed)):
        m = sys.modules.get(mod)
        if m is not None:
            out[mod] = getattr(m, "__version__", "?")
        elif mod in installed:
            try:
                out[mod] = importlib.metadata.version(_DISTRIBUTIONS.get(mod, mod))
            except importlib.metadata.PackageNotFoundError:
                continue
    return out


def provenance(extra: Optional[dict[str, Any]] = None, *, installed: Iterable[str] = ()) -> dict[str, Any]:
    out = {"created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "evalkit_version": __version__,
           "versions": versions(installed), "command": " ".join(["evalkit", *sys.argv[1:]]),
           "host": platform.node()}
    out.update(extra or {})
    return out
