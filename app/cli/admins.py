"""The ``subgroups admins`` commands: add, list, set-role, remove.

Admins log in to ``subgroups ssh`` with their key and act with their role;
managing them needs the owner role (the host's own user is an owner).
"""

import argparse
from pathlib import Path

from app.cli.options import Command, db_option, json_option
from app.cli.output import local_time, print_json, table
from app.core import actors, admins
from app.core.actors import ROLES
from app.core.ssh_keys import read_key_file
from app.core.store import Store

ROLE_HELP = (
    "viewer: reads everything, changes nothing; editor: also groups, states, segments, "
    "imports and campaign drafts; owner: also sends campaigns, edits the landing page "
    "settings and manages admins"
)


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    db, as_json = db_option(), json_option()
    actions = commands.add_parser(
        "admins", help="the admins who may use the console over SSH, and their roles"
    ).add_subparsers(dest="action", metavar="ACTION", required=True)

    a_add = actions.add_parser(
        "add", parents=[db, as_json], help="add an admin with their SSH public key"
    )
    a_add.add_argument("name", metavar="NAME", help="their SSH login name")
    a_add.add_argument(
        "--key", required=True, metavar="FILE.pub", help="their OpenSSH public key file"
    )
    a_add.add_argument(
        "--role", choices=ROLES, default=actors.EDITOR, help=f"default editor. {ROLE_HELP}"
    )
    a_add.set_defaults(func="admins_add")

    a_list = actions.add_parser("list", parents=[db, as_json], help="list the admins")
    a_list.set_defaults(func="admins_list")

    a_role = actions.add_parser("set-role", parents=[db, as_json], help="change an admin's role")
    a_role.add_argument("name", metavar="NAME")
    a_role.add_argument("role", metavar="ROLE", choices=ROLES, help=ROLE_HELP)
    a_role.set_defaults(func="admins_set_role")

    a_remove = actions.add_parser(
        "remove", parents=[db, as_json], help="remove an admin (their key no longer logs in)"
    )
    a_remove.add_argument("name", metavar="NAME")
    a_remove.set_defaults(func="admins_remove")


def admins_add(args: argparse.Namespace, store: Store) -> int:
    # The name and the file are checked before the store is written to.
    name = admins.clean_name(args.name)
    key = read_key_file(Path(args.key))
    with store.write() as session:
        added = admins.add_admin(
            session=session,
            name=name,
            key=key,
            role=args.role,
            actor=actors.actor_name(),
            source="cli",
        )
    if args.json:
        print_json(added.to_json())
    else:
        print(f"Added admin {added.name!r} as {added.role} (key {added.key_fingerprint}).")
    return 0


def admins_list(args: argparse.Namespace, store: Store) -> int:
    with store.read() as session:
        rows = admins.list_admins(session)
    if args.json:
        print_json([row.to_json() for row in rows])
        return 0
    if not rows:
        print("No admins. `subgroups admins add NAME --key FILE.pub` adds one.")
        return 0
    print(
        table(
            [[r.name, r.role, r.key_fingerprint, local_time(r.added_at)] for r in rows],
            ["NAME", "ROLE", "KEY", "ADDED"],
        )
    )
    return 0


def admins_set_role(args: argparse.Namespace, store: Store) -> int:
    with store.write() as session:
        admin, previous = admins.set_role(
            session=session,
            name=args.name,
            role=args.role,
            actor=actors.actor_name(),
            source="cli",
        )
    if args.json:
        print_json({**admin.to_json(), "previous_role": previous})
    elif previous == admin.role:
        print(f"{admin.name} is already {admin.role}; nothing changed.")
    else:
        print(f"{admin.name} is now {admin.role} (was {previous}).")
    return 0


def admins_remove(args: argparse.Namespace, store: Store) -> int:
    with store.write() as session:
        gone = admins.remove_admin(session=session, name=args.name, actor=actors.actor_name())
    if args.json:
        print_json(gone.to_json())
    else:
        print(f"Removed admin {gone.name!r} (was {gone.role}).")
    return 0


COMMANDS: dict[str, Command] = {
    "admins_add": admins_add,
    "admins_list": admins_list,
    "admins_set_role": admins_set_role,
    "admins_remove": admins_remove,
}
