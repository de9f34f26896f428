"""The openai engine against a hostile local server: no character lost, retries, bounded concurrency, and
one-line errors (exit 2) for every way an endpoint goes wrong."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest

from evalkit.cli import main
from evalkit.engines.openai_engine import EndpointEngine
from evalkit.errors import ConfigError, EndpointError

from .hostile_server import HostileServer, expected_answer, prompt_logprob

PROMPTS = ["How do I save energy at home?", "한국어로 텀블러 사용법을 알려줘", "drop me a tip on bikes",
           "busy commuters: what now?", "Café culture & plastic cups — ideas?", "x"]


@pytest.fixture()
def server():
    with HostileServer() as s:
        yield s


def _ask(engine, prompts):
    return [g[0].text for g in engine.generate([[{"role": "user", "content": p}] for p in prompts],
                                               max_new_tokens=32)]


@pytest.mark.parametrize("stream", [False, True])
def test_every_character_survives_the_stream(server, stream):
    engine = EndpointEngine(server.url, stream=stream, concurrency=3, backoff=0.01)
    engine.use("alpha")
    # the server's answer is known in advance; .strip() as every engine does
    assert _ask(engine, PROMPTS) == [expected_answer("alpha", p).strip() for p in PROMPTS]


def test_streamed_text_equals_non_streamed_text(server):
    plain = EndpointEngine(server.url, backoff=0.01)
    streamed = EndpointEngine(server.url, stream=True, backoff=0.01)
    for e in (plain, streamed):
        e.use("beta")
    assert _ask(plain, PROMPTS) == _ask(streamed, PROMPTS)


def test_early_close_and_429_are_retried(server):
    engine = EndpointEngine(server.url, stream=True, backoff=0.01)
    engine.use("alpha")
    _ask(engine, ["drop me a tip on bikes", "busy commuters: what now?"])
    assert server.attempts["alpha|drop me a tip on bikes|True"] == 2  # closed early once, then complete
    assert server.attempts["alpha|busy commuters: what now?|True"] == 2  # 429 once


def test_a_stream_that_always_ends_early_is_reported(server):
    engine = EndpointEngine(server.url, stream=True, retries=2, backoff=0.01)
    engine.use("alpha")
    with pytest.raises(EndpointError, match=r"failed 3 times; last: the stream closed before its end"):
        _ask(engine, ["always-drop"])
    assert server.attempts["alpha|always-drop|True"] == 3


def test_concurrency_is_bounded_and_used():
    with HostileServer(delay=0.05) as s:
        engine = EndpointEngine(s.url, concurrency=3)
        engine.use("alpha")
        _ask(engine, [f"prompt {i}" for i in range(12)])
        assert 2 <= s.max_in_flight <= 3


def test_missing_model_lists_what_is_served(server):
    engine = EndpointEngine(server.url)
    with pytest.raises(EndpointError, match=r"does not serve a model named 'gamma'; it serves: alpha, base-model, beta"):
        engine.use("gamma")


def test_scores_are_the_prompt_logprobs_of_the_answer_tokens(server, tiny_llama):
    from evalkit.runtime.chat_templates import IGNORE_INDEX, encode_conversation
    from evalkit.runtime.models import load_tokenizer, resolve_base

    tok = load_tokenizer(resolve_base(str(tiny_llama)))
    engine = EndpointEngine(server.url, tokenizer=tok)
    engine.use("alpha")
    conv = [{"role": "user", "content": "Cut emissions?"}, {"role": "assistant", "content": "Cycle to work."}]
    [s] = engine.score([conv], with_base=True)
    ids, labels = encode_conversation(tok, conv, 512)
    want = [prompt_logprob(t) for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]  # the answer + end marker
    assert 0 < len(want) < len(ids)
    np.testing.assert_allclose(s.target.logprobs, want, rtol=0, atol=1e-6)
    assert s.target.nll == pytest.approx(-np.mean(want)) and s.target.n_tokens == len(want)
    assert s.base is not None and len(s.target.mu) == 0  # base = the LoRA's parent; no Min-K%++ moments
    # EZ-MIA's top-1 flags: rank 1 is the top-1 token (the server ranks even ids 1, odd ids 2)
    ranked = [t % 2 == 0 for t, lab in zip(ids, labels) if lab != IGNORE_INDEX]
    assert 0 < sum(ranked) < len(ranked)
    np.testing.assert_array_equal(s.target.correct, ranked)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_evaluates_an_endpoint_target_streaming(server, tmp_path, mini_data, capsys):
    out = tmp_path / "out"
    argv = ["eval", "openai:alpha", "--endpoint", server.url, "--stream", "--concurrency", "4", "--out", str(out),
            "--suite", str(mini_data["suite_en"]), "--train-data", str(mini_data["train"]),
            "--val-data", str(mini_data["val"]), "--extraction-n", "2"]
    assert main(argv) == 0, capsys.readouterr().err
    rec = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert rec["target"]["kind"] == "endpoint" and rec["engine"]["name"] == "openai"
    prompts = [json.loads(x)["prompt"] for x in mini_data["suite_en"].read_text(encoding="utf-8").splitlines()]
    assert [s["prediction"] for s in rec["samples"]] == [expected_answer("alpha", p).strip() for p in prompts]
    assert any("pass --base" in n["message"] for n in rec["notices"])  # losses listed as not measured
    assert "train_loss" not in rec["summary"]


@pytest.mark.parametrize("case, message", [
    ("refused", "cannot connect"),
    ("missing-model", "does not serve a model named 'nope'; it serves: alpha, base-model, beta"),
    ("auth", "HTTP 401, the server refused our credentials"),
    ("malformed", "not JSON"),
    ("no-endpoint", "openai:NAME targets need --endpoint URL"),
    ("mixed", "are local models and the others are openai:NAME"),
])
def test_bad_endpoints_are_one_line_and_exit_2(case, message, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    target = "openai:nope" if case == "missing-model" else "openai:alpha"
    with HostileServer(api_key="sekret" if case == "auth" else None,
                       models_body=b"<html>oops</html>" if case == "malformed" else None) as s:
        url = f"http://127.0.0.1:{_free_port()}/v1" if case == "refused" else s.url
        argv = ["compare", "base", target] if case == "mixed" else ["eval", target]
        argv += [] if case == "no-endpoint" else ["--endpoint", url]
        assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if ln.startswith("evalkit: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert not out.exists()  # nothing half-written


def test_bad_settings(server):
    with pytest.raises(ConfigError, match="concurrency"):
        EndpointEngine(server.url, concurrency=0)
    with pytest.raises(ConfigError, match="not an http"):
        EndpointEngine("localhost:8000")


def test_an_answer_cut_at_max_tokens_drops_only_a_trailing_partial_character():
    """As the local engines (runtime/generate.py decode_answer): the server decodes the bytes of a character cut
    in half to U+FFFD at the end of a cut answer; a complete answer keeps whatever it says."""
    cut = EndpointEngine._generation(" 🌟🌟\ufffd", "length", 7)
    assert (cut.text, cut.hit_max_tokens, cut.n_tokens) == ("🌟🌟", True, 7)
    done = EndpointEngine._generation("a \ufffd b\ufffd", "stop", 6)
    assert (done.text, done.hit_max_tokens, done.n_tokens) == ("a \ufffd b\ufffd", False, 5)
