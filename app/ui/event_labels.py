"""What the console calls an event (the log's lines, the event's detail).

A ``Channel Unsubscribed`` event that subscribes someone again is shown as
"Resubscribed" (from unsubscribed) or "Subscribed" (from never set).
"""

from typing import TYPE_CHECKING

from app.core.event_names import CHANNEL_UNSUBSCRIBED

if TYPE_CHECKING:
    from app.core.ledger import EventRecord

RESUBSCRIBED = "Resubscribed"
SUBSCRIBED_LABEL = "Subscribed"


def is_resubscribe(event: "EventRecord") -> bool:
    """A ``Channel Unsubscribed`` event that subscribes (``Resubscribed: true``)."""
    return event.name == CHANNEL_UNSUBSCRIBED and event.properties.get("Resubscribed") is True


def label(event: "EventRecord") -> str:
    """What the log calls an event: its name, but a ``Channel Unsubscribed`` that
    subscribes is "Resubscribed" (from unsubscribed) or "Subscribed" (from never set)."""
    if not is_resubscribe(event):
        return event.name
    return RESUBSCRIBED if event.properties.get("Old State") == "unsubscribed" else SUBSCRIBED_LABEL
