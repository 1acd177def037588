"""The ``subgroups segments`` commands: count a rule, save it, and list, show
or export saved segments (DESIGN.md §2).

The condition options build one rule, the AND of, in this order:
``--include [G,..]`` (Subscription Groups, Include; no names: All, every
active group) with ``--include-match any|all``; ``--exclude [G,..]`` with
``--exclude-match``; each ``--where KEY=VALUE`` (KEY is a profile field,
identity, email or name, or a custom property; equals, ignoring case); and
``--all-email subscribed|unsubscribed``. Naming an unknown or archived group
is refused (exit 1); a malformed option is bad usage (exit 2).
"""

import argparse
import json
from datetime import datetime
from typing import Any

from sqlmodel import Session

from app.cli.options import Command, db_option, json_option
from app.cli.output import export_csv, print_json, table
from app.core import actors, segments, text_rules
from app.core.errors import InvalidInput
from app.core.models import Segment
from app.core.segment_index import SegmentCount
from app.core.segment_rules import (
    PROFILE_FIELDS,
    Condition,
    EmailCondition,
    GroupsCondition,
    PropertyCondition,
    SegmentRule,
    describe_condition,
)
from app.core.store import Store

# The value argparse gives ``--include`` / ``--exclude`` when no names follow: All.
ALL_GROUPS = "\0all"


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    db, as_json = db_option(), json_option()
    actions = commands.add_parser(
        "segments", help="find people: count, save, list, show, export"
    ).add_subparsers(dest="action", metavar="ACTION", required=True)
    rule = argparse.ArgumentParser(add_help=False)
    # An option given without names means All (ALL_GROUPS).
    rule.add_argument(
        "--include",
        nargs="?",
        const=ALL_GROUPS,
        metavar="G,..",
        help="subscribed to these groups (no names: All, every active group)",
    )
    rule.add_argument("--include-match", choices=["any", "all"], help="any (default) or all")
    rule.add_argument(
        "--exclude",
        nargs="?",
        const=ALL_GROUPS,
        metavar="G,..",
        help="not subscribed to these groups (no names: All)",
    )
    rule.add_argument("--exclude-match", choices=["any", "all"], help="any (default) or all")
    rule.add_argument(
        "--where",
        action="append",
        metavar="KEY=VALUE",
        help="a profile field or custom property equals VALUE, ignoring case (repeatable)",
    )
    rule.add_argument(
        "--all-email", choices=["subscribed", "unsubscribed"], help="the channel-wide email state"
    )
    s_count = actions.add_parser(
        "count", parents=[db, as_json, rule], help="count people matching conditions"
    )
    s_count.set_defaults(func="segments_count")
    s_save = actions.add_parser(
        "save", parents=[db, as_json, rule], help="save the conditions as a segment"
    )
    s_save.add_argument("name", metavar="NAME")
    s_save.set_defaults(func="segments_save")
    s_list = actions.add_parser("list", parents=[db, as_json], help="saved segments, counted")
    s_list.set_defaults(func="segments_list")
    s_show = actions.add_parser(
        "show", parents=[db, as_json], help="a saved segment: sentence, definition, counts"
    )
    s_show.add_argument("name", metavar="NAME")
    s_show.set_defaults(func="segments_show")
    s_export = actions.add_parser(
        "export", parents=[db], help="a saved segment's members as a profile CSV"
    )
    s_export.add_argument("name", metavar="NAME")
    s_export.add_argument("file", nargs="?", metavar="FILE|-", help="where to (default: stdout)")
    s_export.set_defaults(func="segments_export")


def _group_condition(
    session: Session, mode: str, names: str | None, match: str | None, option: str
) -> GroupsCondition | None:
    if names is None:
        if match is not None:
            raise InvalidInput(
                f"--{option}-match needs --{option} (group names, or none for All)",
                field=f"{option}_match",
            )
        return None
    ids = None if names == ALL_GROUPS else segments.resolve_groups(session, names.split(","))
    return GroupsCondition(mode=mode, group_ids=ids, match=match or "any")  # type: ignore[arg-type]


def _where_condition(text: str) -> PropertyCondition:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InvalidInput(
            f"--where {text!r} is not KEY=VALUE (for example --where country=DE)", field="where"
        )
    if not value.strip():
        raise InvalidInput(f"--where {text!r} has no value after '='", field="where")
    if key.lower() in PROFILE_FIELDS:
        key = key.lower()
    return PropertyCondition(key=key, op="equals", values=(value.strip(),))


def rule_from_args(session: Session, args: argparse.Namespace) -> SegmentRule:
    """The rule the condition options describe (see the module docstring)."""
    conditions: list[Condition] = []
    for mode in ("include", "exclude"):
        condition = _group_condition(
            session, mode, getattr(args, mode), getattr(args, f"{mode}_match"), mode
        )
        if condition is not None:
            conditions.append(condition)
    conditions += [_where_condition(text) for text in args.where or []]
    if args.all_email:
        conditions.append(EmailCondition(state=args.all_email))
    return SegmentRule(tuple(conditions))


def _counts_json(session: Session, rule: SegmentRule, result: SegmentCount) -> dict[str, Any]:
    names = segments.group_names(session)

    def name_of(group_id: int) -> str:
        return names.get(group_id, f"group #{group_id}")

    return {
        "count": result.total,
        "sentence": segments.sentence(session, rule),
        "clauses": [
            {"condition": describe_condition(c, name_of), "count": n}
            for c, n in zip(rule.conditions, result.clauses, strict=True)
        ],
        "profiles": result.profiles,
        "definition": rule.to_json(),
    }


def _print_counts(counts: dict[str, Any]) -> None:
    print(text_rules.shown(counts["sentence"]))
    width = max([len(f"{c['count']:,}") for c in counts["clauses"]] + [1])
    for clause in counts["clauses"]:
        print(f"  {clause['count']:>{width},}  {text_rules.shown(clause['condition'])}")
    print(f"Total: {counts['count']:,} of {counts['profiles']:,} profiles")


def _segment_json(session: Session, store: Store, segment: Segment) -> dict[str, Any]:
    rule = segments.segment_rule(segment)
    counts = _counts_json(session, rule, segments.count(store, rule))
    return {
        "id": segment.id,
        "name": segment.name,
        **counts,
        "created_at": segment.created_at.isoformat(),
        "created_by": segment.created_by,
        "updated_at": segment.updated_at.isoformat(),
        "updated_by": segment.updated_by,
    }


def _local(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def segments_count(args: argparse.Namespace, store: Store) -> int:
    """``segments count``: the sentence, each clause's count and the total."""
    with store.read() as session:
        rule = rule_from_args(session, args)
        counts = _counts_json(session, rule, segments.count(store, rule))
    if args.json:
        print_json(counts)
    else:
        _print_counts(counts)
    return 0


def segments_save(args: argparse.Namespace, store: Store) -> int:
    """``segments save NAME``: save the rule the condition options describe."""
    with store.write() as session:
        rule = rule_from_args(session, args)
        saved = segments.save_segment(
            session=session, name=args.name, rule=rule, actor=actors.actor_name(), source="cli"
        )
    with store.read() as session:
        shown = _segment_json(session, store, segments.get_segment(session, saved.name))
    if args.json:
        print_json(shown)
    else:
        print(f"Saved segment {saved.name!r} (id {saved.id}): {shown['count']:,} people.")
        print(text_rules.shown(shown["sentence"]))
    return 0


def segments_list(args: argparse.Namespace, store: Store) -> int:
    """``segments list``: each saved segment with its count and last change."""
    with store.read() as session:
        shown = [_segment_json(session, store, s) for s in segments.list_segments(session)]
    if args.json:
        print_json(shown)
        return 0
    if not shown:
        print("No saved segments.")
        return 0
    rows = [
        [s["name"], f"{s['count']:,}", f"{_local(s['updated_at'])} by {s['updated_by'] or '?'}"]
        for s in shown
    ]
    print(table(rows, ["NAME", "COUNT", "LAST CHANGE"], right={1}))
    return 0


def segments_show(args: argparse.Namespace, store: Store) -> int:
    """``segments show NAME``: the sentence, the definition and the counts."""
    with store.read() as session:
        shown = _segment_json(session, store, segments.get_segment(session, args.name))
    if args.json:
        print_json(shown)
        return 0
    print(f"{shown['name']} (segment {shown['id']})")
    _print_counts(shown)
    definition = text_rules.json_shown(json.dumps(shown["definition"], ensure_ascii=False))
    print(f"Definition: {definition}")
    print(
        f"Last change: {_local(shown['updated_at'])} by {shown['updated_by'] or '?'} "
        f"(created {_local(shown['created_at'])} by {shown['created_by'] or '?'})"
    )
    return 0


def segments_export(args: argparse.Namespace, store: Store) -> int:
    """``segments export NAME [FILE|-]``: the members as a profile CSV (stdout by default)."""
    with store.read() as session:
        segment = segments.get_segment(session, args.name)
    identities = segments.member_identities(store, segments.segment_rule(segment))
    written = export_csv(store, args.file, identities)
    if written is not None:
        print(f"Exported {written:,} members of segment {segment.name!r} to {args.file}.")
    return 0


COMMANDS: dict[str, Command] = {
    "segments_count": segments_count,
    "segments_save": segments_save,
    "segments_list": segments_list,
    "segments_show": segments_show,
    "segments_export": segments_export,
}
