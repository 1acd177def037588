"""The core stands alone: the CLI, the landing server and scripts load it
without the console (STYLE.md; harlequin's tests/unit_tests/test_import_hygiene.py).

The imports run in a fresh interpreter, because this one has long since
imported everything the other tests needed.
"""

import json
import subprocess

import pytest

CORE_MODULES = [
    "app.core.store",
    "app.core.groups",
    "app.core.subscriptions",
    "app.core.profiles",
    "app.core.ledger",
    "app.core.migrations",
]

PROBE = r"""
import json, sys
import {modules}
print(json.dumps(sorted(sys.modules)))
"""


def modules_loaded_by(modules: list[str], python: str, env: dict[str, str]) -> set[str]:
    """Every module a fresh interpreter holds after importing ``modules``."""
    result = subprocess.run(
        [python, "-c", PROBE.format(modules=", ".join(modules))],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def top_level(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.fixture(scope="module")
def core_loaded(python: str, subprocess_env: dict[str, str]) -> set[str]:
    return modules_loaded_by(CORE_MODULES, python, subprocess_env)


def test_the_core_loads_without_textual(core_loaded: set[str]) -> None:
    assert set(CORE_MODULES) <= core_loaded  # the probe really imported them
    assert "textual" not in top_level(core_loaded)
    assert "rich" not in top_level(core_loaded)
    assert not {m for m in core_loaded if m.startswith("app.ui")}


def test_the_core_loads_without_the_postgresql_driver(core_loaded: set[str]) -> None:
    """A SQLite user needs no PostgreSQL driver: it loads when a URL asks for it."""
    assert not {m for m in top_level(core_loaded) if m.startswith("psycopg")}


def test_the_landing_server_loads_without_the_console(
    python: str, subprocess_env: dict[str, str]
) -> None:
    """``subgroups landing`` on a server host needs neither Textual nor Rich."""
    loaded = modules_loaded_by(["app.core.landing", "app.web.serving"], python, subprocess_env)
    assert {"app.web.server", "starlette", "uvicorn"} <= loaded | top_level(loaded)
    assert not {"textual", "rich"} & top_level(loaded)
    assert not {m for m in loaded if m.startswith("app.ui")}


def test_the_probe_notices_textual(python: str, subprocess_env: dict[str, str]) -> None:
    """The checks above can fail: importing the console's toolkit shows up."""
    assert "textual" in top_level(modules_loaded_by(["textual.app"], python, subprocess_env))


def _core_imports() -> dict[str, set[str]]:
    """Each app.core module -> the app.core modules it imports, anywhere in its text
    (an import inside a function still makes a circle, only a hidden one)."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    core = root / "app" / "core"
    names = {
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
        for p in core.rglob("*.py")
    }
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in names else node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {dep for dep in found if dep in names and dep != name}
    return graph


def test_the_core_has_no_import_circles() -> None:
    graph = _core_imports()
    circles: list[list[str]] = []

    def walk(module: str, path: list[str]) -> None:
        for dep in sorted(graph[module]):
            if dep == path[0]:
                circles.append([*path, dep])
            elif dep not in path and dep > path[0]:  # each circle once, from its least module
                walk(dep, [*path, dep])

    for module in sorted(graph):
        walk(module, [module])
    assert circles == []
