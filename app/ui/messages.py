"""Messages workers post to the UI: plain data only, never live ORM objects.

Importable before the data layer (the console's first frame needs none of it):
the ledger's and the models' types are named for the type checker only.
"""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from textual.message import Message

from app.core.event_names import CHANNEL_UNSUBSCRIBED

if TYPE_CHECKING:
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
    def from_group(cls, group: "Group") -> "GroupRow":
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

    events: "list[EventRecord]" = field(default_factory=list)
    initial: bool = False
    # Events of a bulk write that went by without being shown.
    skipped: int = 0


@dataclass(frozen=True)
class StoreChanged:
    """What new ledger events (from this console or any process) changed.

    The app publishes it on its ``store_changes`` signal; each section (and an
    open campaign wizard) decides what to read again. Published twice for a
    burst of events: at once for each batch (``settled`` False: more may
    follow), then once the burst is over, every batch merged (``settled`` True),
    so a slow reload runs once per burst.
    """

    names: frozenset[str] = frozenset()
    identities: frozenset[str] = frozenset()
    # Events of a bulk write went by unseen: anything may have changed.
    bulk: bool = False
    # The whole store changed (the sample data was loaded): read everything again.
    everything: bool = False
    settled: bool = False
    # The events themselves, oldest first (none for a bulk write's unseen ones): a
    # section may update what it shows from them rather than read it again.
    events: "tuple[EventRecord, ...]" = ()

    @property
    def groups_changed(self) -> bool:
        """A group was created, renamed, archived … (or a bulk write may have done so)."""
        return self.bulk or self.everything or any(n.startswith("Group ") for n in self.names)

    @property
    def campaigns_changed(self) -> bool:
        """A campaign event, or an unsubscribe (a campaign's count of them)."""
        return (
            self.bulk
            or self.everything
            or CHANNEL_UNSUBSCRIBED in self.names
            or any(n.startswith("Campaign ") for n in self.names)
        )

    @property
    def subscriptions_changed(self) -> bool:
        """Someone opted out through a channel: reach counts may differ."""
        return self.bulk or self.everything or CHANNEL_UNSUBSCRIBED in self.names

    def merged(self, other: "StoreChanged") -> "StoreChanged":
        """Both changes as one."""
        return StoreChanged(
            names=self.names | other.names,
            identities=self.identities | other.identities,
            bulk=self.bulk or other.bulk,
            everything=self.everything or other.everything,
            settled=self.settled and other.settled,
            events=self.events + other.events,
        )


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
    def from_campaign(cls, campaign: "Campaign") -> "CampaignDraft":
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
