"""Engines: the interface (base.py), the results cache shared by every engine, and the OpenAI-compatible
endpoint client. The in-process engines (hf, vllm) live in evalkit/runtime/ (they import torch / vllm)."""
