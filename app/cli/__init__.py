"""The ``subgroups`` command line: the parser, built from one module per command
group, and ``run``, which opens the store and runs one command.

Each command opens the store, calls one service, and prints the result for
people or, with --json, for scripts. Errors the services raise carry their
exit code; they are printed as one line on stderr, never as a traceback
(exit codes: see ``app.cli.output``).

``subgroups`` alone (or ``subgroups [--db X] [console]``) takes a short way
(``console.open_console``) that imports neither the command groups nor the data
layer: the console paints its first frame and opens the store in a worker.
Everything else is imported by ``run`` and ``build_parser`` when needed.
"""

import argparse
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING

from app.cli import console

if TYPE_CHECKING:
    from app.cli.options import Command


def command_groups() -> tuple[ModuleType, ...]:
    """The command groups, in the order ``subgroups --help`` lists them."""
    from app.cli import (
        admins,
        campaigns,
        dkim,
        events,
        groups,
        inbound,
        insights,
        landing,
        profiles,
        seed,
        segments,
        serve,
        settings,
        ssh,
    )

    return (
        console,
        seed,
        groups,
        profiles,
        segments,
        campaigns,
        landing,
        inbound,
        settings,
        dkim,
        serve,
        events,
        insights,
        admins,
        ssh,
    )


_HANDLERS: "dict[str, Command]" = {}


def handlers() -> "dict[str, Command]":
    """Each command's handler, by the name its parser sets as ``func`` (made once)."""
    if not _HANDLERS:
        _HANDLERS.update(
            (name, handler)
            for group in command_groups()
            for name, handler in group.COMMANDS.items()
        )
    return _HANDLERS


def __getattr__(name: str) -> object:
    # GROUPS and COMMANDS, made on first use (the console's short way needs neither).
    if name == "GROUPS":
        return command_groups()
    if name == "COMMANDS":
        return handlers()
    raise AttributeError(name)


# The only commands that may create a missing store (a mistyped --db must not
# become an empty store): the console, the demo, and those that add data.
CREATING_COMMANDS = frozenset({"console", "demo", "seed", "groups_create", "profiles_import"})


# Commands that run until the user stops them: they never wait for the snapshot writer.
LONG_RUNNING = frozenset({"console", "demo", "landing", "inbound", "serve", "events", "ssh"})
SNAPSHOT_WAIT_SECONDS = 60.0


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI of DESIGN.md §2 (this release's part of it)."""
    from app import __version__
    from app.cli.options import db_option

    parser = argparse.ArgumentParser(
        prog="subgroups",
        parents=[db_option()],
        description="A keyboard-driven console for email subscription groups. "
        "With no command, opens the console.",
    )
    parser.add_argument("--version", action="version", version=f"subgroups {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in command_groups():
        group.add_parser(commands)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run one command; returns the exit code.

    Bad usage exits through argparse (SystemExit 2, its message on stderr).
    """
    fast = console.open_console(argv)
    if fast is not None:
        return fast
    from sqlalchemy.exc import OperationalError

    from app.cli.output import INTERRUPTED, OK, REFUSED, error, silence_stdout
    from app.core import snapshot_writer
    from app.core.errors import SubgroupsError
    from app.core.store import open_store
    from app.core.text_rules import shown_lines

    args = build_parser().parse_args(argv)
    func_name: str = getattr(args, "func", "console")
    db: str | None = getattr(args, "db", None)
    if func_name == "serve" and getattr(args, "demo_tour", False):
        # Each browser tab makes a sample store of its own: the server opens none.
        from app.cli.serve import serve_demo_tour

        try:
            return serve_demo_tour(args)
        except SubgroupsError as exc:  # cannot listen there
            error(shown_lines(str(exc)))
            return exc.exit_code
        except KeyboardInterrupt:
            return INTERRUPTED
    if func_name == "demo" and db is None:
        db = console.demo_db()
    try:
        store = open_store(db, create=func_name in CREATING_COMMANDS)
    except SubgroupsError as exc:
        error(str(exc))
        return exc.exit_code
    if store.created:
        error(f"created a new store at {store.display_name}")
    try:
        return handlers()[func_name](args, store)
    except SubgroupsError as exc:
        error(shown_lines(str(exc)))
        return exc.exit_code
    except OperationalError as exc:
        error(f"the store {store.display_name} could not do this: {exc.orig}")
        return REFUSED
    except KeyboardInterrupt:
        return INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other Unix tools do.
        silence_stdout()
        return OK
    finally:
        if func_name not in LONG_RUNNING:
            # A snapshot the command started writing is finished (once per stale
            # snapshot); the console never waits for it.
            snapshot_writer.wait_for_writer(store, SNAPSHOT_WAIT_SECONDS)
        store.dispose()


__all__ = ["COMMANDS", "CREATING_COMMANDS", "build_parser", "run"]
