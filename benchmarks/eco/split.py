"""How train.jsonl / val.jsonl were split from the hand-written pool (re-running it is a no-op).

The pool is the 360 conversations written by hand for evalkit (ids c1-*, c2-*): train ∪ val. They
are sorted by id, shuffled with a fixed seed and split 300 / 60, so validation conversations come from exactly the same distribution as training
ones -- the condition for membership inference to mean anything (non-members of the same
distribution; see docs/memorization.md). Run: python benchmarks/eco/split.py
"""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
POOL = [HERE / "train.jsonl", HERE / "val.jsonl"]
N_VAL = 60


def main() -> None:
    rows = [json.loads(line) for p in POOL if p.exists()
            for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows.sort(key=lambda r: r["id"])
    rng = random.Random(20261126)
    rng.shuffle(rows)
    val, train = rows[:N_VAL], rows[N_VAL:]
    for name, part in (("train", train), ("val", val)):
        part.sort(key=lambda r: r["id"])
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part)
        (HERE / f"{name}.jsonl").write_text(text, encoding="utf-8")
        print(name, len(part))


if __name__ == "__main__":
    main()
