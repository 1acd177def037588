"""Email campaigns: drafts, their checks, their status, and the list the console shows.

A campaign (DESIGN.md §1, "Email campaigns") has a name, subject, from
address, a body template, an audience (a saved segment, or all profiles), the
"Do not send this campaign to the following subscription groups" and the
optional "only people subscribed to all of" groups. Its status goes
draft → sending → sent; a send that is cancelled or loses its mail server is
*paused* and resumes later; a campaign given up for good is *cancelled*.

Drafts may be incomplete (the wizard saves as you go); each field is
checked by ``campaign_fields``; ``send_problems`` says what stops a send.
Who receives it is ``app.core.eligibility``'s work.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core import actors, body_template, clock, landing, ledger, settings
from app.core.campaign_fields import (
    check_body_draft,
    check_groups,
    check_segment,
    clean_campaign_name,
    clean_from_address,
    clean_subject,
)
from app.core.errors import InvalidInput, RuleRefused, SubgroupsError, WrongStatus
from app.core.groups import name_key
from app.core.models import (
    STATUS_ACTIVE,
    STATUS_ARCHIVED,
    Campaign,
    Delivery,
    Event,
    Group,
    Segment,
)
from app.core.saved_objects import SavedKind

DRAFT, SENDING, PAUSED, SENT, CANCELLED = "draft", "sending", "paused", "sent", "cancelled"
STATUSES = (DRAFT, SENDING, PAUSED, SENT, CANCELLED)
EDITABLE = (DRAFT, PAUSED)
SENDABLE = (DRAFT, PAUSED, SENDING)  # sending: a crashed send resumes

CAMPAIGN_CREATED = "Campaign Created"
CAMPAIGN_UPDATED = "Campaign Updated"
CAMPAIGN_SEND_STARTED = "Campaign Send Started"
CAMPAIGN_PAUSED = "Campaign Paused"
CAMPAIGN_SENT = "Campaign Sent"
CAMPAIGN_CANCELLED = "Campaign Cancelled"
_STATUS_EVENTS = {
    SENDING: CAMPAIGN_SEND_STARTED,
    PAUSED: CAMPAIGN_PAUSED,
    SENT: CAMPAIGN_SENT,
    CANCELLED: CAMPAIGN_CANCELLED,
}

ALL_PROFILES = "All profiles"
_FIELDS = (
    "name",
    "subject",
    "from_address",
    "body",
    "segment_id",
    "do_not_send_to",
    "only_subscribed_to",
)


class UnknownCampaign(RuleRefused):
    """No campaign has this name or id."""


# The lifecycle campaigns share with saved segments: names, lookups, events.
KIND = SavedKind(
    model=Campaign,
    noun="campaign",
    label="Campaign",
    list_command="subgroups campaigns list",
    unknown=UnknownCampaign,
    id_field="campaign",
)


# --- reading ------------------------------------------------------------------------


def get_campaign_by_id(session: Session, campaign_id: int) -> Campaign:
    """The campaign with this id, read afresh."""
    return KIND.by_id(session, campaign_id, fresh=True)


def get_campaign(session: Session, name: str) -> Campaign:
    """The campaign with this name (case-insensitive)."""
    return KIND.by_name(session, name)


@dataclass(frozen=True)
class CampaignRow:
    """One line of the campaigns list."""

    id: int
    name: str
    status: str
    audience: str
    sent: int
    unsubscribes: int
    updated_at: datetime
    sent_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "audience": self.audience,
            "sent": self.sent,
            "unsubscribes": self.unsubscribes,
            "updated_at": self.updated_at.isoformat(),
            "sent_at": self.sent_at.isoformat() if self.sent_at else None,
        }


def audience_name(session: Session, campaign: Campaign) -> str:
    if campaign.segment_id is None:
        return ALL_PROFILES
    segment = session.get(Segment, campaign.segment_id)
    return segment.name if segment else f"segment #{campaign.segment_id} (deleted)"


def sent_counts(session: Session) -> dict[int, int]:
    """Messages sent per campaign id."""
    rows = session.execute(
        select(Delivery.campaign_id, func.count())
        .where(col(Delivery.status) == "sent")
        .group_by(col(Delivery.campaign_id))
    ).all()
    return {int(cid): int(n) for cid, n in rows}


def unsubscribe_counts(session: Session) -> dict[int, int]:
    """Unsubscribes (not resubscribes) attributed to each campaign.

    Read through the campaign index alone (the few events that name a
    campaign), the name checked here: the name index, which nearly every
    event shares, is never the way in.
    """
    rows = session.execute(
        select(Event.name, Event.campaign_id, Event.properties).where(
            col(Event.campaign_id).is_not(None)
        )
    ).all()
    counts: dict[int, int] = {}
    for name, cid, props in rows:
        if name == ledger.CHANNEL_UNSUBSCRIBED and not (props or {}).get("Resubscribed"):
            counts[int(cid)] = counts.get(int(cid), 0) + 1
    return counts


def list_campaigns(session: Session) -> list[CampaignRow]:
    """Every campaign, newest change first."""
    sent = sent_counts(session)
    unsubscribes = unsubscribe_counts(session)
    campaigns = session.exec(
        select(Campaign).order_by(col(Campaign.updated_at).desc(), col(Campaign.id).desc())
    ).all()
    return [
        CampaignRow(
            id=c.id or 0,
            name=c.name,
            status=c.status,
            audience=audience_name(session, c),
            sent=sent.get(c.id or 0, 0),
            unsubscribes=unsubscribes.get(c.id or 0, 0),
            updated_at=c.updated_at,
            sent_at=c.sent_at,
        )
        for c in campaigns
    ]


def group_names(session: Session, ids: Iterable[int]) -> list[str]:
    """Names of the given groups, archived ones marked."""
    names = []
    for group_id in ids:
        group = session.get(Group, group_id)
        if group is None:
            names.append(f"group #{group_id}")
        else:
            names.append(group.name + (" (archived)" if group.status == STATUS_ARCHIVED else ""))
    return names


# --- writing --------------------------------------------------------------------------


def _event(
    session: Session,
    name: str,
    campaign: Campaign,
    *,
    actor: str,
    source: str,
    ts: datetime,
    **extra: Any,
) -> None:
    KIND.record(
        session, name, campaign, actor=actor, source=source, ts=ts, campaign_id=campaign.id,
        **extra,
    )  # fmt: skip


def create_campaign(
    *,
    session: Session,
    name: str,
    actor: str,
    source: str = "console",
    subject: str = "",
    from_address: str = "",
    body: str = body_template.DEFAULT_BODY,
    segment_id: int | None = None,
    do_not_send_to: Sequence[int] = (),
    only_subscribed_to: Sequence[int] = (),
    now: datetime | None = None,
) -> Campaign:
    """A new draft. Fields given are checked; blank subject/from are allowed until sending."""
    actors.require(session, actors.EDITOR, "creating a campaign draft")
    cleaned = clean_campaign_name(name)
    key = name_key(cleaned)
    KIND.check_name_free(session, key)
    subject = clean_subject(subject) if subject.strip() else ""
    from_address = clean_from_address(from_address) if from_address.strip() else ""
    check_body_draft(body)
    ts = now or clock.now()
    campaign = Campaign(
        name=cleaned,
        name_key=key,
        subject=subject,
        from_address=from_address,
        body=body,
        segment_id=check_segment(session, segment_id),
        do_not_send_to=check_groups(session, do_not_send_to, field="do_not_send_to"),
        only_subscribed_to=check_groups(session, only_subscribed_to, field="only_subscribed_to"),
        status=DRAFT,
        created_at=ts,
        updated_at=ts,
        created_by=actor,
    )
    session.add(campaign)
    session.flush()
    _event(session, CAMPAIGN_CREATED, campaign, actor=actor, source=source, ts=ts)
    return campaign


def update_campaign(
    *,
    session: Session,
    campaign_id: int,
    actor: str,
    source: str = "console",
    now: datetime | None = None,
    **fields: Any,
) -> Campaign:
    """Change a draft (or paused) campaign's fields; one ``Campaign Updated`` event naming them."""
    unknown = set(fields) - set(_FIELDS)
    if unknown:
        raise TypeError(f"update_campaign: unknown fields {sorted(unknown)}")
    actors.require(session, actors.EDITOR, "changing a campaign draft")
    campaign = get_campaign_by_id(session, campaign_id)
    if campaign.status not in EDITABLE:
        raise WrongStatus(
            f"Campaign {campaign.name!r} is {campaign.status}: only drafts and paused "
            "campaigns can be changed",
            field="campaign",
        )
    changed: list[str] = []
    if "name" in fields:
        cleaned = clean_campaign_name(fields["name"])
        if cleaned != campaign.name:
            key = name_key(cleaned)
            KIND.check_name_free(session, key, except_id=campaign.id)
            campaign.name, campaign.name_key = cleaned, key
            changed.append("Name")
    if "subject" in fields:
        subject = clean_subject(fields["subject"]) if (fields["subject"] or "").strip() else ""
        if subject != campaign.subject:
            campaign.subject = subject
            changed.append("Subject")
    if "from_address" in fields:
        raw = fields["from_address"] or ""
        address = clean_from_address(raw) if raw.strip() else ""
        if address != campaign.from_address:
            campaign.from_address = address
            changed.append("From")
    if "body" in fields and fields["body"] != campaign.body:
        body = fields["body"] or ""
        check_body_draft(body)
        campaign.body = body
        changed.append("Body")
    if "segment_id" in fields and fields["segment_id"] != campaign.segment_id:
        campaign.segment_id = check_segment(session, fields["segment_id"])
        changed.append("Audience")
    for field, label in (
        ("do_not_send_to", "Do Not Send To"),
        ("only_subscribed_to", "Only Subscribed To"),
    ):
        if field in fields:
            ids = check_groups(
                session, fields[field], field=field, already=getattr(campaign, field)
            )
            if ids != list(getattr(campaign, field)):
                setattr(campaign, field, ids)
                changed.append(label)
    if not changed:
        return campaign
    ts = now or clock.now()
    campaign.updated_at = ts
    session.add(campaign)
    session.flush()
    _event(session, CAMPAIGN_UPDATED, campaign, actor=actor, source=source, ts=ts, Changes=changed)
    return campaign


def set_status(
    *,
    session: Session,
    campaign_id: int,
    status: str,
    actor: str,
    source: str = "console",
    now: datetime | None = None,
    **event_properties: Any,
) -> Campaign:
    """Move the campaign to ``status`` and write the matching ledger event."""
    if status not in _STATUS_EVENTS:
        raise ValueError(f"set_status: cannot move a campaign to {status!r}")
    campaign = session.get(Campaign, campaign_id, populate_existing=True, with_for_update=True)
    if campaign is None:
        raise UnknownCampaign(f"No campaign has id {campaign_id}", field="campaign")
    if status == CANCELLED:
        # A draft is the editors'; stopping a send for good is the owners', as sending is.
        if campaign.status == DRAFT:
            actors.require(session, actors.EDITOR, "cancelling a campaign draft")
        else:
            actors.require(session, actors.OWNER, "cancelling a campaign's send")
    if campaign.status in (SENT, CANCELLED):
        raise WrongStatus(
            f"Campaign {campaign.name!r} is already {campaign.status}", field="campaign"
        )
    ts = now or clock.now()
    campaign.status, campaign.updated_at = status, ts
    if status == SENT:
        campaign.sent_at = ts
    session.add(campaign)
    session.flush()
    _event(
        session,
        _STATUS_EVENTS[status],
        campaign,
        actor=actor,
        source=source,
        ts=ts,
        **event_properties,
    )
    return campaign


# --- before sending ------------------------------------------------------------------------


def send_problems(
    session: Session, campaign: Campaign, *, reach: int | None = None
) -> list[tuple[str, str]]:
    """Everything that stops this campaign from being sent, as (field, message); empty: ready.

    ``reach``, when the caller has counted it (``eligibility.reach``): a
    draft that reaches nobody is not sent (field ``reach``), it stays a draft.
    """
    problems: list[tuple[str, str]] = []
    if campaign.status == SENT:
        when = f" on {campaign.sent_at:%Y-%m-%d %H:%M} UTC" if campaign.sent_at else ""
        problems.append(("campaign", f"Campaign {campaign.name!r} was already sent{when}"))
    elif campaign.status == CANCELLED:
        problems.append(("campaign", f"Campaign {campaign.name!r} was cancelled"))
    checks = (
        ("subject", clean_subject, campaign.subject),
        ("from_address", clean_from_address, campaign.from_address),
        ("body", body_template.check_ready, campaign.body),
    )
    for field, check, value in checks:
        try:
            check(value)
        except InvalidInput as exc:
            problems.append((field, exc.message))
    try:
        check_segment(session, campaign.segment_id)
    except RuleRefused as exc:
        problems.append(("segment", f"{exc.message} (the audience segment was deleted)"))
    for field in ("do_not_send_to", "only_subscribed_to"):
        for group_id in getattr(campaign, field):
            if session.get(Group, group_id) is None:
                problems.append((field, f"No group has id {group_id}"))
    if reach == 0 and campaign.status == DRAFT:
        problems.append(("reach", no_reach_message(campaign.name)))
    try:
        settings.check_dkim_key(session)
    except SubgroupsError as exc:  # DKIM is set up, its key file is not usable
        problems.append(("dkim", exc.message))
    return problems


def no_reach_message(name: str) -> str:
    """Why a campaign with a reach of 0 is not sent."""
    return f"Campaign {name!r} reaches nobody (reach 0): change its audience or groups"


def warnings(session: Session, campaign: Campaign) -> list[str]:
    """What the reviewer should know before sending, though it does not stop the send."""
    notes: list[str] = []
    if not campaign.do_not_send_to:
        notes.append(
            "No 'do not send to' groups are chosen: the unsubscribe link in this campaign "
            "unsubscribes people from all email"
        )
    archived = [
        g.name
        for g in (session.get(Group, gid) for gid in campaign.do_not_send_to)
        if g is not None and g.status != STATUS_ACTIVE
    ]
    if archived:
        notes.append(
            f"Archived groups stay enforced: people who left {', '.join(archived)} are skipped"
        )
    if campaign.segment_id is None:
        notes.append("The audience is all profiles (no segment chosen)")
    https = https_warning(session)
    if https is not None:
        notes.append(https)
    signing = settings.signing_warning(session, campaign.from_address)
    if signing is not None:
        notes.append(signing)
    return notes


def https_warning(session: Session) -> str | None:
    """The warning when the landing page's links are not HTTPS (one-click needs it), or None."""
    base_url = landing.get_settings(session).base_url
    if base_url.lower().startswith("https://"):
        return None
    return (
        f"The landing page's base URL is {base_url}: mail providers honour one-click "
        "unsubscribe only over HTTPS; set the public URL in Landing page settings"
    )
