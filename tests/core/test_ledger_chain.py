"""The ledger's hash chain (issue 12, ask 4): every writer links its events, and
``verify`` names the first event whose content or link was tampered with.

Tampering is done as an attacker with database access would: the append-only
triggers are dropped first, then rows are changed with raw SQL.
"""

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from app.core import (
    groups,
    ledger_chain,
    ledger_verify,
    migrations,
    one_click,
    profiles,
    subscriptions,
)
from app.core.ledger_verify import ChainReport
from app.core.store import Store, open_store

ACTOR = "alice"


def verify(store: Store) -> ChainReport:
    with store.engine.connect() as connection:
        return ledger_verify.verify(connection)


def drop_guard(store: Store) -> None:
    """What an attacker with the database's password can do: lift the append-only triggers."""
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("DROP TRIGGER ledger_event_append_only ON ledger_event"))
        else:
            conn.execute(text("DROP TRIGGER ledger_event_no_update"))
            conn.execute(text("DROP TRIGGER ledger_event_no_delete"))


def tamper(store: Store, sql: str, **params: object) -> None:
    drop_guard(store)
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


@pytest.fixture
def busy(store: Store) -> Iterator[Store]:
    """A store whose ledger every kind of writer added to: admin events (``record``),
    single changes (``set_state``), the bulk path (``apply_changes``) and one-clicks
    (``one_click_many``, the landing server's group commit)."""
    with store.write() as session:
        news = groups.create_group(session=session, name="Newsletter", actor=ACTOR)
        promos = groups.create_group(session=session, name="Promotions", actor=ACTOR)
        people = [
            profiles.create_profile(session=session, identity=f"p{i}@example.com", name=f"P {i}")
            for i in range(6)
        ]
    with store.write() as session:
        subscriptions.set_state(
            session=session,
            profile=people[0],
            group=news,
            status="unsubscribed",
            source="cli",
            actor=ACTOR,
            reason="asked by phone: «no more»",
        )
    with store.write() as session:
        subscriptions.apply_changes(
            session=session,
            changes=[
                subscriptions.StateChange(p.id or 0, p.identity, promos.id, promos.name, None, s)
                for p, s in zip(people, ["subscribed", "unsubscribed"] * 3, strict=True)
            ],
            source="import",
            actor=ACTOR,
        )
    with store.write() as session:
        one_click.one_click_many(session=session, requests=[(people[3].id or 0, None)])
        groups.archive_group(session=session, group_id=promos.id or 0, actor=ACTOR)
    yield store


def event_ids(store: Store) -> list[int]:
    with store.engine.connect() as conn:
        return [row[0] for row in conn.execute(text("SELECT id FROM ledger_event ORDER BY id"))]


def test_every_writer_links_its_events_and_the_chain_verifies(busy: Store) -> None:
    ids = event_ids(busy)

    report = verify(busy)

    assert report.intact
    assert report.events == len(ids) == 2 + 1 + 6 + 1 + 1
    with busy.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT content_hash, chain_hash FROM ledger_event ORDER BY id")
        ).all()
    previous = bytes(32)
    for content, link in rows:  # sha256(previous chain hash || content hash), from 32 zeros
        assert bytes(link) == hashlib.sha256(previous + bytes(content)).digest()
        previous = bytes(link)


def test_removing_the_newest_events_is_found_at_the_new_last_event(busy: Store) -> None:
    ids = event_ids(busy)
    tamper(busy, "DELETE FROM ledger_event WHERE id >= :i", i=ids[-2])

    report = verify(busy)

    assert report.broken is not None and report.broken.id == ids[-3]
    assert "newer events were removed" in report.broken.problem
    assert report.events == len(ids) - 2


def test_a_changed_head_is_found(busy: Store) -> None:
    ids = event_ids(busy)
    with busy.engine.begin() as conn:
        conn.execute(text("UPDATE ledger_chain_head SET chain_hash = :h"), {"h": bytes(32)})
    report = verify(busy)
    assert report.broken is not None and report.broken.id == ids[-1]


def test_the_content_hash_is_the_documented_canonical_json(store: Store) -> None:
    with store.write() as session:
        group = groups.create_group(session=session, name="Newsletter", actor=ACTOR)
        ann = profiles.create_profile(session=session, identity="ann@example.com")
        event = subscriptions.set_state(
            session=session,
            profile=ann,
            group=group,
            status="unsubscribed",
            source="cli",
            actor=ACTOR,
            reason="Ann asked",
            now=datetime(2026, 12, 5, 13, 0, 0, 5, tzinfo=UTC),
        )
        assert event is not None
    sha = hashlib.sha256
    properties = {
        "Actor": ACTOR,
        "Campaign ID": None,
        "Channel": "Email",
        "Group": "Newsletter",
        "Group ID": group.id,
        "New State": "unsubscribed",
        "Old State": None,
        "Reason": sha(b"Ann asked").hexdigest(),  # personal: only its digest
        "Resubscribed": False,
        "Source": "cli",
        "Subscription Type": "Group",
    }
    content = {
        "actor": ACTOR,
        "campaign_id": None,
        "group_id": group.id,
        "identity": sha(b"ann@example.com").hexdigest(),  # personal: only its digest
        "name": "Channel Unsubscribed",
        "profile_id": ann.id,
        "properties": properties,
        "source": "cli",
        "ts": "2026-12-05T13:00:00.000005Z",
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    with store.engine.connect() as conn:
        stored = conn.execute(
            text("SELECT content_hash FROM ledger_event WHERE id = :i"), {"i": event.id}
        ).scalar_one()
    assert bytes(stored) == sha(canonical.encode("utf-8")).digest()


@pytest.mark.parametrize(
    ("identity", "profile_id", "group_id", "campaign_id", "name", "properties"),
    [
        ("ann@example.com", 7, 3, None, "Channel Unsubscribed", {"Group": "News"}),
        (None, None, None, 12, "Campaign Sent", {"Sent": 3, "Note": "a\x00b \u00e9 \U0001f600"}),
        ("erased:" + "ab" * 32, 9, None, None, 'quote " and \\', {"Reason": "x"}),
    ],
)
def test_a_bulk_write_s_content_parts_hash_as_the_content_does(
    identity: str | None,
    profile_id: int | None,
    group_id: int | None,
    campaign_id: int | None,
    name: str,
    properties: dict[str, object],
) -> None:
    """``ContentParts`` (the imports' and one-click batches' way) gives the very
    ``content_hash`` of the canonical content, NUL characters and quotes included."""
    ts = ledger_chain.ts_form(datetime(2026, 12, 6, 3, 0, 0, 42, tzinfo=UTC))
    forms = {
        "name": ledger_chain.text_form(name),
        "group_id": group_id,
        "campaign_id": campaign_id,
        "source": ledger_chain.text_form("import"),
        "actor": ledger_chain.text_form('Ada "root"'),
        "properties": ledger_chain.properties_form(properties),
    }
    parts = ledger_chain.ContentParts(**forms)  # type: ignore[arg-type]
    whole = ledger_chain.content_hash(
        ts=ts, identity=ledger_chain.identity_form(identity), profile_id=profile_id, **forms
    )  # type: ignore[arg-type]
    assert parts.digest(ledger_chain.identity_form(identity), profile_id, ts) == whole


def test_content_changed_by_raw_sql_is_named(busy: Store) -> None:
    target = event_ids(busy)[4]
    tamper(
        busy,
        "UPDATE ledger_event SET properties = REPLACE(CAST(properties AS TEXT), "
        "'unsubscribed', 'subscribed') WHERE id = :i"
        if busy.engine.dialect.name == "sqlite"
        else "UPDATE ledger_event SET properties = "
        "REPLACE(properties::text, 'unsubscribed', 'subscribed')::json WHERE id = :i",
        i=target,
    )

    report = verify(busy)

    assert report.broken is not None
    assert (report.broken.id, report.broken.name) == (target, "Channel Unsubscribed")
    assert "content does not match" in report.broken.describe()
    assert report.events == 4  # those before it are intact


def test_an_identity_or_time_changed_is_named(busy: Store) -> None:
    ids = event_ids(busy)
    tamper(busy, "UPDATE ledger_event SET identity = 'mallory' WHERE id = :i", i=ids[5])
    report = verify(busy)
    assert report.broken is not None and report.broken.id == ids[5]

    with busy.engine.begin() as conn:
        conn.execute(
            text("UPDATE ledger_event SET ts = :t WHERE id = :i"),
            {"t": datetime(2020, 1, 1, tzinfo=UTC), "i": ids[3]},
        )
    report = verify(busy)
    assert report.broken is not None and report.broken.id == ids[3]
    assert "2020-01-01 00:00:00 UTC" in report.broken.describe()


def test_a_deleted_event_breaks_the_link_of_the_one_after_it(busy: Store) -> None:
    ids = event_ids(busy)
    tamper(busy, "DELETE FROM ledger_event WHERE id = :i", i=ids[6])

    report = verify(busy)

    assert report.broken is not None
    assert report.broken.id == ids[7]
    assert "link does not match the event before it" in report.broken.problem
    assert report.events == 6


@pytest.mark.parametrize("column", ["content_hash", "chain_hash"])
def test_a_changed_hash_is_named(busy: Store, column: str) -> None:
    ids = event_ids(busy)
    tamper(
        busy,
        f"UPDATE ledger_event SET {column} = :h WHERE id = :i",
        h=hashlib.sha256(b"forged").digest(),
        i=ids[2],
    )

    report = verify(busy)

    assert report.broken is not None and report.broken.id == ids[2]
    expected = "content does not match" if column == "content_hash" else "link does not match"
    assert expected in report.broken.problem


def test_a_rewritten_tail_with_recomputed_hashes_still_breaks_at_the_next_event(
    busy: Store,
) -> None:
    """An attacker who recomputes a changed event's own hashes breaks its successor's link."""
    ids = event_ids(busy)
    target = ids[4]
    tamper(busy, "UPDATE ledger_event SET actor = 'mallory' WHERE id = :i", i=target)
    with busy.engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT ts, name, identity, profile_id, group_id, campaign_id, source, actor, "
                "properties FROM ledger_event WHERE id = :i"
            ),
            {"i": target},
        ).one()
        before = conn.execute(
            text("SELECT chain_hash FROM ledger_event WHERE id = :i"), {"i": ids[3]}
        ).scalar_one()
    ts = row.ts if isinstance(row.ts, datetime) else datetime.fromisoformat(row.ts)
    props = row.properties if isinstance(row.properties, dict) else json.loads(row.properties)
    content = ledger_chain.event_content_hash(
        ts=ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts,
        name=row.name,
        identity=row.identity,
        profile_id=row.profile_id,
        group_id=row.group_id,
        campaign_id=row.campaign_id,
        source=row.source,
        actor=row.actor,
        properties=props,
    )
    with busy.engine.begin() as conn:
        conn.execute(
            text("UPDATE ledger_event SET content_hash = :c, chain_hash = :h WHERE id = :i"),
            {"c": content, "h": ledger_chain.link(bytes(before), content), "i": target},
        )

    report = verify(busy)

    assert report.broken is not None and report.broken.id == ids[5]


V11_GUARD = {
    "sqlite": (
        "CREATE TRIGGER ledger_event_no_update BEFORE UPDATE ON ledger_event "
        "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
        "CREATE TRIGGER ledger_event_no_delete BEFORE DELETE ON ledger_event "
        "BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END",
    ),
    "postgresql": (
        "CREATE OR REPLACE FUNCTION subgroups_ledger_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'the ledger is append-only'; END; $$ LANGUAGE plpgsql",
        "CREATE TRIGGER ledger_event_append_only BEFORE UPDATE OR DELETE ON ledger_event "
        "FOR EACH ROW EXECUTE FUNCTION subgroups_ledger_append_only()",
    ),
}


def test_the_upgrade_to_version_12_fills_in_the_same_chain(store_url: str) -> None:
    """A ledger written before the chain existed gets, from the upgrade, the hashes a
    writer would have given it."""
    store = open_store(store_url)
    try:
        with store.write() as session:
            group = groups.create_group(session=session, name="Newsletter", actor=ACTOR)
            ann = profiles.create_profile(session=session, identity="ann@example.com")
            for status in ("unsubscribed", "subscribed", "unsubscribed"):
                subscriptions.set_state(
                    session=session, profile=ann, group=group, status=status,
                    source="cli", actor=ACTOR, reason="é ü «»",
                )  # fmt: skip
        with store.engine.connect() as conn:
            written = conn.execute(
                text("SELECT id, content_hash, chain_hash FROM ledger_event ORDER BY id")
            ).all()
        # As version 11 left it: no hash columns, the guard refusing every change.
        drop_guard(store)
        with store.engine.begin() as conn:
            conn.execute(text("DROP TABLE address_suppression"))
            conn.execute(text("DROP TABLE ledger_chain_head"))
            for statement in V11_GUARD[conn.dialect.name]:
                conn.execute(text(statement))
            for column in ("content_hash", "chain_hash"):
                conn.execute(text(f"ALTER TABLE ledger_event DROP COLUMN {column}"))
            conn.execute(text("UPDATE schema_meta SET value = '11' WHERE key = 'schema_version'"))
    finally:
        store.dispose()

    upgraded = open_store(store_url)
    try:
        with upgraded.engine.connect() as conn:
            assert migrations.schema_version(conn) == migrations.LATEST_VERSION
            filled = conn.execute(
                text("SELECT id, content_hash, chain_hash FROM ledger_event ORDER BY id")
            ).all()
        assert [(i, bytes(c), bytes(h)) for i, c, h in filled] == [
            (i, bytes(c), bytes(h)) for i, c, h in written
        ]
        assert verify(upgraded) == ChainReport(events=len(written), broken=None)
        # The append-only guard is back, and the suppression list is there.
        with pytest.raises(Exception, match="append-only"), upgraded.engine.begin() as conn:
            conn.execute(text("UPDATE ledger_event SET actor = 'x'"))
        with upgraded.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM address_suppression")).scalar() == 0
        # And new events link to the backfilled ones.
        with upgraded.write() as session:
            groups.create_group(session=session, name="Promotions", actor=ACTOR)
        assert verify(upgraded).intact
    finally:
        upgraded.dispose()


def test_an_empty_ledger_verifies(store: Store) -> None:
    assert verify(store) == ChainReport(events=0, broken=None)


RACE_WORKER = r"""
import json
import os
import sys

from app.core import groups, one_click, profiles, subscriptions
from app.core.store import open_store

config = json.loads(sys.argv[1])
store = open_store(config["url"])
number = config["number"]
print("ready", flush=True)
sys.stdin.readline()
done = 0
for round_ in range(config["rounds"]):
    with store.write() as session:
        if round_ % 3 == 0:  # one change through the ORM (ledger.record)
            person = profiles.get_profile(session, f"w{number}-{round_ % 4}@example.com")
            subscriptions.set_state(
                session=session, profile=person, group=None,
                status="unsubscribed" if round_ % 2 else "subscribed",
                source="cli", actor=f"worker{number}",
            )
        elif round_ % 3 == 1:  # the bulk path, as an import writes
            group = groups.find_group(session, "Newsletter")
            rows = [profiles.get_profile(session, f"w{number}-{i}@example.com") for i in range(4)]
            stored = subscriptions.stored_states(session, [p.id for p in rows])
            status = "unsubscribed" if round_ % 2 else "subscribed"
            subscriptions.apply_changes(
                session=session,
                changes=[
                    subscriptions.StateChange(
                        p.id, p.identity, group.id, group.name,
                        stored.get((p.id, group.id)), status,
                    )
                    for p in rows
                ],
                source="import", actor=f"worker{number}",
            )
        else:  # a one-click batch, as the landing server's group commit writes it
            person = profiles.get_profile(session, f"w{number}-{round_ % 4}@example.com")
            one_click.one_click_many(session=session, requests=[(person.id, None)])
    done += 1
store.dispose()
print(json.dumps(done), flush=True)
os._exit(0)
"""


def test_concurrent_writers_in_several_processes_keep_one_chain(
    store_url: str, python: str, subprocess_env: dict[str, str]
) -> None:
    """Four processes append at once through the ORM, the bulk path and one-clicks:
    each event links to the one before it in id order, none to a stale tail."""
    import select
    import subprocess

    workers, rounds = 4, 30
    store = open_store(store_url)
    try:
        with store.write() as session:
            groups.create_group(session=session, name="Newsletter", actor=ACTOR)
            for number in range(workers):
                for i in range(4):
                    profiles.create_profile(session=session, identity=f"w{number}-{i}@example.com")
        procs = [
            subprocess.Popen(
                [
                    python,
                    "-c",
                    RACE_WORKER,
                    json.dumps({"url": store_url, "number": n, "rounds": rounds}),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env=subprocess_env,
            )
            for n in range(workers)
        ]
        try:
            for proc in procs:
                assert proc.stdout is not None
                readable, _, _ = select.select([proc.stdout], [], [], 60)
                assert readable and proc.stdout.readline().strip() == "ready"
            for proc in procs:  # release them together
                assert proc.stdin is not None
                proc.stdin.write("go\n")
                proc.stdin.flush()
            for proc in procs:
                out, err = proc.communicate(timeout=120)
                assert proc.returncode == 0, err
                assert json.loads(out.strip().splitlines()[-1]) == rounds
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()

        report = verify(store)

        assert report.intact, report.broken and report.broken.describe()
        assert report.events == len(event_ids(store)) > workers * rounds
    finally:
        store.dispose()


@pytest.mark.parametrize("tampered", [None, 1, 7, -1])
def test_checking_in_several_processes_gives_the_same_answer(
    busy: Store, monkeypatch: pytest.MonkeyPatch, tampered: int | None
) -> None:
    """``events verify`` splits a large ledger by id range over processes: the count and
    the first broken event are those one process finds (a break at a range's first
    event included)."""
    if tampered is not None:
        tamper(busy, "DELETE FROM ledger_event WHERE id = :i", i=event_ids(busy)[tampered])
    monkeypatch.setattr(ledger_verify, "PARALLEL_FROM", 0)
    with busy.engine.connect() as connection:
        alone = ledger_verify.verify(connection)
        for workers in (2, 3, 4):
            assert ledger_verify.verify_store(busy.url, connection, workers=workers) == alone
