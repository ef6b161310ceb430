"""Write docs/api.md, the API reference, from the docstrings of the checkout's ``bioprofile`` package.

The source is read statically with griffe (mkdocstrings' maintained parser; numpydoc sections), never imported, so
this is fast and needs none of the heavy dependencies. What counts as public: a module's ``__all__`` where it has
one, else its names without a leading underscore that are defined there; private modules (``_name``) appear through
the package that re-exports them. ``bioprofile.cli`` is left out: docs/cli.md is its reference.

    python docs/make_api.py                 # rewrites docs/api.md (``make docs`` runs it)
    python docs/make_api.py --output FILE   # anywhere else (tests/test_api_docs.py compares the two)
"""

from __future__ import annotations

import argparse
from pathlib import Path

from griffe import Alias, DocstringSectionKind, GriffeLoader, Object

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "api.md"
SKIP_MODULES = {"bioprofile.cli"}
HEADER = """# API reference

Generated from the docstrings by `python docs/make_api.py` (`make docs`); do not edit by hand
(`tests/test_api_docs.py` fails when it is stale). The command line has its own reference,
[cli.md](cli.md); [tutorial.md](tutorial.md) uses the main functions end to end.
"""


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _public_names(module: Object) -> list[str]:
    """The names a module offers: its ``__all__``, else what it defines without a leading underscore."""
    exports = module.exports
    if exports is not None:
        return [name if isinstance(name, str) else name.name for name in exports]
    return [
        name
        for name, member in module.members.items()
        if not name.startswith("_") and not member.is_alias and not member.is_module
    ]


def _signature(obj: Object) -> str:
    if obj.is_function:
        params = []
        for param in obj.parameters:
            if param.name in ("self", "cls"):
                continue
            text = {"var_positional": "*", "var_keyword": "**"}.get(param.kind.value, "") + param.name
            if param.default is not None and param.kind.value not in ("var_positional", "var_keyword"):
                text += f"={param.default}"
            params.append(text)
        return f"({', '.join(params)})"
    if obj.is_class:
        init = obj.members.get("__init__")
        if init is not None and init.is_function:
            return _signature(init)
    return ""


def _sections(obj: Object, level: int) -> list[str]:
    """The docstring of ``obj`` as markdown: its text, then a list per numpydoc section."""
    if obj.docstring is None:
        return ["*(no docstring)*", ""]
    lines: list[str] = []
    for section in obj.docstring.parsed:
        kind = section.kind
        if kind is DocstringSectionKind.text:
            lines += [section.value.strip(), ""]
        elif kind in (
            DocstringSectionKind.parameters,
            DocstringSectionKind.other_parameters,
            DocstringSectionKind.attributes,
        ):
            title = {"parameters": "Parameters", "other parameters": "Other parameters"}.get(
                kind.value, "Attributes"
            )
            lines += [f"**{title}**", ""]
            for item in section.value:
                annotation = f" (`{item.annotation}`)" if item.annotation else ""
                lines.append(f"- `{item.name}`{annotation}: {_one_line(item.description)}")
            lines.append("")
        elif kind in (DocstringSectionKind.returns, DocstringSectionKind.yields):
            lines += [f"**{'Returns' if kind is DocstringSectionKind.returns else 'Yields'}**", ""]
            for item in section.value:
                annotation = f"`{item.annotation}`" if item.annotation else ""
                name = f"`{item.name}` " if item.name else ""
                lines.append(f"- {name}{annotation}: {_one_line(item.description)}".replace(" : ", ": "))
            lines.append("")
        elif kind is DocstringSectionKind.raises:
            lines += ["**Raises**", ""]
            lines += [f"- `{item.annotation}`: {_one_line(item.description)}" for item in section.value]
            lines.append("")
        elif kind is DocstringSectionKind.examples:
            lines += ["**Examples**", "", "```python"]
            for sub_kind, value in section.value:
                lines.append(value if sub_kind.value == "examples" else f"# {_one_line(value)}")
            lines += ["```", ""]
        elif isinstance(section.value, str):
            lines += [f"**{section.title or kind.value.capitalize()}**", "", section.value.strip(), ""]
    return lines


def _document(obj: Object, name: str, level: int) -> list[str]:
    kind = "class" if obj.is_class else "function" if obj.is_function else "data"
    lines = [f"{'#' * level} `{name}{_signature(obj)}`", "", f"*{kind}*", ""]
    lines += _sections(obj, level)
    if obj.is_class:
        for member_name, member in obj.members.items():
            if (
                member_name.startswith("_")
                or member.is_alias
                or not (member.is_function or member.is_attribute)
            ):
                continue
            if member.is_attribute and member.docstring is None:
                continue  # dataclass fields: the class's Attributes section describes them
            lines += _document(member, f"{name}.{member_name}", level + 1)
    return lines


def _modules(package: Object) -> list[Object]:
    """The package and its public modules, depth first in name order."""
    found = [package]
    for name in sorted(package.modules):
        module = package.modules[name]
        if not name.startswith("_") and module.path not in SKIP_MODULES:
            found += _modules(module) if module.modules else [module]
    return found


def render(root: Path = ROOT) -> str:
    """The text of docs/api.md for the ``bioprofile`` package under ``root``."""
    loader = GriffeLoader(search_paths=[root], docstring_parser="numpy")
    package = loader.load("bioprofile")
    lines = [HEADER]
    for module in _modules(package):
        names = _public_names(module)
        lines += [f"## `{module.path}`", ""]
        if module.docstring is not None:
            lines += [module.docstring.value.strip().split("\n\n")[0], ""]
        for name in names:
            member = module.members.get(name)
            if member is None:
                continue
            if isinstance(member, Alias):
                try:
                    target = member.final_target
                except Exception:  # noqa: BLE001 -- a name from outside the package: not documented here
                    continue
                if target.path != f"{module.path}.{name}" and target.parent is not None:
                    owner = target.parent.path
                    if not any(part.startswith("_") for part in owner.split(".")):
                        lines.append(f"- `{name}`: see `{target.path}`")
                        continue
                member = target
            if lines[-1].startswith("- `"):
                lines.append("")
            lines += _document(member, f"{module.path}.{name}", 3)
        if lines[-1].startswith("- `"):
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main() -> None:
    """Write the reference to ``--output`` (docs/api.md by default)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    args.output.write_text(render(), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
