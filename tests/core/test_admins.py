"""Admins: their public keys read and fingerprinted as ssh-keygen does, the admin service
and its events, the last-owner rule, and the upgrade of a version 9 store."""

from pathlib import Path

import pytest
from admin_keys import ECDSA, ED25519, KEYS, RSA, SPARE, Key, key_file
from sqlalchemy import inspect, text

from app.core import actors, admins, ledger, migrations
from app.core.errors import InvalidInput, NameTaken, RuleRefused, UnknownAdmin
from app.core.ssh_keys import parse_key_line, read_key_file
from app.core.store import Store, open_store

HOST = "host-user"


# --- public key files ----------------------------------------------------------------------


@pytest.mark.parametrize("key", KEYS, ids=lambda k: k.line.split()[0])
def test_a_key_file_gives_the_fingerprint_ssh_keygen_prints(tmp_path: Path, key: Key) -> None:
    read = read_key_file(key_file(tmp_path, key))

    assert read.fingerprint == key.fingerprint
    assert read.line == key.line
    assert read.kind == key.line.split()[0]


def _write(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "bad.pub"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


ED_TYPE, ED_DATA, _ = ED25519.line.split(" ", 2)
RSA_DATA = RSA.line.split()[1]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "is empty"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n", "is a private key"),
        (ED25519.line + "\n" + RSA.line + "\n", "holds 2 lines"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "key type 'ssh-dss' is not one of"),
        ("just-one-word", "is not an OpenSSH public key"),
        (f"{ED_TYPE} !!!notbase64!!!", "not valid base64"),
        (f"{ED_TYPE} {ED_DATA[:30]}", "not valid base64"),  # cut short
        (f"ssh-rsa {ED_DATA}", "is not a ssh-rsa key"),  # the type says one thing, the data another
        (f"{ED_TYPE} {RSA_DATA}", "is not a ssh-ed25519 key"),
        (f"{ED_TYPE} {ED_DATA} ann\x1b[31m", "control character, ESC"),
        (b"\xff\xfe\x00binary", "is not a text file"),
    ],
    ids=[
        "empty",
        "private",
        "two keys",
        "dsa",
        "one word",
        "not base64",
        "cut short",
        "rsa type, ed25519 data",
        "ed25519 type, rsa data",
        "escape in comment",
        "binary",
    ],
)
def test_a_bad_key_file_is_refused_naming_the_file(
    tmp_path: Path, content: str | bytes, says: str
) -> None:
    path = _write(tmp_path, content)

    with pytest.raises(InvalidInput) as refused:
        read_key_file(path)

    assert str(path) in refused.value.message
    assert says in refused.value.message
    assert refused.value.exit_code == 2


def test_a_missing_or_unreadable_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no key file at .*nope.pub"):
        read_key_file(tmp_path / "nope.pub")
    with pytest.raises(InvalidInput, match="is a folder"):
        read_key_file(tmp_path)


# --- the service -------------------------------------------------------------------------------


def add(store: Store, name: str, key: Key, role: str = actors.EDITOR) -> admins.AdminRow:
    with store.write() as s:
        return admins.add_admin(
            session=s, name=name, key=parse_key_line(key.line, where=name), role=role, actor=HOST
        )


def events(store: Store) -> list[ledger.EventRecord]:
    with store.read() as s:
        return ledger.recent_events(s)


def test_adding_listing_changing_and_removing_admins_writes_their_events(store: Store) -> None:
    add(store, "ann", ED25519, actors.OWNER)
    add(store, "bob", RSA)
    with store.write() as s:
        admins.set_role(session=s, name="BOB", role=actors.VIEWER, actor=HOST)
    with store.write() as s:
        admins.remove_admin(session=s, name="bob", actor=HOST)

    with store.read() as s:
        listed = [row.to_json() for row in admins.list_admins(s)]
    assert [(a["name"], a["role"], a["key_fingerprint"]) for a in listed] == [
        ("ann", "owner", ED25519.fingerprint)
    ]
    assert set(listed[0]) == {"name", "role", "key_fingerprint", "added_at"}
    assert [(e.name, e.actor, e.properties) for e in events(store)] == [
        (
            "Admin Added",
            HOST,
            {
                "Admin": "ann",
                "Role": "owner",
                "Key Type": "ssh-ed25519",
                "Key Fingerprint": ED25519.fingerprint,
                "Actor": HOST,
            },
        ),
        (
            "Admin Added",
            HOST,
            {
                "Admin": "bob",
                "Role": "editor",
                "Key Type": "ssh-rsa",
                "Key Fingerprint": RSA.fingerprint,
                "Actor": HOST,
            },
        ),
        (
            "Admin Role Changed",
            HOST,
            {"Admin": "bob", "Role": "viewer", "Previous Role": "editor", "Actor": HOST},
        ),
        (
            "Admin Removed",
            HOST,
            {"Admin": "bob", "Role": "viewer", "Key Fingerprint": RSA.fingerprint, "Actor": HOST},
        ),
    ]
    assert [ledger.summary(e) for e in events(store)][2:] == [
        f"admin 'bob' now viewer (was editor) by {HOST} [cli]",
        f"admin 'bob' removed (was viewer) by {HOST} [cli]",
    ]


def test_names_and_keys_are_each_one_admins(store: Store) -> None:
    add(store, "ann", ED25519)

    with pytest.raises(NameTaken, match="An admin named 'ann' already exists"):
        add(store, "ANN", RSA)
    with pytest.raises(NameTaken, match=f"That key \\({ED25519.fingerprint}\\) is already ann's"):
        add(store, "bob", ED25519)
    with pytest.raises(UnknownAdmin, match="No admin is named 'zed'"), store.write() as s:
        admins.remove_admin(session=s, name="zed", actor=HOST)
    assert [e.name for e in events(store)] == ["Admin Added"]


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "Admin name is required"),
        ("a" * 33, "33 characters long; the most is 32"),
        ("ann smith", "is not a login name"),
        ("-ann", "is not a login name"),
        ("ann\x1b]0;owned\x07", "control character, ESC"),
        ("ann\n", "control character, newline"),
    ],
)
def test_a_bad_admin_name_is_refused(store: Store, name: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        add(store, name, ED25519)
    with store.read() as s:
        assert admins.list_admins(s) == []


def test_a_bad_role_is_refused(store: Store) -> None:
    with pytest.raises(InvalidInput, match="Role 'boss' is not one of: viewer, editor, owner"):
        add(store, "ann", ED25519, "boss")


def test_the_last_owner_stays_an_owner_while_other_admins_remain(store: Store) -> None:
    add(store, "ann", ED25519, actors.OWNER)
    add(store, "bob", RSA)

    with (
        pytest.raises(RuleRefused, match="ann is the last owner; making them editor"),
        store.write() as s,
    ):
        admins.set_role(session=s, name="ann", role=actors.EDITOR, actor=HOST)
    with (
        pytest.raises(RuleRefused, match="ann is the last owner; removing them"),
        store.write() as s,
    ):
        admins.remove_admin(session=s, name="ann", actor=HOST)

    # With a second owner, either can go; the last admin of all can go too.
    add(store, "cy", ECDSA, actors.OWNER)
    with store.write() as s:
        admins.remove_admin(session=s, name="ann", actor=HOST)
    with store.write() as s:
        admins.remove_admin(session=s, name="bob", actor=HOST)
    with store.write() as s:
        admins.remove_admin(session=s, name="cy", actor=HOST)
    with store.read() as s:
        assert admins.list_admins(s) == []


def test_setting_the_same_role_again_writes_nothing(store: Store) -> None:
    add(store, "ann", ED25519)
    with store.write() as s:
        row, previous = admins.set_role(session=s, name="ann", role=actors.EDITOR, actor=HOST)
    assert (row.role, previous) == ("editor", "editor")
    assert [e.name for e in events(store)] == ["Admin Added"]


def test_an_admin_process_records_the_admins_name(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add(store, "ann", ED25519, actors.OWNER)
    monkeypatch.setenv(actors.ADMIN_ENV, "ann")
    monkeypatch.setenv(actors.VIA_ENV, "ssh")

    with store.write() as s:
        assert actors.current(s) == actors.Actor("ann", "owner", "ssh")
        admins.add_admin(
            session=s,
            name="dee",
            key=parse_key_line(SPARE.line, where="dee"),
            actor=actors.actor_name(),
        )
    (_, added) = events(store)
    assert (added.actor, added.properties["Actor"]) == ("ann", "ann")


# --- the schema ------------------------------------------------------------------------------


def test_a_version_9_store_gets_the_admin_table(store_url: str) -> None:
    first = open_store(store_url)
    try:
        with first.engine.begin() as conn:
            conn.execute(text("DROP TABLE admin"))
            conn.execute(text("UPDATE schema_meta SET value = '9' WHERE key = 'schema_version'"))
    finally:
        first.dispose()

    upgraded = open_store(store_url)
    try:
        assert "admin" in inspect(upgraded.engine).get_table_names()
        with upgraded.engine.connect() as conn:
            assert migrations.schema_version(conn) == migrations.LATEST_VERSION == 17
        add(upgraded, "ann", ED25519, actors.OWNER)
        with upgraded.read() as s:
            assert [a.name for a in admins.list_admins(s)] == ["ann"]
    finally:
        upgraded.dispose()
