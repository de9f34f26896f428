"""evalkit: evaluation and overfitting / memorization detection for LoRA adapters."""

__version__ = "0.1.0"
__all__ = ["__version__"]
