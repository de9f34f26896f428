"""Options shared by `eval` and `compare` (model targets), and how they become settings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import defaults

__all__ = ["add_model_options", "add_engine_options", "add_threshold_options", "add_json_option", "add_lm_eval_options",
           "settings_from", "thresholds_from", "engine_kwargs_from", "lm_eval_from", "report_comparison",
           "rejudged"]


def add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and data")
    g.add_argument("--base", help="base model: 'default' (SmolLM2-135M-Instruct), a local HF folder or a .gguf "
                                  "(default: the base recorded in the adapter's evalkit.json)")
    g.add_argument("--suite", action="append", type=Path, metavar="FILE",
                   help="held-out prompt suite (JSONL with prompt + reference); repeatable "
                        "(default: the bundled English and Korean eco suites)")
    g.add_argument("--train-data", type=Path, metavar="FILE",
                   help="the adapter's training data (default: from evalkit.json, else the bundled train split)")
    g.add_argument("--val-data", type=Path, metavar="FILE",
                   help="validation split of the same distribution (non-members for membership inference) "
                        "(default: from evalkit.json, else the bundled validation split)")
    g.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda (bf16) when available, else cpu")
    g.add_argument("--merge", action="store_true",
                   help="merge each adapter into the weights while it is evaluated (faster on GPU; unmerged after)")
    g.add_argument("--score-dtype", choices=["bfloat16"], default=None,
                   help="teacher-forced scoring (losses, MIA) with bfloat16 matmuls in the decoder body: ~2x faster scoring "
                        "on CPUs with avx512_bf16 or AMX, slower on others; log-probs within the tolerance in "
                        "docs/speed.md; generation stays in the model's dtype (default: the model's dtype)")
    g.add_argument("--allow-membership-mismatch", action="store_true",
                   help="measure an adapter whose recorded training/val data is missing or changed "
                        "(recorded as a warning; membership labels unverified)")
    g.add_argument("--allow-pickle", action="store_true",
                   help="allow adapters saved only as pickle .bin (loaded with weights_only=True)")
    g.add_argument("--trust-remote-code", action="store_true", help="allow custom model code from the base folder")
    g.add_argument("--chat-template-from-config", action="store_true",
                   help="use a chat_template found in config.json (transformers ignores it there)")
    g.add_argument("--cache-dir", type=Path, help="evaluation cache (default: $EVALKIT_CACHE/runs)")
    g.add_argument("--no-cache", action="store_true", help="recompute everything and write nothing to the cache")
    add_engine_options(p)
    s = p.add_argument_group("generation and scoring")
    s.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                   help="tokens generated per answer (default: fitted to the data -- the longest reference answer "
                        "plus a quarter and 16, at most 512; the value is printed)")
    s.add_argument("--batch-size", type=int, default=defaults.BATCH_SIZE, help="prompts per generation / scoring batch")
    s.add_argument("--limit", type=int, default=None, metavar="N",
                   help="smoke run: only the first N prompts of each suite (and at most N training / validation "
                        "examples and extraction prompts) (default: all)")
    s.add_argument("--sample", action="store_true", help="seeded sampling instead of greedy decoding")
    s.add_argument("--num-samples", type=int, default=1, help="samples per prompt with --sample")
    s.add_argument("--temperature", type=float, default=0.7, help="sampling temperature with --sample")
    s.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass with --sample")
    s.add_argument("--seed", type=int, default=0, help="seed of sampling, subsets and bootstrap intervals")
    s.add_argument("--train-sample", type=int, default=defaults.TRAIN_SAMPLE,
                   help="training examples scored for the loss gap and membership inference")
    s.add_argument("--extraction-n", type=int, default=defaults.EXTRACTION_N, help="training prompts used for the extraction test")
    s.add_argument("--max-length", type=int, default=None,
                   help="max tokens of a scored conversation (default: the adapter's training max_length, else 512)")
    s.add_argument("--minkpp", action="store_true",
                   help="also compute the Min-K%%++ membership score (~30%% more scoring time)")
    add_lm_eval_options(p)
    add_threshold_options(p)
    add_json_option(p)


def add_json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="print the summary record as one JSON object on stdout (tables and notes go to stderr)")
    p.add_argument("--no-progress", action="store_true", help="no progress display")


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """--engine and the endpoint / vLLM settings (docs/engines.md)."""
    g = p.add_argument_group("engine (docs/engines.md)")
    g.add_argument("--engine", choices=["hf", "vllm"], default="hf",
                   help="in-process engine: hf (transformers + peft, default) or vllm (needs the vLLM extra); "
                        "targets written openai:NAME go to --endpoint instead")
    g.add_argument("--endpoint", metavar="URL", help="OpenAI-compatible server for openai:NAME targets, "
                                                     "e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--stream", action="store_true", help="read endpoint answers as server-sent events")
    g.add_argument("--concurrency", type=int, default=8, help="endpoint requests in flight at once (default 8)")
    g.add_argument("--api-key-env", metavar="VAR", help="environment variable holding the endpoint's API key")
    g.add_argument("--tensor-parallel-size", type=int, default=1, help="vLLM: GPUs per model replica")
    g.add_argument("--data-parallel-size", type=int, default=1, help="vLLM: model replicas")
    g.add_argument("--max-lora-rank", type=int, default=None, help="vLLM: largest adapter rank (default: the "
                                                                    "largest rank among the targets)")


def add_lm_eval_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("capability retention with lm-evaluation-harness (docs/lm-eval.md; "
                             "pip install 'evalkit[lm-eval]')")
    g.add_argument("--lm-eval-tasks", metavar="T1,T2",
                   help="lm-eval tasks to run on every target, on the same loaded model; 'default' is evalkit's "
                        "offline retention task (evalkit_retention)")
    g.add_argument("--lm-eval-include-path", type=Path, metavar="DIR", help="a folder of your own lm-eval task YAMLs")
    g.add_argument("--lm-eval-limit", type=int, metavar="N", help="evaluate only the first N documents of each task")
    g.add_argument("--lm-eval-chat-template", action="store_true",
                   help="format lm-eval prompts with the model's chat template (lm-eval's --apply_chat_template)")


def lm_eval_from(args):
    """The LmEvalSpec of --lm-eval-* (None without --lm-eval-tasks); bad values fail before any model loads."""
    from ..retention import LmEvalSpec

    return LmEvalSpec.from_options(args.lm_eval_tasks, args.lm_eval_include_path, args.lm_eval_limit,
                                   args.lm_eval_chat_template)


def add_threshold_options(p: argparse.ArgumentParser, rejudge: bool = False) -> None:
    g = p.add_argument_group("verdict thresholds (see docs/verdict.md)" + (
        "; given, every stored verdict is re-derived from the record's summary, intervals and n" if rejudge else ""))
    g.add_argument("--thresholds", type=Path, metavar="FILE", help="TOML file of name = value thresholds")
    g.add_argument("--threshold", action="append", default=[], metavar="NAME=VALUE",
                   help="override one threshold, e.g. loss_gap_overfit=0.8; repeatable")
    if rejudge:
        g.add_argument("--verdict-rules", type=Path, metavar="FILE", default=None,
                       help="verdict rules file in the format of evalkit/policies/verdict.toml")


def settings_from(args):
    from ..evaluate import EvalSettings

    # max_new_tokens None: fitted to the data once the tokenizer is there (_preflight.fit_to_model)
    given = args.max_new_tokens is not None
    return EvalSettings(max_new_tokens=args.max_new_tokens if given else EvalSettings.max_new_tokens,
                        batch_size=args.batch_size, do_sample=args.sample,
                        num_samples=args.num_samples if args.sample else 1, temperature=args.temperature,
                        top_p=args.top_p, seed=args.seed, train_sample=args.train_sample,
                        extraction_n=args.extraction_n, max_length=args.max_length, minkpp=args.minkpp)


def thresholds_from(args):
    from ..thresholds import load_thresholds

    return load_thresholds(args.thresholds, args.threshold)


def rejudged(args, record):
    """(record with its verdicts re-derived, thresholds) when --threshold/--thresholds/--verdict-rules were given,
    else (record, None): a stored record keeps the verdict it was written with."""
    if not (args.thresholds or args.threshold or args.verdict_rules):
        return record, None
    from ..verdict import load_rules, rejudge_record

    th = thresholds_from(args)
    rules = load_rules(args.verdict_rules, th) if args.verdict_rules else None
    return rejudge_record(record, th, rules), th


def engine_kwargs_from(args) -> dict:
    from ..cache import Cache

    # False: no cache at all; Cache(None) is the default $EVALKIT_CACHE/runs
    cache = False if args.no_cache else Cache(args.cache_dir)
    kw = dict(device=args.device, trust_remote_code=args.trust_remote_code, allow_pickle=args.allow_pickle,
              chat_template_from_config=args.chat_template_from_config, cache=cache, merge=args.merge,
              engine=args.engine)
    if getattr(args, "score_dtype", None):
        kw["score_dtype"] = args.score_dtype
    if args.endpoint is not None:
        kw["endpoint"] = dict(url=args.endpoint, stream=args.stream, concurrency=args.concurrency,
                              api_key_env=args.api_key_env)
    if args.engine == "vllm":
        kw["vllm"] = dict(tensor_parallel_size=args.tensor_parallel_size,
                          data_parallel_size=args.data_parallel_size, max_lora_rank=args.max_lora_rank)
    return kw


# ---------------------------------------------------------------- shared by several commands (commands never
# import each other: what two of them need lives here)


def report_comparison(comparison, paths: dict, *, as_json: bool = False) -> int:
    """Print a comparison and where its files are; the exit code of the gate (`compare`, `demo`)."""
    from ..console import print_comparison, print_summary_json
    from ..report.sections.sweep import SWEEP_MIN
    from ..retention import retention_table

    print_comparison(comparison, to_stderr=as_json)
    if len(comparison.targets) > SWEEP_MIN:  # a sweep: the report's recommendation, on the console too
        from ..report.view import build_view

        print(f"sweep: {build_view(comparison).sweep.recommendation}", file=sys.stderr if as_json else sys.stdout)
    out = paths["comparison.json"].parent
    if as_json:
        print_summary_json(comparison, paths)
    else:
        for line in retention_table(comparison):
            print(line)
        print(f"wrote {out}/comparison.json, report.html, summary.md, junit.xml")
        print(f"open the report: file://{(out / 'report.html').resolve()}")
    return 1 if comparison.gate is not None and not comparison.gate.passed else 0
