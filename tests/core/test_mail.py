"""Campaign messages as a mail reader sees them: the headers of DESIGN.md §1 parse back,
the unsubscribe link is signed for the right person and campaign, the body shows both
links, and the fast renderer makes the same message as the ``email`` package."""

from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core import campaigns, groups, landing, profiles, tokens
from app.core.dkim_signing import DkimSigner
from app.core.mail import (
    CampaignMail,
    Recipient,
    build_message,
    clean_display_name,
    usable_address,
)
from app.core.models import Campaign, LandingSettings
from app.core.store import Store

NOW = datetime(2026, 11, 20, 9, 30, 15, tzinfo=UTC)
BODY = "Hello {{ name }},\n\nOur news.\n\nLeave: {{ unsubscribe_url }}\n"


def parse(data: bytes) -> EmailMessage:
    message = message_from_bytes(data, policy=email_policy.default)
    assert isinstance(message, EmailMessage)
    return message


def to_of(data: bytes) -> tuple[str, str]:
    """The To header's display name and address, decoded as RFC 2047 says.

    The ``email`` package's modern parser keeps the space between two
    adjacent encoded words of a display name (RFC 2047 §6.2 says to drop
    it, and mail readers do), so a long non-ASCII name read that way gains
    spaces; the legacy ``decode_header`` follows the RFC.
    """
    raw = message_from_bytes(data, policy=email_policy.compat32)["To"]
    [(phrase, address)] = getaddresses(["".join(str(raw).splitlines())])
    return str(make_header(decode_header(phrase))), address


def content(message: EmailMessage) -> str:
    """The body as text, with the wire's CRLF line ends read as newlines."""
    return str(message.get_content()).replace("\r\n", "\n")


STORE = tokens.StoreBinding("0" * 32)  # the store the links are signed for


def keyring() -> tokens.Keyring:
    return tokens.Keyring({1: b"k" * 32}, 1)


def make_mail(
    *,
    body: str = BODY,
    groups: list[tuple[int, str]] | None = None,
    subject: str = "Our November news — 20% off",
    from_address: str = "Example News <news@example.com>",
    ring: tokens.Keyring | None = None,
    inbound_domain: str | None = None,
    signer: DkimSigner | None = None,
) -> CampaignMail:
    """Campaign 7's mail (shared by the header, inbound-header and DKIM tests)."""
    return CampaignMail(
        campaign_id=7,
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        subject=subject,
        from_address=from_address,
        body=body,
        groups=[(12, "Promotions"), (13, "Prömotions · EMEA")] if groups is None else groups,
        base_url="https://prefs.example.com/",
        keyring=ring or keyring(),
        link_store=STORE,
        inbound_domain=inbound_domain,
        signer=signer,
    )


def test_headers_parse_back_as_the_design_says() -> None:
    ring = keyring()
    mail = make_mail(ring=ring)
    out = mail.render(Recipient(42, "ann@example.com", "Ann Ölund"), NOW)
    message = parse(out.data)

    assert message["From"].addresses[0].addr_spec == "news@example.com"
    assert message["From"].addresses[0].display_name == "Example News"
    to = message["To"].addresses
    assert len(to) == 1
    assert (to[0].display_name, to[0].addr_spec) == ("Ann Ölund", "ann@example.com")
    assert message["Subject"] == "Our November news — 20% off"
    assert parsedate_to_datetime(message["Date"]) == NOW
    assert message["Message-ID"] == out.message_id
    assert message["Message-ID"].startswith("<c7.p42.")
    assert message["Message-ID"].endswith("@example.com>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # One List-Id per "do not send to" group, each naming the group.
    list_ids = message.get_all("List-Id") or []
    assert len(list_ids) == 2
    assert list_ids[0] == "Promotions <promotions.g12.list-id.example.com>"
    assert list_ids[1] == "Prömotions · EMEA <promotions-emea.g13.list-id.example.com>"
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    # Every line is within the RFC 5322 limit and the bytes are ASCII (encoded).
    assert out.data.isascii()
    assert max(len(line) for line in out.data.split(b"\r\n")) <= 998
    assert b"\n" not in out.data.replace(b"\r\n", b"")


def test_list_unsubscribe_is_a_signed_one_click_link_for_this_person_and_campaign() -> None:
    ring = keyring()
    mail = make_mail(ring=ring)
    message = parse(mail.render(Recipient(42, "ann@example.com", "Ann"), NOW).data)
    header = message["List-Unsubscribe"].strip()  # folded onto its own line
    assert header.startswith("<") and header.endswith(">")
    url = header[1:-1]
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc) == ("https", "prefs.example.com")
    assert parts.path.startswith("/u/")
    said = ring.verify(parts.path.removeprefix("/u/"), store=STORE, today=NOW.date())
    assert (said.profile_id, said.campaign_id) == (42, 7)
    # Another key cannot have signed it: a forged link is refused.
    with pytest.raises(tokens.BadToken):
        tokens.Keyring({1: b"x" * 32}, 1).verify(parts.path.removeprefix("/u/"), store=STORE)
    # Nor does another store accept it.
    with pytest.raises(tokens.BadToken):
        ring.verify(parts.path.removeprefix("/u/"), store=tokens.StoreBinding("1" * 32))


def test_body_shows_both_links_adding_a_footer_for_the_missing_one() -> None:
    mail = make_mail()
    message = parse(mail.render(Recipient(42, "ann@example.com", "Ann"), NOW).data)
    text = content(message)
    unsubscribe = message["List-Unsubscribe"].strip()[1:-1]
    assert text.startswith("Hello Ann,\n\nOur news.\n\nLeave: " + unsubscribe + "\n")
    # The template has no {{ preferences_url }}: the footer adds it.
    token = unsubscribe.rsplit("/", 1)[1]
    assert text.endswith(
        f"\n-- \nManage your email preferences: https://prefs.example.com/p/{token}\n"
    )
    assert text.count(unsubscribe) == 1


def test_no_footer_when_the_body_shows_both_links() -> None:
    body = "Hi {{name}}\n{{ unsubscribe_url }}\n{{ preferences_url }}\n"
    text = parse(make_mail(body=body).render(Recipient(1, "a@example.com", ""), NOW).data)
    body_text = content(text)
    assert "-- \n" not in body_text
    # No name: the tag falls back to the address (body_template.TAG_HELP).
    assert body_text.startswith("Hi a@example.com\nhttps://prefs.example.com/u/")
    assert "\nhttps://prefs.example.com/p/" in body_text


def test_a_campaign_without_groups_has_one_list_id_for_all_email() -> None:
    message = parse(make_mail(groups=[]).render(Recipient(1, "a@example.com", "A"), NOW).data)
    assert message.get_all("List-Id") == ["All email <all-email.list-id.example.com>"]


def test_message_id_and_key_are_the_same_on_every_send_and_differ_per_profile() -> None:
    first, again = make_mail(), make_mail()
    a = first.render(Recipient(5, "a@example.com", "A"), NOW)
    b = again.render(Recipient(5, "a@example.com", "A"), datetime(2027, 1, 1, tzinfo=UTC))
    c = first.render(Recipient(6, "b@example.com", "B"), NOW)
    assert (a.message_id, a.key) == (b.message_id, b.key)
    assert a.message_id != c.message_id and a.key != c.key
    assert "/" not in a.key and ":" not in a.key  # a Maildir file name


@pytest.mark.parametrize(
    "name",
    [
        'Ann "the boss" O\'Neil, Jr.',
        'back\\slash \\"',
        "x <y@example.com>, z@example.com",
        "(not a comment)",
        "Dr. Who; The Doctor: @home",
        "Zoë 🚀 Ünïcödé " * 8,
    ],
)
def test_tricky_names_come_back_as_they_were(name: str) -> None:
    data = make_mail().render(Recipient(3, "who@example.com", name), NOW).data
    assert to_of(data) == (name.strip(), "who@example.com")
    assert len(parse(data)["To"].addresses) == 1


def test_a_name_cannot_inject_headers() -> None:
    evil = "Eve\r\nBcc: victim@example.com\nX-Evil: 1"
    out = make_mail().render(Recipient(3, "eve@example.com", evil), NOW)
    message = parse(out.data)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["To"].addresses[0].addr_spec == "eve@example.com"
    assert message["To"].addresses[0].display_name == "Eve Bcc: victim@example.com X-Evil: 1"


@pytest.mark.parametrize(
    ("given_address", "usable"),
    [
        ("ann@example.com", "ann@example.com"),
        ("  Ann.Lee+news@Example.COM ", "Ann.Lee+news@Example.COM"),
        ("jörg@example.com", None),  # would need SMTPUTF8
        ("ann@bücher.example", "ann@xn--bcher-kva.example"),
        ("ann@localhost", None),
        ("ann@@example.com", None),
        ("a b@example.com", None),
        ("<ann@example.com>", None),
        ("ann@example.com\r\nBcc: x@example.com", None),
        ("", None),
        (None, None),
    ],
)
def test_usable_address(given_address: str | None, usable: str | None) -> None:
    assert usable_address(given_address) == usable


# --- the fast renderer against the email package -------------------------------------

names = st.one_of(
    # ASCII with every special a display name must quote or escape: " \\ , ; < > ( ) @ :
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80),
    st.text(alphabet=st.characters(exclude_categories=["Cs"], max_codepoint=0x1F600), max_size=80),
)
bodies = st.lists(
    st.one_of(
        st.text(
            alphabet=st.characters(exclude_categories=["Cs", "Cc"], max_codepoint=0x2FFF),
            max_size=120,
        ).map(lambda t: t.replace("{", "(")),
        st.sampled_from(
            ["{{ name }}", "{{ unsubscribe_url }}", "{{preferences_url}}", "\n", "\r\n", "x" * 1200]
        ),
    ),
    max_size=12,
).map(lambda parts: "".join(parts) + "{{ unsubscribe_url }}")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=names, body=bodies, subject=st.text(min_size=1, max_size=100).map(str.strip))
def test_render_makes_the_message_the_email_package_makes(
    name: str, body: str, subject: str
) -> None:
    subject = " ".join(subject.split()) or "Hello"
    mail = make_mail(body=body, subject=subject)
    recipient = Recipient(99, "someone@example.org", name)
    fast_data, reference_data = mail.render(recipient, NOW).data, bytes(mail.build(recipient, NOW))
    fast, reference = parse(fast_data), parse(reference_data)
    for header in ("From", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert str(fast[header]) == str(reference[header]), header
    assert fast.get_all("List-Id") == reference.get_all("List-Id")
    assert to_of(fast_data) == (clean_display_name(name), "someone@example.org")
    assert len(fast["To"].addresses) == 1
    assert content(fast) == content(reference)


# --- from the store -------------------------------------------------------------------


def test_build_message_from_the_store_uses_the_landing_base_url_and_group_names(
    sqlite_store: Store, link_keyring: object
) -> None:
    with sqlite_store.write() as session:
        offers = groups.create_group(session=session, name="Offers", actor="t")
        session.add(LandingSettings(id=1, base_url="https://lp.example.com/", updated_at=NOW))
        ann = profiles.create_profile(session=session, identity="ann", email="ann@example.com")
        nobody = profiles.create_profile(session=session, identity="nobody")
        campaign = campaigns.create_campaign(
            session=session, name="Nov", actor="t", subject="News",
            from_address="news@example.com", body=BODY, do_not_send_to=[offers.id or 0],
        )  # fmt: skip
    with sqlite_store.read() as session:
        assert landing.get_settings(session).base_url == "https://lp.example.com/"
        stored = session.get(Campaign, campaign.id)
        assert stored is not None
        message = build_message(session, stored, ann, now=NOW)
        assert build_message(session, stored, nobody, now=NOW) is None
    assert message is not None
    assert message["List-Id"] == "Offers <offers.g1.list-id.example.com>"
    url = message["List-Unsubscribe"].strip()[1:-1]
    assert url.startswith("https://lp.example.com/u/")
    binding = tokens.StoreBinding(sqlite_store.store_id)
    said = tokens.load_keyring().verify(url.rsplit("/", 1)[1], store=binding, today=NOW.date())
    assert (said.profile_id, said.campaign_id) == (ann.id, campaign.id)


# --- issue 8, point 4: the subject is a template too ----------------------------------


def test_tags_in_the_subject_are_filled_in_for_each_recipient() -> None:
    mail = make_mail(subject="Hello {{ name }}, winter is here")
    for recipient, subject in (
        (Recipient(1, "ann@example.com", "Ann Ölund"), "Hello Ann Ölund, winter is here"),
        (Recipient(2, "bo@example.com", ""), "Hello bo@example.com, winter is here"),
        # A name cannot break out of the header: its line break becomes a space.
        (
            Recipient(3, "cy@example.com", "Cy\r\nBcc: x@evil.test"),
            "Hello Cy Bcc: x@evil.test, winter is here",
        ),
    ):
        fast = parse(mail.render(recipient, NOW).data)
        reference = parse(bytes(mail.build(recipient, NOW)))
        assert fast["Subject"] == reference["Subject"] == subject
        assert fast["Bcc"] is None
    # Without tags the subject is the same for everyone (and made once).
    plain = make_mail(subject="No tags {here}")
    assert parse(plain.render(Recipient(1, "a@example.com", "A"), NOW).data)["Subject"] == (
        "No tags {here}"
    )
