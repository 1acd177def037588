"""``subgroups seed``: load sample_data/ (with its campaigns), or N synthetic profiles."""

import argparse
import sys
import time

from app.cli.options import Command, db_option, positive_int
from app.core import actors
from app.core.store import Store


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    seed_parser = commands.add_parser(
        "seed", parents=[db_option()], help="load sample_data/ (or N synthetic profiles)"
    )
    seed_parser.add_argument(
        "--profiles", type=positive_int, metavar="N", help="N synthetic profiles over 50 groups"
    )
    seed_parser.set_defaults(func="seed")


class SeedProgress:
    """Progress of a seed on stderr: rows written, and rows a second since the start.

    On a terminal one line rewritten in place; otherwise (a log file) a line
    every ``every`` seconds and at the end.
    """

    def __init__(self, *, every: float = 10.0) -> None:
        self.started = time.perf_counter()
        self.every = every
        self.shown = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        took = time.perf_counter() - self.started
        if not self.tty and done < total and took - self.shown < self.every:
            return
        self.shown = took
        rate = done / took if took > 0 else 0.0
        line = f"{done:,} / {total:,} profiles, {rate:,.0f}/s, {took:,.0f} s"
        if self.tty:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr, flush=True)

    def building(self) -> None:
        """The rows are in; the indexes are being built."""
        if self.tty:
            print(file=sys.stderr)
        took = time.perf_counter() - self.started
        print(f"Building the indexes ({took:,.0f} s so far)...", file=sys.stderr, flush=True)


def seed(args: argparse.Namespace, store: Store) -> int:
    from app.core import sample_campaigns, segments, snapshot_writer, synthetic
    from app.core.outbox import MaildirOutbox, default_outbox_dir

    progress = SeedProgress()
    started = time.perf_counter()
    if args.profiles:
        synthetic.seed_synthetic(
            store=store,
            profiles=args.profiles,
            actor=actors.actor_name(),
            progress=progress,
            on_build=progress.building,
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
            store=store, actor=actors.actor_name(), outbox=outbox, progress=progress
        )
        what = (
            f"the sample data (and its campaigns: {loaded.sent:,} messages sent into "
            f"{outbox.description}, {loaded.unsubscribes:,} unsubscribes through their links)"
        )
    if progress.tty:
        print(file=sys.stderr)
    print(f"Loaded {what} into {store.display_name} in {time.perf_counter() - started:.1f} s.")
    return 0


COMMANDS: dict[str, Command] = {"seed": seed}
