"""Opening the store: where it lives, what --db refuses, WAL, schema versions.

A bad --db gets one clear message (StoreUnavailable, exit 2) and changes
nothing; an old store is upgraded in place, keeping its rows; a store from a
newer subgroups is refused rather than damaged.
"""

import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from app.core import (
    campaigns,
    groups,
    ledger,
    ledger_chain,
    ledger_verify,
    migrations,
    models,
    profiles,
    subscriptions,
)
from app.core.errors import StoreUnavailable
from app.core.places import ENV_DB, default_db_path
from app.core.store import Store, make_engine, open_store, resolve_db_url

ACTOR = "ada"


def refusal(db: str | Path) -> str:
    with pytest.raises(StoreUnavailable) as refused:
        open_store(db)
    assert refused.value.exit_code == 2
    return refused.value.message


def table_names(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def version_of(store: Store) -> int | None:
    with store.engine.connect() as conn:
        return migrations.schema_version(conn)


# --- Bad --db ------------------------------------------------------------------


def test_a_text_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n")

    message = refusal(notes)

    assert str(notes) in message
    assert "not an SQLite database" in message
    assert notes.read_text() == "shopping list\n"


def test_a_directory_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path)

    assert "is a directory" in message
    assert f"{tmp_path}/subgroups.db" in message  # says what to give instead
    assert list(tmp_path.iterdir()) == []


def test_a_path_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    notes = tmp_path / "file.txt"
    notes.write_text("not a folder")

    message = refusal(notes / "sub" / "x.db")

    assert "cannot create folder" in message
    assert str(notes / "sub") in message
    assert notes.read_text() == "not a folder"


@pytest.mark.parametrize(
    ("db", "says"),
    [
        ("/proc/subgroups-test/store.db", "cannot create folder /proc/subgroups-test"),
        ("/proc/subgroups-test.db", "cannot open"),
        ("/dev/null", "is not a regular file"),
    ],
    ids=["folder-in-proc", "file-in-proc", "device"],
)
def test_a_place_the_system_will_not_let_anyone_write_is_refused(db: str, says: str) -> None:
    """/proc refuses new files and folders even to root: refusals the OS really gives."""
    message = refusal(db)

    assert message.startswith(f"--db {db}")
    assert says in message
    assert "\n" not in message  # one line, for the CLI's stderr
    assert not Path("/proc/subgroups-test").exists()
    assert not Path("/proc/subgroups-test.db").exists()


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root, which ignores file permissions (CI runs as root)",
)
def test_a_read_only_folder_is_refused(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        message = refusal(locked / "store.db")
    finally:
        locked.chmod(0o700)

    assert "no permission" in message
    assert list(locked.iterdir()) == []


def test_another_applications_sqlite_database_is_refused_untouched(tmp_path: Path) -> None:
    foreign = tmp_path / "crm.sqlite"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT)")
    conn.execute("INSERT INTO contacts (email) VALUES ('ann@example.com')")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()

    message = refusal(foreign)

    assert "not a subgroups store" in message
    assert "'contacts'" in message
    # Byte for byte as it was: not even switched to WAL mode.
    assert foreign.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crm.sqlite"]


def test_an_unreachable_server_is_refused_without_showing_the_password() -> None:
    message = refusal("postgresql+psycopg://admin:s3cret-pw@127.0.0.1:1/subgroups")

    assert "cannot open" in message
    assert "127.0.0.1" in message
    assert "s3cret-pw" not in message
    assert "\n" not in message  # the driver's hint lines folded into one


def test_a_url_for_a_database_we_have_no_driver_for_is_refused() -> None:
    message = refusal("nosuchdb+nodriver://host/db")

    assert "nosuchdb+nodriver://host/db" in message


def test_an_empty_file_becomes_a_store(tmp_path: Path) -> None:
    """``touch store.db`` then ``--db store.db``: an empty file is an empty SQLite database."""
    empty = tmp_path / "store.db"
    empty.touch()

    store = open_store(empty)
    try:
        assert version_of(store) == migrations.LATEST_VERSION
    finally:
        store.dispose()


# --- SQLite set-up -------------------------------------------------------------


def test_a_sqlite_store_runs_in_wal_mode(sqlite_store: Store, sqlite_db: Path) -> None:
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    # WAL is a property of the file: any other program opening it sees it too.
    other = sqlite3.connect(sqlite_db)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        other.close()


def test_two_handles_on_one_file_see_each_others_writes(sqlite_db: Path) -> None:
    first, second = open_store(sqlite_db), open_store(sqlite_db)
    try:
        with first.write() as session:
            groups.create_group(session=session, name="Newsletter", actor=ACTOR)
        with second.read() as session:
            assert [g.name for g in groups.list_groups(session)] == ["Newsletter"]
    finally:
        first.dispose()
        second.dispose()


def test_an_in_memory_store_works(tmp_path: Path) -> None:
    store = open_store(":memory:")
    try:
        with store.write() as session:
            groups.create_group(session=session, name="Newsletter", actor=ACTOR)
        with store.read() as session:
            assert groups.active_count(session) == 1
        assert store.display_name == ":memory:"
    finally:
        store.dispose()


# --- Schema versions -----------------------------------------------------------


def test_a_new_store_has_every_table_and_the_latest_version(store: Store) -> None:
    expected = {m.__tablename__ for m in (*models.TABLES_V1, *models.TABLES_V2)}  # type: ignore[attr-defined]

    assert expected <= table_names(store)
    assert version_of(store) == migrations.LATEST_VERSION == 17


def _build_version_1_store(url: str) -> None:
    """A store as version 1 of subgroups left it: its tables, its ledger guard, some rows."""
    engine = make_engine(resolve_db_url(url))
    with engine.begin() as conn:
        for model in models.TABLES_V1:
            model.__table__.create(conn)  # type: ignore[attr-defined,union-attr]
        migrations._guard_ledger(conn)
        # The rows below are written by today's services, which link each event to the
        # chain's head (version 12 computes the chain again for every event).
        models.LedgerChainHead.__table__.create(conn)  # type: ignore[attr-defined]
        ledger_chain.start_head(conn)
        # Version 1 read group states through a (group_id, state) index (version 4 replaced it).
        conn.execute(text("DROP INDEX ix_group_state_group_state_profile"))
        conn.execute(
            text("CREATE INDEX ix_group_state_group_state ON group_state (group_id, state)")
        )
        # Until version 7 the ledger had (profile, group, id) and group_id indexes.
        conn.execute(text("DROP INDEX ix_ledger_event_profile"))
        conn.execute(
            text(
                "CREATE INDEX ix_ledger_event_profile_group "
                "ON ledger_event (profile_id, group_id, id)"
            )
        )
        conn.execute(text("CREATE INDEX ix_ledger_event_group_id ON ledger_event (group_id)"))
        # Until version 8 nothing found a campaign's events but the name index.
        conn.execute(text("DROP INDEX ix_ledger_event_campaign"))
        # Until version 9 the segment index kept no snapshots (TABLES_V1 does not make it).
        # Until version 11 profiles had an index on the address as written.
        conn.execute(text("CREATE INDEX ix_profile_email ON profile (email)"))
        if conn.dialect.name == "postgresql":
            # Version 1 had 64-character name keys (version 3 widened them).
            conn.execute(
                text("ALTER TABLE subscription_group ALTER COLUMN name_key TYPE VARCHAR(64)")
            )
        conn.execute(text("INSERT INTO schema_meta (key, value) VALUES ('schema_version', '1')"))
    engine.dispose()
    old = Store(engine=make_engine(resolve_db_url(url)), url=resolve_db_url(url))
    with old.write() as session:
        group = groups.create_group(session=session, name="Newsletter", actor=ACTOR)
        profile = profiles.create_profile(session=session, identity="ann@example.com")
        subscriptions.set_state(
            session=session,
            profile=profile,
            group=group,
            status="unsubscribed",
            source="console",
            actor=ACTOR,
        )
    old.dispose()


def test_a_version_1_store_is_upgraded_in_place_keeping_its_rows(store_url: str) -> None:
    _build_version_1_store(store_url)

    store = open_store(store_url)
    try:
        assert version_of(store) == migrations.LATEST_VERSION
        v2_tables = {m.__tablename__ for m in models.TABLES_V2}  # type: ignore[attr-defined]
        assert v2_tables <= table_names(store)
        # Version 4: the covering index the segment index reads states through.
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("group_state")}
        assert "ix_group_state_group_state_profile" in indexes
        assert "ix_group_state_group_state" not in indexes
        # Version 7: the ledger is read by person, never by a group alone.
        ledger_indexes = {i["name"] for i in inspect(store.engine).get_indexes("ledger_event")}
        assert "ix_ledger_event_profile" in ledger_indexes
        assert not {"ix_ledger_event_profile_group", "ix_ledger_event_group_id"} & ledger_indexes
        # Version 8: a campaign's unsubscribes are found by campaign.
        assert "ix_ledger_event_campaign" in ledger_indexes
        # Version 9: the segment index's snapshots have a table.
        assert "index_snapshot" in table_names(store)
        # Version 10: the admins who may use the console over SSH.
        assert "admin" in table_names(store)
        # Version 11: addresses are looked up by their key only.
        profile_indexes = {i["name"] for i in inspect(store.engine).get_indexes("profile")}
        assert "ix_profile_email_key" in profile_indexes
        assert "ix_profile_email" not in profile_indexes
        # Version 12: the ledger's hash chain, computed for the events already written.
        with store.engine.connect() as conn:
            assert ledger_verify.verify(conn) == ledger_verify.ChainReport(events=2, broken=None)
        if store.engine.dialect.name == "sqlite":  # the upgrade left the planner statistics
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("SELECT count(*) FROM sqlite_stat1").scalar()
        with store.read() as session:
            (group,) = groups.list_groups(session)
            assert group.name == "Newsletter"
            view = profiles.profile_view(session, "ann@example.com")
            assert [(g.group_name, g.stored) for g in view.groups] == [
                ("Newsletter", "unsubscribed")
            ]
            assert [e.name for e in ledger.recent_events(session)] == [
                "Group Created",
                "Channel Unsubscribed",
            ]
        # The upgraded store works, and its ledger is still append-only.
        with store.write() as session:
            groups.create_group(session=session, name="Promotions", actor=ACTOR)
            # Version 3: a name whose case-folded key is longer than the name fits.
            groups.create_group(session=session, name="ß" * 40, actor=ACTOR)
        with pytest.raises(Exception, match="append-only"), store.engine.begin() as conn:
            conn.execute(text("DELETE FROM ledger_event"))
    finally:
        store.dispose()

    # Opening it again changes nothing more.
    again = open_store(store_url)
    try:
        assert version_of(again) == migrations.LATEST_VERSION
        with again.read() as session:
            assert len(groups.list_groups(session)) == 3
    finally:
        again.dispose()


def test_a_store_from_a_newer_subgroups_is_refused(store_url: str) -> None:
    store = open_store(store_url)
    with store.write() as session:
        groups.create_group(session=session, name="Newsletter", actor=ACTOR)
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE schema_meta SET value = '99' WHERE key = 'schema_version'"))
    store.dispose()

    with pytest.raises(StoreUnavailable) as refused:
        open_store(store_url)

    assert "schema version 99" in refused.value.message
    assert "upgrade subgroups" in refused.value.message
    # Refused, not damaged: opening it without migrating still shows its rows.
    untouched = open_store(store_url, migrate=False)
    try:
        assert version_of(untouched) == 99
        with untouched.read() as session:
            assert [g.name for g in groups.list_groups(session)] == ["Newsletter"]
    finally:
        untouched.dispose()


def test_a_non_subgroups_postgres_database_is_refused(pg_url: str) -> None:
    from sqlalchemy import create_engine

    engine = create_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id serial PRIMARY KEY)"))
    engine.dispose()

    with pytest.raises(StoreUnavailable) as refused:
        open_store(pg_url)

    assert "not a subgroups store" in refused.value.message
    assert "'invoices'" in refused.value.message
    assert ":***@" in refused.value.message  # named, password hidden


# --- Where the store lives -----------------------------------------------------


def test_subgroups_db_names_the_store_when_no_db_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    place = tmp_path / "from-env.db"
    monkeypatch.setenv(ENV_DB, str(place))

    store = open_store()
    try:
        assert store.display_name == str(place)
        with store.write() as session:
            groups.create_group(session=session, name="Newsletter", actor=ACTOR)
    finally:
        store.dispose()

    assert place.exists()
    # An explicit --db wins over the environment.
    assert resolve_db_url(tmp_path / "explicit.db") == f"sqlite:///{tmp_path / 'explicit.db'}"


def test_the_default_store_is_in_the_xdg_data_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_DB, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    expected = tmp_path / "xdg" / "subgroups" / "subgroups.db"
    assert default_db_path() == expected
    store = open_store()
    try:
        assert store.display_name == str(expected)
    finally:
        store.dispose()

    assert expected.exists()  # the folder was made on first use


def test_a_relative_or_home_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))

    assert resolve_db_url("here.db") == f"sqlite:///{tmp_path / 'here.db'}"
    assert resolve_db_url("~/mine.db") == f"sqlite:///{tmp_path / 'home' / 'mine.db'}"
    assert resolve_db_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"


def _as_version_4(url: str) -> None:
    """Take away what version 5 added, leaving a store as version 4 left it."""
    engine = make_engine(resolve_db_url(url))
    with engine.begin() as conn:
        conn.execute(text("DROP INDEX ix_profile_email_key"))
        conn.execute(text("DROP INDEX ux_delivery_campaign_address"))
        for table, column in (
            ("profile", "email_key"),
            ("campaign", "destination"),
            ("campaign", "lease_holder"),
            ("campaign", "lease_beat_at"),
            ("delivery", "address_key"),
        ):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("UPDATE schema_meta SET value = '4' WHERE key = 'schema_version'"))
    engine.dispose()


def test_a_version_4_store_gets_address_keys_and_one_delivery_per_address(store_url: str) -> None:
    """Step 5 keys every stored address (stripped, lower-cased, non-ASCII letters too), and
    where an earlier send mailed one address twice, keeps only the first delivery's key."""
    store = open_store(store_url)
    with store.write() as session:
        campaign = campaigns.create_campaign(
            session=session, name="Old", actor=ACTOR, subject="S", body="B",
            from_address="a@example.com",
        )  # fmt: skip
        assert campaign.id is not None
        for outbox in ("/srv/out/first", "/srv/out/second"):  # paused, resumed elsewhere
            campaigns.set_status(
                session=session, campaign_id=campaign.id, status=campaigns.SENDING,
                actor=ACTOR, Outbox=outbox,
            )  # fmt: skip
            campaigns.set_status(
                session=session, campaign_id=campaign.id, status=campaigns.PAUSED, actor=ACTOR
            )
    store.dispose()
    _as_version_4(store_url)
    engine = make_engine(resolve_db_url(store_url))
    with engine.begin() as conn:
        for n, email in enumerate([" X@Example.COM ", "x@example.com", "ÜBER@Example.de", None]):
            conn.execute(
                text(
                    "INSERT INTO profile (identity, email, name, properties, all_email, "
                    "created_at) VALUES (:i, :e, '', '{}', 'subscribed', :t)"
                ),
                {"i": f"p{n}", "e": email, "t": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        for pid in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO delivery (campaign_id, profile_id, status, message_id, batch, "
                    "sent_at) VALUES (:c, :p, 'sent', '', 1, :t)"
                ),
                {"c": campaign.id, "p": pid, "t": datetime(2026, 1, 1, tzinfo=UTC)},
            )
    engine.dispose()

    store = open_store(store_url)
    try:
        assert version_of(store) == migrations.LATEST_VERSION
        with store.engine.connect() as conn:
            keys = conn.execute(text("SELECT identity, email_key FROM profile ORDER BY id")).all()
            delivered = conn.execute(
                text("SELECT profile_id, address_key FROM delivery ORDER BY profile_id")
            ).all()
        assert [tuple(k) for k in keys] == [
            ("p0", "x@example.com"),
            ("p1", "x@example.com"),
            ("p2", "über@example.de"),
            ("p3", None),
        ]
        assert [tuple(d) for d in delivered] == [(1, "x@example.com"), (2, None)]
        with store.read() as session:
            old = campaigns.get_campaign(session, "Old")
        # A paused send resumes where its first run delivered.
        assert old.destination == "maildir:/srv/out/first"
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("profile")}
        assert "ix_profile_email_key" in indexes
    finally:
        store.dispose()


# --- Migrations take an engine (no store <-> migrations import circle) ---------------


def test_upgrade_takes_an_engine_and_says_whether_it_made_the_schema(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
    try:
        first = migrations.upgrade(engine, name=str(tmp_path / "bare.db"))
        again = migrations.upgrade(engine, name=str(tmp_path / "bare.db"))
    finally:
        engine.dispose()

    assert first == migrations.Upgraded(version=migrations.LATEST_VERSION, created=True)
    assert again == migrations.Upgraded(version=migrations.LATEST_VERSION, created=False)


def test_upgrade_without_create_names_the_store_it_was_given(tmp_path: Path) -> None:
    engine = make_engine("sqlite://")
    try:
        with pytest.raises(StoreUnavailable) as refused:
            migrations.upgrade(engine, name="the-named-store", create=False)
    finally:
        engine.dispose()

    assert refused.value.message == "no store at the-named-store"


def test_migrations_do_not_import_the_store() -> None:
    import ast

    source = Path(migrations.__file__).read_text()
    imported = {
        node.module for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom)
    }
    assert "app.core.store" not in imported


def test_analyze_on_postgres_reads_only_this_stores_schema(pg_url: str) -> None:
    """Two stores in one database (a schema each) analyze only their own tables.

    A bare ANALYZE reads every table of the database: it took locks on the
    neighbour's tables, deadlocked against the neighbour's own ANALYZE (seen when
    two test workers upgraded stores side by side), and did the neighbour's work."""
    from sqlalchemy import create_engine, make_url

    ours = make_url(pg_url).query["options"]
    assert isinstance(ours, str) and ours.startswith("-csearch_path=")
    schema = ours.removeprefix("-csearch_path=")
    neighbour = f"{schema}_neighbour"
    engine = create_engine(
        make_url(pg_url).update_query_dict({"options": f"-csearch_path={neighbour}"})
    )
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{neighbour}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{neighbour}"'))
            conn.execute(text("CREATE TABLE ledger_event (id serial PRIMARY KEY, name text)"))
            conn.execute(
                text("INSERT INTO ledger_event (name) SELECT 'x' FROM generate_series(1, 50)")
            )
        store = open_store(pg_url)
        try:
            with store.engine.begin() as conn:
                migrations.analyze(conn)
        finally:
            store.dispose()
        with engine.connect() as conn:
            analyzed = dict(
                conn.execute(
                    text(
                        "SELECT schemaname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                        "WHERE relname = 'ledger_event'"
                    )
                ).all()
            )
    finally:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{neighbour}" CASCADE'))
        engine.dispose()
    assert analyzed[schema] is True  # ours analyzed
    assert analyzed[neighbour] is False  # the neighbour's left alone
