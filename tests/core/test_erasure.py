"""Erasure that keeps the opt-out (issue 12, ask 5), and a person's history as of a
moment (ask 4): personal data goes, the address stays suppressed as a keyed hash,
the ledger still verifies."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from app.core import (
    csv_io,
    erasure,
    groups,
    ledger,
    ledger_chain,
    ledger_verify,
    profile_history,
    profiles,
    subscriptions,
    suppression,
)
from app.core.errors import InvalidInput, RuleRefused
from app.core.store import Store

ACTOR = "alice"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def verify(store: Store) -> ledger_verify.ChainReport:
    with store.engine.connect() as connection:
        return ledger_verify.verify(connection)


def everything_stored(store: Store) -> str:
    """Every table's rows as text: what a reader of the database sees."""
    with store.engine.connect() as conn:
        names = [
            "profile",
            "ledger_event",
            "group_state",
            "delivery",
            "address_suppression",
            "schema_meta",
        ]
        rows = [repr(row) for name in names for row in conn.execute(text(f"SELECT * FROM {name}"))]
    # Leave out the twin profile: another record of the address, not the one erased.
    return "\n".join(row for row in rows if "C-77" not in row)


@pytest.fixture
def ann(store: Store) -> Store:
    """Ann: imported from a CSV with an address and properties, her Newsletter state
    changed twice (once with a reason that names her), and a twin profile of her address."""
    with store.write() as session:
        news = groups.create_group(session=session, name="Newsletter", actor=ACTOR, now=at(0))
        person = profiles.create_profile(
            session=session,
            identity="ann@example.com",
            email="Ann@Example.com",
            name="Ann Smith",
            properties={"plan": "platinum-7"},
            now=at(0),
        )
        profiles.create_profile(
            session=session, identity="C-77", email="ann@example.com", now=at(0)
        )
        subscriptions.set_state(
            session=session, profile=person, group=news, status="unsubscribed",
            source="cli", actor=ACTOR, reason="Ann Smith phoned", now=at(1),
        )  # fmt: skip
        subscriptions.set_state(
            session=session, profile=person, group=news, status="subscribed",
            source="cli", actor=ACTOR, now=at(3),
        )  # fmt: skip
        subscriptions.set_state(
            session=session, profile=person, group=None, status="unsubscribed",
            source="cli", actor=ACTOR, now=at(5),
        )  # fmt: skip
    return store


def test_history_gives_the_states_as_of_each_moment_and_the_events_that_set_them(
    ann: Store,
) -> None:
    with ann.read() as session:
        before = profile_history.profile_history(session, "ann@example.com", as_of=at(0))
        middle = profile_history.profile_history(session, "ann@example.com", as_of=at(2))
        now = profile_history.profile_history(session, "ann@example.com")

    assert before.all_email.stored == "subscribed" and before.events == []
    assert [(g.group_name, g.stored, g.effective) for g in before.groups] == [
        ("Newsletter", None, "subscribed")
    ]
    (news,) = middle.groups
    assert (news.stored, news.effective) == ("unsubscribed", "unsubscribed")
    assert news.event is not None and news.event.properties["Reason"] == "Ann Smith phoned"
    assert middle.all_email.stored == "subscribed"
    assert [e.ts for e in middle.events] == [at(1)]
    (news,) = now.groups
    assert news.stored == "subscribed"
    assert now.all_email.stored == "unsubscribed"
    assert now.all_email.event is not None and now.all_email.event.ts == at(5)
    assert len(now.events) == 3
    as_json = middle.to_json()
    assert as_json["groups"][0]["stored"] == "unsubscribed"
    assert [e["id"] for e in as_json["events"]] == [middle.events[0].id]


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "", "12/05/2026"])
def test_a_bad_moment_is_refused_naming_it_and_the_form(value: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        profile_history.parse_as_of(value)
    assert refused.value.exit_code == 2
    assert repr(value) in str(refused.value) and "2026-12-05T13:00:00" in str(refused.value)


def test_a_moment_with_an_offset_or_a_date_alone() -> None:
    assert profile_history.parse_as_of("2026-12-05T13:00:00+01:00") == datetime(
        2026, 12, 5, 12, 0, tzinfo=UTC
    )
    assert profile_history.parse_as_of("2026-12-05T13:00:00Z").hour == 13
    day_end = profile_history.parse_as_of("2026-12-05").astimezone()
    assert (day_end.hour, day_end.minute, day_end.second) == (23, 59, 59)


def test_erasure_removes_personal_data_keeps_the_opt_out_and_the_chain(ann: Store) -> None:
    with ann.write() as session:
        done = erasure.erase_profile(
            session=session, identity="ann@example.com", reason="GDPR request 42",
            source="cli", actor=ACTOR, now=at(7),
        )  # fmt: skip

    stored = everything_stored(ann)
    for personal in ("ann@example.com", "Ann@Example.com", "Ann Smith", "platinum-7", "phoned"):
        assert personal.casefold() not in stored.casefold(), personal
    assert done.events_redacted == 3 and done.addresses_suppressed == 1
    report = verify(ann)
    assert report.intact, report.broken and report.broken.describe()
    with ann.read() as session:
        view = profiles.profile_view(session, done.identity)
        twin = profiles.profile_view(session, "C-77")
        (erased_event,) = ledger.recent_events(session, name="Profile Erased")
    # Her states are still enforced.
    assert view.all_email == "unsubscribed"
    assert (view.email, view.name, view.properties) == (None, "", {})
    # The twin of her address is kept out of all email too, and says why.
    assert twin.all_email == "unsubscribed"
    assert "suppressed: erased on 2026-12-01" in twin.all_email_origin
    # The Profile Erased event holds no personal data.
    assert erased_event.identity == done.identity
    assert erased_event.properties["Erasure Reason"] == "GDPR request 42"
    assert "ann" not in json.dumps(erased_event.to_json()).casefold()


def test_an_erased_address_imported_again_stays_unsubscribed_from_all(
    ann: Store, tmp_path: Path
) -> None:
    with ann.write() as session:
        erasure.erase_profile(
            session=session, identity="ann@example.com", reason="asked", source="cli",
            actor=ACTOR, now=at(7),
        )  # fmt: skip
    people = tmp_path / "people.csv"
    people.write_text(
        "identity,email,name,all_email,group:Newsletter\n"
        "new-ann, ANN@example.COM ,Ann,subscribed,subscribed\n"
        "bob,bob@example.com,Bob,,\n",
        encoding="utf-8",
    )

    csv_io.import_profiles(store=ann, source=people, actor=ACTOR)

    with ann.read() as session:
        again = profiles.profile_view(session, "new-ann")
        bob = profiles.profile_view(session, "bob")
    assert again.all_email == "unsubscribed"
    assert "suppressed: erased on 2026-12-01" in again.all_email_origin
    assert bob.all_email == "subscribed"
    assert verify(ann).intact


def test_the_address_is_kept_only_as_a_keyed_hash(ann: Store) -> None:
    with ann.write() as session:
        erasure.erase_profile(
            session=session, identity="ann@example.com", reason="asked", source="cli", actor=ACTOR
        )
    with ann.engine.connect() as conn:
        (kept,) = conn.execute(text("SELECT address_hash FROM address_suppression")).scalars()
    plain = ledger_chain.digest("ann@example.com")
    assert kept != plain  # not a plain hash anyone could compute from a guess
    secret = suppression.install_secret(create=False)
    assert secret is not None and secret.hex() not in everything_stored(ann)
    path = suppression.suppression_secret_path()
    assert path.stat().st_mode & 0o777 == 0o600


def test_erasure_is_refused_without_a_reason_or_twice(ann: Store) -> None:
    before = everything_stored(ann)
    with pytest.raises(InvalidInput, match="reason"), ann.write() as session:
        erasure.erase_profile(
            session=session, identity="ann@example.com", reason=" ", source="cli", actor=ACTOR
        )
    assert everything_stored(ann) == before
    with ann.write() as session:
        done = erasure.erase_profile(
            session=session, identity="ann@example.com", reason="asked", source="cli", actor=ACTOR
        )
    with pytest.raises(RuleRefused, match="erased already"), ann.write() as session:
        erasure.erase_profile(
            session=session, identity=done.identity, reason="again", source="cli", actor=ACTOR
        )


def test_the_guard_still_refuses_any_other_change(ann: Store) -> None:
    with ann.engine.connect() as conn:
        target = conn.execute(text("SELECT max(id) FROM ledger_event")).scalar_one()
    for sql in (
        "UPDATE ledger_event SET actor = 'mallory' WHERE id = :i",
        "UPDATE ledger_event SET identity = 'erased:x', actor = 'mallory' WHERE id = :i",
        "DELETE FROM ledger_event WHERE id = :i",
    ):
        with pytest.raises(Exception, match="append-only"), ann.engine.begin() as conn:
            conn.execute(text(sql), {"i": target})
