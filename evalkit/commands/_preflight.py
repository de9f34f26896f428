"""What `eval` and `compare` check before the work: every target, input file, record and size.

Order (docs/guarantees.md): targets are classified and stored records read and validated, every
adapter's inputs (suites, training and validation data, evalkit.json) are read, the output folder is
probed -- all before the engine exists. Then, with the tokenizer only (the model loads on first use),
:func:`fit_to_model` sizes the run: max_new_tokens from the references when not given, prompts that
do not fit the model's context are refused, conversations cut by max_length are counted.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

from ..console import info, warn
from ..errors import DataError

__all__ = ["read_inputs", "read_stored", "fit_to_model", "limit_settings", "check_limit"]


def read_inputs(specs, args) -> dict:
    """raw target -> EvalInputs for every model target (DataError / ModelError on the first bad one)."""
    from ..evaluate import load_inputs

    return {s.raw: load_inputs({"base": "base", "endpoint": s.raw}.get(s.kind, s.path), suites=args.suite,
                               train_data=args.train_data, val_data=args.val_data, limit=args.limit,
                               allow_membership_mismatch=getattr(args, "allow_membership_mismatch", False))
            for s in specs if s.kind in ("base", "adapter", "endpoint")}


def read_stored(specs) -> dict:
    """raw target -> RunRecord for every stored results.json (RecordError on a corrupt or newer one)."""
    from ..records import load_run

    return {s.raw: load_run(s.path) for s in specs if s.kind == "results"}


def fit_to_model(engine, inputs: Sequence, settings, *, max_new_tokens_given: bool):
    """Settings sized to the data and the model (see the module docstring); refuses prompts too long."""
    prompts = {p.source or p.id: p for i in inputs for p in i.prompts}
    items = list(prompts.values())
    if not items:
        return settings
    if not max_new_tokens_given:
        from ..evaluate import fit_max_new_tokens

        ref_tokens = engine.text_lengths([p.reference or "" for p in items])
        fitted = fit_max_new_tokens(ref_tokens)
        settings = dataclasses.replace(settings, max_new_tokens=fitted)
        info(f"max_new_tokens {fitted}: the longest reference answer is {max(ref_tokens)} tokens, plus a quarter "
             "and 16 (capped at 512); pass --max-new-tokens to choose")
    context = engine.context_length()
    if context is not None:
        lengths = engine.prompt_lengths([list(p.messages) for p in items])
        room = context - settings.max_new_tokens
        too_long = [(n, p) for n, p in zip(lengths, items) if n > room]
        if too_long:
            n, p = max(too_long, key=lambda t: t[0])
            raise DataError(f"{p.source}: the prompt is {n} tokens; with max_new_tokens {settings.max_new_tokens} "
                            f"it does not fit the model's context of {context} tokens ({len(too_long)} prompt(s) "
                            "too long); shorten them or lower --max-new-tokens -- evalkit does not cut prompts, "
                            "which would change the question")
    from ..evaluate import max_length_for

    convs = [list(p.messages) + [{"role": "assistant", "content": p.reference}] for p in items if p.reference]
    window = min(max_length_for(settings, i.meta) for i in inputs)  # each adapter scores with its training window
    cut = sum(1 for n in engine.conversation_lengths(convs) if n > window)
    if cut:
        warn(f"{cut} of {len(convs)} held-out reference conversations are longer than max_length "
             f"{window} tokens; their loss is measured on the first {window} tokens "
             "(raise --max-length to score them whole)")
    return settings


def limit_settings(settings, limit: Optional[int]):
    """A smoke run (--limit N) also caps the training / validation samples and the extraction prompts."""
    if limit is None:
        return settings
    return dataclasses.replace(settings, train_sample=min(settings.train_sample, limit),
                               extraction_n=min(settings.extraction_n, limit))


def check_limit(limit: Optional[int]) -> None:
    from ..errors import ConfigError

    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be a positive number of prompts per suite. Got {limit} instead.")
