"""The CLI's layout (issue 9, ask 2): ``app/cli/`` is a package with one module per
command group, each building its own part of the parser; no import circle among the CLI's
modules (imports inside functions count too); no file over 500 lines."""

import argparse
import ast
from pathlib import Path

import app
from app import cli

APP = Path(app.__file__).parent


def _cli_modules() -> dict[str, Path]:
    """Every module of the CLI by dotted name: ``app.cli`` and below (and any ``app.cli_*``)."""
    found = {}
    for path in APP.rglob("*.py"):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name == "app.cli" or name.startswith(("app.cli.", "app.cli_")):
            found[name] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The CLI modules ``path`` imports, wherever in the file the import is."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.add(sub if sub in modules else node.module)
    return out & set(modules)


def test_no_import_circle_among_the_cli_modules() -> None:
    modules = _cli_modules()
    graph = {name: _imports(path, modules) - {name} for name, path in modules.items()}
    circles = []

    def visit(name: str, trail: list[str]) -> None:
        for target in sorted(graph[name]):
            if target in trail:
                circles.append(" -> ".join([*trail[trail.index(target) :], target]))
            else:
                visit(target, [*trail, target])

    for name in sorted(graph):
        visit(name, [name])
    assert circles == []


def test_each_command_group_builds_its_part_of_the_parser() -> None:
    parser = cli.build_parser()
    funcs = set()

    def collect(p: argparse.ArgumentParser) -> None:
        if p.get_default("func"):
            funcs.add(p.get_default("func"))
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    collect(sub)

    collect(parser)
    assert funcs == set(cli.COMMANDS)  # every command has a handler, every handler a command
    for group in cli.GROUPS:
        assert Path(group.__file__ or "").parent == APP / "cli"
        assert callable(group.add_parser) and group.COMMANDS


def test_no_cli_file_is_over_500_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in _cli_modules().items()}
    assert {name: n for name, n in sizes.items() if n > 500} == {}
