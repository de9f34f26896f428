"""Layering: no import cycles (lazy and importlib edges included); torch & co only under evalkit/runtime/;
commands do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "evalkit"
HEAVY = ("torch", "transformers", "peft", "vllm", "accelerate", "bitsandbytes")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return skip


def imports(name: str, path: Path) -> list[tuple[str, int]]:
    """Every module this file imports, anywhere in it (functions too), as (absolute name, line).

    ``importlib.import_module(f"{__package__}.x")`` and string constants count; TYPE_CHECKING blocks do not.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _type_checking_lines(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            mod = f"{base}.{node.module}" if node.level and node.module else (base if node.level else node.module)
            found.append((mod, node.lineno))
            found += [(f"{mod}.{a.name}", node.lineno) for a in node.names]  # from pkg import submodule
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args:
            arg = node.args[0]
            text = ast.unparse(arg)
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((arg.value, node.lineno))
            elif isinstance(arg, ast.JoinedStr) and "__package__" in text:
                tail = "".join(v.value for v in arg.values if isinstance(v, ast.Constant))
                if "{" not in tail.replace("__package__", ""):
                    found.append((package + tail, node.lineno))
    return found


def graph() -> dict[str, set[str]]:
    mods = _modules()
    g: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, _ in imports(name, path):
            if target in mods and target != name and not name.startswith(target + "."):
                g[name].add(target)
    return g


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_the_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_importlib_and_lazy_edges_are_seen(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import importlib\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .t import T\n"
                 "def f():\n    from .lazy import x\n    importlib.import_module(f'{__package__}.dyn')\n",
                 encoding="utf-8")
    names = [m for m, _ in imports("evalkit.m", f)]
    assert "evalkit.lazy" in names and "evalkit.dyn" in names and "evalkit.t" not in names


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_torch_and_co_only_under_runtime():
    offenders = []
    for name, path in _modules().items():
        if name.startswith("evalkit.runtime"):
            continue
        for target, line in imports(name, path):
            if target.split(".")[0] in HEAVY:
                offenders.append(f"{path.relative_to(PKG.parent)}:{line} imports {target}")
    assert offenders == []


def test_commands_do_not_import_each_other():
    g = graph()
    # what several commands share lives in private helper modules (_options, _preflight), never in a command
    offenders = [(m, t) for m in g if m.startswith("evalkit.commands.") for t in g[m]
                 if t.startswith("evalkit.commands.") and not t.rpartition(".")[2].startswith("_")]
    assert offenders == []
