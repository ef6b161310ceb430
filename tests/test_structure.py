"""The package's shape, checked from its source: layers, the flag rule, documented and narrow public callables.

These read the files with :mod:`ast` (nothing is imported), so a violation fails here with its file and line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bioprofile"

# Low to high: a module may import from its own layer or below, never above (docs/architecture.md).
LAYERS: dict[str, int] = {
    "errors": 0,
    "redact": 0,
    "readers": 0,
    "_version": 0,
    "cache": 0,
    "fingerprint": 0,
    "safe_pickle": 0,
    "openai_api": 0,
    "atomic": 0,
    "outputs": 0,
    "display": 0,
    "progress": 0,
    "registry": 0,
    "genes": 1,
    "hgnc": 1,
    "proteins": 1,
    "entities": 1,
    "store": 1,
    "store_repair": 1,
    "cache_admin": 1,
    "shards": 1,
    "cache_rows": 1,
    "data": 1,
    "embeddings": 1,
    "text": 1,
    "profiles": 2,
    "encoders": 2,
    "pipeline": 3,
    "cells": 3,
    "genept": 3,
    "train": 3,
    "perturbation": 3,
    "tl": 3,
    "diagnose": 4,
    "evaluate": 5,
    "pl": 6,
    "cli": 7,
    "__init__": 7,
    "__main__": 7,
}
MAX_PARAMETERS = 10
# No module is longer: past this a file holds several concerns a reader must keep apart (issue 21).
MAX_MODULE_LINES = 600
# Modules still over MAX_MODULE_LINES while they are being split; each leaves this list when it is split (the
# test fails for a listed module that is no longer over, so the list empties itself).
KNOWN_LONG_MODULES: set[str] = set()
# The command-line package: the one place that speaks flags, and whose commands import what they run.
CLI = PACKAGE / "cli"
# A command-line flag: two dashes and a lower-case word, not part of a longer dash run or word.
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
# Flags of other tools that install hints and docs may quote (pip, vllm serve, torchrun).
FOREIGN_FLAGS = {
    "--no-deps",
    "--force-reinstall",
    "--served-model-name",
    "--nproc-per-node",
    "--config-file",
    # arc-state's `state tx predict` options, passed to its subprocess by perturbation.runner
    "--output-dir",
    "--checkpoint",
    "--predict-only",
}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _in_cli(path: Path) -> bool:
    return CLI in path.parents


def _name(path: Path) -> str:
    return ".".join(("bioprofile", *path.relative_to(PACKAGE).with_suffix("").parts))


def _unit(module: str) -> str:
    """The top-level unit of a dotted module name: ``bioprofile.profiles.hf`` -> ``profiles``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imports(tree: ast.Module, module: str) -> list[tuple[int, str, str | None]]:
    """``(line, imported module, imported name)`` for every bioprofile import, at any depth."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "bioprofile"]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "bioprofile":
            found += [(node.lineno, node.module, a.name) for a in node.names]
    return found


def test_every_top_level_unit_has_a_layer():
    units = {_unit(_name(p)) for p in _modules()}
    assert not units - set(LAYERS), (
        f"add these to LAYERS and docs/architecture.md: {sorted(units - set(LAYERS))}"
    )


def test_imports_point_down():
    upward = []
    for path in _modules():
        module = _name(path)
        own = LAYERS[_unit(module)]
        for line, target, name in _imports(_tree(path), module):
            if (
                target == "bioprofile" and name is not None
            ):  # `from bioprofile import x`: the root's re-exports
                target = f"bioprofile.{name}" if _unit(f"bioprofile.{name}") in LAYERS else "bioprofile"
            layer = LAYERS.get(_unit(target), LAYERS["__init__"])
            if layer > own:
                upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {target}")
    assert not upward, "imports that point up a layer:\n" + "\n".join(upward)


def test_internal_imports_live_at_the_top():
    """bioprofile's own imports sit at module top; one inside a function says why on the line above (``# lazy:``).

    The cli package is exempt: each command imports what it runs, so ``bioprofile --help`` does not load torch.
    """
    hidden = []
    for path in _modules():
        if _in_cli(path):
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for func in ast.walk(_tree(path)):
            if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bioprofile":
                    above = "\n".join(lines[max(0, node.lineno - 4) : node.lineno - 1])
                    if "# lazy:" not in above:
                        hidden.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.module}")
    assert not hidden, "imports inside functions without a '# lazy:' reason:\n" + "\n".join(
        sorted(set(hidden))
    )


def test_no_private_name_is_imported_from_another_module():
    """A ``_name`` stays in its module; only a package's ``__init__`` may gather names of its own modules."""
    crossing = []
    for path in _modules():
        module = _name(path)
        for line, target, name in _imports(_tree(path), module):
            if not name or not name.startswith("_") or name.startswith("__"):
                continue
            if path.name == "__init__.py" and target.startswith(module + "."):
                continue
            crossing.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports {name} from {target}")
    assert not crossing, "private names used across modules:\n" + "\n".join(crossing)


def _strings(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_library_string_names_a_flag():
    """Only the cli package speaks flags; the library names Python arguments (the CLI translates them)."""
    named = []
    for path in _modules():
        if _in_cli(path):
            continue
        for line, text in _strings(_tree(path)):
            for flag in set(FLAG.findall(text)) - FOREIGN_FLAGS:
                named.append(f"{path.relative_to(PACKAGE.parent)}:{line} {flag}")
    assert not named, "library strings naming a command-line flag:\n" + "\n".join(named)


def _commands() -> list[str]:
    """Every command path of the CLI (``embed-genes``, ``bench gene-tasks``), from its generated reference."""
    reference = (PACKAGE.parent / "docs" / "cli.md").read_text(encoding="utf-8")
    return re.findall(r"^#+ `bioprofile ([a-z -]+)`$", reference, flags=re.MULTILINE)


def _message_strings(tree: ast.Module):
    """The string pieces of what the library raises or warns: what a user reads when something is wrong."""
    for node in ast.walk(tree):
        is_warning = (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "warn"
        )
        if isinstance(node, ast.Raise) or is_warning:
            yield from _strings(node)


def test_no_library_message_sends_the_user_to_a_command():
    """Library messages name the Python callable or key a user needs; the CLI names its command at the boundary."""
    commands = _commands()
    assert "bench gene-tasks" in commands and "embed-cells" in commands
    # A one-word command (train, data) is an English word too: only "bioprofile train" names it.
    patterns = [
        re.compile(
            rf"(?<![\w.-])(bioprofile )?{re.escape(c)}(?![\w-])"
            if " " in c or "-" in c
            else rf"bioprofile {c}\b"
        )
        for c in commands
    ]
    named = []
    for path in _modules():
        if _in_cli(path):
            continue
        for line, text in _message_strings(_tree(path)):
            if any(pattern.search(text) for pattern in patterns):
                named.append(f"{path.relative_to(PACKAGE.parent)}:{line} {text!r}")
    assert not named, "library messages naming a command (name the Python callable):\n" + "\n".join(named)


def _public_callables(tree: ast.Module):
    """Public functions and the public methods of public classes, at module level."""
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            yield node.name, node, False
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            yield node.name, node, False
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and (
                    not item.name.startswith("_") or item.name == "__init__"
                ):
                    yield f"{node.name}.{item.name}", item, True


def _count_parameters(func: ast.FunctionDef | ast.AsyncFunctionDef, method: bool) -> int:
    args = func.args
    positional = [*args.posonlyargs, *args.args]
    if method and positional and positional[0].arg in ("self", "cls"):
        positional = positional[1:]
    return len(positional) + len(args.kwonlyargs) + bool(args.vararg) + bool(args.kwarg)


def test_no_public_function_has_more_than_ten_parameters():
    wide = []
    registered = _registered_commands()
    for path in _modules():
        for name, node, method in _public_callables(_tree(path)):
            if isinstance(node, ast.ClassDef) or _is_cli_command(node):
                continue
            if _in_cli(path) and name in registered:
                continue
            count = _count_parameters(node, method)
            if count > MAX_PARAMETERS:
                wide.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name} has {count}")
    assert not wide, f"public callables over {MAX_PARAMETERS} parameters:\n" + "\n".join(wide)


def test_public_callables_are_documented():
    undocumented = []
    for path in _modules():
        for name, node, _ in _public_callables(_tree(path)):
            if name.endswith(".__init__"):
                continue  # numpydoc documents the constructor's parameters on the class
            if ast.get_docstring(node) is None and not _is_overload_or_property_setter(node):
                undocumented.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {name}")
    assert not undocumented, "public callables without a docstring:\n" + "\n".join(undocumented)


def _is_cli_command(node: ast.AST) -> bool:
    """A typer command: one parameter per flag is how typer declares options, so the width rule skips it."""
    return any(
        isinstance(d, ast.Call)
        and isinstance(d.func, ast.Attribute)
        and d.func.attr in ("command", "callback")
        for d in getattr(node, "decorator_list", [])
    )


def _registered_commands() -> set[str]:
    """Functions the cli package registers as commands: ``app.command("name", ...)(module.function)``."""
    names = set()
    for path in _modules():
        if not _in_cli(path):
            continue
        for node in ast.walk(_tree(path)):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Call)
                and isinstance(node.func.func, ast.Attribute)
                and node.func.func.attr in ("command", "callback")
            ):
                for arg in node.args:
                    if isinstance(arg, ast.Attribute):
                        names.add(arg.attr)
                    elif isinstance(arg, ast.Name):
                        names.add(arg.id)
    return names


def _long_modules(paths: list[Path], root: Path) -> dict[str, int]:
    """``{path relative to root: line count}`` of the modules over MAX_MODULE_LINES."""
    counts = {p.relative_to(root).as_posix(): len(p.read_text(encoding="utf-8").splitlines()) for p in paths}
    return {name: n for name, n in counts.items() if n > MAX_MODULE_LINES}


def test_no_module_is_over_600_lines():
    long = _long_modules(_modules(), PACKAGE)
    new = {name: n for name, n in long.items() if name not in KNOWN_LONG_MODULES}
    assert not new, f"modules over {MAX_MODULE_LINES} lines (split them by concern): {new}"
    split = sorted(KNOWN_LONG_MODULES - set(long))
    assert not split, f"these are split now: remove them from KNOWN_LONG_MODULES: {split}"


def _is_overload_or_property_setter(node: ast.AST) -> bool:
    decorators = getattr(node, "decorator_list", [])
    return any(
        (isinstance(d, ast.Attribute) and d.attr in ("setter", "deleter"))
        or (isinstance(d, ast.Name) and d.id == "overload")
        for d in decorators
    )


@pytest.mark.parametrize(
    "package", sorted(p.parent for p in PACKAGE.rglob("__init__.py") if p.parent != PACKAGE)
)
def test_each_sub_package_lists_its_modules(package: Path):
    """Every sub-package's docstring names each of its modules, as evaluate/gene_tasks/__init__.py does."""
    doc = ast.get_docstring(_tree(package / "__init__.py")) or ""
    modules = [p.stem for p in package.glob("*.py") if p.stem != "__init__"]
    modules += [p.name for p in package.iterdir() if (p / "__init__.py").is_file()]
    missing = [m for m in modules if not re.search(rf"\b{re.escape(m)}\b", doc)]
    assert not missing, f"{package.relative_to(PACKAGE.parent)}/__init__.py docstring does not list {missing}"


def test_the_checker_sees_a_violation(tmp_path):
    """The checks above can fail: an upward import, a flag and a wide function are each found in a sample."""
    sample = ast.parse(
        "from bioprofile.cli import app\n"
        "def wide(a, b, c, d, e, f, g, h, i, j, k):\n"
        "    '''Wide.'''\n"
        "    raise ValueError('use --max-new-tokens')\n"
    )
    assert [t for _, t, _ in _imports(sample, "bioprofile.genes")] == ["bioprofile.cli"]
    assert LAYERS[_unit("bioprofile.cli")] > LAYERS[_unit("bioprofile.genes")]
    assert [FLAG.findall(t) for _, t in _strings(sample) if FLAG.search(t)] == [["--max-new-tokens"]]
    assert [t for _, t in _message_strings(sample)] == ["use --max-new-tokens"]
    ((name, node, method),) = list(_public_callables(sample))
    assert _count_parameters(node, method) == 11
    long = tmp_path / "long.py"
    long.write_text("x = 1\n" * (MAX_MODULE_LINES + 1))
    (tmp_path / "short.py").write_text("x = 1\n" * MAX_MODULE_LINES)
    assert _long_modules(sorted(tmp_path.glob("*.py")), tmp_path) == {"long.py": MAX_MODULE_LINES + 1}
