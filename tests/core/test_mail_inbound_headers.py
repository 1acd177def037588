"""With an inbound domain D set, every message carries ``List-Unsubscribe: <https://…/u/T>,
<mailto:unsubscribe+T@D>`` and goes out from ``bounces+T@D`` (``Return-Path`` in the Maildir
copy, MAIL FROM over SMTP), T the message's own signed token; without D, as before
(issue 12, ask 2). Messages are read back with the ``email`` package."""

import re
from datetime import UTC, datetime
from pathlib import Path

from sending_world import (
    SmtpServer,
    add_campaign,
    maildir_messages,
    reference_eligible,
    shop,
    with_usable_email,
)
from test_mail import STORE, keyring, parse
from test_mail import make_mail as shared_mail

from app.core import sending, settings, tokens
from app.core.mail import CampaignMail, Recipient
from app.core.outbox import MaildirOutbox
from app.core.smtp_outbox import SmtpOutbox
from app.core.store import Store

NOW = datetime(2026, 11, 20, 9, 30, 15, tzinfo=UTC)
DOMAIN = "in.example.com"
# RFC 5321 atext and dot-atom: what a local part may be without quoting.
DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")


def make_mail(inbound_domain: str | None) -> CampaignMail:
    return shared_mail(subject="News", groups=[(12, "Promotions")], inbound_domain=inbound_domain)


def unsubscribe_uris(value: str) -> list[str]:
    """The URIs of a List-Unsubscribe value (RFC 2369: ``<uri>`` separated by commas)."""
    return re.findall(r"<([^>]*)>", value)


def test_with_an_inbound_domain_the_message_carries_the_mailto_form_and_a_bounce_address() -> None:
    out = make_mail(DOMAIN).render(Recipient(42, "ann@example.com", "Ann"), NOW)
    message = parse(out.data)
    https, mailto = unsubscribe_uris(str(message["List-Unsubscribe"]))
    token = https.removeprefix("https://prefs.example.com/u/")
    assert mailto == f"mailto:unsubscribe+{token}@{DOMAIN}"
    assert out.sender == f"bounces+{token}@{DOMAIN}"
    said = keyring().verify(token, store=STORE, today=NOW.date())
    assert (said.profile_id, said.campaign_id) == (42, 7)
    # Each address is a plain dot-atom within RFC 5321's 64-character local part.
    for address in (mailto.removeprefix("mailto:"), out.sender):
        local, _, domain = address.partition("@")
        assert DOT_ATOM.fullmatch(local) and len(local) <= 64 and domain == DOMAIN
    assert len(token) == tokens.TOKEN_LENGTH == 47
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert out.return_path  # the Maildir copy shows the bounce address
    # The email package's own message says the same.
    reference = make_mail(DOMAIN).build(Recipient(42, "ann@example.com", "Ann"), NOW)
    assert str(reference["List-Unsubscribe"]).strip() == str(message["List-Unsubscribe"]).strip()


def test_without_an_inbound_domain_the_message_is_as_before() -> None:
    out = make_mail(None).render(Recipient(42, "ann@example.com", "Ann"), NOW)
    message = parse(out.data)
    assert len(unsubscribe_uris(str(message["List-Unsubscribe"]))) == 1
    assert "mailto:" not in out.data.decode()
    assert out.sender == "news@example.com" and not out.return_path


def set_inbound_domain(store: Store) -> None:
    with store.write() as session:
        settings.set_setting(session=session, key="inbound-domain", value=DOMAIN, actor="t")


def check_tokens(store: Store, cid: int, bounce: str, list_unsubscribe: str) -> int:
    """The bounce address and both unsubscribe URIs carry one token, for this campaign."""
    https, mailto = unsubscribe_uris(list_unsubscribe)
    token = bounce.removeprefix("bounces+").removesuffix(f"@{DOMAIN}")
    assert https.endswith(f"/u/{token}")
    assert mailto == f"mailto:unsubscribe+{token}@{DOMAIN}"
    said = tokens.load_keyring().verify(token, store=tokens.StoreBinding(store.store_id))
    assert said.campaign_id == cid
    return said.profile_id


def test_the_maildir_copy_shows_the_bounce_address_as_return_path(
    store: Store, tmp_path: Path
) -> None:
    shop(store)
    set_inbound_domain(store)
    cid = add_campaign(store)
    expected = with_usable_email(store, reference_eligible(store, cid))
    outbox = MaildirOutbox(tmp_path / "outbox")
    result = sending.send_campaign(store=store, campaign_id=cid, outbox=outbox, actor="t")
    assert result.finished and result.sent == len(expected) > 0
    messages = maildir_messages(tmp_path / "outbox")
    people = set()
    for message in messages:
        bounce = str(message["Return-Path"]).strip("<>")
        people.add(check_tokens(store, cid, bounce, str(message["List-Unsubscribe"])))
        assert message["From"] == "Example News <news@example.com>"
    assert people == expected


def test_over_smtp_the_envelope_sender_is_the_bounce_address(store: Store) -> None:
    shop(store)
    set_inbound_domain(store)
    cid = add_campaign(store)
    expected = with_usable_email(store, reference_eligible(store, cid))
    with SmtpServer() as server:
        outbox = SmtpOutbox("127.0.0.1", server.port, timeout=5)
        result = sending.send_campaign(store=store, campaign_id=cid, outbox=outbox, actor="t")
        received = list(server.sink.received)
    assert result.sent == len(expected) == len(received)
    people = set()
    for (sender, _rcpts, _data), message in zip(received, server.sink.messages(), strict=True):
        assert "Return-Path" not in message  # the receiving server adds it, not us
        people.add(check_tokens(store, cid, sender, str(message["List-Unsubscribe"])))
    assert people == expected
