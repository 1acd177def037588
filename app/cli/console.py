"""The console itself: ``subgroups [console]``, and ``subgroups demo``, the console on a
fresh sample store with simulated live traffic."""

import argparse
import sys
import tempfile
from pathlib import Path

from app.cli.options import Command, db_option
from app.core import clock
from app.core.errors import SubgroupsError
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
    demo_parser.set_defaults(func="demo")


def demo_db() -> str:
    """Where the demo's store goes when no --db is given: a new temporary folder."""
    return str(Path(tempfile.mkdtemp(prefix="subgroups-demo-")) / "demo.db")


def console(args: argparse.Namespace, store: Store) -> int:
    from app.ui.app import SubgroupsApp

    SubgroupsApp(store=store).run()
    return 0


def demo(args: argparse.Namespace, store: Store) -> int:
    from app.core import sample_campaigns
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
    print(f"Loading the sample data into {store.display_name} …", file=sys.stderr)
    sample_campaigns.load_sample(
        store=store, actor=clock.os_user(), outbox=MaildirOutbox(default_outbox_dir(store.store_id))
    )
    simulator = TrafficSimulator(store)
    simulator.start()
    try:
        SubgroupsApp(store=store, demo=True).run()
    finally:
        simulator.stop()
    print(f"The demo store is kept at {store.display_name}.")
    return 0


COMMANDS: dict[str, Command] = {"console": console, "demo": demo}
