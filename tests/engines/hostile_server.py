"""A local OpenAI-compatible server that answers correctly but streams as awkwardly as real servers do.

Started by the tests on 127.0.0.1 with a random port, in a thread; it stops with the fixture. Every answer is
:func:`expected_answer` of the prompt, so a test knows what it must read back. Streams (``"stream": true``):

* the SSE bytes are cut into 1..7-byte chunks (cutting CRLF pairs and UTF-8 characters in half), flushed one
  by one; lines end in CRLF or LF alternately; comment lines (``: keep-alive``) come between events;
  ``data:`` is written with and without the space; text deltas are 1-3 characters;
* the ``[DONE]`` line is left out for every other prompt (the finish_reason chunk is there);
* the FIRST stream of a prompt containing "drop" closes before its end (no finish_reason, no [DONE]); the
  second attempt is complete; a prompt containing "always-drop" is never complete;
* the first request for a prompt containing "busy" gets HTTP 429.

Models: ``alpha`` and ``beta`` (LoRAs, parent ``base-model``) and ``base-model``. ``/completions`` with
``prompt_logprobs`` returns log p(token t) = -(token_id % 7 + 1) / 10 for every prompt token after the first,
and rank 1 (the top-1 token) for even token ids, 2 for odd ones.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional

MODELS = [{"id": "base-model", "object": "model", "root": "/models/base", "parent": None},
          {"id": "alpha", "object": "model", "root": "/adapters/alpha", "parent": "base-model"},
          {"id": "beta", "object": "model", "root": "/adapters/beta", "parent": "base-model"}]


def expected_answer(model: str, prompt: str) -> str:
    """What the server answers: multi-byte text, a real newline, a literal backslash-n, spaces inside."""
    return f"{model} → «{prompt[:24]}» 텀블러 ☕🌍 naïve café\nline two \\n stays literal  end"


def prompt_logprob(token_id: int) -> float:
    return -((token_id % 7) + 1) / 10


def prompt_rank(token_id: int) -> int:
    return 1 if token_id % 2 == 0 else 2


class HostileServer:
    def __init__(self, *, api_key: Optional[str] = None, models_body: Optional[bytes] = None, delay: float = 0.0):
        self.api_key, self.models_body, self.delay = api_key, models_body, delay
        self.attempts: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.requests = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"  # the body ends when the connection closes (lets a stream stop short)

            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _authorized(self) -> bool:
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._send(401, b'{"error": {"message": "invalid api key"}}')
                    return False
                return True

            def do_GET(self):
                if not self._authorized():
                    return
                if self.path.endswith("/models"):
                    self._send(200, server.models_body or json.dumps({"object": "list", "data": MODELS}).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

            def do_POST(self):
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    time.sleep(server.delay)
                    if self.path.endswith("/chat/completions"):
                        self._chat(body)
                    elif self.path.endswith("/completions"):
                        self._completions(body)
                    else:
                        self._send(404, b'{"error": "not found"}')
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def _chat(self, body: dict) -> None:
                prompt = body["messages"][-1]["content"]
                key = f"{body['model']}|{prompt}|{bool(body.get('stream'))}"
                with server._lock:
                    server.attempts[key] = attempt = server.attempts.get(key, 0) + 1
                if "busy" in prompt and attempt == 1:
                    self._send(429, b'{"error": {"message": "slow down"}}')
                    return
                text = expected_answer(body["model"], prompt)
                if not body.get("stream"):
                    self._send(200, json.dumps({"id": "x", "object": "chat.completion", "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                        "usage": {"completion_tokens": 9}}, ensure_ascii=False).encode())
                    return
                drop = "always-drop" in prompt or ("drop" in prompt and attempt == 1)
                self._stream(text, drop=drop, send_done=len(prompt) % 2 == 0)

            def _stream(self, text: str, *, drop: bool, send_done: bool) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.end_headers()
                pieces, i, n = [], 0, 0
                while i < len(text):
                    step = 1 + n % 3
                    pieces.append(text[i:i + step])
                    i, n = i + step, n + 1
                lines = [": keep-alive"]
                for k, p in enumerate(pieces):
                    chunk = {"choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
                    lines.append(("data: " if k % 2 else "data:") + json.dumps(chunk, ensure_ascii=False))
                    lines.append("")
                    if k % 5 == 0:
                        lines += [": ping", ""]
                if drop:
                    lines = lines[:len(lines) // 2]
                else:
                    lines.append("data: " + json.dumps({"choices": [{"index": 0, "delta": {},
                                                                     "finish_reason": "stop"}]}))
                    lines.append("")
                    lines.append("data: " + json.dumps({"choices": [], "usage": {"completion_tokens": 9}}))
                    lines.append("")
                    if send_done:
                        lines += ["data: [DONE]", ""]
                raw = "".join(line + ("\r\n" if j % 2 else "\n") for j, line in enumerate(lines)).encode("utf-8")
                j, n = 0, 0
                while j < len(raw):
                    step = 1 + (n * 5) % 7
                    self.wfile.write(raw[j:j + step])
                    self.wfile.flush()
                    j, n = j + step, n + 1
                    if n % 16 == 0:
                        time.sleep(0.001)  # let the client see separate reads

            def _completions(self, body: dict) -> None:
                ids = body["prompt"]
                if "prompt_logprobs" not in body:
                    self._send(400, b'{"error": {"message": "unknown field"}}')
                    return
                rows = [None] + [{str(t): {"logprob": prompt_logprob(t), "rank": prompt_rank(t)}} for t in ids[1:]]
                self._send(200, json.dumps({"choices": [{"index": 0, "text": "x", "prompt_logprobs": rows}]}).encode())

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "HostileServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
