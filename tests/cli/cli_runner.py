"""Running the CLI in-process, as the tests of tests/cli do (through the ``cli`` fixture)."""

from collections.abc import Callable

import pytest

from app.__main__ import main

# cli(*argv) -> (exit code, stdout, stderr)
CliRunner = Callable[..., tuple[int, str, str]]


def make_runner(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    def run(*argv: str) -> tuple[int, str, str]:
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run
