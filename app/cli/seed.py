"""``subgroups seed``: load sample_data/ (with its campaigns), or N synthetic profiles."""

import argparse
import sys
import time

from app.cli.options import Command, db_option, positive_int
from app.core import clock
from app.core.store import Store


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    seed_parser = commands.add_parser(
        "seed", parents=[db_option()], help="load sample_data/ (or N synthetic profiles)"
    )
    seed_parser.add_argument(
        "--profiles", type=positive_int, metavar="N", help="N synthetic profiles over 50 groups"
    )
    seed_parser.set_defaults(func="seed")


def seed(args: argparse.Namespace, store: Store) -> int:
    from app.core import sample_campaigns, segments, snapshot_writer, synthetic
    from app.core.outbox import MaildirOutbox, default_outbox_dir

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{done:,} / {total:,}", end="", file=sys.stderr, flush=True)

    started = time.perf_counter()
    if args.profiles:
        synthetic.seed_synthetic(
            store=store, profiles=args.profiles, actor=clock.os_user(), progress=progress
        )
        what = f"{args.profiles:,} synthetic profiles over 50 groups"
        # The index snapshot, so the first count of every later process starts warm.
        index = segments.index_for(store)
        with store.read() as session:
            index.refresh(session)
        if snapshot_writer.worth_writing(index):
            snapshot_writer.write_snapshot(store, index)
    else:
        outbox = MaildirOutbox(default_outbox_dir(store.store_id))
        loaded = sample_campaigns.load_sample(
            store=store, actor=clock.os_user(), outbox=outbox, progress=progress
        )
        what = (
            f"the sample data (and its campaigns: {loaded.sent:,} messages sent into "
            f"{outbox.description}, {loaded.unsubscribes:,} unsubscribes through their links)"
        )
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"Loaded {what} into {store.display_name} in {time.perf_counter() - started:.1f} s.")
    return 0


COMMANDS: dict[str, Command] = {"seed": seed}
