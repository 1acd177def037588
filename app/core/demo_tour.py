"""What the demo tour's steps look for in the store (``subgroups demo --tour``).

The tour (app/ui/widgets/tour.py) narrates the seed's story one step at a time
and notices, from the store, when the presenter has done a step: each function
here answers "has it happened since ledger event ``after_id``?" with what it
found, or None. They only read, and they read what any process wrote (the
console, the CLI, the landing server), so a step done elsewhere counts too.

The one write is ``recipient_unsubscribes``: a recipient of the tour's
campaign presses its one-click unsubscribe link, through the same service the
landing server's ``POST /u/<token>`` calls (Source ``one_click``).
"""

import random
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core import campaigns, explainer, groups, one_click
from app.core.errors import RuleRefused
from app.core.event_names import CHANNEL_UNSUBSCRIBED, GROUP_CREATED
from app.core.limits import MAX_ACTIVE_GROUPS
from app.core.models import UNSUBSCRIBED, Campaign, Event, Group, Profile
from app.core.segment_rules import EXCLUDE
from app.core.segments import SEGMENT_SAVED
from app.core.store import Store

# Where an unsubscribe on the landing page comes from (the page's form, its one-click link).
LANDING_SOURCES = ("landing_page", "one_click")


@dataclass(frozen=True)
class Found:
    """What a step found in the store: a sentence for the presenter (plain text, with
    names people typed: shown escaped), and what later steps build on."""

    summary: str
    event_id: int = 0
    campaign_id: int | None = None
    campaign: str = ""
    identity: str = ""


def latest_event_id(session: Session) -> int:
    """Where a step starts looking: the newest ledger event now (0: none)."""
    return int(session.exec(select(func.max(Event.id))).first() or 0)


def _events_named(session: Session, name: str, after_id: int) -> list[Event]:
    """The events called ``name`` after ``after_id``, newest first."""
    query = (
        select(Event)
        .where(col(Event.id) > after_id, col(Event.name) == name)
        .order_by(col(Event.id).desc())
    )
    return list(session.exec(query).all())


def group_created(session: Session, after_id: int) -> Found | None:
    """Step (a): a group was created; with the active count against the limit."""
    for event in _events_named(session, GROUP_CREATED, after_id):
        group = session.get(Group, event.group_id) if event.group_id is not None else None
        name = group.name if group is not None else str(event.properties.get("Group", ""))
        active = groups.active_count(session)
        return Found(
            f'Group "{name}" created: {active} / {MAX_ACTIVE_GROUPS} active.',
            event_id=event.id or 0,
        )
    return None


def excluding_segment_saved(session: Session, after_id: int) -> Found | None:
    """Step (b): a segment was saved with a Subscription Groups condition that excludes."""
    for event in _events_named(session, SEGMENT_SAVED, after_id):
        definition = event.properties.get("Definition") or {}
        conditions = definition.get("conditions", []) if isinstance(definition, dict) else []
        if any(
            isinstance(c, dict) and c.get("type") == "groups" and c.get("mode") == EXCLUDE
            for c in conditions
        ):
            rule = str(event.properties.get("Rule", ""))
            name = str(event.properties.get("Segment", ""))
            return Found(f'Segment "{name}" saved: {rule}.', event_id=event.id or 0)
    return None


def _group_names(session: Session, ids: list[int]) -> list[str]:
    found = {g.id: g.name for g in session.exec(select(Group).where(col(Group.id).in_(ids)))}
    return [found[i] for i in ids if i in found]


def _not_sent_to(session: Session, campaign: Campaign) -> str:
    return ", ".join(_group_names(session, list(campaign.do_not_send_to)))


def campaign_with_do_not_send(session: Session, after_id: int) -> Found | None:
    """Step (c): a campaign made or changed since, that is not to be sent to the
    people who left one or more groups (and is not cancelled or sent)."""
    query = (
        select(Event.campaign_id)
        .where(
            col(Event.id) > after_id,
            col(Event.campaign_id).is_not(None),
            col(Event.name) != CHANNEL_UNSUBSCRIBED,
        )
        .order_by(col(Event.id).desc())
    )
    for campaign_id in dict.fromkeys(session.exec(query).all()):
        campaign = session.get(Campaign, campaign_id)
        if campaign is None or not campaign.do_not_send_to:
            continue
        if campaign.status not in campaigns.EDITABLE:
            continue
        return Found(
            f'Campaign "{campaign.name}" is not sent to people who left '
            f"{_not_sent_to(session, campaign)}.",
            campaign_id=campaign.id,
            campaign=campaign.name,
        )
    return None


def tour_campaign(session: Session, chosen: int | None) -> Campaign | None:
    """The campaign the last steps are about: the one made in step (c) if it is
    still a draft, else the newest draft with "do not send to" groups (the sample's
    "Winter sale"), else None."""
    if chosen is not None:
        campaign = session.get(Campaign, chosen)
        if campaign is not None and campaign.status in campaigns.EDITABLE:
            return campaign
    query = (
        select(Campaign)
        .where(col(Campaign.status).in_(campaigns.EDITABLE))
        .order_by(col(Campaign.id).desc())
    )
    return next((c for c in session.exec(query) if c.do_not_send_to), None)


def landing_unsubscribe(session: Session, after_id: int) -> Found | None:
    """Step (d): someone unsubscribed on the landing page (its form or its one-click
    link), by any process: the newest such change."""
    query = (
        select(Event)
        .where(
            col(Event.id) > after_id,
            col(Event.name) == CHANNEL_UNSUBSCRIBED,
            col(Event.source).in_(LANDING_SOURCES),
        )
        .order_by(col(Event.id).desc())
    )
    for event in session.exec(query):
        if event.properties.get("New State") != UNSUBSCRIBED:
            continue
        left = event.properties.get("Group") or "all email"
        campaign = session.get(Campaign, event.campaign_id) if event.campaign_id else None
        via = f' through the link in "{campaign.name}"' if campaign is not None else ""
        return Found(
            f"{event.identity} left {left} on the landing page{via} ({event.source}).",
            event_id=event.id or 0,
            campaign_id=event.campaign_id,
            campaign=campaign.name if campaign is not None else "",
            identity=event.identity or "",
        )
    return None


def recipient_unsubscribes(
    store: Store, campaign_id: int, *, rng: random.Random | None = None, tries: int = 200
) -> Found:
    """A person the campaign would reach presses its one-click unsubscribe link.

    Picks people at random until the explainer says one gets the campaign, then
    unsubscribes them as ``POST /u/<token>`` would (``one_click``: the
    campaign's "do not send to" groups, Source ``one_click``, its Campaign ID).
    Raises ``RuleRefused`` when no recipient is found.
    """
    rng = rng or random.Random()
    with store.read() as session:
        campaign = campaigns.get_campaign_by_id(session, campaign_id)
        top = int(session.exec(select(func.max(Profile.id))).first() or 0)
    chosen: Profile | None = None
    for _ in range(tries if top else 0):
        with store.read() as session:
            pick = rng.randint(1, top)
            profile = session.exec(
                select(Profile).where(col(Profile.id) >= pick).order_by(col(Profile.id)).limit(1)
            ).first()
        if profile is not None and explainer.explain(store, campaign, profile.identity).eligible:
            chosen = profile
            break
    if chosen is None or chosen.id is None:
        raise RuleRefused(f'found nobody who gets "{campaign.name}" to unsubscribe')
    with store.write() as session:
        scope, events = one_click.one_click(
            session=session, profile_id=chosen.id, campaign_id=campaign_id
        )
    left = ", ".join(scope.group_names) or "all email"
    return Found(
        f"{chosen.identity} left {left} through the one-click link in "
        f'"{campaign.name}" (one_click).',
        event_id=max((e.id for e in events), default=0),
        campaign_id=campaign_id,
        campaign=campaign.name,
        identity=chosen.identity,
    )


def explain_left_out(store: Store, campaign_id: int, identity: str) -> tuple[bool, str]:
    """Step (f)'s check: whether the person is left out of the campaign, and why."""
    with store.read() as session:
        campaign = campaigns.get_campaign_by_id(session, campaign_id)
    explanation = explainer.explain(store, campaign, identity)
    return (not explanation.eligible, explanation.reason)
