"""One address is one recipient: profiles whose addresses differ only in case or spaces
("twins") are one recipient. An opt-out (all email, or a "do not send to" group) under
any of them keeps the address out; a send mails the address once; the reach says what
the send then does; ``explain`` says why a twin is left out; an import names the
profiles that share an address."""

from pathlib import Path

from sending_world import (
    add_campaign,
    add_group,
    add_person,
    maildir_messages,
    recipients_of,
    set_state,
)
from sqlmodel import select

from app.core import campaigns, csv_io, eligibility, explainer, profiles, sending
from app.core.models import SUBSCRIBED, UNSUBSCRIBED, Campaign, Profile
from app.core.outbox import MaildirOutbox
from app.core.store import Store


def _import(
    store: Store, tmp_path: Path, text: str, *, dry_run: bool = False
) -> csv_io.ImportResult:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8")
    return csv_io.import_profiles(store=store, source=path, actor="ada", dry_run=dry_run)


def _send(store: Store, campaign_id: int, outbox: Path) -> sending.SendResult:
    return sending.send_campaign(
        store=store, campaign_id=campaign_id, outbox=MaildirOutbox(outbox), actor="ada",
        batch_size=2,
    )  # fmt: skip


def _mailed(outbox: Path) -> dict[str, int]:
    return {a.lower(): n for a, n in recipients_of(maildir_messages(outbox)).items()}


def _campaign(store: Store, campaign_id: int) -> Campaign:
    with store.read() as session:
        return campaigns.get_campaign_by_id(session, campaign_id)


def _others(store: Store) -> None:
    """Three people with addresses of their own, to be mailed as usual."""
    for name in ("carol", "dan", "erin"):
        add_person(store, name)


def test_an_all_email_opt_out_under_one_profile_keeps_its_twin_out(
    store: Store, tmp_path: Path
) -> None:
    _others(store)
    add_person(store, "identity-a", "X@Example.com")
    set_state(store, "identity-a", None, UNSUBSCRIBED)
    _import(store, tmp_path, "identity,email\nidentity-b,x@example.COM\n")
    cid = add_campaign(store)

    reach = eligibility.reach(store, _campaign(store, cid))
    why = explainer.explain(store, _campaign(store, cid), "identity-b")
    result = _send(store, cid, tmp_path / "out")

    assert reach.reach == 3
    assert not why.eligible
    assert why.reason.startswith(
        "left out at 'All email': the address x@example.com opted out of all email "
        "under profile identity-a on "
    )
    assert _mailed(tmp_path / "out") == {f"{n}@example.com": 1 for n in ("carol", "dan", "erin")}
    assert result.sent == 3


def test_a_do_not_send_to_opt_out_under_one_profile_keeps_its_twin_out(
    store: Store, tmp_path: Path
) -> None:
    _others(store)
    promotions = add_group(store, "Promotions")
    add_person(store, "identity-a", "X@Example.com")
    set_state(store, "identity-a", promotions, UNSUBSCRIBED)
    _import(store, tmp_path, "identity,email\nidentity-b,x@example.COM\n")
    cid = add_campaign(store, do_not_send_to=[promotions])

    reach = eligibility.reach(store, _campaign(store, cid))
    why = explainer.explain(store, _campaign(store, cid), "identity-b")
    _send(store, cid, tmp_path / "out")

    assert reach.reach == 3
    assert not why.eligible
    assert why.reason.startswith(
        "left out at 'Do not send to': the address x@example.com left Promotions under "
        "profile identity-a"
    )
    assert "x@example.com" not in _mailed(tmp_path / "out")
    assert len(maildir_messages(tmp_path / "out")) == 3


def test_two_subscribed_twins_get_one_message(store: Store, tmp_path: Path) -> None:
    _others(store)
    add_person(store, "identity-a", "X@Example.com")
    _import(store, tmp_path, "identity,email\nidentity-b, x@example.COM\n")
    cid = add_campaign(store)

    reach = eligibility.reach(store, _campaign(store, cid))
    why = explainer.explain(store, _campaign(store, cid), "identity-b")
    result = _send(store, cid, tmp_path / "out")

    assert reach.reach == 4 == result.sent
    assert [s.key for s in reach.steps][-1] == eligibility.ONE_PER_ADDRESS
    assert reach.steps[-1].dropped == 1
    assert not why.eligible
    assert "the address x@example.com gets it under profile identity-a" in why.reason
    assert _mailed(tmp_path / "out") == {
        **{f"{n}@example.com": 1 for n in ("carol", "dan", "erin")},
        "x@example.com": 1,
    }
    assert result.same_address == 1


def test_the_reach_agrees_with_the_send_when_twins_are_spread_over_batches(
    store: Store, tmp_path: Path
) -> None:
    """Twins far apart (other batches), one twin of a pair opted out, a third twin."""
    news = add_group(store, "News")
    for n in range(12):
        add_person(store, f"p{n}", f"Person{n % 5}@Example.org")
    set_state(store, "p7", None, UNSUBSCRIBED)  # address person2: out
    set_state(store, "p9", news, UNSUBSCRIBED)  # address person4: out of the News campaign
    cid = add_campaign(store, do_not_send_to=[news])

    reach = eligibility.reach(store, _campaign(store, cid))
    result = _send(store, cid, tmp_path / "out")

    assert _mailed(tmp_path / "out") == {f"person{n}@example.org": 1 for n in (0, 1, 3)}
    assert reach.reach == result.sent == 3


def test_the_import_plan_names_the_profiles_that_share_an_address(
    store: Store, tmp_path: Path
) -> None:
    add_person(store, "identity-a", "X@Example.com")
    result = _import(
        store, tmp_path,
        "identity,email\nidentity-b,x@example.COM\nidentity-c,y@example.com\n"
        "identity-d,Y@EXAMPLE.COM\n",
        dry_run=True,
    )  # fmt: skip

    shared = result.plan.shared_addresses
    assert [(s.address, s.identities) for s in shared] == [
        ("x@example.com", ("identity-a", "identity-b")),
        ("y@example.com", ("identity-c", "identity-d")),
    ]
    assert result.to_json()["shared_addresses"] == 2
    assert result.to_json(details=True)["shared_address_list"][0] == {
        "address": "x@example.com",
        "identities": ["identity-a", "identity-b"],
    }


def test_a_profile_view_lists_the_other_profiles_with_its_address(
    store: Store, tmp_path: Path
) -> None:
    add_person(store, "identity-a", "X@Example.com")
    add_person(store, "identity-b", "x@example.com ")
    add_person(store, "identity-c", "c@example.com")
    with store.read() as session:
        a = profiles.profile_view(session, "identity-a")
        c = profiles.profile_view(session, "identity-c")
        stored = {p.identity: p.email_key for p in session.exec(select(Profile)).all()}
    assert a.same_address == ("identity-b",)
    assert a.to_json()["same_address"] == ["identity-b"]
    assert c.same_address == ()
    assert stored == {
        "identity-a": "x@example.com",
        "identity-b": "x@example.com",
        "identity-c": "c@example.com",
    }


def test_an_opt_in_twin_subscribed_under_either_profile_is_mailed_once(
    store: Store, tmp_path: Path
) -> None:
    """ "Only subscribed to" is per profile: a twin that joined Beta brings the address in."""
    beta = add_group(store, "Beta", "opt-in")
    add_person(store, "identity-a", "X@Example.com")
    add_person(store, "identity-b", "x@example.com")
    set_state(store, "identity-b", beta, SUBSCRIBED)
    cid = add_campaign(store, only_subscribed_to=[beta])

    reach = eligibility.reach(store, _campaign(store, cid))
    result = _send(store, cid, tmp_path / "out")

    assert reach.reach == result.sent == 1
    assert _mailed(tmp_path / "out") == {"x@example.com": 1}


def test_a_snapshot_keeps_the_twins_and_a_later_import_still_makes_new_ones(
    store: Store, tmp_path: Path
) -> None:
    """The index snapshot holds who shares an address: a fresh process's index takes the
    twins from it (reading only their rows, not grouping every address: 2 s at 10M) and
    reaches the same; a twin imported after the snapshot is still one recipient."""
    from pyroaring import FrozenBitMap
    from sqlalchemy import event

    from app.core.index_reads import read_twins_among
    from app.core.segment_index import SegmentIndex
    from app.core.snapshot_writer import write_snapshot

    _others(store)
    add_person(store, "identity-a", "X@Example.com")
    _import(store, tmp_path, "identity,email\nidentity-b, x@example.COM\n")
    assert write_snapshot(store, SegmentIndex())
    grouped: list[str] = []

    def heard(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if "HAVING" in statement.upper():
            grouped.append(statement)

    event.listen(store.engine, "before_cursor_execute", heard)
    try:
        fresh = SegmentIndex()
        with store.read() as session:
            fresh.build(session)
            twins = fresh.address_twins(session)
        with store.read() as session:
            ids = {p.identity: p.id for p in session.exec(select(Profile)).all()}
        assert set(twins.bits) == {ids["identity-a"], ids["identity-b"]}
        assert grouped == []  # taken from the snapshot
        with store.read() as session:  # a list the rows no longer bear out is not taken
            lone = FrozenBitMap([ids["identity-a"], ids["carol"]])
            assert read_twins_among(session, lone) is None

        _import(store, tmp_path, "identity,email\nidentity-c, CAROL@example.com\n")
        with store.read() as session:
            fresh.refresh(session)
            twins = fresh.address_twins(session)
        assert len(grouped) == 1  # profiles changed since the snapshot: every address grouped
        with store.read() as session:
            carol = {p.identity: p.id for p in session.exec(select(Profile)).all()}
        assert set(twins.bits) == {
            ids["identity-a"], ids["identity-b"], carol["carol"], carol["identity-c"],
        }  # fmt: skip
    finally:
        event.remove(store.engine, "before_cursor_execute", heard)
