"""The ``subgroups insights`` command: unsubscribes over the last N days by group,
source, campaign (with the rate per thousand sent) or reason."""

import argparse

from app.cli.options import Command, db_option, json_option, positive_int
from app.cli.output import print_json, table
from app.core import insights as core_insights
from app.core.store import Store

HEADINGS = {"group": "Group", "source": "Source", "campaign": "Campaign", "reason": "Reason"}


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = commands.add_parser(
        "insights",
        parents=[db_option(), json_option()],
        help="unsubscribes over the last days by group, source, campaign or reason",
    )
    parser.add_argument(
        "--days", type=positive_int, default=30, metavar="N", help="the window (default 30)"
    )
    parser.add_argument(
        "--by", choices=core_insights.BY, default="group", help="what to count by (default group)"
    )
    parser.set_defaults(func="insights")


def insights(args: argparse.Namespace, store: Store) -> int:
    with store.read() as session:
        rows = core_insights.unsubscribes_by(session, by=args.by, days=args.days)
    if args.json:
        print_json([row.to_json(args.by) for row in rows])
        return 0
    total = sum(row.unsubscribes for row in rows)
    noun = "reasons given" if args.by == "reason" else "unsubscribes"
    print(f"{total:,} {noun} in the last {args.days} day{'' if args.days == 1 else 's'}")
    if not rows:
        return 0
    if args.by == "campaign":
        cells = [
            [r.key, f"{r.unsubscribes:,}", f"{r.sent or 0:,}", f"{r.per_thousand_sent or 0:.2f}"]
            for r in rows
        ]
        print(table(cells, ["Campaign", "Unsubscribes", "Sent", "Per 1,000 sent"], right={1, 2, 3}))
    else:
        cells = [[r.key, f"{r.unsubscribes:,}"] for r in rows]
        print(table(cells, [HEADINGS[args.by], "Unsubscribes"], right={1}))
    return 0


COMMANDS: dict[str, Command] = {"insights": insights}
