"""The Groups section's counts kept up to date from ledger events, not recounted.

A full count (``groups.group_counts``) reads every stored state; after it, each
``Channel Unsubscribed`` event of a group says exactly how one person's effective
state moved (``Old State`` null: the group's policy), so the counts move by one.
The counts remember the ledger id they include (``as_of``): an event at or
below it is already in them.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.core.event_names import CHANNEL_UNSUBSCRIBED, UNSUBSCRIBE_REASON

if TYPE_CHECKING:
    from app.core.groups import GroupCounts
    from app.core.ledger import EventRecord

SUBSCRIBED, UNSUBSCRIBED = "subscribed", "unsubscribed"


def moves_counts_only_by_one(event: "EventRecord") -> bool:
    """The event moves group counts by at most one person (so the counts can follow
    it): a group's or the channel's state change, or the reason given for one (which
    moves none). Other events (an import, an erasure, a group created) call for a
    full count."""
    return event.name in (CHANNEL_UNSUBSCRIBED, UNSUBSCRIBE_REASON)


@dataclass
class LiveCounts:
    """Each group's effective counts, as of a ledger id, moved by later events."""

    counts: "dict[int, GroupCounts]" = field(default_factory=dict)
    as_of: int = 0

    def apply(self, events: Iterable["EventRecord"], policies: Mapping[int, str]) -> int:
        """Move the counts by the group state changes after ``as_of``; how many moved."""
        from app.core.groups import GroupCounts

        moved = 0
        for event in events:
            if event.id <= self.as_of or event.name != CHANNEL_UNSUBSCRIBED:
                continue
            self.as_of = event.id
            group_id = event.properties.get("Group ID")
            if group_id is None or group_id not in self.counts:
                continue  # all email: not part of the group counts
            old = event.properties.get("Old State")
            if old is None:
                old = UNSUBSCRIBED if policies.get(group_id) == "opt-in" else SUBSCRIBED
            new = event.properties.get("New State")
            if old == new or new not in (SUBSCRIBED, UNSUBSCRIBED):
                continue
            step = 1 if new == SUBSCRIBED else -1
            now = self.counts[group_id]
            self.counts[group_id] = GroupCounts(now.subscribed + step, now.unsubscribed - step)
            moved += 1
        return moved
