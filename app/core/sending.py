"""Sending a campaign: ``send_campaign``, what the CLI and the console call.

How one process sends (batches, eligibility per batch, claims, crash recovery)
is ``send_run``'s; how several processes share a send on PostgreSQL is
``shared_send``'s (batches in ``send_batches``).
"""

from collections.abc import Callable

from app.core import send_lease
from app.core.outbox import Outbox
from app.core.send_run import BATCH_SIZE, ProgressCallback, SendProgress, SendResult, _Sender
from app.core.shared_send import SharedSender
from app.core.store import Store

__all__ = ["BATCH_SIZE", "ProgressCallback", "SendProgress", "SendResult", "send_campaign"]


def send_campaign(
    *,
    store: Store,
    campaign_id: int,
    outbox: Outbox,
    actor: str,
    source: str = "cli",
    batch_size: int = BATCH_SIZE,
    progress: ProgressCallback | None = None,
    cancelled: Callable[[], bool] | None = None,
    lease_seconds: float = send_lease.LEASE_SECONDS,
    heartbeat_seconds: float | None = None,
) -> SendResult:
    """Send (or resume sending) a campaign through ``outbox``; see the module docstring.

    Raises ``WrongStatus`` (already sent, cancelled, being sent by another
    process), ``RuleRefused`` (a draft that reaches nobody: it stays a
    draft), ``InvalidInput`` (the campaign is not ready: the messages say
    what to fix) or ``OutboxUnavailable`` (the send is paused). A cancelled
    run returns with ``cancelled`` set and the campaign paused.

    On PostgreSQL several processes share one send (``shared_send``): a send
    of a campaign another live process is sending joins it, and each takes
    batches nobody holds. On SQLite one process sends at a time: a second is
    refused with ``SendInProgress``. ``lease_seconds`` is how old a sender's
    heartbeat may grow before its batches (or its lease) are taken over;
    ``heartbeat_seconds`` how often it beats (default ``HEARTBEAT_SECONDS``).
    """
    kind = SharedSender if store.engine.dialect.name == "postgresql" else _Sender
    sender = kind(
        store=store, campaign_id=campaign_id, outbox=outbox, actor=actor, source=source,
        batch_size=batch_size, progress=progress, cancelled=cancelled, lease=lease_seconds,
        heartbeat=heartbeat_seconds,
    )  # fmt: skip
    return sender.run()
