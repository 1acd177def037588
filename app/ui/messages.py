"""Messages workers post to the UI: plain data only, never live ORM objects."""

from dataclasses import dataclass, field

from textual.message import Message

from app.core.ledger import EventRecord
from app.core.models import Campaign, Group


@dataclass(frozen=True)
class GroupRow:
    """A group as the console shows it."""

    id: int
    name: str
    description: str
    policy: str
    status: str
    shown_on_landing_page: bool

    @classmethod
    def from_group(cls, group: Group) -> "GroupRow":
        assert group.id is not None
        return cls(
            id=group.id,
            name=group.name,
            description=group.description,
            policy=group.policy,
            status=group.status,
            shown_on_landing_page=group.shown_on_landing_page,
        )


@dataclass
class NewEvents(Message):
    """Events the ledger poller saw commit (from any process), oldest first."""

    events: list[EventRecord] = field(default_factory=list)
    initial: bool = False
    # Events of a bulk write that went by without being shown.
    skipped: int = 0


@dataclass
class RunSectionAction(Message):
    """Ask the app to show a section and run one of its actions (from the palette)."""

    section: str
    action: str


@dataclass
class CampaignDraft:
    """A campaign's fields as the wizard edits them: plain data, safe to pass between threads.

    Not frozen: it stands in for a Campaign where the eligibility chain reads
    one (``eligibility.CampaignLike``), so the wizard can count the reach of
    choices not saved yet.
    """

    id: int | None = None
    name: str = ""
    subject: str = ""
    from_address: str = ""
    body: str = ""
    segment_id: int | None = None
    do_not_send_to: list[int] = field(default_factory=list)
    only_subscribed_to: list[int] = field(default_factory=list)
    status: str = "draft"

    @classmethod
    def from_campaign(cls, campaign: Campaign) -> "CampaignDraft":
        return cls(
            id=campaign.id,
            name=campaign.name,
            subject=campaign.subject,
            from_address=campaign.from_address,
            body=campaign.body,
            segment_id=campaign.segment_id,
            do_not_send_to=list(campaign.do_not_send_to),
            only_subscribed_to=list(campaign.only_subscribed_to),
            status=campaign.status,
        )
