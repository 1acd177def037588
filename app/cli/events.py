"""The ``subgroups events`` command: the ledger, newest last (JSON Lines with --json),
and with ``--follow`` new events as they are written."""

import argparse
import threading

from app.cli.options import Command, db_option, json_option, positive_int
from app.cli.output import OK, REFUSED, count, error, json_line, local_time
from app.core import groups, ledger, ledger_verify
from app.core.ledger_wakeups import LedgerWakeups
from app.core.store import Store
from app.core.text_rules import shown


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    events = commands.add_parser(
        "events", parents=[db_option(), json_option()], help="the ledger (JSON Lines with --json)"
    )
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    events.add_argument("--name", metavar="NAME", help="only events of this name")
    events.add_argument("--group", metavar="NAME", help="only events about this group")
    events.add_argument(
        "--limit", type=positive_int, default=20, metavar="N", help="how many (default 20)"
    )
    events.set_defaults(func="events")
    actions = events.add_subparsers(dest="events_action", metavar="ACTION")
    verify = actions.add_parser(
        "verify",
        parents=[db_option()],
        help="check the ledger's hash chain: every event's content and link",
    )
    verify.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="processes checking parts of a large ledger at once (default: one per CPU, up to 4)",
    )
    verify.set_defaults(func="events_verify")


def _print_event(event: ledger.EventRecord, as_json: bool) -> None:
    if as_json:
        print(json_line(event.to_json()), flush=True)
    else:
        # One event, one line: a newline in an identity shows as \n, never as a new line.
        print(
            f"{event.id:>7}  {local_time(event.ts)}  {shown(event.name):<22} "
            f"{shown(ledger.summary(event))}",
            flush=True,
        )


def _event_matches(event: ledger.EventRecord, args: argparse.Namespace) -> bool:
    if args.name and event.name != args.name:
        return False
    return not (args.group and (event.group_name or "").casefold() != args.group.strip().casefold())


def events(args: argparse.Namespace, store: Store) -> int:
    # Made before the first read (a commit after it wakes the loop); reads only on a change.
    wakeups = LedgerWakeups(store.engine) if args.follow else None
    with store.read() as session:
        if args.group:
            groups.find_group(session, args.group)
        recent = ledger.recent_events(session, limit=args.limit, name=args.name, group=args.group)
        follower = ledger.LedgerFollower(after_id=ledger.latest_id(session))
    for event in recent:
        _print_event(event, args.json)
    if wakeups is None:
        return 0
    try:
        while wakeups.wait(threading.Event()):
            with store.read() as session:
                fresh = follower.poll(session)
            for event in fresh:
                if _event_matches(event, args):
                    _print_event(event, args.json)
    except KeyboardInterrupt:
        return 0
    finally:
        wakeups.close()
    return 0


def events_verify(args: argparse.Namespace, store: Store) -> int:
    """Exit 0 with "N events, chain intact", or 1 naming the first event that does not match."""
    with store.engine.connect() as connection:
        report = ledger_verify.verify_store(store.url, connection, workers=args.workers)
    if report.broken is not None:
        error(
            f"chain broken after {count(report.events, 'intact event')}: "
            f"{shown(report.broken.describe())}"
        )
        return REFUSED
    print(f"{count(report.events, 'event')}, chain intact")
    return OK


COMMANDS: dict[str, Command] = {"events": events, "events_verify": events_verify}
