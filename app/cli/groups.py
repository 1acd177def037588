"""The ``subgroups groups`` commands: list, create, update, archive, unarchive."""

import argparse

from app.cli.options import Command, db_option, json_option
from app.cli.output import print_json, table
from app.core import actors, groups
from app.core.models import Group
from app.core.store import Store


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    db, as_json = db_option(), json_option()
    actions = commands.add_parser("groups", help="subscription groups").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    g_list = actions.add_parser(
        "list", parents=[db, as_json], help="list groups (active by default)"
    )
    which = g_list.add_mutually_exclusive_group()
    which.add_argument(
        "--all", dest="status", action="store_const", const="all", help="active and archived"
    )
    which.add_argument(
        "--archived", dest="status", action="store_const", const="archived", help="archived only"
    )
    g_list.set_defaults(func="groups_list", status="active")

    g_create = actions.add_parser("create", parents=[db, as_json], help="create a group")
    g_create.add_argument("name", metavar="NAME")
    g_create.add_argument("--description", default="", metavar="T")
    g_create.add_argument("--policy", choices=["opt-out", "opt-in"], default="opt-out")
    g_create.add_argument("--hidden", action="store_true", help="not shown on the landing page")
    g_create.set_defaults(func="groups_create")

    g_update = actions.add_parser("update", parents=[db, as_json], help="rename or change a group")
    g_update.add_argument("name", metavar="NAME")
    g_update.add_argument("--name", dest="new_name", metavar="NEW")
    g_update.add_argument("--description", metavar="T")
    g_update.add_argument("--policy", choices=["opt-out", "opt-in"])
    shown = g_update.add_mutually_exclusive_group()
    shown.add_argument("--hidden", dest="shown", action="store_false", default=None)
    shown.add_argument("--shown", dest="shown", action="store_true")
    g_update.add_argument(
        "--yes",
        action="store_true",
        help="change the policy even though it flips people's effective state",
    )
    g_update.set_defaults(func="groups_update")

    for action, text in (
        ("archive", "archive a group (frees a slot; its opt-outs stay enforced)"),
        ("unarchive", "bring an archived group back, if a slot is free"),
    ):
        sub = actions.add_parser(action, parents=[db, as_json], help=text)
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(func=f"groups_{action}")


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
        print_json(out)
        return 0
    cells = [
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
        table(cells, headers)
        if cells
        else f"No {args.status if args.status != 'all' else ''} groups.".replace("  ", " ")
    )
    print(f"{active} / {groups.MAX_ACTIVE_GROUPS} active")
    return 0


def _print_group(args: argparse.Namespace, group: Group, verb: str) -> None:
    if args.json:
        print_json(groups.group_to_json(group))
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
            actor=actors.actor_name(),
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
                actor=actors.actor_name(),
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
        group = service(session=session, group_id=found.id, actor=actors.actor_name(), source="cli")
    _print_group(args, group, "Archived" if archive else "Unarchived")
    return 0


def groups_archive(args: argparse.Namespace, store: Store) -> int:
    return _change_status(args, store, archive=True)


def groups_unarchive(args: argparse.Namespace, store: Store) -> int:
    return _change_status(args, store, archive=False)


COMMANDS: dict[str, Command] = {
    "groups_list": groups_list,
    "groups_create": groups_create,
    "groups_update": groups_update,
    "groups_archive": groups_archive,
    "groups_unarchive": groups_unarchive,
}
