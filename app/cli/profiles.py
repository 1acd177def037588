"""The ``subgroups profiles`` commands: show, set, import and export."""

import argparse
from pathlib import Path

from app.cli import profile_records
from app.cli.options import Command, db_option, json_option
from app.cli.output import (
    clear_progress,
    count,
    export_csv,
    local_time,
    print_json,
    progress_printer,
    table,
)
from app.core import actors, ledger, profiles, subscriptions
from app.core.store import Store
from app.core.text_rules import shown


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    db, as_json = db_option(), json_option()
    actions = commands.add_parser("profiles", help="profiles and their states").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p_show = actions.add_parser(
        "show", parents=[db, as_json], help="a profile's states and history"
    )
    p_show.add_argument("identity", metavar="IDENTITY")
    p_show.set_defaults(func="profiles_show")

    p_set = actions.add_parser("set", parents=[db, as_json], help="change a profile's state")
    p_set.add_argument("identity", metavar="IDENTITY")
    target = p_set.add_mutually_exclusive_group(required=True)
    target.add_argument("--group", metavar="NAME")
    target.add_argument("--all-email", action="store_true", help="the whole email channel")
    p_set.add_argument("--status", required=True, choices=["subscribed", "unsubscribed"])
    p_set.add_argument("--reason", metavar="T")
    p_set.set_defaults(func="profiles_set")

    p_import = actions.add_parser(
        "import",
        parents=[db, as_json],
        help="import profiles and their states from a CSV file (all or nothing)",
    )
    p_import.add_argument("file", metavar="FILE.csv")
    p_import.add_argument(
        "--dry-run", action="store_true", help="check the file, report the changes, write nothing"
    )
    p_import.add_argument(
        "--overwrite-unsubscribes",
        action="store_true",
        help="let the file resubscribe people who unsubscribed (needs --reason)",
    )
    p_import.add_argument(
        "--reason", metavar="TEXT", help="why unsubscribes are overwritten (recorded on each)"
    )
    p_import.set_defaults(func="profiles_import")

    p_export = actions.add_parser(
        "export", parents=[db], help="all profiles and their stored states as a CSV file"
    )
    p_export.add_argument("file", nargs="?", metavar="FILE.csv|-", help="default: stdout")
    p_export.set_defaults(func="profiles_export")
    profile_records.add_actions(actions, db, as_json)


def profiles_show(args: argparse.Namespace, store: Store) -> int:
    with store.read() as session:
        view = profiles.profile_view(session, args.identity, history_limit=10)
    if args.json:
        print_json(view.to_json())
        return 0
    print(shown(f"{view.identity}  {view.email or ''}  {view.name}"))
    if view.properties:
        print("  " + shown(", ".join(f"{k}={v}" for k, v in view.properties.items())))
    print(f"All email: {view.all_email} ({shown(view.all_email_origin)})")
    if not view.deliverable:
        print("Deliverable: no (the address bounced: no campaign is sent to it)")
    if view.same_address:
        print(
            f"Same address as: {shown(', '.join(view.same_address))} (one recipient: an opt-out "
            "under any of them counts for all)"
        )
    rows = [
        [
            g.group_name + (" (archived)" if g.group_status != "active" else ""),
            g.effective,
            g.stored or "-",
            g.origin,
        ]
        for g in view.groups
    ]
    print(table(rows, ["GROUP", "EFFECTIVE", "STORED", "WHERE FROM"]))
    if view.history:
        print("Recent history:")
        for ev in view.history:
            print(f"  {local_time(ev.ts)}  {shown(ev.name)}  {shown(ledger.summary(ev))}")
    return 0


def profiles_set(args: argparse.Namespace, store: Store) -> int:
    with store.write() as session:
        done = subscriptions.set_state_for(
            session=session,
            identity=args.identity,
            group=None if args.all_email else args.group,
            all_email=args.all_email,
            status=args.status,
            source="cli",
            actor=actors.actor_name(),
            reason=args.reason,
        )
    record, target = done.event, done.target
    if args.json:
        print_json({"changed": record is not None, "event": record.to_json() if record else None})
    elif record is None:
        print(shown(f"{args.identity} is already {args.status} for {target}; nothing changed."))
    else:
        print(shown(f"{args.identity}: {target} is now {args.status} (event {record.id})."))
    return 0


def profiles_import(args: argparse.Namespace, store: Store) -> int:
    from app.core import csv_io

    progress = progress_printer()
    try:
        result = csv_io.import_profiles(
            store=store,
            source=Path(args.file),
            actor=actors.actor_name(),
            dry_run=args.dry_run,
            overwrite_unsubscribes=args.overwrite_unsubscribes,
            reason=args.reason,
            progress=progress,
        )
    finally:
        if progress:
            clear_progress()
    if args.json:
        print_json(result.to_json(details=True))
        return 0
    plan = result.plan
    if result.dry_run:
        print(f"Dry run of {plan.file} ({count(plan.rows, 'row')}): nothing was written.")
    else:
        print(
            f"Imported {plan.file} ({count(plan.rows, 'row')}) into {store.display_name} "
            f"in {result.seconds:.1f} s; {count(result.events, 'ledger event')} written."
        )
    print(f"New profiles:     {len(plan.new_profiles):,}")
    print(f"Updated profiles: {len(plan.updated_profiles):,}")
    print(f"Unchanged rows:   {plan.unchanged_rows:,}")
    print(f"State changes:    {len(plan.state_changes):,}")
    rows = [
        [name or "all email", f"{sub:,}", f"{unsub:,}"]
        for _, name, sub, unsub in plan.changes_by_group()
    ]
    if rows:
        by_group = table(rows, ["GROUP", "TO SUBSCRIBED", "TO UNSUBSCRIBED"])
        print("\n".join("  " + line for line in by_group.splitlines()))
    for change in plan.state_changes[:10]:
        target = change.group_name or "all email"
        overwrite = " (overwrites an unsubscribe)" if change.overwrites_unsubscribe else ""
        print(
            f"  line {change.line}: {change.identity} {target}: {change.old or 'never set'} "
            f"-> {change.new}{overwrite}"
        )
    if len(plan.state_changes) > 10:
        print(f"  … and {len(plan.state_changes) - 10:,} more (--json lists every one)")
    if plan.overwrite_unsubscribes:
        overwritten = plan.overwritten_unsubscribes
        print(f"Overwritten unsubscribes: {overwritten:,} (reason: {plan.reason})")
    elif plan.kept_unsubscribed:
        print(
            f"Kept unsubscribed: {len(plan.kept_unsubscribed):,} (the file says subscribed where "
            "the person unsubscribed; --overwrite-unsubscribes --reason TEXT overwrites them)"
        )
        for kept in plan.kept_unsubscribed[:5]:
            print(f"  line {kept.line}: {kept.identity} {kept.group_name or 'all email'}")
    else:
        print("Kept unsubscribed: 0")
    if plan.shared_addresses:
        print(
            f"Warning: {len(plan.shared_addresses):,} "
            f"address{'' if len(plan.shared_addresses) == 1 else 'es'} shared by several "
            "profiles; each is one recipient (one message, and an opt-out under any of its "
            "profiles counts for all):"
        )
        for shared in plan.shared_addresses[:5]:
            print(f"  {shared.address}: {', '.join(shared.identities)}")
        if len(plan.shared_addresses) > 5:
            print(f"  … and {len(plan.shared_addresses) - 5:,} more (--json lists every one)")
    if result.dry_run and (plan.new_profiles or plan.updated_profiles or plan.state_changes):
        print("Run it again without --dry-run to import.")
    return 0


def profiles_export(args: argparse.Namespace, store: Store) -> int:
    """``profiles export [FILE|-]``: every profile as a profile CSV (stdout by default)."""
    written = export_csv(store, args.file)
    if written is not None:
        print(f"Exported {written:,} profiles to {args.file}.")
    return 0


COMMANDS: dict[str, Command] = {
    "profiles_show": profiles_show,
    "profiles_set": profiles_set,
    "profiles_import": profiles_import,
    "profiles_export": profiles_export,
    "profiles_history": profile_records.profiles_history,
    "profiles_erase": profile_records.profiles_erase,
}
