"""Fixtures for the CLI tests."""

import pytest
from cli_runner import CliRunner, make_runner


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """Run ``subgroups`` in-process: ``cli("groups", "list")`` → (exit code, stdout, stderr)."""
    return make_runner(capsys)
