"""The campaign wizard's step 4: the body template, its tags, and a preview of the
message for one recipient (rendered in a worker; a late preview for an older
body or recipient is dropped).

The body and the preview are shown as Content, never as markup.
"""

from dataclasses import dataclass
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, Label, Static, TextArea

from app.core import body_template
from app.core.errors import SubgroupsError
from app.core.store import Store
from app.ui.messages import CampaignDraft
from app.ui.reads.campaigns import first_member
from app.ui.reads.preview import MessagePreview, render_preview
from app.ui.widgets.campaign_steps import StepChanged, WizardStep


class ContentStep(Horizontal, WizardStep):
    """Step 4: the body template, its tags, and a preview for a chosen recipient."""

    NUMBER = 4
    FIELDS = ("body", "recipient")

    @dataclass
    class Previewed(Message):
        generation: int
        preview: MessagePreview | None
        recipient: str
        error: str | None = None

    def __init__(self, draft: CampaignDraft, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="wizard-step")
        self.draft = draft
        self.preview_generation = 0

    def compose(self) -> ComposeResult:
        with Vertical(id="content-editor"):
            yield Label("Body (plain text with tags)", classes="field-label")
            yield TextArea(
                self.draft.body or body_template.DEFAULT_BODY,
                id="body",
                soft_wrap=True,
                compact=True,
            )
            yield Static("", id="body-error", classes="field-error -empty")
            yield Static("", id="body-note", classes="-empty")
            tags = [Content.styled("Tags: ", "bold")]
            for tag in body_template.TAGS:
                tags.append(
                    Content.assemble(
                        ("\n{{ " + tag + " }}", "$accent"), " ", body_template.TAG_HELP[tag]
                    )
                )
            yield Static(Content("").join(tags), id="content-tags")
            # A short terminal gives the rows to the editor: the tags without their help.
            yield Static(
                Content.assemble(
                    ("Tags: ", "bold"),
                    Content("  ").join(
                        Content.styled("{{ " + tag + " }}", "$accent") for tag in body_template.TAGS
                    ),
                ),
                id="content-tags-short",
            )
        with Vertical(id="content-preview"):
            yield Label("Preview for (identity)", classes="field-label")
            yield Input(id="recipient", placeholder="identity of a profile", compact=True)
            yield Static("", id="recipient-error", classes="field-error -empty")
            with VerticalScroll(id="preview-scroll"):
                yield Static(Content("Choosing a recipient…"), id="preview")

    def values(self) -> dict[str, Any]:
        return {"body": self.query_one("#body", TextArea).text}

    def problems(self) -> dict[str, str]:
        try:
            body_template.check_body(self.values()["body"])
        except SubgroupsError as exc:
            return {"body": exc.message}
        return {}

    def show_problems(self, problems: dict[str, str]) -> None:
        self.show_error("body", problems.get("body", ""))
        self._show_placeholder_note()

    def on_mount(self) -> None:
        self._show_placeholder_note()

    def _show_placeholder_note(self) -> None:
        """Not an error (a draft may keep it), but the placeholder line is never sent."""
        line = body_template.placeholder_line(self.values()["body"])
        note = self.query_one("#body-note", Static)
        note.update(
            ""
            if line is None
            else Content(
                f"Line {line} still says {body_template.PLACEHOLDER!r}: "
                "replace it with your message before sending."
            )
        )
        note.set_class(line is None, "-empty")

    @property
    def recipient(self) -> str:
        return self.query_one("#recipient", Input).value.strip()

    def refresh_preview(self, store: Store, draft: CampaignDraft) -> None:
        """Render ``draft``'s body for the recipient shown (the audience's first member
        when blank); older renders still on their way are dropped."""
        self.preview_generation += 1
        self._preview(store, self.preview_generation, draft, self.recipient)

    @work(thread=True, exclusive=True, group="wizard.preview")
    def _preview(self, store: Store, generation: int, draft: CampaignDraft, recipient: str) -> None:
        try:
            if not recipient:
                recipient = first_member(store, draft)
            if not recipient:
                self.post_message(
                    self.Previewed(
                        generation, None, "", "The audience is empty: nobody to preview for."
                    )
                )
                return
            preview = render_preview(store, draft, recipient)
            self.post_message(self.Previewed(generation, preview, recipient))
        except SubgroupsError as exc:
            self.post_message(self.Previewed(generation, None, recipient, exc.message))

    @on(Previewed)
    def _previewed(self, message: Previewed) -> None:
        if message.generation != self.preview_generation:
            return
        recipient = self.query_one("#recipient", Input)
        if not recipient.value.strip() and message.recipient:
            with self.prevent(Input.Changed):
                recipient.value = message.recipient
        self.show_preview(message.preview.as_content() if message.preview else None, message.error)

    def show_preview(self, text: Content | None, error: str | None = None) -> None:
        """The rendered message, or why there is none (unknown recipient)."""
        self.show_error("recipient", error or "")
        preview = self.query_one("#preview", Static)
        preview.update(
            text if text is not None else Content.styled("No preview.", "$foreground-muted")
        )

    @on(TextArea.Changed)
    def _body_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self.show_problems(self.problems())
        self.post_message(StepChanged(self.NUMBER))

    @on(Input.Changed, "#recipient")
    def _recipient_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.post_message(StepChanged(self.NUMBER))

    def set_read_only(self) -> None:
        """Read-only, but the preview's recipient stays editable (it changes nothing)."""
        self.query_one("#body", TextArea).read_only = True
