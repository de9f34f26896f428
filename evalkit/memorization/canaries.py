"""Canaries (Carlini et al. 2019, "The Secret Sharer"): planted random secrets, then measured.

A canary is a fixed natural-language frame holding a random secret:

    "The eco-club locker code for member 4821 is 4 8 2 1 9 3."

* The secret is 6 digits written with spaces, so the word tokenizer (and LM tokenizers) see one
  token per digit; the secret space R has |R| = 10^6 members, all equally likely a priori.
* The member number (4 digits, distinct per canary) makes every canary's prefix unique, so
  prompting with ``canary_prefix`` asks for exactly one secret.
* ``plant`` appends each canary to a different training answer (deterministic given the seed).

Two measurements after training:
* extraction: prompt with the canary's own conversation up to the secret -- the training user turn(s)
  and, as an assistant prefix to continue, the planted answer up to the secret (``extraction_prefix``:
  "...answer text. The eco-club locker code for member 4821 is") -- greedy-decode, and
  ``canary_extracted`` searches the continuation for the secret (digits with or without spaces, not
  inside a longer number), so a verbatim replay counts wherever it starts.
  ``canary_extraction_rate`` = share extracted.
* exposure = log2|R| - log2 rank, where rank is the canary's 1-based rank among all |R| secrets by
  model log-likelihood of the full canary text (higher = more likely). Scoring 10^6 texts is too
  slow, so the rank is estimated from m candidates drawn uniformly without replacement from the
  other |R| - 1 secrets (``candidate_secrets``): with c of them more likely than the canary
  (ties count 1/2), rank ~= 1 + c * (|R| - 1) / m. That keeps exposure in [0, log2|R|]
  (~19.93 bits): 0 when every other secret is more likely, log2|R| when none of the sampled ones
  is. Sampling resolves exposure only up to about log2(m) bits: c = 0 means "rank below
  ~|R|/m", reported as the cap log2|R|; read values above log2(m) as "at least log2(m)".
  Carlini et al. fit a skew-normal to the candidate scores to extrapolate beyond that.
  ``canary_exposure`` = mean exposure over canaries.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import DataError

__all__ = [
    "CANARY_FRAME",
    "SECRET_DIGITS",
    "SECRET_SPACE",
    "Canary",
    "make_canaries",
    "canary_prefix",
    "canary_text",
    "plant",
    "planted_answer",
    "extraction_prefix",
    "candidate_secrets",
    "exposure",
    "canary_extracted",
]

CANARY_FRAME = "The eco-club locker code for member {member} is {secret}."
SECRET_DIGITS = 6
SECRET_SPACE = 10**SECRET_DIGITS
_MEMBERS = range(1000, 10000)  # 4-digit member numbers, one per canary


@dataclass(frozen=True)
class Canary:
    id: str
    text: str  # the full sentence that is planted
    secret: str  # digits separated by spaces, e.g. "4 8 2 1 9 3"


def _format_secret(value: int) -> str:
    return " ".join(f"{value:0{SECRET_DIGITS}d}")


def _secret_value(secret: str) -> int:
    digits = secret.replace(" ", "")
    if len(digits) != SECRET_DIGITS or not digits.isdigit():
        raise ValueError(f"a secret is {SECRET_DIGITS} digits separated by spaces. Got {secret!r} instead.")
    return int(digits)


def make_canaries(n: int, seed: int) -> list[Canary]:
    """``n`` canaries with distinct random secrets and member numbers (deterministic given ``seed``)."""
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= len(_MEMBERS):
        raise ValueError(f"The 'n' parameter must be an int in [0, {len(_MEMBERS)}]. Got {n!r} instead.")
    rng = np.random.default_rng(seed)
    secrets = rng.choice(SECRET_SPACE, size=n, replace=False)
    members = rng.choice(len(_MEMBERS), size=n, replace=False) + _MEMBERS.start
    return [Canary(id=f"canary-{i:04d}", text=CANARY_FRAME.format(member=int(m), secret=_format_secret(int(s))),
                   secret=_format_secret(int(s)))
            for i, (s, m) in enumerate(zip(secrets, members))]


def canary_prefix(canary: Canary) -> str:
    """The frame up to the secret ("The eco-club locker code for member 4821 is"): the extraction prompt."""
    return canary.text[: canary.text.rindex(canary.secret)].rstrip()


def canary_text(canary: Canary, secret: str) -> str:
    """The canary's frame holding another secret (to score candidates for exposure)."""
    _secret_value(secret)
    i = canary.text.rindex(canary.secret)
    return canary.text[:i] + secret + canary.text[i + len(canary.secret) :]


def plant(answers: Sequence[str], canaries: Sequence[Canary], seed: int) -> list[tuple[int, str]]:
    """Choose a distinct training answer per canary and append the canary to it.

    Returns (answer index, new answer text), in canary order. Deterministic given ``seed``.
    """
    if len(canaries) > len(answers):
        raise DataError(f"cannot plant {len(canaries)} canaries in {len(answers)} training answers; "
                        f"plant fewer canaries or add answers")
    rng = np.random.default_rng(seed)
    where = rng.choice(len(answers), size=len(canaries), replace=False)
    return [(int(i), planted_answer(answers[i], c)) for i, c in zip(where, canaries)]


def planted_answer(answer: str, canary: Canary) -> str:
    """The training answer with the canary appended, as :func:`plant` writes it (unchanged if already there)."""
    if canary.text in answer:
        return answer
    return (answer.rstrip() + " " + canary.text).lstrip()


def extraction_prefix(answer: str, canary: Canary) -> str:
    """The planted answer up to (not including) the secret: the assistant prefix extraction continues."""
    planted = planted_answer(answer, canary)
    at = planted.rindex(canary.text) + len(canary_prefix(canary))
    return planted[:at]


def candidate_secrets(canary: Canary, n: int, seed: int) -> list[str]:
    """``n`` distinct secrets drawn uniformly from the space, never the canary's own."""
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n < SECRET_SPACE:
        raise ValueError(f"The 'n' parameter must be an int in [1, {SECRET_SPACE - 1}]. Got {n!r} instead.")
    own = _secret_value(canary.secret)
    rng = np.random.default_rng(seed)
    draw = rng.choice(SECRET_SPACE - 1, size=n, replace=False)
    draw[draw >= own] += 1  # uniform over the |R| - 1 other secrets
    return [_format_secret(int(v)) for v in draw]


def exposure(canary_score: float, candidate_scores: Sequence[float], space_size: int = SECRET_SPACE) -> float:
    """log2|R| - log2(estimated rank) of the canary among all ``space_size`` secrets (module docstring).

    Scores are model log-likelihoods of the full canary text, higher = more likely. With
    ``space_size = len(candidate_scores) + 1`` (every other secret scored) the rank is exact.
    """
    c = np.asarray(candidate_scores, dtype=np.float64)
    if not len(c):
        raise ValueError("candidate_scores is empty: exposure needs at least one candidate")
    if space_size < len(c) + 1:
        raise ValueError(f"The 'space_size' parameter must be > the number of candidates ({len(c)}). "
                         f"Got {space_size!r} instead.")
    above = float(np.sum(c > canary_score)) + 0.5 * float(np.sum(c == canary_score))
    rank = 1.0 + above * (space_size - 1) / len(c)
    return math.log2(space_size) - math.log2(rank)


def canary_extracted(canary: Canary, text: str) -> bool:
    """Whether ``text`` (a model's continuation) contains the secret.

    The secret's digits may be written with any whitespace between them ("482193" and "4 8 2 1 9 3"
    both count) but must not be part of a longer number (a digit right before or after, with at most
    one space between), so the member number followed by other digits is no match. Searching the whole text (not its first digits) makes a verbatim replay of the
    canary sentence count too.
    """
    pattern = r"(?<![0-9])(?<![0-9] )" + r"\s*".join(canary.secret.replace(" ", "")) + r"(?!\s?[0-9])"
    return re.search(pattern, text) is not None
