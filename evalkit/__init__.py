"""evalkit: evaluation and overfitting / memorization detection for LoRA adapters."""

import os

# OpenMP threads that spin while waiting turn a busy CPU (tests, a second job) into a 10-20x slowdown;
# passive waiting costs next to nothing on an idle one. Only effective before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
__all__ = ["__version__"]
