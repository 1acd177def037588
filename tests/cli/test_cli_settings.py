"""``subgroups settings set KEY VALUE`` and ``settings show [--json]`` (issue 12, ask 1).

The base URL is the landing page's own (one value, whichever way it is edited);
each change is an event with its Actor; an unknown key or a bad value exits 2
saying what and where, and changes nothing; only an owner may change a setting;
the DKIM key is copied into the data directory (0600), never into the store.
"""

import json
import os
import stat
from pathlib import Path

import pytest
from admin_keys import ED25519, RSA
from admin_keys import key_file as admin_key_file
from cli_runner import CliRunner
from dkim_test_keys import ec_pem, encrypted_pem, key_file, rsa_pem

from app.core import actors, dkim_keys, landing
from app.core.store import open_store

KEYS = ["base-url", "inbound-domain", "dkim-domain", "dkim-selector", "dkim-key"]


@pytest.fixture
def db(tmp_path: Path, cli: CliRunner) -> str:
    path = str(tmp_path / "cli.db")
    code, _, _ = cli("groups", "create", "News", "--db", path)
    assert code == 0
    return path


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's data directory (where DKIM keys are copied) is its own."""
    folder = tmp_path / "xdg"
    monkeypatch.setenv("XDG_DATA_HOME", str(folder))
    return folder / "subgroups"


def shown(cli: CliRunner, db: str) -> dict[str, str | None]:
    code, out, err = cli("settings", "show", "--json", "--db", db)
    assert (code, err) == (0, "")
    result: dict[str, str | None] = json.loads(out)
    return result


def events(cli: CliRunner, db: str) -> list[dict[str, object]]:
    code, out, _ = cli("events", "--json", "--limit", "1000", "--db", db)
    assert code == 0
    return [json.loads(line) for line in out.splitlines()]


def test_a_new_store_shows_the_default_base_url_and_nothing_else(cli: CliRunner, db: str) -> None:
    assert shown(cli, db) == {
        "base-url": "http://127.0.0.1:8080",
        "inbound-domain": None,
        "dkim-domain": None,
        "dkim-selector": None,
        "dkim-key": None,
    }
    code, out, _ = cli("settings", "show", "--db", db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["KEY", "VALUE"]
    assert [line.split()[0] for line in lines[1:6]] == KEYS
    assert "inbound-domain  (not set)" in out
    assert "Mail goes out unsigned: set dkim-domain, dkim-selector, dkim-key to sign it." in out


def test_setting_the_inbound_domain_records_who_did_it_and_can_be_cleared(
    cli: CliRunner, db: str
) -> None:
    code, out, err = cli("settings", "set", "inbound-domain", "Mail.Example.COM.", "--db", db)
    assert (code, err) == (0, "")
    assert out == "inbound-domain: (not set) → mail.example.com\n"
    assert shown(cli, db)["inbound-domain"] == "mail.example.com"
    last = events(cli, db)[-1]
    assert last["name"] == "Settings Changed"
    properties = last["properties"]
    assert isinstance(properties, dict)
    assert properties["Changes"] == {"Inbound Domain": [None, "mail.example.com"]}
    assert properties["Actor"] == actors.actor_name()
    code, out, _ = cli("events", "--db", db)
    assert (
        f"settings: inbound domain None → 'mail.example.com' by {actors.actor_name()} [cli]" in out
    )

    code, out, _ = cli("settings", "set", "inbound-domain", "mail.example.com", "--db", db)
    assert (code, out) == (0, "inbound-domain is already mail.example.com; nothing changed.\n")
    assert len(events(cli, db)) == 2  # News created, the domain set; the repeat wrote nothing

    code, out, _ = cli("settings", "set", "inbound-domain", "", "--db", db, "--json")
    assert code == 0
    assert json.loads(out) == {"key": "inbound-domain", "old": "mail.example.com", "new": None}
    assert shown(cli, db)["inbound-domain"] is None


def test_the_base_url_is_the_landing_pages_own(cli: CliRunner, db: str) -> None:
    code, out, _ = cli("settings", "set", "base-url", "https://email.example.com/", "--db", db)
    assert (code, out) == (0, "base-url: http://127.0.0.1:8080 → https://email.example.com\n")
    store = open_store(db)
    try:
        with store.read() as session:
            assert landing.get_settings(session).base_url == "https://email.example.com"
        with store.write() as session:  # the console's Landing page section edits it
            landing.update_settings(
                session=session, actor="ann", base_url="https://news.example.org"
            )
    finally:
        store.dispose()
    assert shown(cli, db)["base-url"] == "https://news.example.org"
    names = [e["name"] for e in events(cli, db)]
    assert names[-2:] == ["Landing Page Updated", "Landing Page Updated"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["colour", "blue"],
            "subgroups: settings: unknown key 'colour'; the keys are base-url, inbound-domain, "
            "dkim-domain, dkim-selector, dkim-key\n",
        ),
        (
            ["inbound-domain", "exa mple.com"],
            "subgroups: settings inbound-domain 'exa mple.com': not a domain name (letters, "
            "digits and hyphens in two or more dot-separated parts, such as mail.example.com)\n",
        ),
        (
            ["dkim-domain", "localhost"],
            "subgroups: settings dkim-domain 'localhost': not a domain name (letters, "
            "digits and hyphens in two or more dot-separated parts, such as mail.example.com)\n",
        ),
        (
            ["inbound-domain", "a-." + "b" * 60 + ".com"],
            "subgroups: settings inbound-domain 'a-." + "b" * 60 + ".com': not a domain name "
            "(letters, digits and hyphens in two or more dot-separated parts, such as "
            "mail.example.com)\n",
        ),
        (
            ["inbound-domain", ".".join(["b" * 60] * 4)],
            f"subgroups: settings inbound-domain '{'.'.join(['b' * 60] * 4)}': longer than "
            "194 characters\n",
        ),
        (
            ["dkim-selector", "s 1"],
            "subgroups: settings dkim-selector 's 1': not a DKIM selector (letters, digits and "
            "hyphens, such as s2026)\n",
        ),
        (
            ["base-url", "ftp://example.com"],
            "subgroups: Public base URL 'ftp://example.com' must start with http:// or https:// "
            "and name a host (such as https://email.example.com)\n",
        ),
        (
            ["base-url", ""],
            "subgroups: Public base URL is required\n",
        ),
    ],
)
def test_an_unknown_key_or_a_bad_value_exits_2_and_changes_nothing(
    cli: CliRunner, db: str, argv: list[str], message: str
) -> None:
    assert cli("settings", "set", "inbound-domain", "in.example.com", "--db", db)[0] == 0
    before, events_before = shown(cli, db), events(cli, db)
    code, out, err = cli("settings", "set", *argv, "--db", db)
    assert (code, out, err) == (2, "", message)
    assert shown(cli, db) == before
    assert events(cli, db) == events_before


def test_only_an_owner_may_change_a_setting(
    cli: CliRunner, db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, key, role in (("vi", ED25519, "viewer"), ("ow", RSA, "owner")):
        path = str(admin_key_file(tmp_path, key, f"{name}.pub"))
        assert cli("admins", "add", name, "--key", path, "--role", role, "--db", db)[0] == 0
    monkeypatch.setenv(actors.ADMIN_ENV, "vi")
    code, out, err = cli("settings", "set", "inbound-domain", "in.example.com", "--db", db)
    assert (code, out) == (1, "")
    assert err == (
        "subgroups: vi is a viewer; changing the setting inbound-domain needs the owner role\n"
    )
    assert shown(cli, db)["inbound-domain"] is None  # reading is everyone's

    monkeypatch.setenv(actors.ADMIN_ENV, "ow")
    # An admin's process may not read files on the host: the key file is the host user's.
    code, _, err = cli("settings", "set", "dkim-key", str(key_file(tmp_path)), "--db", db)
    assert code == 1 and "reading a DKIM key file uses the server's files" in err
    assert cli("settings", "set", "inbound-domain", "in.example.com", "--db", db)[0] == 0
    last = events(cli, db)[-1]
    assert last["name"] == "Settings Changed"
    assert isinstance(last["properties"], dict) and last["properties"]["Actor"] == "ow"


def test_the_dkim_key_is_copied_into_the_data_directory_and_never_into_the_store(
    cli: CliRunner, db: str, tmp_path: Path, own_data_dir: Path
) -> None:
    given = key_file(tmp_path, rsa_pem(pkcs8=True))
    code, out, err = cli("settings", "set", "dkim-key", str(given), "--db", db)
    assert (code, err) == (0, "")
    fingerprint = shown(cli, db)["dkim-key"]
    assert fingerprint is not None and fingerprint.startswith("sha256:")
    assert out == f"dkim-key: (not set) → {fingerprint}\n"
    store = open_store(db)
    store_id = store.store_id
    store.dispose()
    copy = own_data_dir / "dkim" / store_id / f"{fingerprint.removeprefix('sha256:')[:32]}.pem"
    assert stat.S_IMODE(os.stat(copy).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(copy.parent).st_mode) == 0o700
    assert dkim_keys.load_key(store_id, fingerprint).fingerprint == fingerprint
    # The key's secret part is nowhere in the store file.
    secret_line = copy.read_text().splitlines()[5].encode()
    assert secret_line not in Path(db).read_bytes()
    given.unlink()  # the store signs with its own copy
    assert dkim_keys.load_key(store_id, fingerprint).bits == 2048

    cli("settings", "set", "dkim-domain", "example.com", "--db", db)
    code, out, _ = cli("settings", "set", "dkim-selector", "S2026", "--db", db)
    assert out == "dkim-selector: (not set) → s2026\n"
    code, out, _ = cli("settings", "show", "--db", db)
    assert "Mail is DKIM-signed (d=example.com, s=s2026)." in out
    assert f"Key file: {copy}" in out
    changes = [e["properties"]["Changes"] for e in events(cli, db)[1:]]  # type: ignore[index]
    assert changes[0] == {"DKIM Key": [None, fingerprint]}
    copy.unlink()  # lost: show says sends stop, and why
    code, out, _ = cli("settings", "show", "--db", db)
    assert "Sends are refused until the DKIM key is set again: DKIM key " in out
    assert "cannot read: No such file or directory" in out


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (None, "cannot read: No such file or directory"),
        (b"not a key\n", "not a PEM private key; make one with: openssl genrsa -out dkim.pem 2048"),
        ("ec", "DKIM here signs with RSA (rsa-sha256)"),
        ("encrypted", "the key has a passphrase; give it without one"),
        ("public", "not a PEM private key"),
    ],
)
def test_a_bad_dkim_key_file_exits_2_saying_what_is_wrong(
    cli: CliRunner, db: str, tmp_path: Path, own_data_dir: Path, data: object, says: str
) -> None:
    path = tmp_path / "bad.pem"
    if data == "ec":
        path.write_bytes(ec_pem())
    elif data == "encrypted":
        path.write_bytes(encrypted_pem())
    elif data == "public":
        public = dkim_keys.parse_key(rsa_pem(), where="test").public_der
        path.write_text(
            "-----BEGIN PUBLIC KEY-----\n"
            + __import__("base64").encodebytes(public).decode()
            + "-----END PUBLIC KEY-----\n"
        )
    elif isinstance(data, bytes):
        path.write_bytes(data)
    events_before = events(cli, db)
    code, out, err = cli("settings", "set", "dkim-key", str(path), "--db", db)
    assert (code, out) == (2, "")
    assert err.startswith(f"subgroups: dkim-key {path}: ") and says in err
    assert shown(cli, db)["dkim-key"] is None
    assert events(cli, db) == events_before
    assert not (own_data_dir / "dkim").exists()
