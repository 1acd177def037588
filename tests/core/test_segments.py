"""Segments ("Find People"): the conditions of DESIGN.md §1 on a small world
whose answers are worked out by hand, the sentence, per-clause counts, the
index following changes made by another process, paging, and saved segments.

Every test runs on SQLite and on PostgreSQL (the ``store`` fixture).

The world (groups: Newsletter, Offers, Promotions opt-out; Beta opt-in;
Old opt-out and archived). Stored states, "-" never set:

============  ==========  ======  ==========  ====  ====  =========  =======
profile       Newsletter  Offers  Promotions  Beta  Old   all email  country
============  ==========  ======  ==========  ====  ====  =========  =======
ann           unsub       -       -           -     -     sub        DE
bob           -           -       unsub       sub   -     sub        de
cat           unsub       unsub   -           -     -     sub        FR
dan           -           -       -           sub   unsub unsub      (none)
eve           sub         -       unsub       sub   -     sub        Deutschland
fay           unsub       unsub   unsub       -     sub   sub        (none)
============  ==========  ======  ==========  ====  ====  =========  =======

Effectively subscribed: Newsletter {bob, dan, eve}; Offers {ann, bob, dan,
eve}; Promotions {ann, cat, dan}; Beta {bob, dan, eve}; Old {ann, bob, cat,
eve, fay}.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from app.core import groups, ledger, profiles, segments, subscriptions
from app.core.errors import InvalidInput, NameTaken, RuleRefused, UnknownGroup
from app.core.ledger import EventRecord
from app.core.models import Group, Profile
from app.core.segment_rules import (
    EmailCondition,
    GroupsCondition,
    PropertyCondition,
    SegmentRule,
    rule_from_json,
)
from app.core.store import Store, open_store

ACTOR = "ada"
PEOPLE = ("ann", "bob", "cat", "dan", "eve", "fay")


@dataclass
class World:
    store: Store
    groups: dict[str, Group]
    profiles: dict[str, Profile]

    def gid(self, *names: str) -> tuple[int, ...]:
        return tuple(self.groups[n].id or 0 for n in names)


def _set(session: object, profile: Profile, group: Group | None, status: str) -> None:
    subscriptions.set_state(
        session=session,  # type: ignore[arg-type]
        profile=profile,
        group=group,
        status=status,
        source="console",
        actor=ACTOR,
    )


@pytest.fixture
def world(store: Store) -> World:
    """The world of the module docstring."""
    with store.write() as s:
        made = {
            "Newsletter": groups.create_group(session=s, name="Newsletter", actor=ACTOR),
            "Offers": groups.create_group(session=s, name="Offers", actor=ACTOR),
            "Promotions": groups.create_group(session=s, name="Promotions", actor=ACTOR),
            "Beta": groups.create_group(session=s, name="Beta", policy="opt-in", actor=ACTOR),
            "Old": groups.create_group(session=s, name="Old", actor=ACTOR),
        }
        people = {
            "ann": profiles.create_profile(
                session=s,
                identity="ann",
                email="Ann@Example.com",
                name="Ann Lee",
                properties={"country": "DE", "plan": "pro"},
            ),
            "bob": profiles.create_profile(
                session=s,
                identity="bob",
                email="bob@example.org",
                name="Bob Stone",
                properties={"country": "de", "plan": "free"},
            ),
            "cat": profiles.create_profile(
                session=s,
                identity="cat",
                email="cat@example.net",
                name="Cat 100%",
                properties={"country": "FR"},
            ),
            "dan": profiles.create_profile(
                session=s, identity="dan", email="dan@example.com", name="Dan Brown"
            ),
            "eve": profiles.create_profile(
                session=s,
                identity="eve",
                email="eve@example.com",
                name="Ève Durand",
                properties={"country": "Deutschland", "plan": ""},
            ),
            "fay": profiles.create_profile(session=s, identity="fay", email=None, name="Fay"),
        }
        g, p = made, people
        for who, group, state in [
            ("ann", "Newsletter", "unsubscribed"),
            ("bob", "Promotions", "unsubscribed"),
            ("bob", "Beta", "subscribed"),
            ("cat", "Newsletter", "unsubscribed"),
            ("cat", "Offers", "unsubscribed"),
            ("dan", "Beta", "subscribed"),
            ("dan", "Old", "unsubscribed"),
            ("eve", "Newsletter", "subscribed"),
            ("eve", "Promotions", "unsubscribed"),
            ("eve", "Beta", "subscribed"),
            ("fay", "Newsletter", "unsubscribed"),
            ("fay", "Offers", "unsubscribed"),
            ("fay", "Promotions", "unsubscribed"),
            ("fay", "Old", "subscribed"),
        ]:
            _set(s, p[who], g[group], state)
        _set(s, p["dan"], None, "unsubscribed")
        old_id = g["Old"].id
        assert old_id is not None
        g["Old"] = groups.archive_group(session=s, group_id=old_id, actor=ACTOR)
    return World(store=store, groups=made, profiles=people)


def who(store: Store, rule: SegmentRule) -> set[str]:
    """The identities of a rule's members (every page)."""
    return set(segments.member_identities(store, rule))


def total(store: Store, rule: SegmentRule) -> int:
    return segments.count(store, rule).total


def rule(*conditions: object) -> SegmentRule:
    return SegmentRule(tuple(conditions))  # type: ignore[arg-type]


@pytest.fixture
def other(world: World) -> Iterator[Store]:
    """A second Store on the same database: another process, as far as the index knows."""
    second = open_store(world.store.url)
    yield second
    second.dispose()


def check(store: Store, r: SegmentRule, expected: set[str]) -> None:
    assert who(store, r) == expected
    assert total(store, r) == len(expected)


# --- Subscription Groups: Include / Exclude × ANY / ALL -------------------------


@pytest.mark.parametrize(
    ("mode", "match", "names", "expected"),
    [
        ("include", "any", ("Newsletter", "Offers"), {"ann", "bob", "dan", "eve"}),
        ("include", "all", ("Newsletter", "Offers"), {"bob", "dan", "eve"}),
        # Exclude ANY drops people subscribed to either: who left both stays.
        ("exclude", "any", ("Newsletter", "Offers"), {"cat", "fay"}),
        # Exclude ALL drops only people subscribed to both.
        ("exclude", "all", ("Newsletter", "Offers"), {"ann", "cat", "fay"}),
        # "Exclude Promotions" finds who left Promotions.
        ("exclude", "any", ("Promotions",), {"bob", "eve", "fay"}),
        ("include", "any", ("Promotions",), {"ann", "cat", "dan"}),
        # Opt-in: never set means not subscribed.
        ("include", "any", ("Beta",), {"bob", "dan", "eve"}),
        ("exclude", "any", ("Beta",), {"ann", "cat", "fay"}),
        # A condition naming an archived group still evaluates.
        ("include", "any", ("Old",), {"ann", "bob", "cat", "eve", "fay"}),
        ("exclude", "any", ("Old",), {"dan"}),
    ],
)
def test_groups_condition_include_exclude_any_all(
    world: World, mode: str, match: str, names: tuple[str, ...], expected: set[str]
) -> None:
    condition = GroupsCondition(mode=mode, group_ids=world.gid(*names), match=match)  # type: ignore[arg-type]
    check(world.store, rule(condition), expected)


@pytest.mark.parametrize(
    ("mode", "match", "expected"),
    [
        # fay is subscribed to no active group (only to the archived Old).
        ("include", "any", {"ann", "bob", "cat", "dan", "eve"}),
        # dan alone is subscribed to every active group; Old (archived,
        # which dan left) does not count.
        ("include", "all", {"dan"}),
        ("exclude", "any", {"fay"}),
        ("exclude", "all", {"ann", "bob", "cat", "eve", "fay"}),
    ],
)
def test_all_means_every_active_group(
    world: World, mode: str, match: str, expected: set[str]
) -> None:
    condition = GroupsCondition(mode=mode, group_ids=None, match=match)  # type: ignore[arg-type]
    check(world.store, rule(condition), expected)


def test_all_follows_unarchive(world: World, other: Store) -> None:
    everyone_in_all = rule(GroupsCondition(group_ids=None, match="all"))
    assert who(world.store, everyone_in_all) == {"dan"}
    with other.write() as s:
        groups.unarchive_group(session=s, group_id=world.gid("Old")[0], actor=ACTOR)
    # Old is active again and dan left it: nobody is subscribed to every group.
    assert who(world.store, everyone_in_all) == set()
    assert who(world.store, rule(GroupsCondition("exclude", None))) == set()


def test_policy_change_changes_never_set_states(world: World, other: Store) -> None:
    beta = rule(GroupsCondition(group_ids=world.gid("Beta")))
    assert total(world.store, beta) == 3
    with other.write() as s:
        groups.update_group(
            session=s,
            group_id=world.gid("Beta")[0],
            policy="opt-out",
            accept_consent_change=True,
            actor=ACTOR,
        )
    # Opt-out: nobody has left Beta, so everyone is subscribed.
    assert who(world.store, beta) == set(PEOPLE)


# --- the channel-wide email opt-out -----------------------------------------------


def test_email_condition(world: World) -> None:
    check(world.store, rule(EmailCondition("unsubscribed")), {"dan"})
    check(world.store, rule(EmailCondition("subscribed")), {"ann", "bob", "cat", "eve", "fay"})
    # The group states of a channel-wide opt-out stay as they are: dan still
    # counts as subscribed to Newsletter, and the email condition drops him.
    newsletter = GroupsCondition(group_ids=world.gid("Newsletter"))
    check(world.store, rule(newsletter), {"bob", "dan", "eve"})
    check(world.store, rule(newsletter, EmailCondition("subscribed")), {"bob", "eve"})


# --- profile fields and custom properties -----------------------------------------


@pytest.mark.parametrize(
    ("key", "op", "values", "expected"),
    [
        ("country", "equals", ("de",), {"ann", "bob"}),
        ("country", "equals", ("DE",), {"ann", "bob"}),
        ("country", "not_equals", ("De",), {"cat", "dan", "eve", "fay"}),
        ("country", "contains", ("DEU",), {"eve"}),
        ("country", "contains", ("e",), {"ann", "bob", "eve"}),
        ("country", "one_of", ("de", "Fr"), {"ann", "bob", "cat"}),
        ("country", "is_set", (), {"ann", "bob", "cat", "eve"}),
        ("country", "not_set", (), {"dan", "fay"}),
        # An empty value counts as not set.
        ("plan", "is_set", (), {"ann", "bob"}),
        ("plan", "not_set", (), {"cat", "dan", "eve", "fay"}),
        ("plan", "not_equals", ("pro",), {"bob", "cat", "dan", "eve", "fay"}),
        ("nosuchkey", "is_set", (), set()),
        ("nosuchkey", "not_equals", ("x",), set(PEOPLE)),
        ("email", "equals", ("ann@example.com",), {"ann"}),
        ("email", "contains", ("EXAMPLE.COM",), {"ann", "dan", "eve"}),
        ("email", "not_set", (), {"fay"}),
        ("identity", "one_of", ("ann", "FAY", "zed"), {"ann", "fay"}),
        ("name", "contains", ("an",), {"ann", "dan", "eve"}),
        # Case is ignored beyond ASCII too.
        ("name", "contains", ("ève",), {"eve"}),
        ("name", "equals", ("ÈVE DURAND",), {"eve"}),
        # % and _ are plain characters, not wildcards.
        ("name", "contains", ("0%",), {"cat"}),
        ("name", "contains", ("%",), {"cat"}),
        ("name", "contains", ("_",), set()),
    ],
)
def test_property_conditions(
    world: World, key: str, op: str, values: tuple[str, ...], expected: set[str]
) -> None:
    check(world.store, rule(PropertyCondition(key, op, values)), expected)


# --- the AND, per-clause counts and the sentence ----------------------------------


def test_clause_counts_and_total(world: World) -> None:
    r = rule(
        GroupsCondition(group_ids=world.gid("Newsletter", "Offers")),
        GroupsCondition("exclude", world.gid("Promotions")),
        PropertyCondition("country", "equals", ("DE",)),
    )
    result = segments.count(world.store, r)
    # Each clause against everyone; the total is their AND.
    assert result.clauses == (4, 3, 2)
    assert result.total == 1  # bob: Newsletter, left Promotions, country de
    assert result.profiles == 6
    assert who(world.store, r) == {"bob"}
    assert segments.count(world.store, SegmentRule()).total == 6


def test_sentence_wording(world: World) -> None:
    with world.store.read() as s:
        say = lambda r: segments.sentence(s, r)  # noqa: E731
        assert (
            say(
                rule(
                    GroupsCondition(group_ids=world.gid("Newsletter", "Offers")),
                    GroupsCondition("exclude", world.gid("Promotions")),
                )
            )
            == "People subscribed to any of Newsletter, Offers, and not subscribed to Promotions"
        )
        assert say(SegmentRule()) == "Everyone"
        assert say(rule(GroupsCondition())) == "People subscribed to any group"
        assert say(rule(GroupsCondition(match="all"))) == "People subscribed to every group"
        assert say(rule(GroupsCondition("exclude"))) == "People not subscribed to any group"
        assert (
            say(rule(GroupsCondition(group_ids=world.gid("Newsletter", "Beta"), match="all")))
            == "People subscribed to all of Newsletter, Beta"
        )
        assert (
            say(rule(GroupsCondition("exclude", world.gid("Newsletter", "Offers"), "all")))
            == "People not subscribed to both Newsletter and Offers"
        )
        assert (
            say(
                rule(
                    PropertyCondition("country", "not_equals", ("DE",)),
                    PropertyCondition("plan", "is_set"),
                    PropertyCondition("country", "one_of", ("DE", "FR")),
                    EmailCondition("unsubscribed"),
                )
            )
            == "People country is not DE (or not set), and plan is set, and country is one of "
            "DE, FR, and unsubscribed from all email"
        )


def test_rule_json_round_trip_and_bad_json(world: World) -> None:
    r = rule(
        GroupsCondition("exclude", world.gid("Promotions", "Old"), "all"),
        GroupsCondition(),
        PropertyCondition("country", "one_of", ("DE", "FR")),
        EmailCondition("subscribed"),
    )
    assert rule_from_json(r.to_json()) == r
    for bad in (
        {"conditions": [{"type": "groups", "mode": "both"}]},
        {"conditions": [{"type": "groups", "groups": []}]},
        {"conditions": [{"type": "property", "key": "country", "op": "like", "values": ["x"]}]},
        {"conditions": [{"type": "property", "key": "country", "op": "equals", "values": []}]},
        {"conditions": [{"type": "email", "state": "maybe"}]},
        {"conditions": [{"type": "colour"}]},
        {"conditions": "all"},
    ):
        with pytest.raises(InvalidInput):
            rule_from_json(bad)


def test_resolve_groups_refuses_unknown_and_archived(world: World) -> None:
    with world.store.read() as s:
        assert segments.resolve_groups(s, [" newsletter ", "OFFERS", "Newsletter"]) == world.gid(
            "Newsletter", "Offers"
        )
        with pytest.raises(UnknownGroup, match="No group is named 'Nope'"):
            segments.resolve_groups(s, ["Newsletter", "Nope"])
        with pytest.raises(RuleRefused, match="'Old' is archived"):
            segments.resolve_groups(s, ["Old"])
        with pytest.raises(InvalidInput):
            segments.resolve_groups(s, [" ", ""])


# --- the index follows the store --------------------------------------------------


def test_index_follows_changes_committed_by_another_store(world: World, other: Store) -> None:
    left_promotions = rule(GroupsCondition("exclude", world.gid("Promotions")))
    in_all = rule(GroupsCondition(match="any"))
    german = rule(PropertyCondition("country", "equals", ("de",)))
    assert who(world.store, left_promotions) == {"bob", "eve", "fay"}
    assert total(world.store, in_all) == 5
    assert total(world.store, german) == 2

    # A state change by another process.
    with other.write() as s:
        ann = profiles.get_profile(s, "ann")
        _set(s, ann, s.get(Group, world.gid("Promotions")[0]), "unsubscribed")
    assert who(world.store, left_promotions) == {"ann", "bob", "eve", "fay"}

    # A new profile (no event of its own), with a property.
    with other.write() as s:
        profiles.create_profile(session=s, identity="gus", properties={"country": "DE"})
    assert total(world.store, rule()) == 7
    assert total(world.store, german) == 3
    assert "gus" in who(world.store, in_all)

    # Archiving a group takes it out of All. Of the active groups cat was in
    # Promotions only, so now cat, like fay, is in no active group.
    with other.write() as s:
        groups.archive_group(session=s, group_id=world.gid("Promotions")[0], actor=ACTOR)
    assert who(world.store, rule(GroupsCondition("exclude"))) == {"cat", "fay"}
    # A channel-wide change.
    with other.write() as s:
        _set(s, profiles.get_profile(s, "dan"), None, "subscribed")
    assert total(world.store, rule(EmailCondition("unsubscribed"))) == 0


def test_index_follows_more_changes_than_one_ledger_page(store: Store) -> None:
    """Hundreds of changes since the last count all show in the next one."""
    with store.write() as s:
        group = groups.create_group(session=s, name="Newsletter", actor=ACTOR)
        people = [profiles.create_profile(session=s, identity=f"p{i:04d}") for i in range(1200)]
    left = rule(GroupsCondition("exclude", (group.id or 0,)))
    assert total(store, left) == 0
    second = open_store(store.url)
    try:
        with second.write() as s:
            for person in people:
                _set(s, person, group, "unsubscribed")
    finally:
        second.dispose()
    assert total(store, left) == 1200


def test_new_group_and_its_states_are_counted(world: World, other: Store) -> None:
    assert total(world.store, rule(GroupsCondition(match="all"))) == 1
    with other.write() as s:
        vip = groups.create_group(session=s, name="VIP", policy="opt-in", actor=ACTOR)
        _set(s, profiles.get_profile(s, "eve"), vip, "subscribed")
    assert who(world.store, rule(GroupsCondition(group_ids=(vip.id or 0,)))) == {"eve"}
    # dan is not in the new opt-in group: nobody is in every active group now.
    assert total(world.store, rule(GroupsCondition(match="all"))) == 0


# --- members ------------------------------------------------------------------


def test_members_pages_in_profile_order_with_effective_states(world: World) -> None:
    everyone = SegmentRule()
    pages = [segments.members(world.store, everyone, offset=o, limit=4) for o in (0, 4, 8)]
    assert [[m.identity for m in page] for page in pages] == [
        ["ann", "bob", "cat", "dan"],
        ["eve", "fay"],
        [],
    ]
    dan = pages[0][3]
    assert dan.all_email == "unsubscribed"
    states = dict(dan.states)
    # Active groups only (Old is archived), with effective states.
    assert set(states) == {"Newsletter", "Offers", "Promotions", "Beta"}
    assert states == {
        "Newsletter": "subscribed",
        "Offers": "subscribed",
        "Promotions": "subscribed",
        "Beta": "subscribed",
    }
    ann_states = dict(pages[0][0].states)
    assert ann_states["Newsletter"] == "unsubscribed" and ann_states["Beta"] == "unsubscribed"
    left = segments.members(world.store, rule(GroupsCondition("exclude", world.gid("Promotions"))))
    assert [m.identity for m in left] == ["bob", "eve", "fay"]
    assert segments.member_identities(world.store, everyone) == list(PEOPLE)


# --- saved segments -----------------------------------------------------------


def segment_events(store: Store) -> list[EventRecord]:
    with store.read() as s:
        return [e for e in ledger.recent_events(s, limit=1000) if e.name.startswith("Segment ")]


def test_save_rename_duplicate_delete_with_ledger_events(world: World) -> None:
    r = rule(
        GroupsCondition(group_ids=world.gid("Newsletter", "Offers")),
        GroupsCondition("exclude", world.gid("Promotions")),
    )
    with world.store.write() as s:
        saved = segments.save_segment(session=s, name="  Loyal readers ", rule=r, actor=ACTOR)
    assert saved.name == "Loyal readers" and saved.id is not None
    (event,) = segment_events(world.store)
    assert event.name == "Segment Saved" and event.actor == ACTOR
    assert event.properties["Segment"] == "Loyal readers"
    assert event.properties["Rule"] == (
        "People subscribed to any of Newsletter, Offers, and not subscribed to Promotions"
    )
    assert rule_from_json(event.properties["Definition"]) == r

    with world.store.read() as s:
        found = segments.get_segment(s, "LOYAL READERS")
        assert segments.segment_rule(found) == r
    assert total(world.store, segments.segment_rule(found)) == 2

    # Names are unique regardless of case.
    with pytest.raises(NameTaken), world.store.write() as s:
        segments.save_segment(session=s, name="loyal READERS", rule=SegmentRule(), actor=ACTOR)
    with pytest.raises(InvalidInput), world.store.write() as s:
        segments.save_segment(session=s, name="   ", rule=SegmentRule(), actor=ACTOR)

    # Replacing the rule of the same segment keeps its id.
    with world.store.write() as s:
        again = segments.save_segment(
            session=s,
            name="Loyal readers",
            rule=rule(EmailCondition()),
            actor=ACTOR,
            segment_id=saved.id,
        )
    assert again.id == saved.id

    with world.store.write() as s:
        other_one = segments.save_segment(
            session=s, name="Germans", rule=SegmentRule(), actor=ACTOR
        )
    with pytest.raises(NameTaken), world.store.write() as s:
        segments.rename_segment(session=s, segment_id=saved.id, name="GERMANS", actor=ACTOR)
    with world.store.write() as s:
        renamed = segments.rename_segment(
            session=s, segment_id=saved.id, name="Readers", actor=ACTOR
        )
    assert renamed.id == saved.id and renamed.name == "Readers"
    rename_event = segment_events(world.store)[-1]
    assert rename_event.name == "Segment Renamed"
    assert rename_event.properties["Previous Name"] == "Loyal readers"
    assert rename_event.properties["Segment"] == "Readers"

    with world.store.write() as s:
        copy1 = segments.duplicate_segment(session=s, segment_id=saved.id, actor=ACTOR)
        copy2 = segments.duplicate_segment(session=s, segment_id=saved.id, actor=ACTOR)
    assert (copy1.name, copy2.name) == ("Copy of Readers", "Copy 2 of Readers")
    assert copy1.definition == copy2.definition == renamed.definition
    with world.store.read() as s:
        names = [seg.name for seg in segments.list_segments(s)]
    assert names == ["Copy 2 of Readers", "Copy of Readers", "Germans", "Readers"]

    with world.store.write() as s:
        assert (
            segments.delete_segment(session=s, segment_id=other_one.id or 0, actor=ACTOR)
            == "Germans"
        )
    deleted = segment_events(world.store)[-1]
    assert deleted.name == "Segment Deleted" and deleted.properties["Segment"] == "Germans"
    with world.store.read() as s, pytest.raises(segments.UnknownSegment):
        segments.get_segment(s, "Germans")
    names_of = [e.name for e in segment_events(world.store)]
    assert names_of == [
        "Segment Saved",
        "Segment Saved",
        "Segment Saved",
        "Segment Renamed",
        "Segment Saved",
        "Segment Saved",
        "Segment Deleted",
    ]


def test_saved_segment_naming_an_archived_group_still_counts(world: World, other: Store) -> None:
    r = rule(GroupsCondition("exclude", world.gid("Promotions")))
    with world.store.write() as s:
        segments.save_segment(session=s, name="Left Promotions", rule=r, actor=ACTOR)
    with other.write() as s:
        groups.archive_group(session=s, group_id=world.gid("Promotions")[0], actor=ACTOR)
    with world.store.read() as s:
        saved = segments.segment_rule(segments.get_segment(s, "left promotions"))
        # Its opt-outs stay enforced: the saved condition still finds who left.
        assert segments.sentence(s, saved) == "People not subscribed to Promotions"
    assert who(world.store, saved) == {"bob", "eve", "fay"}


def test_save_refuses_a_rule_naming_a_group_that_does_not_exist(world: World) -> None:
    with pytest.raises(UnknownGroup), world.store.write() as s:
        segments.save_segment(
            session=s, name="Ghosts", rule=rule(GroupsCondition(group_ids=(999,))), actor=ACTOR
        )
    assert segment_events(world.store) == []


def test_a_profile_committed_after_a_newer_one_is_counted(pg_url: str) -> None:
    """PostgreSQL hands out ids at insert: a transaction holding a lower id can
    commit after one holding a higher id, and the index must still see it."""
    counter, slow_writer, fast_writer = open_store(pg_url), open_store(pg_url), open_store(pg_url)
    try:
        with counter.write() as s:
            beta = groups.create_group(session=s, name="Beta", policy="opt-in", actor=ACTOR)
            profiles.create_profile(session=s, identity="first")
        in_beta = rule(GroupsCondition(group_ids=(beta.id or 0,)))
        assert total(counter, rule()) == 1
        slow = slow_writer.write()
        s = slow.__enter__()
        late = profiles.create_profile(session=s, identity="late")  # the lower id, not committed
        _set(s, late, s.get(Group, beta.id), "subscribed")
        with fast_writer.write() as other_session:
            profiles.create_profile(session=other_session, identity="early")
        assert total(counter, rule()) == 2
        slow.__exit__(None, None, None)
        assert who(counter, rule()) == {"first", "late", "early"}
        assert who(counter, in_beta) == {"late"}
    finally:
        for opened in (counter, slow_writer, fast_writer):
            opened.dispose()
