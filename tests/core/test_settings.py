"""Store-wide settings as a service (``app.core.settings``), on SQLite and PostgreSQL:
what other services read (``get_settings``), the schema step that adds them, and the
DKIM key file that the store names by fingerprint (bound to the store, 0600)."""

import os
from pathlib import Path

import pytest
from dkim_test_keys import key_file, rsa_pem
from sqlalchemy import inspect, text

from app.core import dkim_keys, migrations, settings
from app.core.dkim_keys import DkimKeyError
from app.core.errors import InvalidInput
from app.core.store import Store, open_store

ACTOR = "test"


@pytest.fixture(autouse=True)
def own_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg" / "subgroups"


def put(store: Store, key: str, value: str) -> settings.SettingChange:
    with store.write() as session:
        return settings.set_setting(session=session, key=key, value=value, actor=ACTOR)


def read(store: Store) -> settings.StoreSettings:
    with store.read() as session:
        return settings.get_settings(session)


def test_settings_read_back_as_plain_data(store: Store, tmp_path: Path) -> None:
    assert read(store) == settings.StoreSettings(base_url="http://127.0.0.1:8080")
    put(store, "inbound-domain", "in.example.com")
    put(store, "base-url", "https://email.example.com")
    put(store, "dkim-domain", "example.com")
    put(store, "dkim-selector", "s1")
    assert not read(store).dkim_ready
    assert read(store).dkim_missing() == ["dkim-key"]
    change = put(store, "dkim-key", str(key_file(tmp_path)))
    assert change.changed and change.old is None
    found = read(store)
    assert found == settings.StoreSettings(
        base_url="https://email.example.com",
        inbound_domain="in.example.com",
        dkim_domain="example.com",
        dkim_selector="s1",
        dkim_key=change.new,
    )
    assert found.dkim_ready
    assert found.value("inbound-domain") == "in.example.com"
    with pytest.raises(InvalidInput, match="unknown key 'nope'"):
        found.value("nope")


def test_a_refused_value_in_a_transaction_leaves_nothing(store: Store) -> None:
    put(store, "inbound-domain", "in.example.com")
    with pytest.raises(InvalidInput), store.write() as session:
        settings.set_setting(session=session, key="dkim-domain", value="d.example.com", actor="a")
        settings.set_setting(session=session, key="inbound-domain", value="bad domain", actor="a")
    assert read(store).dkim_domain is None  # the first change rolled back with the second
    assert read(store).inbound_domain == "in.example.com"


def test_a_version_11_store_gets_the_settings_table(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    open_store(path).dispose()
    store = open_store(path, migrate=False)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE store_setting"))
        conn.execute(text("UPDATE schema_meta SET value = '11' WHERE key = 'schema_version'"))
    store.dispose()

    store = open_store(path)
    try:
        assert "store_setting" in inspect(store.engine).get_table_names()
        with store.read() as session:
            assert migrations.schema_version(session.connection()) == migrations.LATEST_VERSION
        put(store, "inbound-domain", "in.example.com")
        assert read(store).inbound_domain == "in.example.com"
    finally:
        store.dispose()


def test_the_key_file_is_the_stores_own_and_checked_when_read(
    sqlite_store: Store, tmp_path: Path, own_data_dir: Path
) -> None:
    fingerprint = put(sqlite_store, "dkim-key", str(key_file(tmp_path))).new
    assert fingerprint is not None
    store_id = sqlite_store.store_id
    path = dkim_keys.key_path(store_id, fingerprint)
    assert path.parent == own_data_dir / "dkim" / store_id
    assert dkim_keys.load_key(store_id, fingerprint).fingerprint == fingerprint
    # Another store (its own id) has no such key, even in the same data directory.
    with pytest.raises(DkimKeyError, match="cannot read"):
        dkim_keys.load_key("another-store", fingerprint)

    os.chmod(path, 0o644)
    with pytest.raises(DkimKeyError, match=f"readable by others; run: chmod 600 {path}"):
        dkim_keys.load_key(store_id, fingerprint)
    path.write_bytes(rsa_pem(1024))  # another key put in its place
    os.chmod(path, 0o600)
    with pytest.raises(DkimKeyError, match="holds another key than the store names"):
        dkim_keys.load_key(store_id, fingerprint)
