"""``subgroups dkim dns``: the TXT record to publish; mail sent from the command line
verifies against it (issue 12, ask 8)."""

import json
import re
from pathlib import Path

import dkim
import pytest
from cli_runner import CliRunner
from dkim_test_keys import key_file


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


@pytest.fixture
def db(tmp_path: Path, cli: CliRunner) -> str:
    path = str(tmp_path / "cli.db")
    people = tmp_path / "people.csv"
    people.write_text("identity,email,name\nann,ann@example.org,Ann\nbob,bob@example.org,Bob\n")
    code, _, err = cli("profiles", "import", str(people), "--db", path)
    assert code == 0, err
    return path


def test_dkim_dns_says_what_is_missing_until_it_is_set_up(cli: CliRunner, db: str) -> None:
    code, out, err = cli("dkim", "dns", "--db", db)
    assert (code, out) == (1, "")
    assert err == (
        "subgroups: DKIM is not set up: subgroups settings set dkim-domain example.com; "
        "subgroups settings set dkim-selector s1; subgroups settings set dkim-key FILE.pem\n"
    )


def test_mail_sent_from_the_command_line_verifies_against_the_printed_record(
    cli: CliRunner, db: str, tmp_path: Path
) -> None:
    for key, value in (
        ("dkim-domain", "example.com"),
        ("dkim-selector", "news2026"),
        ("dkim-key", str(key_file(tmp_path))),
    ):
        assert cli("settings", "set", key, value, "--db", db)[0] == 0
    code, record, err = cli("dkim", "dns", "--db", db)
    assert (code, err) == (0, "")
    assert record.startswith('news2026._domainkey.example.com IN TXT "v=DKIM1; k=rsa; p=')
    code, out, _ = cli("dkim", "dns", "--json", "--db", db)
    as_json = json.loads(out)
    assert as_json["name"] == "news2026._domainkey.example.com" and as_json["type"] == "TXT"
    published = "".join(re.findall(r'"([^"]*)"', record))
    assert as_json["value"] == published

    body = tmp_path / "body.txt"
    body.write_text("Hello {{ name }},\n\nNews.\n\nLeave: {{ unsubscribe_url }}\n")
    code, _, err = cli(
        "campaigns", "create", "News", "--subject", "News", "--from", "Shop <news@example.com>",
        "--body-file", str(body), "--db", db,
    )  # fmt: skip
    assert code == 0, err
    outbox = tmp_path / "outbox"
    code, _, err = cli("campaigns", "send", "News", "--outbox", str(outbox), "--db", db)
    assert code == 0, err
    files = sorted((outbox / "new").iterdir())
    assert len(files) == 2

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        wanted = b"news2026._domainkey.example.com"
        return published.encode() if name.rstrip(b".") == wanted else None

    for path in files:
        data = path.read_bytes()
        assert dkim.verify(data, dnsfunc=lookup)
        assert not dkim.verify(data.replace(b"/u/", b"/x/", 1), dnsfunc=lookup)
