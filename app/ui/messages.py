"""Messages workers post to the UI: plain data only, never live ORM objects."""

from dataclasses import dataclass, field

from textual.message import Message

from app.core.ledger import EventRecord
from app.core.models import Group


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
