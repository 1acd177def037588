"""The default outbox is per store (issue 8, point 6): two stores in one data directory
send into two folders, and neither folder holds the other store's messages."""

import email
from pathlib import Path

from cli_runner import CliRunner

from app.core import campaigns, profiles
from app.core.store import open_store

BODY = "Hello {{ name }},\nNews inside.\nLeave: {{ unsubscribe_url }}\n"


def _store_with_one_reader(path: Path, address: str) -> None:
    store = open_store(path)
    try:
        with store.write() as session:
            profiles.create_profile(session=session, identity="reader", email=address, name="R")
            campaigns.create_campaign(
                session=session, name="News", actor="ada", subject="News",
                from_address="Shop <shop@example.com>", body=BODY,
            )  # fmt: skip
    finally:
        store.dispose()


def _sent_to(out: str) -> Path:
    # "Sent 1 message to DIR (...)." or "Sent 1 message to DIR."
    first = out.splitlines()[0]
    return Path(first.split(" to ", 1)[1].split(" (", 1)[0].rstrip("."))


def test_two_stores_default_outboxes_are_two_folders(cli: CliRunner, tmp_path: Path) -> None:
    _store_with_one_reader(tmp_path / "a.db", "reader-a@example.com")
    _store_with_one_reader(tmp_path / "b.db", "reader-b@example.com")

    code_a, out_a, err_a = cli("campaigns", "send", "News", "--db", str(tmp_path / "a.db"))
    code_b, out_b, err_b = cli("campaigns", "send", "News", "--db", str(tmp_path / "b.db"))

    assert (code_a, code_b) == (0, 0), (err_a, err_b)
    outbox_a, outbox_b = _sent_to(out_a), _sent_to(out_b)
    assert outbox_a != outbox_b
    for outbox, address in ((outbox_a, "reader-a@example.com"), (outbox_b, "reader-b@example.com")):
        files = list((outbox / "new").iterdir())
        assert len(files) == 1
        assert email.message_from_bytes(files[0].read_bytes())["To"].endswith(f"<{address}>")
