"""Every store has an id of its own (issue 8, point 6): made with a new store, added by
migration 6 to an older one, and the links a store signs are bound to it."""

import hashlib
import hmac
import struct
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from app.core import clock, migrations, tokens
from app.core.store import Store, open_store
from app.core.tokens import BadToken, load_keyring, store_binding


def _meta(store: Store, key: str) -> str | None:
    with store.engine.connect() as conn:
        return conn.execute(
            text("SELECT value FROM schema_meta WHERE key = :k"), {"k": key}
        ).scalar()


def test_each_new_store_gets_its_own_id_and_keeps_it(tmp_path: Path) -> None:
    a, b = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")
    try:
        assert len(a.store_id) == 32 and int(a.store_id, 16) >= 0
        assert a.store_id != b.store_id
        assert _meta(a, "store_id") == a.store_id
        # A new store never signed an unbound link, so it accepts none.
        with a.read() as session:
            assert store_binding(session).unbound_links_until is None
    finally:
        a.dispose(), b.dispose()
    again = open_store(tmp_path / "a.db")
    try:
        assert again.store_id == _meta(again, "store_id")
        assert again.store_id != b.store_id
    finally:
        again.dispose()


def _unbound_token(ring: tokens.Keyring, profile_id: int, issued: date) -> str:
    """A link as subgroups signed them before links were bound to their store (version 1)."""
    body = struct.pack(">BHQII", 1, ring.current, profile_id, 0, (issued - date(1970, 1, 1)).days)
    mac = hmac.new(ring.keys[ring.current], body, hashlib.sha256).digest()[:16]
    return tokens._b64encode(body + mac)


def _as_version_4(url: str) -> None:
    """Make a store look as version 4 left it: no store id."""
    store = open_store(url)
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM schema_meta WHERE key <> 'schema_version'"))
        conn.execute(text("UPDATE schema_meta SET value = '4' WHERE key = 'schema_version'"))
    store.dispose()


def test_migration_6_gives_an_old_store_an_id_and_keeps_its_links_working(
    store_url: str, link_keyring: Path
) -> None:
    _as_version_4(store_url)
    ring = load_keyring()
    today = clock.now().date()
    old_link = _unbound_token(ring, 7, today - timedelta(days=300))

    store = open_store(store_url)
    try:
        with store.engine.connect() as conn:
            assert migrations.schema_version(conn) == migrations.LATEST_VERSION
        assert len(store.store_id) == 32
        with store.read() as session:
            binding = store_binding(session)
        assert binding.store_id == store.store_id
        assert binding.unbound_links_until == today
        # A link already in an inbox keeps working for its validity ...
        assert ring.verify(old_link, store=binding).profile_id == 7
        with pytest.raises(BadToken, match="expired"):
            ring.verify(old_link, store=binding, today=today + timedelta(days=440))
        # ... but no unbound link signed after the upgrade is accepted.
        later = _unbound_token(ring, 7, today + timedelta(days=1))
        with pytest.raises(BadToken, match="not valid"):
            ring.verify(later, store=binding, today=today + timedelta(days=2))
        # New links are bound to the store.
        assert ring.verify(ring.sign(7, store=binding), store=binding).profile_id == 7
    finally:
        store.dispose()
    again = open_store(store_url)
    try:
        assert again.store_id == binding.store_id  # the id never changes
    finally:
        again.dispose()


def test_a_link_signed_for_one_store_is_refused_by_another(
    tmp_path: Path, link_keyring: Path
) -> None:
    ring = load_keyring()
    a, b = open_store(tmp_path / "a.db"), open_store(tmp_path / "b.db")
    try:
        with a.read() as sa, b.read() as sb:
            bind_a, bind_b = store_binding(sa), store_binding(sb)
    finally:
        a.dispose(), b.dispose()
    token = ring.sign(1, 2, store=bind_a)
    assert ring.verify(token, store=bind_a).campaign_id == 2
    with pytest.raises(BadToken, match="not valid"):
        ring.verify(token, store=bind_b)
    # A new store accepts no unbound (version 1) link at all.
    with pytest.raises(BadToken, match="not valid"):
        ring.verify(_unbound_token(ring, 1, clock.now().date()), store=bind_b)
