"""The one provenance builder: when, with which versions and which command a record was made."""

from __future__ import annotations

import platform
import sys
import time
from typing import Any, Optional

from . import __version__

__all__ = ["provenance"]

# reported when loaded: whatever computed the record's numbers (scipy: the comparison's p-values)
_MODULES = ("torch", "transformers", "peft", "numpy", "scipy", "sklearn", "rouge_score", "vllm", "lm_eval")


def provenance(extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    versions = {"python": platform.python_version(), "evalkit": __version__}
    for mod in _MODULES:
        m = sys.modules.get(mod)
        if m is not None:
            versions[mod] = getattr(m, "__version__", "?")
    out = {"created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "evalkit_version": __version__,
           "versions": versions, "command": " ".join(["evalkit", *sys.argv[1:]]), "host": platform.node()}
    out.update(extra or {})
    return out
