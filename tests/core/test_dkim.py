"""DKIM (issue 12, ask 8): every message signed rsa-sha256, relaxed/relaxed, h= covering
From, To, Subject, Date, Message-ID, List-Unsubscribe and List-Unsubscribe-Post; the
signatures verify with dkimpy against the TXT record ``dkim dns`` prints, and an altered
(or added) List-Unsubscribe, an altered body or From breaks them. The RSA step done by
OpenSSL gives the very bytes dkimpy's own would."""

import re
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dkim
import pytest
from dkim_test_keys import key_file, rsa_pem
from sending_world import add_campaign, reference_eligible, shop, status_of, with_usable_email
from test_mail import make_mail as shared_mail

from app.core import campaigns, dkim_keys, dkim_signing, sending, settings
from app.core.dkim_signing import DkimSigner
from app.core.errors import InvalidInput
from app.core.mail import CampaignMail, Recipient
from app.core.outbox import MaildirOutbox
from app.core.store import Store

NOW = datetime(2026, 11, 20, 9, 30, 15, tzinfo=UTC)
REQUIRED = {
    "from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post",
}  # fmt: skip


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "subgroups"


def signer() -> DkimSigner:
    key = dkim_keys.parse_key(rsa_pem(), where="test")
    return DkimSigner(domain="example.com", selector="s1", key=key)


def dns_of(record: str) -> Any:
    """A dnsfunc for ``dkim.verify`` answering the record as a zone file line states it."""
    name, _, rest = record.partition(" IN TXT ")
    text = "".join(re.findall(r'"([^"]*)"', rest)).encode()

    def lookup(qname: bytes, timeout: int = 5) -> bytes | None:
        return text if qname.decode().rstrip(".") == name else None

    return lookup


def make_mail(with_signer: DkimSigner | None) -> CampaignMail:
    return shared_mail(
        groups=[(12, "Promotions")], inbound_domain="in.example.com", signer=with_signer
    )


def tags(data: bytes) -> dict[str, str]:
    """The DKIM-Signature's tags, unfolded."""
    header = data.split(b"\r\n\r\n", 1)[0].decode()
    value = re.search(r"^DKIM-Signature:(.*?)\r\n(?=\S)", header, re.S | re.M)
    assert value is not None
    unfolded = re.sub(r"\s+", "", value.group(1))
    return dict(part.split("=", 1) for part in unfolded.split(";") if part)


def test_every_message_is_signed_and_verifies_against_the_published_record() -> None:
    one = signer()
    lookup = dns_of(dkim_signing.dns_record("example.com", "s1", one.key))
    mail = make_mail(one)
    for pid, name in ((1, "Ann"), (2, "Zoë Ölund"), (3, "")):
        data = mail.render(Recipient(pid, f"p{pid}@example.org", name), NOW).data
        assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
        assert dkim.verify(data, dnsfunc=lookup)
        found = tags(data)
        assert (found["a"], found["c"], found["d"], found["s"]) == (
            "rsa-sha256", "relaxed/relaxed", "example.com", "s1",
        )  # fmt: skip
        assert set(found["h"].lower().split(":")) >= REQUIRED


def altered(data: bytes, old: bytes, new: bytes) -> bytes:
    assert old in data
    return data.replace(old, new, 1)


def test_an_altered_or_added_list_unsubscribe_breaks_the_signature() -> None:
    one = signer()
    lookup = dns_of(dkim_signing.dns_record("example.com", "s1", one.key))
    data = make_mail(one).render(Recipient(1, "ann@example.org", "Ann"), NOW).data
    assert dkim.verify(data, dnsfunc=lookup)
    # Relaxed canonicalisation: refolding on the way does not matter.
    assert dkim.verify(altered(data, b"Subject: Our November", b"Subject:  Our\r\n November"),
                       dnsfunc=lookup)  # fmt: skip
    head, body = data.split(b"\r\n\r\n", 1)
    for name, broken in (
        ("another one-click URL", altered(data, b"https://prefs.example.com/u/",
                                          b"https://evil.example.net/u/")),
        ("another mailto", altered(data, b"@in.example.com>", b"@evil.example.net>")),
        ("a List-Unsubscribe added", head + b"\r\nList-Unsubscribe: <https://evil.example.net/u/x>"
                                     + b"\r\n\r\n" + body),
        ("another From", altered(data, b"From: Example News", b"From: Example Newz")),
        ("another body", altered(data, b"Our news.", b"Our newz.")),
    ):  # fmt: skip
        assert not dkim.verify(broken, dnsfunc=lookup), name


def test_the_openssl_step_makes_the_bytes_dkimpy_makes(monkeypatch: pytest.MonkeyPatch) -> None:
    one = signer()
    monkeypatch.setattr(dkim, "time", SimpleNamespace(time=lambda: 1_800_000_000))
    message = make_mail(None).render(Recipient(1, "ann@example.org", "Ann"), NOW).data
    slow_calls: list[int] = []
    original = dkim_signing._dkimpy_rsa_sign

    def counted(hash: Any, key: Any) -> bytes:  # noqa: A002
        slow_calls.append(1)
        return bytes(original(hash, key))

    monkeypatch.setattr(dkim_signing, "_dkimpy_rsa_sign", counted)
    fast = one.signature(message)
    assert slow_calls == []  # the key is registered: OpenSSL signed
    slow = dkim.sign(
        message, b"s1", b"example.com", rsa_pem(2048, pkcs8=True),  # another key: dkimpy's path
        canonicalize=dkim_signing.CANONICALIZE, include_headers=list(dkim_signing.SIGNED_HEADERS),
    )  # fmt: skip
    assert slow_calls == [1]
    monkeypatch.setattr(dkim_signing, "_openssl_keys", {})  # forget it: dkimpy's own pow
    assert one.signature(message) == fast
    assert slow_calls == [1, 1]
    assert slow != fast


def test_the_dns_record_splits_the_key_into_strings_dns_can_hold() -> None:
    record = dkim_signing.dns_record("example.com", "s1", signer().key)
    assert record.startswith('s1._domainkey.example.com IN TXT "v=DKIM1; k=rsa; p=MIIB')
    strings = re.findall(r'"([^"]*)"', record)
    assert len(strings) == 2 and all(len(s) <= 255 for s in strings)
    assert "".join(strings) == dkim_signing.txt_value(signer().key)


def set_up_dkim(store: Store, folder: Path) -> None:
    with store.write() as session:
        for key, value in (
            ("dkim-domain", "example.com"),
            ("dkim-selector", "s1"),
            ("dkim-key", str(key_file(folder))),
            ("inbound-domain", "in.example.com"),
        ):
            settings.set_setting(session=session, key=key, value=value, actor="t")


def test_a_send_signs_every_message_it_writes(store: Store, tmp_path: Path) -> None:
    shop(store)
    set_up_dkim(store, tmp_path)
    cid = add_campaign(store)
    expected = with_usable_email(store, reference_eligible(store, cid))
    outbox = MaildirOutbox(tmp_path / "outbox")
    result = sending.send_campaign(store=store, campaign_id=cid, outbox=outbox, actor="t")
    assert result.sent == len(expected) > 0
    lookup = dns_of(dkim_signing.dns_record("example.com", "s1", signer().key))
    files = outbox.message_paths()
    assert len(files) == len(expected)
    for path in files:
        data = path.read_bytes()
        assert data.startswith(b"Return-Path: <bounces+")  # unsigned, added on top
        assert dkim.verify(data, dnsfunc=lookup), path.name


def test_a_send_whose_key_file_is_gone_sends_nothing_and_says_why(
    sqlite_store: Store, tmp_path: Path
) -> None:
    store = sqlite_store
    shop(store)
    set_up_dkim(store, tmp_path)
    with store.read() as session:
        path = settings.dkim_key_path(session)
    assert path is not None
    path.unlink()
    cid = add_campaign(store)
    outbox = MaildirOutbox(tmp_path / "outbox")
    with pytest.raises(InvalidInput, match="cannot be sent: DKIM key .*: cannot read"):
        sending.send_campaign(store=store, campaign_id=cid, outbox=outbox, actor="t")
    assert outbox.message_paths() == []
    assert status_of(store, cid) == "draft"  # not started: fix the key and send again


def test_the_review_says_when_mail_would_go_out_unsigned_and_a_broken_key_stops_a_send(
    sqlite_store: Store, tmp_path: Path
) -> None:
    store = sqlite_store
    shop(store)
    cid = add_campaign(store)

    def notes() -> tuple[list[str], list[tuple[str, str]]]:
        with store.read() as session:
            campaign = campaigns.get_campaign_by_id(session, cid)
            return campaigns.warnings(session, campaign), campaigns.send_problems(session, campaign)

    warnings, problems = notes()
    assert (
        "Mail goes out unsigned (no DKIM): Gmail and Yahoo expect bulk mail with one-click "
        "unsubscribe to be DKIM-signed; set dkim-domain, dkim-selector, dkim-key with "
        "`subgroups settings set`"
    ) in warnings
    assert problems == []
    set_up_dkim(store, tmp_path)
    warnings, problems = notes()
    assert not any("DKIM" in w for w in warnings) and problems == []
    with store.write() as session:  # signed for another domain than the From's
        settings.set_setting(session=session, key="dkim-domain", value="other.org", actor="t")
    warnings, _ = notes()
    assert (
        "Mail is DKIM-signed for other.org, but it is from example.com: receivers checking "
        "DMARC will not count the signature (set dkim-domain to the From domain)"
    ) in warnings
    with store.read() as session:
        path = settings.dkim_key_path(session)
    assert path is not None
    path.chmod(0o644)
    _, problems = notes()
    assert problems == [("dkim", f"DKIM key {path}: readable by others; run: chmod 600 {path}")]
