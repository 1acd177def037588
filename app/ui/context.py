"""What the console's parts need from the app, without importing it.

Sections, modals and widgets reach the running console through
``console(node)``: a Protocol the app satisfies, so app/ui/app.py imports
them and none of them imports it back.
"""

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from textual.dom import DOMNode
from textual.signal import Signal

from app.ui.messages import StoreChanged

if TYPE_CHECKING:
    from app.core.store import Store


class Console(Protocol):
    """The console app as its parts see it."""

    # The store every read and write goes to.
    store: "Store"
    # The active groups as the first look counted them before the store opened (None: not read).
    first_look_active: int | None
    # Where campaigns sent from the console go (None: the default Maildir outbox).
    outbox_dir: Path | None
    # Set when the console starts quitting: long thread work checks it and stops.
    closing: threading.Event
    # New ledger events, from any process: what changed (see StoreChanged).
    store_changes: Signal[StoreChanged]


def console(node: DOMNode) -> Console:
    """The console app running ``node``."""
    return cast(Console, node.app)
