"""Everything that touches torch, transformers or peft lives in this package, and nothing outside it imports them.

- ``models``         base-model resolution (default GGUF -> cached safetensors), adapter folders, hashes
- ``chat_templates`` chat formatting, assistant-only label masks, template traps
- ``generate``       batched greedy / sampled decoding
- ``loss``           teacher-forced per-token log-probs of conversations
- ``engine``         one base model, many adapters, cached generate/score
- ``train``          LoRA training with the Trainer
- ``malloc``         glibc thresholds so freed tensors go back to the OS (peak RSS)

Modules here import torch lazily where they can, so importing ``evalkit.runtime.models`` for a hash
does not load torch.
"""
