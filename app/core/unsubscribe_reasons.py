"""Why people leave: the one optional question the landing page asks after an unsubscribe.

The answer is an ``Unsubscribe Reason`` event tied to the change it explains:
the newest unsubscribe the same link made (its profile, its campaign, from
the landing page or a one-click), named by its event id in ``Change Event ID``.
A link that made no unsubscribe has nothing to explain: the answer is
refused and nothing is recorded. One answer per change; the question is
never required and never stands in the way of the change itself, which is
committed before the question is even shown.
"""

from datetime import datetime

from sqlmodel import Session, col, select

from app.core import ledger
from app.core.errors import InvalidInput, RuleRefused
from app.core.event_names import CHANNEL_UNSUBSCRIBED, UNSUBSCRIBE_REASON
from app.core.landing import RECIPIENT, linked_profile
from app.core.models import UNSUBSCRIBED, Event
from app.core.text_rules import refuse_controls

# The choices, as stored (``Reason``), and as people read them.
REASONS = ("too_many_emails", "not_relevant", "never_signed_up", "other")
LABELS = {
    "too_many_emails": "Too many emails",
    "not_relevant": "Not relevant to me",
    "never_signed_up": "I never signed up",
    "other": "Other",
}
DETAILS_MAX = 500
# How far back through a person's events the change is looked for.
LOOK_BACK = 200
_CHANGE_SOURCES = ("landing_page", "one_click")


class ReasonAlreadyGiven(RuleRefused):
    """The change already has its reason."""


def reason_label(code: str) -> str:
    """The words for a stored reason code (the code itself when unknown)."""
    return LABELS.get(code, code)


def clean_answer(reason: str | None, details: str | None) -> tuple[str, str | None]:
    """The reason code and the details as stored; ``InvalidInput`` saying what is wrong."""
    if reason not in REASONS:
        shown = "nothing" if not reason else repr(reason[:40])
        raise InvalidInput(
            f"the reason must be one of {', '.join(REASONS)}, not {shown}", field="reason"
        )
    text = (details or "").strip()
    if len(text) > DETAILS_MAX:
        raise InvalidInput(
            f"the details are {len(text)} characters long; at most {DETAILS_MAX} fit",
            field="details",
        )
    refuse_controls(text, what="the details", field="details")
    return reason, text or None


def change_for(session: Session, *, profile_id: int, campaign_id: int | None) -> Event | None:
    """The newest unsubscribe this link (profile and campaign) made on the landing page."""
    rows = session.exec(
        select(Event)
        .where(col(Event.profile_id) == profile_id)
        .order_by(col(Event.id).desc())
        .limit(LOOK_BACK)
    ).all()
    for event in rows:
        if (
            event.name == CHANNEL_UNSUBSCRIBED
            and event.source in _CHANGE_SOURCES
            and event.campaign_id == campaign_id
            and (event.properties or {}).get("New State") == UNSUBSCRIBED
        ):
            return event
    return None


def record_reason(
    *,
    session: Session,
    profile_id: int,
    campaign_id: int | None,
    reason: str | None,
    details: str | None,
    now: datetime | None = None,
) -> ledger.EventRecord:
    """Record why the person behind a link left; call it in a write session.

    Refused (nothing recorded) when the answer is not one of the choices, the
    details are too long or hold control characters (``InvalidInput``), the link
    made no unsubscribe (``InvalidInput``), or the change has its reason already
    (``ReasonAlreadyGiven``).
    """
    code, text = clean_answer(reason, details)
    profile = linked_profile(session, profile_id, lock=True)
    change = change_for(session, profile_id=profile_id, campaign_id=campaign_id)
    if change is None or change.id is None:
        raise InvalidInput(
            "there is no unsubscribe from this link to give a reason for; nothing was recorded",
            field="reason",
        )
    given = session.exec(
        select(Event.properties)
        .where(col(Event.profile_id) == profile_id, col(Event.id) > change.id)
        .where(col(Event.name) == UNSUBSCRIBE_REASON)
    ).all()
    if any((props or {}).get("Change Event ID") == change.id for props in given):
        raise ReasonAlreadyGiven(
            "a reason for this unsubscribe is already recorded; nothing more was recorded"
        )
    event = ledger.record(
        session,
        name=UNSUBSCRIBE_REASON,
        source="landing_page",
        actor=RECIPIENT,
        identity=profile.identity,
        profile_id=profile_id,
        group_id=change.group_id,
        campaign_id=campaign_id,
        now=now,
        properties={
            "Reason": code,
            "Details": text,
            "Change Event ID": change.id,
            "Group": (change.properties or {}).get("Group"),
            "Campaign ID": campaign_id,
        },
    )
    return ledger.to_record(event)
