"""The ``subgroups settings`` commands: ``set KEY VALUE`` and ``show [--json]``.

Store-wide settings (``app.core.settings``): ``base-url`` (the landing page's
public base URL, the same the console edits), ``inbound-domain``,
``dkim-domain``, ``dkim-selector`` and ``dkim-key FILE.pem``. Setting one
needs the owner role; an empty VALUE clears it.
"""

import argparse

from app.cli.options import Command, db_option, json_option
from app.cli.output import print_json, table
from app.core import actors, settings
from app.core.errors import SubgroupsError
from app.core.store import Store

KEYS_HELP = (
    "base-url (the landing page's public base URL), inbound-domain (where unsubscribe "
    "and bounce mail comes back), dkim-domain, dkim-selector, dkim-key (a PEM file: "
    "copied into the data directory, never into the store)"
)


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    db, as_json = db_option(), json_option()
    actions = commands.add_parser(
        "settings", help="store-wide settings: base URL, inbound domain, DKIM signing"
    ).add_subparsers(dest="action", metavar="ACTION", required=True)

    s_show = actions.add_parser("show", parents=[db, as_json], help="print the settings")
    s_show.set_defaults(func="settings_show")

    s_set = actions.add_parser(
        "set", parents=[db, as_json], help="change one setting (owner role; '' clears it)"
    )
    s_set.add_argument("key", metavar="KEY", help=KEYS_HELP)
    s_set.add_argument("value", metavar="VALUE", help="the new value ('' clears it)")
    s_set.set_defaults(func="settings_set")


def _shown(value: str | None) -> str:
    return value if value is not None else "(not set)"


def settings_show(args: argparse.Namespace, store: Store) -> int:
    with store.read() as session:
        found = settings.get_settings(session)
        key_file = settings.dkim_key_path(session, found)
        try:
            settings.check_dkim_key(session)
            key_problem = None
        except SubgroupsError as exc:
            key_problem = exc.message
    if args.json:
        print_json(found.to_json())
        return 0
    print(table([[key, _shown(found.value(key))] for key in settings.KEYS], ["KEY", "VALUE"]))
    if key_problem is not None:
        print(f"Sends are refused until the DKIM key is set again: {key_problem}")
    elif found.dkim_ready:
        print(f"Mail is DKIM-signed (d={found.dkim_domain}, s={found.dkim_selector}).")
        print(f"Key file: {key_file}")
    else:
        print(f"Mail goes out unsigned: set {', '.join(found.dkim_missing())} to sign it.")
    return 0


def settings_set(args: argparse.Namespace, store: Store) -> int:
    key = settings.check_key(args.key)
    if key == settings.DKIM_KEY and args.value.strip():
        actors.require_host_files("reading a DKIM key file")
    with store.write() as session:
        change = settings.set_setting(
            session=session, key=key, value=args.value, actor=actors.actor_name(), source="cli"
        )
    if args.json:
        print_json({"key": change.key, "old": change.old, "new": change.new})
    elif not change.changed:
        print(f"{key} is already {_shown(change.new)}; nothing changed.")
    else:
        print(f"{key}: {_shown(change.old)} → {_shown(change.new)}")
    return 0


COMMANDS: dict[str, Command] = {"settings_show": settings_show, "settings_set": settings_set}
