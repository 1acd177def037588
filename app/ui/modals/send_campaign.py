"""Sending a campaign: a progress bar, the counts, and Cancel.

The send runs in a worker, in batches (``sending.send_campaign``): each batch
re-checks who may still get it. Cancel (Escape) asks the sender to stop after
the batch in hand; the campaign is then paused and can be sent on later
(nobody gets it twice). When the outbox fails (an SMTP server gone), the send
pauses too and says why. The dialog stays open with the outcome until closed.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, ProgressBar, Static

from app.core import actors, outbox, sending
from app.core.errors import SubgroupsError
from app.core.store import Store
from app.ui.context import console


def summary(result: sending.SendResult) -> str:
    """One line on what a send did: sent, skipped, and where the messages went."""
    left_out = [f"{result.skipped:,} not eligible when their batch was checked"]
    if result.without_email:
        left_out.append(f"{result.without_email:,} without a usable email address")
    if result.same_address:
        left_out.append(f"{result.same_address:,} whose address got it under another profile")
    if result.failed:
        left_out.append(f"{result.failed:,} refused by the server")
    if result.finished:
        head = f"Sent {result.sent:,} messages to {result.outbox}"
    else:
        head = (
            f"Paused after {result.sent_total:,} messages in all. "
            "Send again to go on (nobody gets it twice)"
        )
    return f"{head}; " + "; ".join(left_out) + "."


class SendModal(ModalScreen[str | None]):
    """Sends one campaign; dismisses with a one-line account of what happened."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel / close", id="send.cancel"),
        Binding("enter", "close", "Close", show=False, id="send.close"),
    ]

    @dataclass
    class Progressed(Message):
        done: int
        total: int
        sent: int
        skipped: int
        batch: int

        def can_replace(self, message: Message) -> bool:
            # Batches land faster than the screen redraws: only the newest counts.
            return isinstance(message, SendModal.Progressed)

    @dataclass
    class Finished(Message):
        summary: str
        paused: bool
        error: str | None = None

    def __init__(
        self, store: Store, *, campaign_id: int, name: str, outbox_dir: Path | None = None
    ) -> None:
        super().__init__()
        self.store = store
        self.campaign_id = campaign_id
        self.campaign_name = name
        self.outbox_dir = outbox_dir
        self.cancel_requested = threading.Event()
        self.summary: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="send-dialog", classes="dialog"):
            yield Static(
                Content.assemble("Sending ", Content.styled(self.campaign_name, "bold")),
                classes="dialog-title",
            )
            yield Static(Content("Starting…"), id="send-stage")
            yield ProgressBar(id="send-progress", show_eta=False)
            yield Static("", id="send-counts")
            yield Static("", id="send-result", classes="-empty")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Cancel (esc)", variant="warning", id="send-cancel", compact=True)
                yield Button("Close (enter)", variant="primary", id="send-close", compact=True)

    def on_mount(self) -> None:
        self.query_one("#send-close").display = False
        self.query_one("#send-cancel", Button).focus()
        self._send()

    # --- the worker -----------------------------------------------------------------

    def _stop_asked(self) -> bool:
        """Cancel pressed, or the console is quitting."""
        return self.cancel_requested.is_set() or console(self).closing.is_set()

    @work(thread=True, group="campaign.send", name="campaign send")
    def _send(self) -> None:
        def progress(p: sending.SendProgress) -> None:
            self.post_message(self.Progressed(p.done, p.total, p.sent, p.skipped, p.batch))

        try:
            result = sending.send_campaign(
                store=self.store,
                campaign_id=self.campaign_id,
                outbox=outbox.MaildirOutbox(
                    self.outbox_dir or outbox.default_outbox_dir(self.store.store_id)
                ),
                actor=actors.actor_name(),
                source="console",
                progress=progress,
                cancelled=self._stop_asked,
            )
        except outbox.OutboxUnavailable as exc:
            self.post_message(
                self.Finished(f"Paused: {exc.message}. Send again to go on.", True, exc.message)
            )
            return
        except SubgroupsError as exc:
            self.post_message(self.Finished(f"Not sent: {exc.message}", True, exc.message))
            return
        except Exception as exc:  # the store failed mid-send: the campaign can be resumed
            self.post_message(
                self.Finished(f"Stopped: {exc}. Send again to go on.", True, str(exc))
            )
            return
        self.post_message(self.Finished(summary(result), not result.finished))

    # --- showing progress ------------------------------------------------------------

    @on(Progressed)
    def _progressed(self, message: Progressed) -> None:
        bar = self.query_one("#send-progress", ProgressBar)
        bar.update(total=max(message.total, 1), progress=message.done)
        stage = "Stopping after this batch…" if self.cancel_requested.is_set() else "Sending"
        self.query_one("#send-stage", Static).update(Content(f"{stage}: batch {message.batch}"))
        self.query_one("#send-counts", Static).update(
            Content(
                f"{message.done:,} of {message.total:,} checked · "
                f"{message.sent:,} sent · {message.skipped:,} skipped"
            )
        )

    @on(Finished)
    def _finished(self, message: Finished) -> None:
        self.summary = message.summary
        title = "Paused" if message.paused else "Done"
        self.query_one("#send-stage", Static).update(Content.styled(title, "bold"))
        result = self.query_one("#send-result", Static)
        result.update(Content(message.summary))
        result.remove_class("-empty")
        result.set_class(message.error is not None, "-error")
        self.query_one("#send-cancel").display = False
        close = self.query_one("#send-close", Button)
        close.display = True
        close.focus()

    # --- keys --------------------------------------------------------------------------

    @on(Button.Pressed, "#send-cancel")
    def action_cancel(self) -> None:
        if self.summary is not None:
            self.dismiss(self.summary)
            return
        if not self.cancel_requested.is_set():
            self.cancel_requested.set()
            self.query_one("#send-stage", Static).update(Content("Stopping after this batch…"))
            self.query_one("#send-cancel", Button).disabled = True

    @on(Button.Pressed, "#send-close")
    def action_close(self) -> None:
        if self.summary is not None:
            self.dismiss(self.summary)
