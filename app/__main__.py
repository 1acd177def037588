"""The ``subgroups`` entry point (``python -m app``, and the installed script)."""

import sys
from collections.abc import Sequence

from app.cli import run


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command (``app.cli.run``); returns the exit code."""
    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
