"""Campaigns and saved segments share one lifecycle (``saved_objects.SavedKind``).

Both kinds find an object by id or by name (case-insensitively), refuse a
name another object of the kind has, pick the first free "Copy of" name, and
name the object in its ledger events: the same rules, in each kind's words.
"""

import pytest

from app.core import campaigns, ledger, segments
from app.core.errors import NameTaken, RuleRefused
from app.core.groups import name_key
from app.core.saved_objects import SavedKind
from app.core.segment_rules import SegmentRule
from app.core.store import Store

ACTOR = "ada"


def _make_both(store: Store) -> tuple[int, int]:
    with store.write() as session:
        campaign = campaigns.create_campaign(session=session, name="Spring Sale", actor=ACTOR)
        segment = segments.save_segment(
            session=session, name="Spring Sale", rule=SegmentRule(), actor=ACTOR
        )
    assert campaign.id is not None and segment.id is not None
    return campaign.id, segment.id


KINDS = [
    pytest.param(campaigns.KIND, "campaign", "subgroups campaigns list", id="campaigns"),
    pytest.param(segments.KIND, "segment", "subgroups segments list", id="segments"),
]


@pytest.mark.parametrize(("kind", "noun", "command"), KINDS)
def test_each_kind_finds_by_name_and_id_and_says_where_to_look(
    store: Store, kind: SavedKind, noun: str, command: str
) -> None:
    ids = dict(zip(("campaign", "segment"), _make_both(store), strict=True))
    with store.read() as session:
        assert kind.by_name(session, "  spring SALE ").id == ids[noun]
        assert kind.by_id(session, ids[noun]).name == "Spring Sale"
        with pytest.raises(RuleRefused) as unknown_name:
            kind.by_name(session, "Autumn")
        with pytest.raises(RuleRefused) as unknown_id:
            kind.by_id(session, 999)

    assert unknown_name.value.message == f"No {noun} is named 'Autumn'; `{command}` lists them"
    assert unknown_name.value.field == noun
    assert unknown_id.value.message == f"No {noun} has id 999"


@pytest.mark.parametrize(("kind", "noun", "command"), KINDS)
def test_each_kind_refuses_a_taken_name_and_finds_a_free_copy_name(
    store: Store, kind: SavedKind, noun: str, command: str
) -> None:
    ids = dict(zip(("campaign", "segment"), _make_both(store), strict=True))
    with store.read() as session:
        with pytest.raises(NameTaken) as taken:
            kind.check_name_free(session, name_key("SPRING sale"))
        kind.check_name_free(session, name_key("spring sale"), except_id=ids[noun])  # itself
        copy = kind.copy_name(session, "Spring Sale", longest=64)

    assert taken.value.message == f"A {noun} named 'Spring Sale' already exists"
    assert copy == "Copy of Spring Sale"


def test_a_second_copy_of_a_segment_is_copy_2_and_names_it_in_the_ledger(store: Store) -> None:
    _, segment_id = _make_both(store)
    with store.write() as session:
        first = segments.duplicate_segment(session=session, segment_id=segment_id, actor=ACTOR)
        second = segments.duplicate_segment(session=session, segment_id=segment_id, actor=ACTOR)
        assert (first.name, second.name) == ("Copy of Spring Sale", "Copy 2 of Spring Sale")
        saved = ledger.recent_events(session, limit=1, name=segments.SEGMENT_SAVED)[0]

    assert saved.properties["Segment"] == "Copy 2 of Spring Sale"
    assert saved.properties["Segment ID"] == second.id
