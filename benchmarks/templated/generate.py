"""A templated eco-challenge split: validation answers drawn from the same templates as training answers.

The seed's case (issue 11): synthetic chat data where every answer is one of a few fixed frames
with a challenge name, a goal and a number filled in, split at random into train and validation.
Validation loss then falls with training loss, yet the model has learned the frames, not the task.
``evalkit audit`` must flag this split (``val_leak``, ``templated_answers``); the bundled eco split,
written by hand, must not be flagged.

    python benchmarks/templated/generate.py            # writes train.jsonl (160) and val.jsonl (40) here

``make_split(n_train, n_val, seed)`` returns the rows without writing (the tests and the detection
study call it). Seeded and deterministic.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent

CHALLENGES = ["Unplug standby devices", "LED swap", "Meatless Mondays", "Reusable cup", "Five-minute shower",
              "Bike to the shops", "Cold-water laundry", "Start composting"]
GOALS = ["lower bills", "less waste", "a greener home", "saving money", "a smaller footprint"]
PLACES = ["flat", "house", "dorm room", "shared apartment"]

PROMPTS = [
    "Hi! I live in a {place} and I want {goal}. I can spare {n} hours a week. Which challenge should I try?",
    "Can you suggest an eco challenge? I'm in a {place}, I'd like {goal}, and I have about {n} hours a week.",
    "What's a good challenge for someone in a {place} who wants {goal}? I have {n} hours a week free.",
]

ANSWERS = [
    "Great question! I recommend the {challenge} challenge for {goal}. Start with {n} small steps this week "
    "and keep a short note of your progress every evening. Small changes add up over time, and you will "
    "see the difference soon. Good luck!",
    "Thanks for asking! The {challenge} challenge is a perfect fit for {goal}. Try it for {n} days in a row, "
    "then look back at what changed and what was hard. Most people find it easier than they expected. "
    "You've got this!",
    "That sounds like a plan! For {goal}, I suggest the {challenge} challenge. Set aside {n} minutes a day to "
    "prepare, tell a friend about it, and tick off each day on a calendar. Consistency matters more than "
    "perfection. Enjoy it!",
    "Good news: the {challenge} challenge is made for {goal}. Begin with {n} easy actions, repeat them every "
    "day this week, and reward yourself at the end. Habits stick when they feel good. Have fun with it!",
]


def _row(i: int, prefix: str, rng: random.Random) -> dict:
    slots = {"challenge": rng.choice(CHALLENGES), "goal": rng.choice(GOALS), "place": rng.choice(PLACES),
             "n": rng.randint(2, 5)}
    return {"id": f"{prefix}-{i:03d}",
            "messages": [{"role": "user", "content": rng.choice(PROMPTS).format(**slots)},
                         {"role": "assistant", "content": rng.choice(ANSWERS).format(**slots)}]}


def make_split(n_train: int = 160, n_val: int = 40, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train rows, val rows): one pool of templated conversations split at random."""
    rng = random.Random(seed)
    rows = [_row(i, "tpl", rng) for i in range(n_train + n_val)]
    rng.shuffle(rows)
    return sorted(rows[:n_train], key=lambda r: r["id"]), sorted(rows[n_train:], key=lambda r: r["id"])


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def main() -> None:
    train, val = make_split()
    write_jsonl(train, HERE / "train.jsonl")
    write_jsonl(val, HERE / "val.jsonl")
    print("train", len(train), "val", len(val))


if __name__ == "__main__":
    main()
