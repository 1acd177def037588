"""What the wizard's preview pane shows: a campaign's message for one recipient.

The message is the one the sender would make (``mail.build_message``): the
body with every tag filled in, the real links (signed with the install's link
keyring, on the landing page's public base URL) and the footer with any link
the body leaves out. The pane shows the headers a reader or a mail client
acts on, then the text. Read in a worker.
"""

from dataclasses import dataclass

from textual.content import Content

from app.core import campaigns, mail, profiles
from app.core.errors import RuleRefused
from app.core.models import Campaign
from app.core.store import Store
from app.ui.messages import CampaignDraft

# Date and Message-ID are left out: the one changes every second, the other
# says nothing to someone checking their message.
SHOWN_HEADERS = ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id")


@dataclass(frozen=True)
class MessagePreview:
    """One rendered message: a few headers, then the text."""

    headers: list[tuple[str, str]]
    body: str

    def as_content(self) -> Content:
        """Headers (names muted), a rule, the body; all user text, never markup."""
        lines = [
            Content.assemble((f"{name}: ", "$foreground-muted"), value)
            for name, value in self.headers
        ]
        lines.append(Content.styled("─" * 20, "$foreground-muted"))
        lines.append(Content(self.body))
        return Content("\n").join(lines)


def render_preview(store: Store, draft: CampaignDraft, identity: str) -> MessagePreview:
    """The draft's message (edits not saved yet included) for the profile ``identity``.

    Raises ``UnknownProfile``, or ``RuleRefused`` when the profile has no
    address mail can go to.
    """
    assert draft.id is not None, "the draft is saved at step 1"
    with store.read() as session:
        profile = profiles.get_profile(session, identity)
        stored = campaigns.get_campaign_by_id(session, draft.id)
        # A detached copy with the wizard's values: never added to the session.
        campaign = Campaign(**stored.model_dump())
        campaign.subject = draft.subject
        campaign.from_address = draft.from_address
        campaign.body = draft.body
        campaign.do_not_send_to = list(draft.do_not_send_to)
        message = mail.build_message(session, campaign, profile)
    if message is None:
        raise RuleRefused(
            f"{identity} has no email address mail can go to: this campaign skips them",
            field="recipient",
        )
    headers = [
        (name, " ".join(str(value).split()))
        for name in SHOWN_HEADERS
        for value in message.get_all(name) or []
    ]
    body = message.get_content()
    return MessagePreview(headers, body.replace("\r\n", "\n"))
