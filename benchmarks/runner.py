"""Run evalkit's benchmarks and write benchmarks/results/latest.json and latest.md.

    python -m benchmarks run                      # every benchmark at --size realistic
    python -m benchmarks run rouge_vs_rouge_score --size tiny
    python -m benchmarks run memo_index_1e6 --size large
    python -m benchmarks list

Every figure is a ratio of two commands (or a value) measured in the same run: the two sides are
run alternately (A B, B A, A B, ...), ``--repeats`` times, and the median ratio is reported, because
timings on these shared machines drift. Whole-process figures (wall time, peak RSS) come from
``os.wait4`` on a child process, so they include imports and model loading.

Rows of latest.json are replaced by name: running one benchmark keeps the others' last results.
Each row: {"name", "ratio" or "value", "target", "met", "detail", "size", "measured_at"}.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

__all__ = ["BENCHMARKS", "SIZES", "Context", "Measured", "measure", "alternate", "machine", "main", "run_benchmarks"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent / "README.md"

# name -> module benchmarks.bench_<module>; order = order of the table
BENCHMARKS = {
    "eval_vs_lm_eval": "bench_eval_vs_lm_eval",
    "eval_bf16_vs_lm_eval": "bench_eval_bf16_vs_lm_eval",
    "peak_rss_vs_lm_eval": "bench_peak_rss",
    "greedy_identical": "bench_greedy_identical",
    "eval_full_vs_lm_eval": "bench_eval_full_vs_lm_eval",
    "eval_full_bf16_vs_lm_eval": "bench_eval_full_bf16_vs_lm_eval",
    "compare3_vs_lm_eval": "bench_compare3_vs_lm_eval",
    "warm_cache": "bench_warm_cache",
    "rouge_vs_rouge_score": "bench_rouge",
    "memo_index_1e6": "bench_memo_index",
    "audit_1e5": "bench_audit",
    "detection_study": "bench_detection_study",
}
# tiny: the test suite (seconds); small: a smoke size (minutes, mostly start-up); realistic (the default):
# 32 prompts × 96 new tokens, batch 16, what a user runs; large: the full figures
SIZES = ("tiny", "small", "realistic", "large")


@dataclass
class Context:
    """What every benchmark gets: size, repeats, a scratch folder, and a place to share work."""

    size: str = "realistic"
    repeats: Optional[int] = None  # None: the benchmark's default for its size
    work: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "evalkit-bench")
    python: str = sys.executable
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True)
    shared: dict = field(default_factory=dict)  # e.g. compare3 hands its cold/warm compare runs to warm_cache

    def reps(self, default_by_size: dict) -> int:
        """--repeats, else the size's default: {size: n} or {size: {"repeats": n, ...}}."""
        if self.repeats:
            return int(self.repeats)
        d = default_by_size[self.size]
        return int(d["repeats"] if isinstance(d, dict) else d)

    def env(self, **extra: str) -> dict:
        """Environment for child processes: offline, evalkit importable from this checkout."""
        env = dict(os.environ)
        env.update({"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                    "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1",
                    "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)})
        env.update(extra)
        return env


# ------------------------------------------------------------------ measuring


@dataclass(frozen=True)
class Measured:
    wall_s: float
    peak_rss_mb: float  # ru_maxrss of the child (the largest RSS any of its waited-for processes reached)
    returncode: int
    cpu_s: float = 0.0  # user + system CPU time of the child: steadier than wall time on a busy machine


def measure(cmd: Sequence[str], *, env: dict, log_file: Path, cwd: Path = ROOT, check: bool = True) -> Measured:
    """Run ``cmd`` to completion; whole-process wall time and peak RSS (KiB from wait4, Linux)."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "wb") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=str(cwd), env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    m = Measured(wall, usage.ru_maxrss / 1024.0, proc.returncode, usage.ru_utime + usage.ru_stime)
    if check and m.returncode != 0:
        tail = log_file.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-15:]
        raise RuntimeError(f"benchmark command failed (exit {m.returncode}): {' '.join(map(str, cmd))}\n"
                           f"log {log_file}:\n" + "\n".join(tail))
    return m


def alternate(a: Callable[[int], float], b: Callable[[int], float], repeats: int,
              log: Callable[[str], None] = lambda m: None, label: str = "") -> dict:
    """Time a and b alternately (a b, b a, ...) ``repeats`` times; median of the per-repeat ratios a/b.

    a and b take the repeat index and return a duration (or any positive figure) in seconds.
    """
    ta, tb, ratios = [], [], []
    for i in range(repeats):
        if i % 2 == 0:
            x = a(i)
            y = b(i)
        else:
            y = b(i)
            x = a(i)
        ta.append(x)
        tb.append(y)
        ratios.append(x / y if y > 0 else float("inf"))
        log(f"  {label} repeat {i + 1}/{repeats}: {x:.2f} / {y:.2f} = {ratios[-1]:.3f}")
    return {"ratio": statistics.median(ratios), "ratios": ratios, "a_s": ta, "b_s": tb,
            "a_median_s": statistics.median(ta), "b_median_s": statistics.median(tb)}


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


# ------------------------------------------------------------------ the machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_gib() -> Optional[float]:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def machine() -> dict:
    """Where the figures were measured: CPU, cores, memory, load, library versions."""
    import importlib.metadata as md

    versions = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "peft", "lm_eval", "rouge-score", "numpy"):
        try:
            versions[dist] = md.version(dist)
        except md.PackageNotFoundError:
            versions[dist] = None
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "memory_gib": _mem_gib(), "os": platform.platform(),
            "load_avg_1_5_15": [round(x, 2) for x in load] if load else None, "gpu": None, "versions": versions}


# ------------------------------------------------------------------ results


def row(name: str, *, target: str, met: Optional[bool], detail: dict, ratio: Optional[float] = None,
        value: Optional[float] = None, unit: Optional[str] = None) -> dict:
    """One result row of latest.json."""
    out: dict = {"name": name}
    if ratio is not None:
        out["ratio"] = round(float(ratio), 4)
    if value is not None:
        out["value"] = round(float(value), 4)
        if unit:
            out["unit"] = unit
    out.update({"target": target, "met": met, "detail": detail})
    return out


def scrub(obj, places: dict[str, str]):
    """``obj`` with this machine's folders (the scratch folder, the model cache) replaced by placeholders,
    longest first, so committed results name no local path."""
    if isinstance(obj, dict):
        return {k: scrub(v, places) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub(v, places) for v in obj]
    if isinstance(obj, str):
        for path in sorted(places, key=len, reverse=True):
            obj = obj.replace(path, places[path])
    return obj


def load_results(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"machine": None, "results": []}
    if isinstance(data, list):  # a bare list of rows
        return {"machine": None, "results": data}
    return data


def _fmt(x) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"
    return str(x)


def _summary(r: dict) -> str:
    """The one-line 'measured' cell of a row (what its detail says in brief)."""
    return r.get("detail", {}).get("summary", "")


def markdown(data: dict) -> str:
    """The results table and the machine description, as Markdown."""
    lines = ["| benchmark | ratio / value | target | met | measured (median of alternated repeats) | size |",
             "|---|---|---|---|---|---|"]
    order = {n: i for i, n in enumerate([*BENCHMARKS, "gpu_scoring_adapter", "gpu_generation_vs_plain"])}
    rows = sorted(data.get("results", []), key=lambda r: (order.get(r["name"], 99), r["name"]))
    for r in rows:
        fig = _fmt(r.get("ratio")) if "ratio" in r else f"{_fmt(r.get('value'))} {r.get('unit', '')}".strip()
        met = {True: "yes", False: "**no**", None: "n/a"}[r.get("met")]
        lines.append(f"| `{r['name']}` | {fig} | {r['target']} | {met} | {_summary(r)} | {r.get('size', '')} |")
    out = "\n".join(lines) + "\n"
    machines = data.get("machines") or {}
    if machines:
        out += "\nMachines:\n\n"
        for key, m in machines.items():
            if m.get("gpu"):
                out += f"- **{key}**: {m['gpu']}; {m.get('note', '')}\n"
                continue
            v = m.get("versions", {})
            out += (f"- **{key}**: {m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, "
                    f"{m.get('os')}; load average at start {m.get('load_avg_1_5_15')} (a shared machine: "
                    f"other jobs ran beside the benchmarks); Python {v.get('python')}, torch {v.get('torch')}, "
                    f"transformers {v.get('transformers')}, peft {v.get('peft')}, lm_eval {v.get('lm_eval')}, "
                    f"rouge-score {v.get('rouge-score')}\n")
    return out


def update_readme(table: str, readme: Path = README) -> bool:
    """Replace the block between the results markers of benchmarks/README.md; False when absent."""
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return False
    if start not in text or end not in text:
        return False
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    readme.write_text(f"{head}{start}\n{table}{end}{tail}", encoding="utf-8")
    return True


def save(rows: list[dict], out_dir: Path, *, size: str, machine_key: str = "cpu",
         machine_info: Optional[dict] = None, readme: Optional[Path] = README) -> dict:
    """Merge ``rows`` into out_dir/latest.json (replacing rows of the same name); write latest.md."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "latest.json"
    data = load_results(path)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    new = {r["name"]: {**r, "size": r.get("size", size), "measured_at": r.get("measured_at", stamp),
                       "machine": r.get("machine", machine_key)} for r in rows}
    kept = [r for r in data.get("results", []) if r["name"] not in new]
    data["results"] = kept + list(new.values())
    machines = dict(data.get("machines") or {})
    machines[machine_key] = machine_info or machine()
    data["machines"] = machines
    data.pop("machine", None)
    data["schema"] = "evalkit-benchmarks/1"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    table = markdown(data)
    (out_dir / "latest.md").write_text(table, encoding="utf-8")
    if readme is not None:
        update_readme(table, readme)
    return data


# ------------------------------------------------------------------ running


def benchmark_module(name: str):
    if name not in BENCHMARKS:
        import difflib

        close = difflib.get_close_matches(name, list(BENCHMARKS), n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise SystemExit(f"benchmarks: unknown benchmark '{name}'.{hint} Known: {', '.join(BENCHMARKS)}")
    return importlib.import_module(f"benchmarks.{BENCHMARKS[name]}")


def run_benchmarks(names: Sequence[str], ctx: Context, on_row: Optional[Callable[[dict], None]] = None) -> list[dict]:
    """Run each benchmark; ``on_row`` gets each row as soon as it is measured (the CLI saves it)."""
    rows = []
    for name in names:
        mod = benchmark_module(name)
        ctx.log(f"[{name}] size={ctx.size}")
        t0 = time.perf_counter()
        r = mod.run(ctx)
        r.setdefault("detail", {})["benchmark_wall_s"] = round(time.perf_counter() - t0, 1)
        r["size"] = ctx.size
        ctx.log(f"[{name}] {json.dumps({k: v for k, v in r.items() if k != 'detail'})}")
        rows.append(r)
        if on_row is not None:
            on_row(r)
    return rows


def _scoring_summary(best: float, s: dict, ref: dict) -> str:
    """One line naming only the scoring sections the GPU run measured (a run may skip some)."""
    names = {"evalkit_scoring_unmerged": "evalkit unmerged", "evalkit_scoring_merged": "evalkit merged (--merge)",
             "evalkit_base_scoring": "evalkit base", "plain_base_scoring": "plain transformers base",
             "plain_peft_scoring_unmerged": "plain transformers + peft unmerged"}
    parts = []
    for key, label in names.items():
        sec = s.get(key) or {}
        if sec.get("tokens_per_s"):
            mfu = f", {sec['mfu_pct']}% MFU" if sec.get("mfu_pct") is not None else ""
            parts.append(f"{label} {sec['tokens_per_s']:,.0f} tok/s{mfu}")
    return (f"evalkit Engine.score with the adapter, best {best:,.0f} tok/s; " + "; ".join(parts)
            + f" (MFU against a measured {ref.get('bf16_matmul_tflops')} TFLOP/s bf16 matmul)")


def gpu_rows(gpu: dict) -> list[dict]:
    """The GPU script's JSON (benchmarks/gpu/bench_gpu.py) as two result rows."""
    s = gpu.get("sections", {})
    ref = s.get("reference_rates", {})
    floor_ms = gpu["model"]["weight_gb"] / ref["copy_gb_per_s"] * 1000 if ref.get("copy_gb_per_s") else None

    def tps(name, key="tokens_per_s"):
        return (s.get(name) or {}).get(key)

    adapter = [v for v in (tps("evalkit_scoring_merged"), tps("evalkit_scoring_unmerged")) if v]
    best = max(adapter) if adapter else None
    scoring = row("gpu_scoring_adapter", value=best, unit="tokens/s", target="≥ 30,000 tokens/s (adapter)",
                  met=None if best is None else best >= 30_000, detail={
                      "summary": _scoring_summary(best, s, ref) if best else "not measured",
                      "sections": {k: v for k, v in s.items() if "scoring" in k or "merge" in k}})
    plain = tps("plain_peft_generate", "new_tokens_per_s")
    ek = {k: v for k, v in s.items() if k.startswith("evalkit_generate")}
    best_k = max(ek, key=lambda k: ek[k]["new_tokens_per_s"]) if ek else None
    ratio = ek[best_k]["new_tokens_per_s"] / plain if (best_k and plain) else None
    lean = {k: v for k, v in s.items() if k.startswith("lean_generate")}
    lean_txt = "; ".join(f"{k}: {v['new_tokens_per_s']:,.0f} tok/s, {v['ms_per_step']} ms/step "
                         f"({v['new_tokens_per_s'] / plain:.1f}×)" for k, v in lean.items()) if plain else ""
    gen = row("gpu_generation_vs_plain", ratio=ratio, target="≥ 4× plain transformers (new tokens/s)",
              met=None if ratio is None else ratio >= 4, detail={
                  "summary": (f"evalkit {best_k} {ek[best_k]['new_tokens_per_s']:,.0f} new tok/s "
                              f"({ek[best_k]['ms_per_step']} ms/step) vs peft generate batch 32 {plain:,.0f} "
                              f"({(s.get('plain_peft_generate') or {}).get('ms_per_step')} ms/step; floor "
                              f"{floor_ms:.1f} ms)" + (f"; demo loop (not shipped): {lean_txt}" if lean_txt else ""))
                  if ratio else "not measured",
                  "sections": {k: v for k, v in s.items() if "generate" in k}})
    return [scoring, gen]


def ingest_gpu(path: Path, out_dir: Path = RESULTS, readme: Optional[Path] = README) -> dict:
    gpu = json.loads(Path(path).read_text(encoding="utf-8"))
    rates = gpu["sections"].get("reference_rates", {})
    if rates.get("copy_gb_per_s"):  # weight bytes / copy rate (read + write counted), as the 4.8 ms
        gpu["model"]["decode_floor_ms"] = round(gpu["model"]["weight_gb"] / rates["copy_gb_per_s"] * 1000, 2)
    info = {"gpu": gpu.get("device"), "versions": gpu.get("versions"),
            "note": (f"bf16 matmul {gpu['sections'].get('reference_rates', {}).get('bf16_matmul_tflops')} TFLOP/s, "
                     f"copy {gpu['sections'].get('reference_rates', {}).get('copy_gb_per_s')} GB/s measured on the "
                     f"spot; versions {gpu.get('versions')}; model {gpu.get('model')}")}
    return save(gpu_rows(gpu), out_dir, size="gpu", machine_key="gpu", machine_info=info, readme=readme)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="run benchmarks and write results/latest.json, latest.md, the README table")
    r.add_argument("names", nargs="*", metavar="NAME", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    r.add_argument("--size", choices=SIZES, default="realistic",
                   help="tiny: seconds (the tests); small: a smoke size; realistic (default): 32 prompts × 96 "
                        "new tokens, batch 16; large: the full figures")
    r.add_argument("--repeats", type=int, help="alternated repeats per figure (default: per benchmark and size)")
    r.add_argument("--work", type=Path, help="scratch folder (default: $TMPDIR/evalkit-bench)")
    r.add_argument("--out", type=Path, default=RESULTS, help="results folder (default: benchmarks/results)")
    r.add_argument("--no-readme", action="store_true", help="do not rewrite the table in benchmarks/README.md")
    sub.add_parser("list", help="list the benchmarks and their targets")
    g = sub.add_parser("gpu-ingest", help="add the GPU script's JSON (benchmarks/gpu/bench_gpu.py --out) to the results")
    g.add_argument("file", type=Path)
    args = p.parse_args(argv)
    if args.cmd == "list":
        for name in BENCHMARKS:
            print(f"{name:24s} {benchmark_module(name).TARGET}")
        return 0
    if args.cmd == "gpu-ingest":
        ingest_gpu(args.file)
        print(markdown(load_results(RESULTS / "latest.json")))
        return 0
    if args.cmd != "run":
        p.print_help()
        return 2
    if args.repeats is not None and args.repeats < 1:
        p.error(f"The '--repeats' option must be a positive int. Got {args.repeats} instead.")
    ctx = Context(size=args.size, repeats=args.repeats)
    if args.work:
        ctx.work = args.work
    ctx.work.mkdir(parents=True, exist_ok=True)
    info = machine()
    readme = None if args.no_readme else README
    places = {str(ctx.work.resolve()): "WORK", str(ctx.work): "WORK"}
    from evalkit.runtime.models import cache_root

    places.update({str(cache_root().resolve()): "$EVALKIT_CACHE", str(cache_root()): "$EVALKIT_CACHE"})
    run_benchmarks(args.names or list(BENCHMARKS), ctx,
                   on_row=lambda r: save([scrub(r, places)], args.out, size=args.size, machine_info=info,
                                         readme=readme))
    print(markdown(load_results(args.out / "latest.json")))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
