"""The console itself: ``subgroups [console]``, and ``subgroups demo``, the console on a
fresh sample store with simulated live traffic."""

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli.options import Command, db_option
from app.core import actors
from app.core.errors import SubgroupsError

if TYPE_CHECKING:
    from app.core.store import Store


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    console_parser = commands.add_parser(
        "console", parents=[db_option()], help="open the console (the default)"
    )
    console_parser.set_defaults(func="console")
    demo_parser = commands.add_parser(
        "demo",
        parents=[db_option()],
        help="the console on a fresh sample store, with simulated live traffic",
    )
    demo_parser.add_argument(
        "--tour",
        action="store_true",
        help="with a guided tour for a presenter: a panel narrates each step of the sample's "
        "story and notices when it is done (F8 next, F9 restart)",
    )
    # For `subgroups serve --demo-tour` (each browser tab's console): the store and outbox
    # made for this demo are removed when it ends, and it says nothing on its way out.
    demo_parser.add_argument("--discard", action="store_true", help=argparse.SUPPRESS)
    demo_parser.set_defaults(func="demo")


# The start of the name of a demo store's temporary folder.
DEMO_PREFIX = "subgroups-demo-"


def demo_db() -> str:
    """Where the demo's store goes when no --db is given: a new temporary folder."""
    return str(Path(tempfile.mkdtemp(prefix=DEMO_PREFIX)) / "demo.db")


def console_db(argv: Sequence[str]) -> tuple[str | None] | None:
    """The --db of a command line that only opens the console (``[--db X] [console]``),
    as a 1-tuple (its value None: the default store); None for any other command line."""
    db: str | None = None
    named_console = False
    rest = list(argv)
    while rest:
        word = rest.pop(0)
        if word == "--db" and rest and not rest[0].startswith("-"):
            db = rest.pop(0)
        elif word.startswith("--db=") and len(word) > len("--db="):
            db = word[len("--db=") :]
        elif word == "console" and not named_console:
            named_console = True
        else:
            return None  # anything else: the whole parser decides
    return (db,)


def shown_name(db: str | None) -> str:
    """What the header names before the store is open: a path as given (absolute),
    nothing for a URL (which may carry a password; named once it is parsed)."""
    text = db or os.environ.get("SUBGROUPS_DB") or ""
    if not text:
        return ""
    if "://" in text or text == ":memory:":
        return ""
    return str(Path(text).expanduser().absolute())


def open_console(argv: Sequence[str] | None) -> int | None:
    """Open the console, then leave the process with its exit code, if the command
    line asks for nothing else; None (at once) if it does.

    The short way: no command group and no part of the data layer is imported
    here. The console paints its first frame, then opens the store in a worker
    (creating it if missing, as ``subgroups console`` may); a first look at an
    SQLite store (the standard library's sqlite3) shows the Groups gauge meanwhile.
    """
    found = console_db(sys.argv[1:] if argv is None else argv)
    if found is None:
        return None
    (db,) = found
    from app.ui.app import SubgroupsApp

    def open_it() -> "Store":
        from app.core.store import open_store

        return open_store(db, create=True)

    def first_look() -> int | None:
        # The standard library's sqlite3 only: on screen before SQLAlchemy is loaded.
        from app.core.first_look import active_groups

        return active_groups(db)

    app = SubgroupsApp(open_store=open_it, first_look=first_look, store_name=shown_name(db))
    try:
        app.run()
    finally:
        if app.store is not None:
            app.store.dispose()
    code = 0
    if app.open_error:
        print(f"subgroups: {app.open_error}", file=sys.stderr)
        code = app.return_code or 1
    elif app.store is not None and app.store.created:
        print(f"subgroups: created a new store at {app.store.display_name}", file=sys.stderr)
    # Gone at once: the terminal is restored and the store closed, and the
    # interpreter's own teardown of the modules loaded (a second or more on a busy
    # machine) would only hold up ctrl+q. Worker threads are daemons, unjoined.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def console(args: argparse.Namespace, store: "Store") -> int:
    from app.ui.app import SubgroupsApp

    SubgroupsApp(store=store).run()
    return 0


def demo(args: argparse.Namespace, store: "Store") -> int:
    from app.core import demo_history, sample_campaigns
    from app.core import seed as seeding
    from app.core.outbox import MaildirOutbox, default_outbox_dir
    from app.core.simulator import TrafficSimulator
    from app.ui.app import SubgroupsApp

    with store.read() as session:
        empty = seeding.store_is_empty(session)
    if not empty:
        raise SubgroupsError(
            f"demo needs an empty store and {store.display_name} has data; "
            "leave out --db to use a fresh one"
        )
    discard = bool(getattr(args, "discard", False)) and getattr(args, "db", None) is None
    if not discard:
        print(f"Loading the sample data into {store.display_name} …", file=sys.stderr)
    outbox_dir = default_outbox_dir(store.store_id)
    sample_campaigns.load_sample(
        store=store, actor=actors.actor_name(), outbox=MaildirOutbox(outbox_dir)
    )
    # A month of everyday traffic (sources, reasons), so the Insights charts are not empty.
    demo_history.add_month_of_history(store=store, actor=actors.actor_name())
    simulator = TrafficSimulator(store)
    simulator.start()
    app_class = SubgroupsApp
    if getattr(args, "tour", False):
        from app.ui.tour_app import TourApp

        app_class = TourApp
    try:
        app_class(store=store, demo=True).run()
    finally:
        simulator.stop()
        folder = Path(store.display_name).parent
        if discard and folder.name.startswith(DEMO_PREFIX):
            # The store's folder was made for this demo (demo_db): nothing else is in it.
            shutil.rmtree(folder, ignore_errors=True)
            shutil.rmtree(outbox_dir, ignore_errors=True)
    if not discard:
        print(f"The demo store is kept at {store.display_name}.")
    return 0


COMMANDS: dict[str, Command] = {"console": console, "demo": demo}
