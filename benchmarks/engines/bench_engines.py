"""The three engines on the same work: hf (in process), vllm (offline LLM), openai (a real vLLM server).

    .venv-vllm/bin/python -m benchmarks.engines.bench_engines --prompts 32 --new-tokens 96 --out engines.json

Greedy answers of the base and two LoRA adapters (made here with peft on the default model: random B
matrices, r=8 q/v and r=16 on all seven projections, so they really change the answers) to the first N
bundled held-out prompts (English then Korean). Reported per engine: the start-up (model load / LLM start /
server ready) and the generation wall time of all targets, new tokens per second, how many answers are
identical to the hf engine's, and the largest per-token log-prob difference to the hf engine when the same
prompts with their reference answers are scored (teacher forcing). ``vllm_merged``: the all7 adapter merged
into the weights by peft and served by vLLM without LoRA (the fast CPU path), compared with the hf engine's
all7 answers. float32 on CPU. Each engine runs in this one process, one after the other; the server is a
child process started after the offline LLMs are released.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SEVEN = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def random_lora(base_path: Path, out: Path, *, r: int, targets: list[str], seed: int, std: float = 0.02) -> Path:
    """A peft LoRA folder on ``base_path`` with random B matrices (peft's default B is zero: no effect)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, std)
    peft_model.save_pretrained(out)
    return out


def demo_loras(base_path: Path, root: Path) -> dict[str, Path]:
    return {"qv": random_lora(base_path, root / "qv", r=8, targets=["q_proj", "v_proj"], seed=1),
            "all7": random_lora(base_path, root / "all7", r=16, targets=SEVEN, seed=2)}


def merged_model(base_path: Path, adapter: Path, out: Path) -> Path:
    """The adapter merged into a copy of the base weights (peft ``merge_and_unload``), tokenizer beside it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    PeftModel.from_pretrained(model, adapter).merge_and_unload().save_pretrained(out)
    AutoTokenizer.from_pretrained(base_path).save_pretrained(out)
    return out


def bundled_items(n: int) -> list:
    from evalkit.data import load_suite

    items = [p for f in ("eco_heldout_en.jsonl", "eco_heldout_ko.jsonl")
             for p in load_suite(REPO / "prompts" / f, require_reference=True)]
    return items[:n]


def _run_targets(engine, targets: dict, prompts, new_tokens: int) -> tuple[dict, float, int]:
    t0 = time.perf_counter()
    out, tokens = {}, 0
    for name, target in targets.items():
        engine.use(target)
        gens = engine.generate(prompts, max_new_tokens=new_tokens, batch_size=len(prompts), progress=False)
        out[name] = [g[0].text for g in gens]
        tokens += sum(g[0].n_tokens for g in gens)
    return out, time.perf_counter() - t0, tokens


def _score_targets(engine, targets: dict, convs) -> tuple[dict, float]:
    t0 = time.perf_counter()
    out = {}
    for name, target in targets.items():
        engine.use(target)
        out[name] = [s.target.logprobs.tolist() for s in engine.score(convs, progress=False)]
    return out, time.perf_counter() - t0


def _max_diff(a: list, b: list) -> float:
    """Largest |log p| difference over every scored token (the token counts must agree)."""
    import numpy as np

    assert [len(x) for x in a] == [len(y) for y in b], "different scored tokens"
    return float(max(np.abs(np.asarray(x, dtype=np.float64) - y).max() for x, y in zip(a, b) if len(x)))


def _same(a: list, b: list) -> str:
    return f"{sum(x == y for x, y in zip(a, b))}/{len(a)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    # a step of a big LoRA batch on a busy CPU can outlast vLLM's 300 s worker timeout (docs/engines.md)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=96)
    ap.add_argument("--out", type=Path, default=Path("engines.json"))
    ap.add_argument("--resume", action="store_true",
                    help="keep the engines already in --out (same sizes) and run only the missing ones")
    args = ap.parse_args()
    # KV cache of every engine, the server's included: without it vLLM's CPU worker reserves 92% of the NUMA
    # node's memory and refuses to start when this process still holds the earlier engines' pages
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from evalkit.engines.openai_engine import EndpointEngine
    from evalkit.runtime.engine import Engine
    from evalkit.runtime.models import load_tokenizer, resolve_base
    from evalkit.runtime.vllm_engine import VllmEngine, release_llms

    base = resolve_base("default")
    items = bundled_items(args.prompts)
    prompts = [list(p.messages) for p in items]
    convs = [list(p.messages) + [{"role": "assistant", "content": p.reference}] for p in items]
    work = Path(tempfile.mkdtemp(prefix="evalkit-engines-"))
    adapters = demo_loras(base.path, work)
    merged = merged_model(base.path, adapters["all7"], work / "all7-merged")
    local = {"base": None, **adapters}
    rows: dict = {"setup": {"prompts": len(prompts), "new_tokens": args.new_tokens, "targets": list(local),
                            "scored_conversations": len(convs), "dtype": "float32", "device": "cpu",
                            "cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()}}
    answers: dict = {}
    logprobs: dict = {}
    if args.resume and args.out.exists():
        old = json.loads(args.out.read_text(encoding="utf-8"))
        if {k: old["rows"]["setup"][k] for k in ("prompts", "new_tokens")} != \
                {"prompts": len(prompts), "new_tokens": args.new_tokens}:
            raise SystemExit(f"--resume: {args.out} was measured at other sizes")
        rows, answers, logprobs = old["rows"], old["answers"], old.get("logprobs", {})
        rows["setup"]["resumed_load_average"] = os.getloadavg()

    def finish(key: str) -> None:
        """Agreement of ``key`` with the hf engine, printed and written at once: a stopped run keeps it."""
        if key != "hf":
            rows[key]["identical_to_hf"] = {n: _same(answers["hf"][n], answers[key][n]) for n in answers[key]}
            if key in logprobs:
                rows[key]["max_logprob_diff_vs_hf"] = {n: _max_diff(logprobs["hf"][n], logprobs[key][n])
                                                       for n in logprobs[key]}
        if key == "openai":
            rows[key]["identical_to_vllm"] = {n: _same(answers["vllm"][n], answers[key][n]) for n in local}
        if key == "openai_stream":
            rows[key]["identical_to_non_streamed"] = {n: _same(answers["openai"][n], answers[key][n]) for n in local}
        print(json.dumps({key: rows[key]}), flush=True)
        args.out.write_text(json.dumps({"rows": rows, "answers": answers, "logprobs": logprobs},
                                       ensure_ascii=False, indent=1), encoding="utf-8")

    def offline(key: str, make, targets: dict, note: str = "") -> None:
        if key in rows:  # --resume
            if key == "hf" and "hf" not in logprobs:  # files written before logprobs were kept
                logprobs["hf"], _ = _score_targets(make(), targets, convs)
            return
        t = time.perf_counter()
        engine = make()
        engine.llm if isinstance(engine, VllmEngine) else engine.model  # noqa: B018 (load now: the start-up)
        start = time.perf_counter() - t
        answers[key], wall, tok = _run_targets(engine, targets, prompts, args.new_tokens)
        logprobs[key], score_s = _score_targets(engine, targets, convs)
        rows[key] = {"start_s": round(start, 1), "generate_s": round(wall, 1), "new_tokens": tok,
                     "new_tokens_per_s": round(tok / wall, 1), "score_s": round(score_s, 1),
                     "version": engine.version, **({"note": note} if note else {})}
        release_llms()
        del engine
        gc.collect()
        finish(key)

    offline("hf", lambda: Engine("default", cache=False), local)
    offline("vllm", lambda: VllmEngine("default", adapters=list(adapters.values()), cache=False), local,
            "one LLM with enable_lora; the first target's call also computes the other targets (scheduled together)")
    offline("vllm_merged", lambda: VllmEngine(str(merged), cache=False), {"all7": None},
            "the all7 adapter merged into the weights (peft merge_and_unload), vLLM without LoRA")

    port = _free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(base.path),
           "--served-model-name", "base", "--enable-lora", "--max-loras", "2", "--max-lora-rank", "16",
           "--lora-modules", *[f"{k}={v}" for k, v in adapters.items()], "--dtype", "float32",
           "--max-model-len", "4096", "--seed", "0", "--host", "127.0.0.1", "--port", str(port)]
    t = time.perf_counter()
    log = open(work / "server.log", "wb")  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS": "3600"})
    try:
        import httpx

        url = f"http://127.0.0.1:{port}/v1"
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited: see {work / 'server.log'}")
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(2)
        start = time.perf_counter() - t
        served = {name: name for name in local}
        for stream in (False, True):
            ep = EndpointEngine(url, stream=stream, concurrency=len(prompts), tokenizer=load_tokenizer(base))
            key = "openai_stream" if stream else "openai"
            answers[key], wall, tok = _run_targets(ep, served, prompts, args.new_tokens)
            rows[key] = {"start_s": round(start, 1), "generate_s": round(wall, 1), "new_tokens": tok,
                         "new_tokens_per_s": round(tok / wall, 1), "concurrency": len(prompts),
                         "server": "python -m vllm.entrypoints.openai.api_server"}
            if not stream:  # scoring does not stream
                logprobs[key], score_s = _score_targets(ep, served, convs)
                rows[key]["score_s"] = round(score_s, 1)
            finish(key)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        log.close()
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
