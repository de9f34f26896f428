"""The demo: two contrasting adapters on the bundled eco data, then `evalkit compare`.

* ``cautious`` — what the seed's author planned to try first: LoRA on q_proj, v_proj only, r=8,
  alpha=16, a moderate learning rate, a short pass over the full training split.
* ``seedlike`` — what the author actually did, pushed further so that it overfits within a CPU
  budget: all seven projections, r=16, alpha=32, dropout 0.05, a 10x higher learning rate, six
  epochs over only 24 conversations ("more epochs on less data").

Both are also run on evalkit's offline lm-eval retention task (``--lm-eval-limit`` questions) to see
whether either lost general ability.

Step counts are sized for a 2-core CPU (one LoRA step on the default model at batch 8 takes
~2-5 s there); ``fast=True`` shrinks everything further for tests on tiny models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

from .config import TrainConfig
from .evaluate import EvalSettings

__all__ = ["demo_configs", "demo_settings", "demo_retention", "run_demo"]

# questions of the bundled retention task the demo runs per adapter (of 106; the file interleaves its six
# categories, so the first 60 hold 10 of each), sized for the demo's 10-minute budget on 2 CPU cores
DEMO_RETENTION_LIMIT = 60


def demo_configs(base: Optional[str] = None, fast: bool = False) -> dict[str, TrainConfig]:
    common = dict(base=base or "default", batch_size=8, max_length=192, seed=0, eval_subset=16,
                  warmup_ratio=0.0)
    cautious = TrainConfig(target_modules=["q_proj", "v_proj"], r=8, lora_alpha=16, lora_dropout=0.05,
                           learning_rate=2e-4, max_steps=4 if fast else 8, eval_steps=2 if fast else 4, **common)
    seedlike = TrainConfig(target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                           "down_proj"],
                           r=16, lora_alpha=32, lora_dropout=0.05, learning_rate=2e-3, train_subset=16 if fast else 24,
                           num_epochs=3 if fast else 6, eval_steps=2 if fast else 4, **common)
    return {"cautious": cautious, "seedlike": seedlike}


def demo_settings(fast: bool = False) -> EvalSettings:
    return EvalSettings(max_new_tokens=24 if fast else 64, batch_size=32, train_sample=16 if fast else 24,
                        extraction_n=4 if fast else 8, n_boot=200 if fast else 1000)


def demo_thresholds():
    """The demo caps answers at 64 new tokens to fit a 2-core CPU budget, so SmolLM2's long answers are
    cut by design there: truncation is not a defect of either adapter in this setting."""
    from .thresholds import Thresholds

    return Thresholds(truncated_rate_warn=1.0)


def demo_retention(fast: bool = False, console: Callable[[str], None] = print):
    """evalkit's retention task on the first DEMO_RETENTION_LIMIT questions (None, with a note, without lm-eval)."""
    from .errors import ConfigError
    from .retention import DEFAULT_TASK, INSTALL_HINT, LmEvalSpec, require_lm_eval

    try:
        require_lm_eval()
    except ConfigError:
        console(f"note: lm-eval is not installed, so the demo skips capability retention ({INSTALL_HINT})")
        return None
    return LmEvalSpec((DEFAULT_TASK,), limit=10 if fast else DEMO_RETENTION_LIMIT)


def run_demo(out: Path, *, base: Optional[str] = None, fast: bool = False, progress: bool = True,
             suites=None, engine_kwargs: Optional[dict] = None, console: Callable[[str], None] = print):
    """Train both adapters (skipped when up to date), compare them with retention, write OUT/compare; returns the
    Comparison."""
    from .gate import default_gate
    from .outputs import check_out_dir, write_comparison
    from .pipeline import compare_targets
    from .runtime.train import train

    out = Path(out)
    check_out_dir(out / "compare")
    folders = []
    for name, cfg in demo_configs(base, fast).items():
        console(f"== training '{name}' ({cfg.target_modules}, r={cfg.r}, lr={cfg.learning_rate}) -> {out / name}")
        train(cfg, out / name, progress=progress, console=console)
        folders.append(str(out / name))
    console("== comparing (baseline: cautious)")
    comparison = compare_targets(folders, base=base, gate=default_gate(), settings=demo_settings(fast),
                                 thresholds=demo_thresholds(), engine_kwargs=engine_kwargs, suites=suites,
                                 lm_eval=demo_retention(fast, console))
    write_comparison(comparison, out / "compare")
    return comparison
