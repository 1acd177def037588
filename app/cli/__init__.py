"""The command functions behind ``subgroups``: each opens the store, calls one
service, and prints the result for people or, with --json, for scripts.

Errors the services raise carry their exit code; they are printed as one line
on stderr, never as a traceback.
"""

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from app import cli_campaigns, cli_sending
from app.cli_landing import landing_command
from app.cli_segments import (
    segments_count,
    segments_export,
    segments_list,
    segments_save,
    segments_show,
)
from app.core import clock, groups, ledger, profiles, subscriptions
from app.core.errors import InvalidInput, SubgroupsError
from app.core.store import Store, open_store
from app.core.text_rules import json_shown, shown, shown_lines

Command = Callable[[argparse.Namespace, Store], int]


def _print_json(value: Any) -> None:
    print(json_shown(json.dumps(value, ensure_ascii=False, indent=2)))


def _local(ts: Any) -> str:
    return ts.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _table(rows: list[list[str]], headers: list[str]) -> str:
    rows = [[shown(str(cell)) for cell in row] for row in rows]  # user text: controls escaped
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


# --- groups -----------------------------------------------------------------


def groups_list(args: argparse.Namespace, store: Store) -> int:
    with store.read() as session:
        rows = groups.list_groups(session, status=args.status)
        counts = groups.group_counts(session)
        active = groups.active_count(session)
    if args.json:
        out = []
        for g in rows:
            item = groups.group_to_json(g)
            c = counts.get(g.id or 0)
            item["subscribed"] = c.subscribed if c else 0
            item["unsubscribed"] = c.unsubscribed if c else 0
            out.append(item)
        _print_json(out)
        return 0
    table = [
        [
            str(g.id),
            g.name,
            g.policy,
            g.status,
            "yes" if g.shown_on_landing_page else "no",
            str(counts[g.id].subscribed if g.id in counts else 0),
            str(counts[g.id].unsubscribed if g.id in counts else 0),
        ]
        for g in rows
    ]
    headers = ["ID", "NAME", "POLICY", "STATUS", "LANDING", "SUBSCRIBED", "UNSUBSCRIBED"]
    print(
        _table(table, headers)
        if table
        else f"No {args.status if args.status != 'all' else ''} groups.".replace("  ", " ")
    )
    print(f"{active} / {groups.MAX_ACTIVE_GROUPS} active")
    return 0


def _print_group(args: argparse.Namespace, group: Any, verb: str) -> None:
    if args.json:
        _print_json(groups.group_to_json(group))
    else:
        print(f"{verb} group {group.name!r} (id {group.id}, {group.status}).")


def groups_create(args: argparse.Namespace, store: Store) -> int:
    with store.write() as session:
        group = groups.create_group(
            session=session,
            name=args.name,
            description=args.description,
            policy=args.policy,
            shown_on_landing_page=not args.hidden,
            actor=clock.os_user(),
            source="cli",
        )
    _print_group(args, group, "Created")
    return 0


def groups_update(args: argparse.Namespace, store: Store) -> int:
    try:
        with store.write() as session:
            found = groups.find_group(session, args.name)
            assert found.id is not None
            group = groups.update_group(
                session=session,
                group_id=found.id,
                name=args.new_name,
                description=args.description,
                policy=args.policy,
                shown_on_landing_page=args.shown,
                accept_consent_change=args.yes,
                actor=clock.os_user(),
                source="cli",
            )
    except groups.PolicyChangeUnconfirmed as exc:
        raise groups.PolicyChangeUnconfirmed(exc.change, hint="add --yes to do it") from None
    _print_group(args, group, "Updated")
    return 0


def _change_status(args: argparse.Namespace, store: Store, *, archive: bool) -> int:
    service = groups.archive_group if archive else groups.unarchive_group
    with store.write() as session:
        found = groups.find_group(session, args.name)
        assert found.id is not None
        group = service(session=session, group_id=found.id, actor=clock.os_user(), source="cli")
    _print_group(args, group, "Archived" if archive else "Unarchived")
    return 0


def groups_archive(args: argparse.Namespace, store: Store) -> int:
    return _change_status(args, store, archive=True)


def groups_unarchive(args: argparse.Namespace, store: Store) -> int:
    return _change_status(args, store, archive=False)


# --- profiles ---------------------------------------------------------------


def profiles_show(args: argparse.Namespace, store: Store) -> int:
    with store.read() as session:
        view = profiles.profile_view(session, args.identity, history_limit=10)
    if args.json:
        _print_json(view.to_json())
        return 0
    print(shown(f"{view.identity}  {view.email or ''}  {view.name}"))
    if view.properties:
        print("  " + shown(", ".join(f"{k}={v}" for k, v in view.properties.items())))
    print(f"All email: {view.all_email} ({shown(view.all_email_origin)})")
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
    print(_table(rows, ["GROUP", "EFFECTIVE", "STORED", "WHERE FROM"]))
    if view.history:
        print("Recent history:")
        for ev in view.history:
            print(f"  {_local(ev.ts)}  {shown(ev.name)}  {shown(ledger.summary(ev))}")
    return 0


def profiles_set(args: argparse.Namespace, store: Store) -> int:
    with store.write() as session:
        profile = profiles.get_profile(session, args.identity)
        group = None if args.all_email else groups.find_group(session, args.group)
        event = subscriptions.set_state(
            session=session,
            profile=profile,
            group=group,
            status=args.status,
            source="cli",
            actor=clock.os_user(),
            reason=args.reason,
        )
        record = ledger.to_record(event) if event else None
    target = "all email" if group is None else f"group {group.name!r}"
    if args.json:
        _print_json({"changed": record is not None, "event": record.to_json() if record else None})
    elif record is None:
        print(shown(f"{args.identity} is already {args.status} for {target}; nothing changed."))
    else:
        print(shown(f"{args.identity}: {target} is now {args.status} (event {record.id})."))
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _progress_printer() -> Callable[[str, int, int], None] | None:
    """A progress line on stderr for long work, when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(stage: str, done: int, total: int) -> None:
        if stage == "reading":  # done and total are bytes
            text = f"{done * 100 // total}%" if total else f"{done:,} rows"
        else:
            text = f"{done:,} / {total:,}" if total else f"{done:,}"
        print(f"\r{stage.capitalize()} {text}\033[K", end="", file=sys.stderr, flush=True)

    return show


def profiles_import(args: argparse.Namespace, store: Store) -> int:
    from app.core import csv_io

    progress = _progress_printer()
    try:
        result = csv_io.import_profiles(
            store=store, source=Path(args.file), actor=clock.os_user(), dry_run=args.dry_run,
            overwrite_unsubscribes=args.overwrite_unsubscribes, reason=args.reason,
            progress=progress,
        )  # fmt: skip
    finally:
        if progress:
            print("\r\033[K", end="", file=sys.stderr, flush=True)
    if args.json:
        _print_json(result.to_json(details=True))
        return 0
    plan = result.plan
    if result.dry_run:
        print(f"Dry run of {plan.file} ({_count(plan.rows, 'row')}): nothing was written.")
    else:
        print(
            f"Imported {plan.file} ({_count(plan.rows, 'row')}) into {store.display_name} "
            f"in {result.seconds:.1f} s; {_count(result.events, 'ledger event')} written."
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
        table = _table(rows, ["GROUP", "TO SUBSCRIBED", "TO UNSUBSCRIBED"])
        print("\n".join("  " + line for line in table.splitlines()))
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


def export_csv(store: Store, file: str | None, identities: list[str] | None = None) -> int | None:
    """Write profiles (all, or those named) as a profile CSV to FILE, or stdout for None or "-".

    Returns how many were written to a file; None for stdout, where a reader
    that stops early (``| head``) is not an error.
    """
    from app.core import csv_io

    if file in (None, "-"):
        try:
            with store.read() as session:
                csv_io.export_profiles(session=session, dest=sys.stdout, identities=identities)
            sys.stdout.flush()
        except BrokenPipeError:
            # Point stdout at /dev/null so the interpreter's own last flush does not complain.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return None
    try:
        dest = open(file, "w", encoding="utf-8", newline="")  # noqa: SIM115
    except OSError as exc:
        raise InvalidInput(f"Cannot write {file}: {exc.strerror}", field="file") from exc
    progress = _progress_printer()
    with dest, store.read() as session:
        written = csv_io.export_profiles(
            session=session, dest=dest, identities=identities, progress=progress
        )
    if progress:
        print("\r\033[K", end="", file=sys.stderr, flush=True)
    return written


def profiles_export(args: argparse.Namespace, store: Store) -> int:
    """``profiles export [FILE|-]``: every profile as a profile CSV (stdout by default)."""
    written = export_csv(store, args.file)
    if written is not None:
        print(f"Exported {written:,} profiles to {args.file}.")
    return 0


# --- events -----------------------------------------------------------------


def _print_event(event: ledger.EventRecord, as_json: bool) -> None:
    if as_json:
        print(json_shown(json.dumps(event.to_json(), ensure_ascii=False)), flush=True)
    else:
        # One event, one line: a newline in an identity shows as \n, never as a new line.
        print(
            f"{event.id:>7}  {_local(event.ts)}  {shown(event.name):<22} "
            f"{shown(ledger.summary(event))}",
            flush=True,
        )


def _event_matches(event: ledger.EventRecord, args: argparse.Namespace) -> bool:
    if args.name and event.name != args.name:
        return False
    return not (args.group and (event.group_name or "").casefold() != args.group.strip().casefold())


def events(args: argparse.Namespace, store: Store) -> int:
    with store.read() as session:
        if args.group:
            groups.find_group(session, args.group)
        recent = ledger.recent_events(session, limit=args.limit, name=args.name, group=args.group)
        follower = ledger.LedgerFollower(after_id=ledger.latest_id(session))
    for event in recent:
        _print_event(event, args.json)
    if not args.follow:
        return 0
    try:
        while True:
            time.sleep(0.25)
            with store.read() as session:
                fresh = follower.poll(session)
            for event in fresh:
                if _event_matches(event, args):
                    _print_event(event, args.json)
    except KeyboardInterrupt:
        return 0


# --- sample data and the console ----------------------------------------------


def seed(args: argparse.Namespace, store: Store) -> int:
    from app.core import sample_campaigns, synthetic
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


COMMANDS: dict[str, Command] = {
    "console": console,
    "demo": demo,
    "seed": seed,
    "groups_list": groups_list,
    "groups_create": groups_create,
    "groups_update": groups_update,
    "groups_archive": groups_archive,
    "groups_unarchive": groups_unarchive,
    "profiles_show": profiles_show,
    "profiles_set": profiles_set,
    "profiles_import": profiles_import,
    "profiles_export": profiles_export,
    "events": events,
    "segments_count": segments_count,
    "segments_save": segments_save,
    "segments_list": segments_list,
    "segments_show": segments_show,
    "segments_export": segments_export,
    "landing": landing_command,
    "campaigns_list": cli_campaigns.campaigns_list,
    "campaigns_create": cli_campaigns.campaigns_create,
    "campaigns_show": cli_campaigns.campaigns_show,
    "campaigns_explain": cli_campaigns.campaigns_explain,
    "campaigns_send": cli_sending.campaigns_send,
}


# The only commands that may create a missing store (a mistyped --db must not
# become an empty store): the console, the demo, and those that add data.
CREATING_COMMANDS = frozenset({"console", "demo", "seed", "groups_create", "profiles_import"})


def _demo_db() -> str:
    import tempfile

    return str(Path(tempfile.mkdtemp(prefix="subgroups-demo-")) / "demo.db")


def run(func_name: str, args: argparse.Namespace, db: str | None) -> int:
    """Open the store and run one command; map errors to exit codes and one line on stderr."""
    if func_name == "demo" and db is None:
        db = _demo_db()
    try:
        store = open_store(db, create=func_name in CREATING_COMMANDS)
    except SubgroupsError as exc:
        print(f"subgroups: {exc}", file=sys.stderr)
        return exc.exit_code
    if store.created:
        print(f"subgroups: created a new store at {store.display_name}", file=sys.stderr)
    try:
        return COMMANDS[func_name](args, store)
    except SubgroupsError as exc:
        print(f"subgroups: {shown_lines(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except OperationalError as exc:
        print(
            f"subgroups: the store {store.display_name} could not do this: {exc.orig}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, as other Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        store.dispose()
