"""What the campaign screens read from the store: plain data, read in workers.

Each function opens its own session and returns dataclasses the UI thread
can hold (never live ORM objects): what the wizard needs to open, the
review step's facts, each audience option's size, a preview's recipient.
"""

from dataclasses import dataclass, field, replace
from datetime import datetime

from app.core import campaigns, eligibility, segments
from app.core import groups as group_service
from app.core.body_template import DEFAULT_BODY
from app.core.eligibility import Reach
from app.core.errors import SubgroupsError
from app.core.models import Profile
from app.core.store import Store
from app.ui.messages import CampaignDraft, GroupRow
from app.ui.reads.preview import MessagePreview, render_preview


@dataclass(frozen=True)
class SegmentChoice:
    """A saved segment the audience step offers."""

    id: int
    name: str


@dataclass(frozen=True)
class WizardData:
    """What the wizard needs to draw its steps, read before it opens."""

    draft: CampaignDraft
    groups: list[GroupRow]
    segments: list[SegmentChoice]


@dataclass(frozen=True)
class Review:
    """Everything the review step shows."""

    draft: CampaignDraft
    audience: str
    do_not_send_to: list[str]
    only_subscribed_to: list[str]
    reach: Reach | None
    reach_error: str | None
    warnings: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    sent: int = 0
    sent_at: datetime | None = None
    # The HTTPS warning, shown beside Send (also among ``warnings``).
    send_warning: str | None = None
    # The message as the chosen recipient gets it: subject and body filled in.
    recipient: str = ""
    message: MessagePreview | None = None
    message_error: str | None = None


def load_wizard_data(store: Store, campaign_id: int | None) -> WizardData:
    """The campaign (a new draft when None), every group and the saved segments.

    Raises ``UnknownCampaign`` when the campaign is gone.
    """
    with store.read() as session:
        group_rows = [
            GroupRow.from_group(g) for g in group_service.list_groups(session, status="all")
        ]
        saved = [
            SegmentChoice(s.id, s.name) for s in segments.list_segments(session) if s.id is not None
        ]
        if campaign_id is None:
            draft = CampaignDraft(body=DEFAULT_BODY)
        else:
            draft = CampaignDraft.from_campaign(campaigns.get_campaign_by_id(session, campaign_id))
    return WizardData(draft, group_rows, saved)


def read_review(store: Store, campaign_id: int, recipient: str = "") -> Review:
    """The saved campaign's choices, its reach step by step, warnings, problems, and its
    message rendered for ``recipient`` (the audience's first member when blank)."""
    with store.read() as session:
        campaign = campaigns.get_campaign_by_id(session, campaign_id)
        draft = CampaignDraft.from_campaign(campaign)
    reach: Reach | None = None
    reach_error: str | None = None
    try:
        reach = eligibility.reach(store, draft)
    except SubgroupsError as exc:  # the segment was deleted …: say why, no numbers
        reach_error = exc.message
    with store.read() as session:
        campaign = campaigns.get_campaign_by_id(session, campaign_id)
        review = Review(
            draft=CampaignDraft.from_campaign(campaign),
            audience=campaigns.audience_name(session, campaign),
            do_not_send_to=campaigns.group_names(session, campaign.do_not_send_to),
            only_subscribed_to=campaigns.group_names(session, campaign.only_subscribed_to),
            reach=reach,
            reach_error=reach_error,
            warnings=campaigns.warnings(session, campaign),
            problems=campaigns.send_problems(
                session, campaign, reach=reach.reach if reach is not None else None
            ),
            sent=campaigns.sent_counts(session).get(campaign_id, 0),
            sent_at=campaign.sent_at,
            send_warning=campaigns.https_warning(session),
        )
    return _with_message(store, review, recipient)


def _with_message(store: Store, review: Review, recipient: str) -> Review:
    """The review with the message rendered for ``recipient`` (or why there is none)."""
    try:
        identity = recipient or first_member(store, review.draft)
        if not identity:
            return replace(review, message_error="The audience is empty: nobody to show it for.")
        preview = render_preview(store, review.draft, identity)
    except SubgroupsError as exc:
        return replace(review, recipient=recipient, message_error=exc.message)
    except Exception as exc:  # the keyring or the store failed: the rest of the review stands
        return replace(review, recipient=recipient, message_error=f"Cannot show it: {exc}")
    return replace(review, recipient=identity, message=preview)


def audience_sizes(store: Store, choices: list[SegmentChoice]) -> dict[int | None, int]:
    """How many people each audience option holds (None: all profiles)."""
    sizes: dict[int | None, int] = {}
    for segment_id in [None, *(c.id for c in choices)]:
        try:
            counted = eligibility.reach(store, CampaignDraft(segment_id=segment_id))
        except SubgroupsError:
            continue  # a segment that cannot be counted shows no size
        sizes[segment_id] = counted.steps[0].count
    return sizes


def first_member(store: Store, draft: CampaignDraft) -> str:
    """The identity of the audience's first member ('' when the audience is empty)."""
    ids = eligibility.audience_ids(store, draft)
    if not ids:
        return ""
    with store.read() as session:
        profile = session.get(Profile, ids[0])
        return profile.identity if profile is not None else ""
