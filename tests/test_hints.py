"""Every name a library error hands the user is a real argument: ``argument=`` and "pass NAME=" / "set NAME" hints.

A hint that names a keyword the function does not take (``pass min_coverage=`` to a function that takes
``limits=EmbedLimits(...)``) sends a user to a ``TypeError``. Found by reading the source (AST), so every raise site
is checked without having to trigger it.
"""

from __future__ import annotations

import ast
import re

from helpers import REPO

PACKAGE = REPO / "bioprofile"

# Names that are no parameter, with why they are still right.
ALLOWED = {
    # the `stage:` key of a training config file (docs/training.md; `--set stage=...` on the command line), which
    # train_from_config reads from the YAML: a key the user writes, not a Python keyword
    "stage": "a key of the training config file",
}

HINT = re.compile(r"(?<![\w.-])(?:pass|set) ([a-z][a-z0-9_]*)(?:=| to )")


def _trees() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(REPO)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _parameters(function: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    args = function.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    return {a.arg for a in every}


def _known_names(trees: dict[str, ast.Module]) -> set[str]:
    """Every parameter of a public function or method and every annotated field of a class, package-wide."""
    names: set[str] = set()
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
                not node.name.startswith("_") or node.name == "__init__"
            ):
                names |= _parameters(node)
            elif isinstance(node, ast.ClassDef):
                names |= {
                    item.target.id
                    for item in node.body
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                }
    return names


def _text(node: ast.expr) -> str:
    """The literal text of a message (an f-string's constant parts, concatenations joined)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            _text(part) if not isinstance(part, ast.FormattedValue) else "{}" for part in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _text(node.left) + _text(node.right)
    return ""


def _errors(trees: dict[str, ast.Module]):
    """``(file, line, enclosing function parameters, module's public parameters, argument, message)`` per error."""
    for name, tree in trees.items():
        public = set()
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                public |= _parameters(node)
        stack: list[tuple[ast.AST, set[str]]] = [(tree, set())]
        while stack:
            node, enclosing = stack.pop()
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                enclosing = enclosing | _parameters(node)
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) == "BioprofileInputError"
            ):
                argument = next(
                    (
                        k.value.value
                        for k in node.keywords
                        if k.arg == "argument" and isinstance(k.value, ast.Constant)
                    ),
                    None,
                )
                message = _text(node.args[0]) if node.args else ""
                yield name, node.lineno, enclosing, public, argument, message
            stack.extend((child, enclosing) for child in ast.iter_child_nodes(node))


def test_the_scan_finds_the_errors():
    found = list(_errors(_trees()))
    assert len(found) > 100
    assert sum(argument is not None for *_, argument, _ in found) > 100


def test_every_argument_names_a_real_parameter():
    trees = _trees()
    known = _known_names(trees)
    wrong = [
        f"{name}:{line}: argument={argument!r}"
        for name, line, enclosing, public, argument, _ in _errors(trees)
        if argument is not None and argument not in enclosing | public | known | set(ALLOWED)
    ]
    assert not wrong, "\n".join(wrong)


def test_every_pass_or_set_hint_names_a_parameter_of_its_function_or_module():
    """ "pass NAME=" names a parameter of the function raising it or of a public function of its module."""
    wrong = []
    for name, line, enclosing, public, _, message in _errors(_trees()):
        for hinted in HINT.findall(message):
            if hinted not in enclosing | public | set(ALLOWED):
                wrong.append(f"{name}:{line}: {hinted!r} in {message[:100]!r}")
    assert not wrong, "\n".join(wrong)


def test_a_hinted_field_names_its_dataclass():
    """A hint naming a dataclass field (EmbedLimits.min_coverage) from a private helper names the dataclass too.

    The helper's own parameter is no argument a user can pass: the public function above it may take the
    setting inside a dataclass (``embed_cells(limits=EmbedLimits(min_coverage=...))``).
    """
    trees = _trees()
    fields: dict[str, set[str]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                for item in node.body:
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        fields.setdefault(item.target.id, set()).add(node.name)
    wrong = []
    for name, line, _, _, _, message in _errors(trees):
        for hinted in HINT.findall(message):
            classes = fields.get(hinted, set())
            if classes and not any(c in message for c in classes) and _in_private(trees[name], line):
                wrong.append(
                    f"{name}:{line}: {hinted!r} is a field of {sorted(classes)}: name it in the message"
                )
    assert not wrong, "\n".join(wrong)


def _in_private(tree: ast.Module, line: int) -> bool:
    """Whether ``line`` lies in a private module-level function (a helper a user never calls)."""
    return any(
        isinstance(node, ast.FunctionDef)
        and node.name.startswith("_")
        and node.lineno <= line <= node.end_lineno
        for node in tree.body
    )


def test_the_hint_pattern_reads_hints():
    assert HINT.findall("a small panel: pass min_coverage=0.01 (or 0)") == ["min_coverage"]
    assert HINT.findall("set max_steps to 10") == ["max_steps"]
    assert HINT.findall("write e.g. --set max_steps=100") == []
