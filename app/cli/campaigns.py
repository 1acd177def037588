"""The ``subgroups campaigns`` commands: list, create, show (the reach breakdown),
explain (why one person gets it or not) and send (DESIGN.md §2).

Groups are named by their names, comma-separated; an unknown group, an
archived one newly picked, or an unknown segment is refused (exit 1). A
malformed field (empty subject, a From that is not an address, a body with an
unknown tag or no unsubscribe link) is bad input (exit 2).
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlmodel import Session

from app.cli.options import Command, db_option, json_option
from app.cli.output import print_json, table
from app.cli.sending import COMMANDS as SEND_COMMANDS
from app.cli.sending import add_parser as add_send_parser
from app.core import actors, body_template, campaigns, eligibility, explainer, segments
from app.core.errors import InvalidInput
from app.core.models import Campaign
from app.core.store import Store


def add_parser(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    db, as_json = db_option(), json_option()
    actions = commands.add_parser(
        "campaigns", help="email campaigns: list, create, show, send, explain"
    ).add_subparsers(dest="action", metavar="ACTION", required=True)
    c_list = actions.add_parser(
        "list", parents=[db, as_json], help="name, status, audience, reach, sent, unsubscribes"
    )
    c_list.set_defaults(func="campaigns_list")
    c_create = actions.add_parser("create", parents=[db, as_json], help="a new draft campaign")
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
    c_show = actions.add_parser(
        "show", parents=[db, as_json], help="a campaign and its reach breakdown, step by step"
    )
    c_show.add_argument("name", metavar="NAME")
    c_show.set_defaults(func="campaigns_show")
    add_send_parser(actions)
    c_explain = actions.add_parser(
        "explain", parents=[db, as_json], help="why one person gets a campaign or not"
    )
    c_explain.add_argument("name", metavar="NAME")
    c_explain.add_argument("identity", metavar="IDENTITY")
    c_explain.set_defaults(func="campaigns_explain")


def _group_ids(session: Session, names: str | None) -> list[int]:
    if not names:
        return []
    return list(segments.resolve_groups(session, [n for n in names.split(",") if n.strip()]))


def _read_body(path: str) -> str:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"--body-file {path}: no such file", field="body") from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"--body-file {path}: not UTF-8 text (byte {exc.start})", field="body"
        ) from None
    except OSError as exc:
        raise InvalidInput(f"--body-file {path}: {exc.strerror}", field="body") from None
    try:
        body_template.check_body(text)
    except InvalidInput as exc:
        raise InvalidInput(f"--body-file {path}, {exc.message}", field="body") from None
    return text


def campaigns_create(args: argparse.Namespace, store: Store) -> int:
    """``campaigns create NAME --subject S --from ADDR --body-file FILE [...]``: a draft."""
    body = _read_body(args.body_file)
    # Check the fields a send needs now: a script should hear about them at once.
    campaigns.clean_subject(args.subject)
    campaigns.clean_from_address(args.from_address)
    with store.write() as session:
        segment_id = segments.get_segment(session, args.segment).id if args.segment else None
        campaign = campaigns.create_campaign(
            session=session,
            name=args.name,
            actor=actors.actor_name(),
            source="cli",
            subject=args.subject,
            from_address=args.from_address,
            body=body,
            segment_id=segment_id,
            do_not_send_to=_group_ids(session, args.do_not_send_to),
            only_subscribed_to=_group_ids(session, args.only_subscribed_to),
        )
        name, campaign_id = campaign.name, campaign.id
    with store.read() as session:
        shown = _campaign_json(
            session, store, campaigns.get_campaign_by_id(session, campaign_id or 0)
        )
    if args.json:
        print_json(shown)
    else:
        print(f"Created campaign {name!r} (id {campaign_id}, draft): reach {shown['reach']:,}.")
        for warning in shown["warnings"]:
            print(f"Note: {warning}")
    return 0


def _campaign_json(session: Session, store: Store, campaign: Campaign) -> dict[str, Any]:
    breakdown = eligibility.reach(store, campaign)
    sent = campaigns.sent_counts(session).get(campaign.id or 0, 0)
    return {
        "id": campaign.id,
        "name": campaign.name,
        "status": campaign.status,
        "subject": campaign.subject,
        "from": campaign.from_address,
        "audience": campaigns.audience_name(session, campaign),
        "do_not_send_to": campaigns.group_names(session, campaign.do_not_send_to),
        "only_subscribed_to": campaigns.group_names(session, campaign.only_subscribed_to),
        **breakdown.to_json(),
        "sent": sent,
        "sent_at": campaign.sent_at.isoformat() if campaign.sent_at else None,
        "warnings": campaigns.warnings(session, campaign),
        "problems": [
            message
            for _field, message in campaigns.send_problems(session, campaign, reach=breakdown.reach)
        ],
    }


def campaigns_list(args: argparse.Namespace, store: Store) -> int:
    """``campaigns list``: name, status, audience, reach, sent, unsubscribes."""
    with store.read() as session:
        rows = campaigns.list_campaigns(session)
        reaches = {
            row.id: eligibility.reach(store, campaigns.get_campaign_by_id(session, row.id)).reach
            for row in rows
            if row.status != campaigns.SENT
        }
    if args.json:
        print_json([{**row.to_json(), "reach": reaches.get(row.id)} for row in rows])
        return 0
    if not rows:
        print("No campaigns yet: `subgroups campaigns create --help` says how to make one.")
        return 0
    cells = [
        [
            row.name,
            row.status,
            row.audience,
            f"{reaches[row.id]:,}" if row.id in reaches else "-",
            f"{row.sent:,}",
            f"{row.unsubscribes:,}",
        ]
        for row in rows
    ]
    headers = ["NAME", "STATUS", "AUDIENCE", "REACH", "SENT", "UNSUBSCRIBES"]
    print(table(cells, headers, right={3, 4, 5}))
    return 0


def campaigns_show(args: argparse.Namespace, store: Store) -> int:
    """``campaigns show NAME``: the fields and the reach breakdown, step by step."""
    with store.read() as session:
        shown = _campaign_json(session, store, campaigns.get_campaign(session, args.name))
    if args.json:
        print_json(shown)
        return 0
    print(f"{shown['name']} (campaign {shown['id']}, {shown['status']})")
    print(f"Subject: {shown['subject'] or '(none)'}")
    print(f"From: {shown['from'] or '(none)'}")
    print(f"Do not send to: {', '.join(shown['do_not_send_to']) or '(no groups)'}")
    if shown["only_subscribed_to"]:
        print(f"Only people subscribed to all of: {', '.join(shown['only_subscribed_to'])}")
    width = max(len(f"{step['count']:,}") for step in shown["steps"])
    print("Reach, step by step:")
    for step in shown["steps"]:
        dropped = (
            f"  (-{step['dropped']:,})" if step["dropped"] and step["step"] != "audience" else ""
        )
        print(f"  {step['count']:>{width},}  {step['label']}{dropped}")
    print(f"Reach: {shown['reach']:,} of {shown['profiles']:,} profiles")
    if shown["sent"]:
        print(f"Sent: {shown['sent']:,}")
    for warning in shown["warnings"]:
        print(f"Note: {warning}")
    if shown["status"] not in (campaigns.SENT, campaigns.CANCELLED):
        for problem in shown["problems"]:
            print(f"Cannot send yet: {problem}")
    return 0


def campaigns_explain(args: argparse.Namespace, store: Store) -> int:
    """``campaigns explain NAME IDENTITY``: why this person gets the campaign or not."""
    with store.read() as session:
        campaign = campaigns.get_campaign(session, args.name)
    explanation = explainer.explain(store, campaign, args.identity)
    if args.json:
        print_json({"campaign": campaign.name, **explanation.to_json()})
        return 0
    verdict = "gets" if explanation.eligible else "does not get"
    print(f"{explanation.identity} {verdict} {campaign.name!r}.")
    for step in explanation.steps:
        mark = {True: "ok ", False: "NO ", None: " - "}[step.passed]
        print(f"  {mark} {step.label}: {step.detail}")
    if explanation.delivered_at is not None:
        print(f"Sent to them on {explanation.delivered_at.astimezone():%Y-%m-%d %H:%M}.")
    return 0


COMMANDS: dict[str, Command] = {
    "campaigns_list": campaigns_list,
    "campaigns_create": campaigns_create,
    "campaigns_show": campaigns_show,
    "campaigns_explain": campaigns_explain,
    **SEND_COMMANDS,
}
