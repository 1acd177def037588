"""``subgroups profiles history`` and ``profiles erase``: a person as of a moment, and
their erasure (issue 12, asks 4 and 5)."""

import argparse

from app.cli.output import local_time, print_json, table
from app.core import actors, erasure, ledger, profile_history
from app.core.store import Store
from app.core.text_rules import shown


def add_actions(
    actions: "argparse._SubParsersAction[argparse.ArgumentParser]",
    db: argparse.ArgumentParser,
    as_json: argparse.ArgumentParser,
) -> None:
    """The two actions, under ``profiles``."""
    p_history = actions.add_parser(
        "history",
        parents=[db, as_json],
        help="a profile's states as of a moment, and the events that set them",
    )
    p_history.add_argument("identity", metavar="IDENTITY")
    p_history.add_argument(
        "--as-of",
        metavar="ISO-TIME",
        help="the moment (default: now); local time unless it ends in Z or +HH:MM",
    )
    p_history.set_defaults(func="profiles_history")

    p_erase = actions.add_parser(
        "erase",
        parents=[db, as_json],
        help="remove a person's email, name, properties and identity, keeping their opt-out",
    )
    p_erase.add_argument("identity", metavar="IDENTITY")
    p_erase.add_argument("--reason", metavar="T", required=True, help="why (recorded)")
    p_erase.set_defaults(func="profiles_erase")


def profiles_history(args: argparse.Namespace, store: Store) -> int:
    as_of = profile_history.parse_as_of(args.as_of) if args.as_of is not None else None
    with store.read() as session:
        found = profile_history.profile_history(session, args.identity, as_of=as_of)
    if args.json:
        print_json(found.to_json())
        return 0
    print(shown(f"{found.identity} as of {local_time(found.as_of)}"))
    if not found.existed:
        print("The profile did not exist yet.")
        return 0

    def origin(state: profile_history.StateAsOf) -> str:
        if state.event is None:
            return "never set"
        return f"event {state.event.id}, {local_time(state.event.ts)}, {state.event.source}"

    print(f"All email: {found.all_email.stored} ({origin(found.all_email)})")
    rows = [[g.group_name or "", g.effective, g.stored or "-", origin(g)] for g in found.groups]
    if rows:
        print(table(rows, ["GROUP", "EFFECTIVE", "STORED", "SET BY"]))
    print(f"Events up to then ({len(found.events):,}):")
    for event in found.events:
        print(
            f"  {event.id:>7}  {local_time(event.ts)}  {shown(event.name)}  "
            f"{shown(ledger.summary(event))}"
        )
    return 0


def profiles_erase(args: argparse.Namespace, store: Store) -> int:
    with store.write() as session:
        done = erasure.erase_profile(
            session=session,
            identity=args.identity,
            reason=args.reason,
            source="cli",
            actor=actors.actor_name(),
        )
    if args.json:
        print_json(
            {
                "identity": done.identity,
                "events_redacted": done.events_redacted,
                "addresses_suppressed": done.addresses_suppressed,
                "event": done.event.to_json(),
            }
        )
        return 0
    print(
        shown(
            f"Erased {args.identity}: email, name, properties and identity removed; "
            f"{done.events_redacted:,} events redacted (the ledger still verifies); "
            f"{done.addresses_suppressed} address(es) suppressed. "
            f"The profile is now {done.identity} (event {done.event.id})."
        )
    )
    return 0
