"""evalkit — is my LoRA adapter learning the task, or memorizing its training answers?

Commands (run `evalkit COMMAND --help` for each):

  audit    check train / val / held-out data for leaks and templated answers (no model)
  train    train one LoRA adapter from a config file, logging train/validation loss
  sweep    train a grid of adapters (target-module ladder, learning rates, r/alpha), resumable
  eval     generate on held-out prompts and measure loss gap, ROUGE, novelty and memorization
  score    the same text metrics on predictions made elsewhere (no model needed)
  compare  evaluate several adapters on one base-model load, paired statistics, HTML report, CI gate
  gate     re-judge a stored comparison.json against a gate file (exit 0 pass, 1 fail)
  report   (re-)render report.html from a comparison.json or results.json
  export   write a held-out suite as an lm-evaluation-harness task
  demo     train two contrasting adapters on the bundled data and compare them

Exit codes: 0 success / gate passed, 1 gate failed, 2 bad input or usage (one line on stderr).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from . import __version__
from .errors import EvalkitError

__all__ = ["main", "build_parser"]

# Each command lives in evalkit/commands/<name>.py and defines
#   register(subparsers) -> argparse.ArgumentParser   (sets func=run via set_defaults)
#   run(args) -> int
COMMANDS = ("audit", "train", "sweep", "eval", "score", "compare", "gate", "report", "export", "demo")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors: one line, exit 2
        self.exit(2, f"evalkit: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evalkit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"evalkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f".commands.{name}_cmd", __package__)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EvalkitError as err:
        print(f"evalkit: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("evalkit: interrupted; finished work is cached and will be reused on the next run", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
