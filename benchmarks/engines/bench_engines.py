"""The three engines on the same work: hf (in process), vllm (offline LLM), openai (a real vLLM server).

    .venv-vllm/bin/python -m benchmarks.engines.bench_engines --prompts 32 --new-tokens 96 --out engines.json

Greedy answers of the base and two LoRA adapters (made here with peft on the default model: random B
matrices, r=8 q/v and r=16 on all seven projections, so they really change the answers) to the first N
bundled held-out prompts (English then Korean). Reported per engine: the start-up (model load / LLM start /
server ready) and the generation wall time of all targets, new tokens per second, and how many answers are
identical to the hf engine's. float32 on CPU. Each engine runs in this one process, one after the other; the
server is a child process started after the offline LLM is released.
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
# a step of a big LoRA batch on a busy CPU can outlast vLLM's 300 s worker timeout (docs/engines.md)
SERVER_ENV = {**os.environ, "VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS": "3600"}
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


def bundled_prompts(n: int) -> list[list[dict]]:
    from evalkit.data import load_suite

    items = [p for f in ("eco_heldout_en.jsonl", "eco_heldout_ko.jsonl")
             for p in load_suite(REPO / "prompts" / f, require_reference=True)]
    return [list(p.messages) for p in items[:n]]


def _run_targets(engine, adapters: dict, prompts, new_tokens: int) -> tuple[dict, float, int]:
    t0 = time.perf_counter()
    out, tokens = {}, 0
    for name, folder in (("base", None), *adapters.items()):
        engine.use(folder)
        gens = engine.generate(prompts, max_new_tokens=new_tokens, batch_size=len(prompts), progress=False)
        out[name] = [g[0].text for g in gens]
        tokens += sum(g[0].n_tokens for g in gens)
    return out, time.perf_counter() - t0, tokens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=96)
    ap.add_argument("--out", type=Path, default=Path("engines.json"))
    args = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    from evalkit.engines.openai_engine import EndpointEngine
    from evalkit.runtime.engine import Engine
    from evalkit.runtime.models import resolve_base
    from evalkit.runtime.vllm_engine import VllmEngine

    base = resolve_base("default")
    prompts = bundled_prompts(args.prompts)
    work = Path(tempfile.mkdtemp(prefix="evalkit-engines-"))
    adapters = demo_loras(base.path, work)
    rows: dict = {"setup": {"prompts": len(prompts), "new_tokens": args.new_tokens, "targets": ["base", *adapters],
                            "dtype": "float32", "device": "cpu", "cpu_count": os.cpu_count(),
                            "load_average_at_start": os.getloadavg()}}
    answers: dict = {}

    t = time.perf_counter()
    hf = Engine("default", cache=False)
    hf.model  # noqa: B018 (load now, timed as start-up)
    start = time.perf_counter() - t
    answers["hf"], wall, tok = _run_targets(hf, adapters, prompts, args.new_tokens)
    rows["hf"] = {"start_s": round(start, 1), "generate_s": round(wall, 1), "new_tokens": tok,
                  "new_tokens_per_s": round(tok / wall, 1), "version": hf.version}
    del hf
    gc.collect()
    print(json.dumps(rows["hf"]), flush=True)

    t = time.perf_counter()
    vl = VllmEngine("default", adapters=list(adapters.values()), cache=False)
    vl.llm  # noqa: B018
    start = time.perf_counter() - t
    answers["vllm"], wall, tok = _run_targets(vl, adapters, prompts, args.new_tokens)
    rows["vllm"] = {"start_s": round(start, 1), "generate_s": round(wall, 1), "new_tokens": tok,
                    "new_tokens_per_s": round(tok / wall, 1), "version": vl.version,
                    "note": "the first target's call also computes the other targets (scheduled together)"}
    from evalkit.runtime import vllm_engine

    del vl
    vllm_engine._LLMS.clear()
    gc.collect()
    print(json.dumps(rows["vllm"]), flush=True)

    port = _free_port()
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(base.path),
           "--served-model-name", "base", "--enable-lora", "--max-loras", "2", "--max-lora-rank", "16",
           "--lora-modules", *[f"{k}={v}" for k, v in adapters.items()], "--dtype", "float32",
           "--max-model-len", "4096", "--seed", "0", "--host", "127.0.0.1", "--port", str(port)]
    t = time.perf_counter()
    log = open(work / "server.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=SERVER_ENV)
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
        for stream in (False, True):
            ep = EndpointEngine(url, stream=stream, concurrency=len(prompts))
            key = "openai_stream" if stream else "openai"
            t0 = time.perf_counter()
            out = {}
            for name in ("base", *adapters):
                ep.use(name)
                out[name] = [g[0].text for g in ep.generate(prompts, max_new_tokens=args.new_tokens)]
            wall = time.perf_counter() - t0
            answers[key] = out
            rows[key] = {"start_s": round(start, 1), "generate_s": round(wall, 1),
                         "concurrency": len(prompts), "server": "python -m vllm.entrypoints.openai.api_server"}
            print(json.dumps(rows[key]), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    for key in ("vllm", "openai", "openai_stream"):
        rows[key]["identical_to_hf"] = {name: f"{sum(a == b for a, b in zip(answers['hf'][name], answers[key][name]))}"
                                        f"/{len(prompts)}" for name in answers["hf"]}
    rows["openai"]["identical_to_vllm"] = {n: f"{sum(a == b for a, b in zip(answers['vllm'][n], answers['openai'][n]))}"
                                           f"/{len(prompts)}" for n in answers["vllm"]}
    rows["openai_stream"]["identical_to_non_streamed"] = {
        n: f"{sum(a == b for a, b in zip(answers['openai'][n], answers['openai_stream'][n]))}/{len(prompts)}"
        for n in answers["openai"]}
    args.out.write_text(json.dumps({"rows": rows, "answers": answers}, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
