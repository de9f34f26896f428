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
Every command checks its inputs and output locations before loading a model; docs/guarantees.md
says what evalkit promises about outputs, resuming, determinism and concurrent runs.
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


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the hand-wrapped descriptions, and ends every option's help with its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if action.required:
            return f"{text} (required)"
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            shown = "on" if action.default else "off"
        elif action.default is None or action.default == []:
            shown = "none"
        else:
            shown = "%(default)s"
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


def _add_common(p: argparse.ArgumentParser) -> None:
    p.formatter_class = HelpFormatter
    g = p.add_argument_group("output")
    g.add_argument("--verbose", action="store_true",
                   help="also show third-party warnings and loading bars (transformers, peft, torch)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="evalkit", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=f"evalkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        module = importlib.import_module(f".commands.{name}_cmd", __package__)
        _add_common(module.register(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from .console import configure, quiet_third_party

    quiet_third_party(verbose=args.verbose)
    configure(progress=not getattr(args, "no_progress", False), quiet=getattr(args, "json", False))
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
