"""Loads evalkit_retention.jsonl from this folder (no download, no hub): lm-eval's ``custom_dataset``."""

import json
from pathlib import Path

DATA = Path(__file__).with_name("evalkit_retention.jsonl")


def load_docs(**_metadata):
    """{"test": Dataset} of the questions; lm-eval passes the task metadata as keyword arguments."""
    import datasets

    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    return datasets.DatasetDict({"test": datasets.Dataset.from_list(rows)})
