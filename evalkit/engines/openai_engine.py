"""The ``openai`` engine: targets ``openai:NAME`` answered by any OpenAI-compatible server (docs/engines.md).

    engine = EndpointEngine("http://127.0.0.1:8000/v1", stream=True, concurrency=8)
    engine.use("seedlike")                    # a name /v1/models lists (vLLM: the base or a --lora-modules name)
    gens = engine.generate(prompts, max_new_tokens=96)

* Answers: ``/chat/completions``, ``concurrency`` requests in flight, each retried with exponential backoff on
  429 / 5xx / a dropped connection / a stream that closes before its last event. ``stream=True`` reads
  server-sent events with httpx-sse (spec-conformant line splitting: CRLF, LF, CR; comments; ``data:`` with or
  without a space; incremental UTF-8 decoding, so events and characters split across chunks survive). A stream
  is complete at ``data: [DONE]`` or, for servers that never send it, at a chunk with a ``finish_reason``.
* Scores (loss metrics): ``/completions`` on the token ids evalkit's own chat template gives (so the numbers
  are those of the other engines), asking for the log-prob of every prompt token — vLLM's ``prompt_logprobs``,
  else OpenAI's ``echo`` + ``logprobs``. This needs the served model's tokenizer (``--base``); without it, or
  when the server offers neither, loss metrics are listed as not measured. Min-K%++ is never measured here.
* Results are not cached: a name behind a URL is not content-addressed (the server may be redeployed).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import time
from typing import Any, Callable, Iterable, Optional, Sequence, Union
from urllib.parse import urlsplit

import numpy as np

from ..errors import ConfigError, EndpointError
from .base import BaseInfo, Generation, ScoredExample, TokenScores
from .results_cache import messages_of

__all__ = ["EndpointEngine"]

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class _Retryable(Exception):
    """A failure worth another try (429 / 5xx, dropped connection, stream closed early)."""


def _api_base(url: str) -> str:
    """``http://host:8000`` -> ``http://host:8000/v1``; a URL with a path is taken as given."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--endpoint {url!r}: not an http(s) URL; pass e.g. http://127.0.0.1:8000/v1")
    return url.rstrip("/") + ("/v1" if parts.path in ("", "/") else "")


def _first_line(text: str, limit: int = 200) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line[:limit]


class EndpointEngine:
    """:class:`evalkit.engines.base.Engine` over HTTP. ``tokenizer``: the served model's tokenizer (a loaded
    transformers tokenizer with evalkit's template, see runtime.models.load_tokenizer) for scoring, or None."""

    name = "openai"
    cache = None  # endpoint results are not cached (module docstring)
    progress_label = ""

    def __init__(self, url: str, *, stream: bool = False, concurrency: int = 8, api_key_env: Optional[str] = None,
                 tokenizer=None, timeout: float = 600.0, retries: int = 4, backoff: float = 0.5,
                 transport=None):
        import httpx

        if not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"The 'concurrency' setting must be a positive int. Got {concurrency!r} instead.")
        self.url = _api_base(url)
        self.stream = stream
        self.concurrency = concurrency
        self.retries, self.backoff = retries, backoff
        headers = {}
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ConfigError(f"--api-key-env {api_key_env}: that environment variable is not set; "
                                  f"export {api_key_env}=<the endpoint's API key>")
            headers["Authorization"] = f"Bearer {key}"
        self._client = httpx.Client(headers=headers, timeout=httpx.Timeout(timeout, connect=10.0),
                                    limits=httpx.Limits(max_connections=concurrency), transport=transport)
        self._models = self._list_models()
        self.tokenizer = tokenizer
        self.active: Optional[str] = None
        self._scoring: Optional[str] = None  # "prompt_logprobs" | "echo" | "" (none), probed on first score
        self.base_ref = BaseInfo(identity=f"{self.url} (OpenAI-compatible endpoint)")

    # ------------------------------------------------------------ interface

    @property
    def version(self) -> str:
        return f"{self.url} {json.dumps(self._models.get(self.active) or {}, sort_keys=True)}"

    @property
    def warnings(self) -> tuple[str, ...]:
        return ()

    @property
    def can_score(self) -> bool:
        if self.tokenizer is None:
            return False
        if self._scoring is None:
            self._scoring = self._probe_scoring()
        return bool(self._scoring)

    @property
    def not_measured(self) -> tuple[str, ...]:
        if self.tokenizer is None:
            return ("loss metrics (losses, loss gap, membership inference, canary exposure): scoring through an "
                    "endpoint needs the served model's tokenizer; pass --base",)
        if not self.can_score:
            return (f"loss metrics: {self.url} offers no prompt log-probs (neither vLLM's prompt_logprobs nor "
                    "echo + logprobs on /completions)",)
        return ()

    def use(self, target: Union[str, None], *, allow_pickle: bool = False) -> str:
        if not isinstance(target, str) or not target:
            raise ConfigError("the openai engine evaluates served models only: write the target as openai:NAME")
        if target not in self._models:
            raise EndpointError(f"{self.url} does not serve a model named '{target}'; it serves: "
                                f"{', '.join(sorted(self._models)) or '(none)'}")
        self.active = target
        card = self._models[target]
        base = card.get("parent") or None
        self.base_ref = BaseInfo(identity=f"{base or target} @ {self.url}", content_hash=None, spec=self.url)
        return target

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "endpoint": self.url, "model": self.active,
                "stream": self.stream, "concurrency": self.concurrency, "scoring": self._scoring or None}

    def generate(self, items: Iterable[Any], *, max_new_tokens: int = 128, batch_size: int = 16,
                 do_sample: bool = False, temperature: float = 0.7, top_p: float = 0.95, num_samples: int = 1,
                 seed: int = 0, progress: bool = True) -> list[list[Generation]]:
        self._need_target()
        body = {"model": self.active, "max_tokens": max_new_tokens, "n": num_samples if do_sample else 1,
                "temperature": temperature if do_sample else 0.0, "seed": seed}
        if do_sample:
            body["top_p"] = top_p
        prompts = [messages_of(it) for it in items]
        answer = self._chat_stream if self.stream else self._chat
        gens = self._map(lambda msgs: answer({**body, "messages": msgs}), prompts)
        return [g * (num_samples // len(g)) for g in gens]

    def score(self, conversations: Iterable[Any], *, with_base: bool = False, max_length: int = 512,
              batch_size: int = 8, progress: bool = True) -> list[ScoredExample]:
        self._need_target()
        if not self.can_score:
            raise EndpointError(self.not_measured[0])
        from ..runtime.chat_templates import IGNORE_INDEX, encode_conversation

        encoded = [encode_conversation(self.tokenizer, messages_of(c), max_length) for c in conversations]
        target = self._map(lambda e: self._score_one(self.active, e, IGNORE_INDEX), encoded)
        base_name = self._models[self.active].get("parent") if with_base else None
        if not base_name:
            return [ScoredExample(t) for t in target]
        base = self._map(lambda e: self._score_one(base_name, e, IGNORE_INDEX), encoded)
        return [ScoredExample(t, b) for t, b in zip(target, base)]

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------ input sizes (the preflight's checks)

    def context_length(self) -> Optional[int]:
        """The served model's context (vLLM's /v1/models ``max_model_len``) when we can count prompt tokens."""
        n = (self._models.get(self.active) or next(iter(self._models.values()), {})).get("max_model_len")
        return int(n) if self.tokenizer is not None and isinstance(n, int) else None

    def prompt_lengths(self, prompts: Iterable[Any]) -> list[int]:
        from ..runtime.chat_templates import encode_prompt

        return [len(encode_prompt(self.tokenizer, messages_of(p))) for p in prompts]

    def conversation_lengths(self, conversations: Iterable[Any]) -> list[int]:
        if self.tokenizer is None:
            return []  # nothing to count with: no cut is reported
        from ..runtime.chat_templates import encode_text, render

        return [len(encode_text(self.tokenizer, render(self.tokenizer, messages_of(c)))) for c in conversations]

    def text_lengths(self, texts: Iterable[str]) -> list[int]:
        """Tokens of each text; without the tokenizer, its UTF-8 bytes: an upper bound for byte-level BPE
        tokenizers (every token is at least one byte), so a max_new_tokens sized from it never cuts answers."""
        if self.tokenizer is None:
            return [len(t.encode("utf-8")) for t in texts]
        return [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]

    # ------------------------------------------------------------ HTTP

    def _need_target(self) -> None:
        if self.active is None:
            raise ConfigError("no endpoint model chosen; call use('NAME') first")

    def _map(self, fn: Callable, rows: Sequence) -> list:
        """``fn`` over ``rows`` with at most ``concurrency`` in flight; results in order; the first error wins."""
        if not rows:
            return []
        with cf.ThreadPoolExecutor(max_workers=min(self.concurrency, len(rows))) as pool:
            return list(pool.map(fn, rows))

    def _request(self, method: str, path: str, *, attempt_fn: Optional[Callable] = None, **kw):
        """One call with retries. ``attempt_fn(response)`` reads a streamed response (raising _Retryable when it
        ends early); without it the JSON body is returned."""
        import httpx

        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                if attempt_fn is None:
                    r = self._client.request(method, self.url + path, **kw)
                    self._check(r, path)
                    return self._json(r, path)
                with self._client.stream(method, self.url + path, **kw) as r:
                    if r.status_code >= 400:
                        r.read()
                    self._check(r, path)
                    return attempt_fn(r)
            except _Retryable as e:
                last = str(e)
            except httpx.ConnectError as e:  # nothing listens there: one more try, then say so
                if attempt >= min(1, self.retries):
                    raise EndpointError(f"{self.url}: cannot connect ({_first_line(str(e)) or 'refused'}); is the "
                                        "server running and is --endpoint right?") from None
                last = f"cannot connect ({_first_line(str(e))})"
            except (httpx.TimeoutException, httpx.RemoteProtocolError, httpx.ReadError) as e:
                last = f"{type(e).__name__}: {_first_line(str(e))}"
        raise EndpointError(f"{self.url}{path}: failed {self.retries + 1} times; last: {last}")

    def _check(self, r, path: str) -> None:
        if r.status_code in (401, 403):
            raise EndpointError(f"{self.url}{path}: HTTP {r.status_code}, the server refused our credentials; "
                                "set the API key with --api-key-env VAR")
        if r.status_code in RETRY_STATUS:
            raise _Retryable(f"HTTP {r.status_code} {_first_line(r.text)}")
        if r.status_code == 404 and path == "/models":
            raise EndpointError(f"{self.url}/models: HTTP 404; is --endpoint the API root (usually ending in /v1)?")
        if r.status_code >= 400:
            raise EndpointError(f"{self.url}{path}: HTTP {r.status_code}: {_first_line(r.text)}")

    def _json(self, r, path: str) -> dict:
        try:
            body = r.json()
        except ValueError:
            raise EndpointError(f"{self.url}{path}: the server answered something that is not JSON "
                                f"({_first_line(r.text, 80)!r}); is --endpoint an OpenAI-compatible API?") from None
        if not isinstance(body, dict):
            raise EndpointError(f"{self.url}{path}: expected a JSON object, got {type(body).__name__}")
        return body

    def _list_models(self) -> dict[str, dict]:
        body = self._request("GET", "/models")
        data = body.get("data")
        if not isinstance(data, list) or not all(isinstance(m, dict) and isinstance(m.get("id"), str) for m in data):
            raise EndpointError(f"{self.url}/models: no 'data' list of models with ids; is --endpoint an "
                                "OpenAI-compatible API?")
        return {m["id"]: {k: m.get(k) for k in ("id", "root", "parent", "max_model_len", "owned_by")} for m in data}

    def _choices(self, body: dict, path: str) -> list:
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise EndpointError(f"{self.url}{path}: the answer has no 'choices' ({_first_line(json.dumps(body), 120)})")
        return choices

    def _chat(self, body: dict) -> list[Generation]:
        out = self._request("POST", "/chat/completions", json=body)
        choices = sorted(self._choices(out, "/chat/completions"), key=lambda c: c.get("index", 0))
        n_total = (out.get("usage") or {}).get("completion_tokens")
        gens = []
        for c in choices:
            text = ((c.get("message") or {}).get("content")) or ""
            gens.append(self._generation(text, c.get("finish_reason"), n_total if len(choices) == 1 else None))
        return gens

    def _chat_stream(self, body: dict) -> list[Generation]:
        from httpx_sse import EventSource, SSEError

        body = {**body, "stream": True, "stream_options": {"include_usage": True}}

        def read(response) -> list[Generation]:
            texts: dict[int, list[str]] = {}
            finish: dict[int, Optional[str]] = {}
            usage = None
            done = False
            try:
                for event in EventSource(response).iter_sse():
                    if event.event == "error":
                        raise EndpointError(f"{self.url}/chat/completions: the stream sent an error event: "
                                            f"{_first_line(event.data)}")
                    if event.data.strip() == "[DONE]":
                        done = True
                        break
                    if not event.data:
                        continue
                    try:
                        chunk = json.loads(event.data)
                    except ValueError:
                        raise EndpointError(f"{self.url}/chat/completions: a stream event is not JSON "
                                            f"({_first_line(event.data, 80)!r})") from None
                    usage = chunk.get("usage") or usage
                    for c in chunk.get("choices") or []:
                        i = c.get("index", 0)
                        piece = (c.get("delta") or {}).get("content")
                        if piece:
                            texts.setdefault(i, []).append(piece)
                        if c.get("finish_reason"):
                            finish[i] = c["finish_reason"]
            except SSEError as e:  # not an event stream (content type)
                raise EndpointError(f"{self.url}/chat/completions: --stream asked for server-sent events but the "
                                    f"server answered otherwise ({e})") from None
            n = body.get("n", 1)
            if not done and len(finish) < n:
                raise _Retryable(f"the stream closed before its end ({len(finish)} of {n} answers finished)")
            n_total = (usage or {}).get("completion_tokens")
            return [self._generation("".join(texts.get(i, [])), finish.get(i), n_total if n == 1 else None)
                    for i in range(n)]

        try:
            return self._request("POST", "/chat/completions", json=body, attempt_fn=read)
        except EndpointError as e:  # servers that predate stream_options refuse it: ask once without
            if ": HTTP 400" not in str(e):
                raise
            del body["stream_options"]
            return self._request("POST", "/chat/completions", json=body, attempt_fn=read)

    @staticmethod
    def _generation(text: str, finish_reason: Optional[str], completion_tokens: Optional[int]) -> Generation:
        # Servers count the end-of-turn token they stopped at; evalkit's engines do not (generate.py).
        stopped = finish_reason != "length"
        n = int(completion_tokens) - (1 if stopped and finish_reason == "stop" else 0) if completion_tokens else 0
        # an answer cut at max_tokens can end in a partial character (U+FFFD): dropped, as the local engines
        # do (runtime/generate.py decode_answer)
        return Generation(text=(text if stopped else text.rstrip("\ufffd")).strip(), n_tokens=max(n, 0),
                          hit_max_tokens=not stopped)

    # ------------------------------------------------------------ scoring

    def _prompt_logprobs(self, model: str, ids: list[int], how: str) -> list[Optional[tuple]]:
        """(log p, rank or None) of every prompt token after the first (index 0 is None), the way ``how``
        asks for them. vLLM's ``prompt_logprobs`` rows give the token's rank in the whole vocabulary (1: the
        model's top-1); OpenAI's ``echo`` does not."""
        body: dict[str, Any] = {"model": model, "prompt": ids, "max_tokens": 1, "temperature": 0.0}
        if how == "prompt_logprobs":
            body["prompt_logprobs"] = 0
        else:
            body.update(echo=True, logprobs=0)
        choice = self._choices(self._request("POST", "/completions", json=body), "/completions")[0]
        if how == "prompt_logprobs":
            rows = choice.get("prompt_logprobs")
            if not isinstance(rows, list) or len(rows) != len(ids):
                raise EndpointError(f"{self.url}/completions: prompt_logprobs missing or of the wrong length")
            return [None if r is None else (float(r[str(t)]["logprob"]), r[str(t)].get("rank"))
                    for r, t in zip(rows, ids)]
        lp = (choice.get("logprobs") or {}).get("token_logprobs")
        if not isinstance(lp, list) or len(lp) < len(ids):
            raise EndpointError(f"{self.url}/completions: echo + logprobs gave no prompt log-probs")
        return [None if v is None else (float(v), None) for v in lp[:len(ids)]]

    def _probe_scoring(self) -> str:
        probe = self.tokenizer.encode("Hello there", add_special_tokens=False)[:4] or [0, 0]
        for how in ("prompt_logprobs", "echo"):
            try:
                self._prompt_logprobs(self.active, probe, how)
                return how
            except EndpointError:
                continue
        return ""

    def _score_one(self, model: str, encoded: tuple[list[int], list[int]], ignore: int) -> TokenScores:
        ids, labels = encoded
        rows = self._prompt_logprobs(model, ids, self._scoring or "prompt_logprobs")
        kept = [rows[t] for t in range(1, len(ids)) if labels[t] != ignore]
        picked = np.array([lp for lp, _ in kept], dtype=np.float32)
        ranks = [rank for _, rank in kept]
        # top-1 flags (EZ-MIA) only when the server ranked every token; else None: EZ-MIA is not computed
        correct = np.array([r == 1 for r in ranks], dtype=bool) if all(isinstance(r, int) for r in ranks) else None
        n = len(picked)
        empty = np.zeros(0, dtype=np.float32)  # no Min-K%++ moments: see engines.base.has_distribution
        return TokenScores(nll=float(-picked.astype(np.float64).mean()) if n else float("nan"), n_tokens=n,
                           logprobs=picked, mu=empty, sigma=empty, correct=correct)
