"""Command-line entry point: argument parsing, then one command function each.

Exit codes (DESIGN.md §2): 0 done; 1 refused by a rule, with one line on
stderr; 2 bad usage or bad input.
"""

import argparse
import sys
from collections.abc import Sequence

from app import __version__


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be 1 or more")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The whole CLI of DESIGN.md §2 (this release's part of it)."""
    db = argparse.ArgumentParser(add_help=False)
    db.add_argument(
        "--db",
        metavar="URL_OR_PATH",
        default=argparse.SUPPRESS,
        help="the store: an SQLite file path or a SQLAlchemy URL (default: $SUBGROUPS_DB, "
        "else subgroups.db in the user data directory)",
    )
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON")

    parser = argparse.ArgumentParser(
        prog="subgroups",
        parents=[db],
        description="A keyboard-driven console for email subscription groups. "
        "With no command, opens the console.",
    )
    parser.add_argument("--version", action="version", version=f"subgroups {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    console = commands.add_parser("console", parents=[db], help="open the console (the default)")
    console.set_defaults(func="console")

    demo = commands.add_parser(
        "demo",
        parents=[db],
        help="the console on a fresh sample store, with simulated live traffic",
    )
    demo.set_defaults(func="demo")

    seed = commands.add_parser(
        "seed", parents=[db], help="load sample_data/ (or N synthetic profiles)"
    )
    seed.add_argument(
        "--profiles", type=_positive_int, metavar="N", help="N synthetic profiles over 50 groups"
    )
    seed.set_defaults(func="seed")

    groups = commands.add_parser("groups", help="subscription groups").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    g_list = groups.add_parser(
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

    g_create = groups.add_parser("create", parents=[db, as_json], help="create a group")
    g_create.add_argument("name", metavar="NAME")
    g_create.add_argument("--description", default="", metavar="T")
    g_create.add_argument("--policy", choices=["opt-out", "opt-in"], default="opt-out")
    g_create.add_argument("--hidden", action="store_true", help="not shown on the landing page")
    g_create.set_defaults(func="groups_create")

    g_update = groups.add_parser("update", parents=[db, as_json], help="rename or change a group")
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
        sub = groups.add_parser(action, parents=[db, as_json], help=text)
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(func=f"groups_{action}")

    profiles = commands.add_parser("profiles", help="profiles and their states").add_subparsers(
        dest="action", metavar="ACTION", required=True
    )
    p_show = profiles.add_parser(
        "show", parents=[db, as_json], help="a profile's states and history"
    )
    p_show.add_argument("identity", metavar="IDENTITY")
    p_show.set_defaults(func="profiles_show")

    p_set = profiles.add_parser("set", parents=[db, as_json], help="change a profile's state")
    p_set.add_argument("identity", metavar="IDENTITY")
    target = p_set.add_mutually_exclusive_group(required=True)
    target.add_argument("--group", metavar="NAME")
    target.add_argument("--all-email", action="store_true", help="the whole email channel")
    p_set.add_argument("--status", required=True, choices=["subscribed", "unsubscribed"])
    p_set.add_argument("--reason", metavar="T")
    p_set.set_defaults(func="profiles_set")

    p_import = profiles.add_parser(
        "import", parents=[db, as_json],
        help="import profiles and their states from a CSV file (all or nothing)",
    )  # fmt: skip
    p_import.add_argument("file", metavar="FILE.csv")
    p_import.add_argument(
        "--dry-run", action="store_true", help="check the file, report the changes, write nothing"
    )
    p_import.add_argument(
        "--overwrite-unsubscribes", action="store_true",
        help="let the file resubscribe people who unsubscribed (needs --reason)",
    )  # fmt: skip
    p_import.add_argument(
        "--reason", metavar="TEXT", help="why unsubscribes are overwritten (recorded on each)"
    )
    p_import.set_defaults(func="profiles_import")

    p_export = profiles.add_parser(
        "export", parents=[db], help="all profiles and their stored states as a CSV file"
    )
    p_export.add_argument("file", nargs="?", metavar="FILE.csv|-", help="default: stdout")
    p_export.set_defaults(func="profiles_export")

    segments = commands.add_parser(
        "segments", help="find people: count, save, list, show, export"
    ).add_subparsers(dest="action", metavar="ACTION", required=True)
    rule = argparse.ArgumentParser(add_help=False)
    # An option given without names means All (cli_segments.ALL_GROUPS).
    rule.add_argument(
        "--include",
        nargs="?",
        const="\0all",
        metavar="G,..",
        help="subscribed to these groups (no names: All, every active group)",
    )
    rule.add_argument("--include-match", choices=["any", "all"], help="any (default) or all")
    rule.add_argument(
        "--exclude",
        nargs="?",
        const="\0all",
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
    s_count = segments.add_parser(
        "count", parents=[db, as_json, rule], help="count people matching conditions"
    )
    s_count.set_defaults(func="segments_count")
    s_save = segments.add_parser(
        "save", parents=[db, as_json, rule], help="save the conditions as a segment"
    )
    s_save.add_argument("name", metavar="NAME")
    s_save.set_defaults(func="segments_save")
    s_list = segments.add_parser("list", parents=[db, as_json], help="saved segments, counted")
    s_list.set_defaults(func="segments_list")
    s_show = segments.add_parser(
        "show", parents=[db, as_json], help="a saved segment: sentence, definition, counts"
    )
    s_show.add_argument("name", metavar="NAME")
    s_show.set_defaults(func="segments_show")
    s_export = segments.add_parser(
        "export", parents=[db], help="a saved segment's members as a profile CSV"
    )
    s_export.add_argument("name", metavar="NAME")
    s_export.add_argument("file", nargs="?", metavar="FILE|-", help="where to (default: stdout)")
    s_export.set_defaults(func="segments_export")

    campaigns = commands.add_parser(
        "campaigns", help="email campaigns: list, create, show, send, explain"
    ).add_subparsers(dest="action", metavar="ACTION", required=True)
    c_list = campaigns.add_parser(
        "list", parents=[db, as_json], help="name, status, audience, reach, sent, unsubscribes"
    )
    c_list.set_defaults(func="campaigns_list")
    c_create = campaigns.add_parser("create", parents=[db, as_json], help="a new draft campaign")
    c_create.add_argument("name", metavar="NAME")
    c_create.add_argument("--subject", required=True, metavar="S", help="the subject line")
    c_create.add_argument(
        "--from", dest="from_address", required=True, metavar="ADDR", help="the From address"
    )
    c_create.add_argument(
        "--body-file",
        required=True,
        metavar="FILE",
        help="the plain-text body template (- for stdin); tags: {{ name }}, "
        "{{ unsubscribe_url }} (required), {{ preferences_url }}",
    )
    c_create.add_argument(
        "--segment", metavar="NAME", help="the audience: a saved segment (default: all profiles)"
    )
    c_create.add_argument(
        "--do-not-send-to",
        metavar="G,..",
        help="skip people who left any of these groups; the unsubscribe link leaves them",
    )
    c_create.add_argument(
        "--only-subscribed-to", metavar="G,..", help="only people subscribed to all of these"
    )
    c_create.set_defaults(func="campaigns_create")
    c_show = campaigns.add_parser(
        "show", parents=[db, as_json], help="a campaign and its reach breakdown, step by step"
    )
    c_show.add_argument("name", metavar="NAME")
    c_show.set_defaults(func="campaigns_show")
    c_send = campaigns.add_parser("send", parents=[db], help="send (or resume sending) a campaign")
    c_send.add_argument("name", metavar="NAME")
    where = c_send.add_mutually_exclusive_group()
    where.add_argument(
        "--outbox",
        metavar="DIR",
        help="a Maildir to write messages into (default: this "
        "store's own outbox in the data directory)",
    )
    where.add_argument("--smtp", metavar="HOST:PORT", help="send through this SMTP server")
    c_send.add_argument(
        "--starttls", action="store_true", help="with --smtp: upgrade the connection with STARTTLS"
    )
    c_send.add_argument(
        "--batch-size",
        type=_positive_int,
        default=500,
        metavar="N",
        help="messages per batch; eligibility is re-checked before each (default 500)",
    )
    c_send.set_defaults(func="campaigns_send")
    c_explain = campaigns.add_parser(
        "explain", parents=[db, as_json], help="why one person gets a campaign or not"
    )
    c_explain.add_argument("name", metavar="NAME")
    c_explain.add_argument("identity", metavar="IDENTITY")
    c_explain.set_defaults(func="campaigns_explain")

    landing = commands.add_parser(
        "landing",
        parents=[db],
        help="serve the email landing page (preferences and one-click unsubscribe) over HTTP",
    )
    landing.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)"
    )
    landing.add_argument(
        "--port", type=_port, default=8080, help="port to listen on (default 8080; 0: any free one)"
    )
    landing.add_argument(
        "--access-log", metavar="FILE", help="append the access log to FILE (default: stderr)"
    )
    landing.add_argument(
        "--link",
        metavar="IDENTITY",
        help="print this profile's signed preferences and unsubscribe links instead of serving",
    )
    landing.add_argument(
        "--campaign", metavar="NAME", help="with --link: the campaign the links come from"
    )
    landing.set_defaults(func="landing")

    events = commands.add_parser(
        "events", parents=[db, as_json], help="the ledger (JSON Lines with --json)"
    )
    events.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    events.add_argument("--name", metavar="NAME", help="only events of this name")
    events.add_argument("--group", metavar="NAME", help="only events about this group")
    events.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="how many (default 20)"
    )
    events.set_defaults(func="events")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the arguments and run one command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from app import cli

    func_name = getattr(args, "func", "console")
    db = getattr(args, "db", None)
    return cli.run(func_name, args, db)


if __name__ == "__main__":
    sys.exit(main())
