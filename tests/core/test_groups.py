"""Subscription groups: name rules, the 50-active limit, rename, update, archive.

Every test runs on a real store, on SQLite and on PostgreSQL (the ``store``
fixture), and checks both the rows a user would see and the ledger.
"""

from datetime import datetime

import pytest

from app.core import groups, ledger, profiles, subscriptions
from app.core.errors import GroupLimitReached, InvalidInput, NameTaken, UnknownGroup, WrongStatus
from app.core.ledger import EventRecord
from app.core.models import Group
from app.core.store import Store

ACTOR = "ada"
LIMIT_MESSAGE = "50 of 50 groups are active: archive one to make room"


def create(store: Store, name: str, **kwargs: object) -> Group:
    with store.write() as session:
        return groups.create_group(session=session, name=name, actor=ACTOR, **kwargs)  # type: ignore[arg-type]


def archive(store: Store, group_id: int) -> Group:
    with store.write() as session:
        return groups.archive_group(session=session, group_id=group_id, actor=ACTOR)


def unarchive(store: Store, group_id: int) -> Group:
    with store.write() as session:
        return groups.unarchive_group(session=session, group_id=group_id, actor=ACTOR)


def update(store: Store, group_id: int, **kwargs: object) -> Group:
    with store.write() as session:
        return groups.update_group(session=session, group_id=group_id, actor=ACTOR, **kwargs)  # type: ignore[arg-type]


def all_groups(store: Store) -> list[Group]:
    with store.read() as session:
        return groups.list_groups(session, status="all")


def events(store: Store, name: str | None = None) -> list[EventRecord]:
    with store.read() as session:
        return ledger.recent_events(session, limit=10_000, name=name)


def active_count(store: Store) -> int:
    with store.read() as session:
        return groups.active_count(session)


def fill_to(store: Store, active: int, *, archived: int = 0) -> list[Group]:
    """``archived`` archived groups and ``active`` active ones, created in that order."""
    made: list[Group] = []
    for i in range(archived):
        group = create(store, f"Old {i:02d}")
        assert group.id is not None
        made.append(archive(store, group.id))
    for i in range(active):
        made.append(create(store, f"Group {i:02d}"))
    return made


# --- Creating, and the name rules ----------------------------------------------


def test_create_stores_the_group_and_writes_group_created(
    store: Store, fixed_clock: datetime
) -> None:
    group = create(store, "  Newsletter  ", description=" Weekly news ", policy="opt-in")

    assert group.id is not None
    (stored,) = all_groups(store)
    assert stored.id == group.id
    assert stored.name == "Newsletter"  # trimmed
    assert stored.description == "Weekly news"
    assert stored.policy == "opt-in"
    assert stored.channel == "email"
    assert stored.status == "active"
    assert stored.shown_on_landing_page is True
    assert stored.created_at == stored.updated_at == fixed_clock
    assert stored.created_at.utcoffset() is not None  # read back with its time zone
    assert stored.archived_at is None
    assert stored.created_by == stored.updated_by == ACTOR

    (event,) = events(store)
    assert event.name == "Group Created"
    assert event.ts == fixed_clock
    assert event.group_id == group.id
    assert event.actor == ACTOR
    assert event.source == "console"
    assert event.properties == {
        "Group": "Newsletter",
        "Group ID": group.id,
        "Channel": "Email",
        "Description": "Weekly news",
        "Policy": "opt-in",
        "Shown On Landing Page": True,
        "Actor": ACTOR,
    }


def test_default_policy_is_opt_out(store: Store) -> None:
    assert create(store, "Promotions").policy == "opt-out"


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("", "Name is required"),
        ("    ", "Name is required"),
        ("x" * 65, "65 characters"),
        ("Tab\there", "control character"),
        ("Line\nbreak", "control character"),
    ],
    ids=["empty", "blank", "65-chars", "tab", "newline"],
)
def test_bad_names_are_refused_and_change_nothing(store: Store, name: str, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        create(store, name)

    assert says in refused.value.message
    assert refused.value.field == "name"
    assert refused.value.exit_code == 2
    assert all_groups(store) == []
    assert events(store) == []


def test_a_name_of_64_characters_is_accepted_once_trimmed(store: Store) -> None:
    name = "n" * 64
    assert create(store, f"  {name}  ").name == name


def test_a_name_that_grows_when_case_folded_is_accepted(store: Store) -> None:
    """ "ß" folds to "ss": 64 of them make a 128-character key, which must fit."""
    name = "ß" * 64
    assert create(store, name).name == name
    create(store, "ß" * 32)
    with pytest.raises(NameTaken):
        create(store, "SS" * 32)


@pytest.mark.parametrize("other", ["Newsletter", "NEWSLETTER", "newsletter", "  newsLETTER "])
def test_names_are_unique_case_insensitively(store: Store, other: str) -> None:
    create(store, "Newsletter")

    with pytest.raises(NameTaken) as refused:
        create(store, other)

    assert "'Newsletter'" in refused.value.message
    assert refused.value.exit_code == 1
    assert [g.name for g in all_groups(store)] == ["Newsletter"]
    assert len(events(store, "Group Created")) == 1


def test_an_archived_group_keeps_its_name_taken(store: Store) -> None:
    old = create(store, "Offers")
    assert old.id is not None
    archive(store, old.id)

    with pytest.raises(NameTaken) as refused:
        create(store, "offers")

    assert "(archived)" in refused.value.message
    assert [(g.name, g.status) for g in all_groups(store)] == [("Offers", "archived")]


@pytest.mark.parametrize(
    "name",
    ["[bold red]x[/]", "<b>x</b>", "<script>alert(1)</script>", "[b]x[/b] & 'quotes' \"too\""],
)
def test_markup_in_names_is_stored_literally(store: Store, name: str) -> None:
    group = create(store, name, description=f"about {name}")

    (stored,) = all_groups(store)
    assert stored.name == name
    assert stored.description == f"about {name}"
    assert groups.group_to_json(stored)["name"] == name
    (event,) = events(store)
    assert event.properties["Group"] == name
    with store.read() as session:
        assert groups.find_group(session, name).id == group.id


def test_description_and_policy_are_checked(store: Store) -> None:
    with pytest.raises(InvalidInput) as too_long:
        create(store, "A", description="d" * 281)
    assert too_long.value.field == "description"
    assert "281 characters" in too_long.value.message

    with pytest.raises(InvalidInput) as bad_policy:
        create(store, "A", policy="maybe")
    assert bad_policy.value.field == "policy"
    assert "'maybe'" in bad_policy.value.message

    assert all_groups(store) == []
    assert create(store, "A", description="d" * 280).description == "d" * 280


def test_find_group_ignores_case_and_includes_archived(store: Store) -> None:
    group = create(store, "Product Updates")
    assert group.id is not None
    archive(store, group.id)

    with store.read() as session:
        assert groups.find_group(session, "  product updates ").id == group.id
        with pytest.raises(UnknownGroup) as unknown:
            groups.find_group(session, "Nope")
        assert "'Nope'" in unknown.value.message
        with pytest.raises(UnknownGroup):
            groups.get_group(session, 9999)


# --- The 50-active limit -------------------------------------------------------


def test_the_51st_active_group_is_refused_and_nothing_changes(store: Store) -> None:
    fill_to(store, 50)
    before = events(store)

    with pytest.raises(GroupLimitReached) as refused:
        create(store, "One Too Many")

    assert str(refused.value) == LIMIT_MESSAGE
    assert refused.value.exit_code == 1
    assert active_count(store) == 50
    assert "One Too Many" not in {g.name for g in all_groups(store)}
    assert events(store) == before


def test_archiving_frees_a_slot(store: Store) -> None:
    made = fill_to(store, 50)
    assert made[0].id is not None
    archive(store, made[0].id)

    created = create(store, "Room Made")

    assert created.status == "active"
    assert active_count(store) == 50
    with pytest.raises(GroupLimitReached):
        create(store, "Still No Room")


def test_unarchive_is_refused_when_50_are_active(store: Store) -> None:
    made = fill_to(store, 50, archived=1)
    old = made[0]
    assert old.id is not None and old.status == "archived"
    before = events(store)

    with pytest.raises(GroupLimitReached) as refused:
        unarchive(store, old.id)

    assert str(refused.value) == LIMIT_MESSAGE
    with store.read() as session:
        assert groups.get_group(session, old.id).status == "archived"
    assert active_count(store) == 50
    assert events(store) == before


def test_unarchive_succeeds_below_the_limit(store: Store) -> None:
    made = fill_to(store, 49, archived=1)
    assert made[0].id is not None

    back = unarchive(store, made[0].id)

    assert back.status == "active"
    assert active_count(store) == 50


# --- Rename and update ---------------------------------------------------------


def test_rename_keeps_the_id_and_old_events_keep_the_old_name(store: Store) -> None:
    group = create(store, "Offers")
    assert group.id is not None
    with store.write() as session:
        profile = profiles.create_profile(session=session, identity="p@example.com")
        subscriptions.set_state(
            session=session,
            profile=profile,
            group=group,
            status="unsubscribed",
            source="console",
            actor=ACTOR,
        )

    renamed = update(store, group.id, name="Deals")

    assert renamed.id == group.id
    (stored,) = all_groups(store)
    assert (stored.id, stored.name) == (group.id, "Deals")
    created, unsubscribed, updated = events(store)
    assert created.properties["Group"] == "Offers"
    assert unsubscribed.properties["Group"] == "Offers"
    assert unsubscribed.group_id == group.id
    assert updated.name == "Group Updated"
    assert updated.properties["Group"] == "Deals"
    assert updated.properties["Previous Name"] == "Offers"
    assert updated.properties["Changes"] == {"Name": ["Offers", "Deals"]}
    # The old name is free again; the new one is taken.
    with pytest.raises(NameTaken):
        create(store, "deals")
    assert create(store, "Offers").id != group.id


def test_rename_to_a_taken_name_is_refused(store: Store) -> None:
    create(store, "Newsletter")
    other = create(store, "Promotions")
    assert other.id is not None

    with pytest.raises(NameTaken):
        update(store, other.id, name="NEWSLETTER")

    assert sorted(g.name for g in all_groups(store)) == ["Newsletter", "Promotions"]
    assert events(store, "Group Updated") == []


def test_a_group_may_change_the_case_of_its_own_name(store: Store) -> None:
    group = create(store, "newsletter")
    assert group.id is not None

    assert update(store, group.id, name="Newsletter").name == "Newsletter"
    (updated,) = events(store, "Group Updated")
    assert updated.properties["Changes"] == {"Name": ["newsletter", "Newsletter"]}


def test_update_writes_one_event_listing_every_change(store: Store, fixed_clock: datetime) -> None:
    group = create(store, "Newsletter", description="Weekly")
    assert group.id is not None

    changed = update(
        store, group.id, description="Monthly", policy="opt-in", shown_on_landing_page=False
    )

    assert (changed.description, changed.policy, changed.shown_on_landing_page) == (
        "Monthly",
        "opt-in",
        False,
    )
    assert changed.updated_at > changed.created_at
    (event,) = events(store, "Group Updated")
    assert event.group_id == group.id
    assert event.ts == changed.updated_at
    assert event.properties["Changes"] == {
        "Description": ["Weekly", "Monthly"],
        "Policy": ["opt-out", "opt-in"],
        "Shown On Landing Page": [True, False],
    }


def test_update_with_nothing_new_writes_nothing(store: Store, fixed_clock: datetime) -> None:
    group = create(store, "Newsletter", description="Weekly")
    assert group.id is not None

    same = update(
        store,
        group.id,
        name=" Newsletter ",
        description="Weekly",
        policy="opt-out",
        shown_on_landing_page=True,
    )

    assert same.updated_at == group.updated_at
    assert [e.name for e in events(store)] == ["Group Created"]


def test_update_checks_its_input_and_changes_nothing(store: Store) -> None:
    group = create(store, "Newsletter")
    assert group.id is not None

    with pytest.raises(InvalidInput):
        update(store, group.id, name=" ", description="new")
    with pytest.raises(InvalidInput):
        update(store, group.id, description="d" * 281)
    with pytest.raises(UnknownGroup):
        update(store, 9999, description="new")

    (stored,) = all_groups(store)
    assert (stored.name, stored.description) == ("Newsletter", "")
    assert events(store, "Group Updated") == []


# --- Archive and unarchive -----------------------------------------------------


def test_archive_and_unarchive_write_their_events(store: Store, fixed_clock: datetime) -> None:
    group = create(store, "Promotions")
    assert group.id is not None

    archived = archive(store, group.id)
    assert archived.status == "archived"
    assert archived.archived_at is not None and archived.archived_at > fixed_clock
    with store.read() as session:
        assert groups.list_groups(session) == []
        assert [g.name for g in groups.list_groups(session, status="archived")] == ["Promotions"]

    back = unarchive(store, group.id)
    assert back.status == "active"
    assert back.archived_at is None
    with store.read() as session:
        assert [g.name for g in groups.list_groups(session)] == ["Promotions"]

    created, archived_event, unarchived_event = events(store)
    assert [created.name, archived_event.name, unarchived_event.name] == [
        "Group Created",
        "Group Archived",
        "Group Unarchived",
    ]
    assert archived_event.ts == archived.archived_at
    for event in (archived_event, unarchived_event):
        assert event.group_id == group.id
        assert event.actor == ACTOR
        assert event.properties == {
            "Group": "Promotions",
            "Group ID": group.id,
            "Channel": "Email",
            "Actor": ACTOR,
        }


def test_archive_twice_and_unarchive_an_active_group_are_refused(store: Store) -> None:
    group = create(store, "Promotions")
    assert group.id is not None

    with pytest.raises(WrongStatus) as active:
        unarchive(store, group.id)
    assert "already active" in active.value.message
    archive(store, group.id)
    with pytest.raises(WrongStatus) as archived:
        archive(store, group.id)
    assert "already archived" in archived.value.message

    assert [e.name for e in events(store)] == ["Group Created", "Group Archived"]


def test_list_groups_orders_by_name_and_checks_the_filter(store: Store) -> None:
    for name in ("beta", "Alpha", "gamma"):
        create(store, name)

    with store.read() as session:
        assert [g.name for g in groups.list_groups(session)] == ["Alpha", "beta", "gamma"]
        with pytest.raises(InvalidInput):
            groups.list_groups(session, status="deleted")


# --- Counts --------------------------------------------------------------------


def test_group_counts_follow_each_groups_policy(store: Store) -> None:
    opt_out = create(store, "Newsletter")
    opt_in = create(store, "Beta Program", policy="opt-in")
    untouched_out = create(store, "Offers")
    untouched_in = create(store, "Research", policy="opt-in")
    with store.write() as session:
        people = [
            profiles.create_profile(session=session, identity=f"p{i}@example.com") for i in range(4)
        ]

        def set_to(profile_index: int, group: Group, status: str) -> None:
            subscriptions.set_state(
                session=session,
                profile=people[profile_index],
                group=group,
                status=status,
                source="console",
                actor=ACTOR,
            )

        set_to(0, opt_out, "unsubscribed")
        set_to(1, opt_out, "subscribed")  # explicit, same as the default
        set_to(0, opt_in, "subscribed")
        set_to(1, opt_in, "subscribed")
        set_to(2, opt_in, "unsubscribed")  # explicit, same as the default
        # The channel-wide opt-out is a separate fact: it does not change the counts.
        subscriptions.set_state(
            session=session,
            profile=people[3],
            group=None,
            status="unsubscribed",
            source="console",
            actor=ACTOR,
        )

    with store.read() as session:
        counts = groups.group_counts(session)

    assert counts[opt_out.id] == groups.GroupCounts(subscribed=3, unsubscribed=1)  # type: ignore[index]
    assert counts[opt_in.id] == groups.GroupCounts(subscribed=2, unsubscribed=2)  # type: ignore[index]
    assert counts[untouched_out.id] == groups.GroupCounts(subscribed=4, unsubscribed=0)  # type: ignore[index]
    assert counts[untouched_in.id] == groups.GroupCounts(subscribed=0, unsubscribed=4)  # type: ignore[index]


def test_group_counts_include_archived_groups(store: Store) -> None:
    group = create(store, "Old")
    assert group.id is not None
    with store.write() as session:
        profiles.create_profile(session=session, identity="p@example.com")
    archive(store, group.id)

    with store.read() as session:
        assert groups.group_counts(session) == {group.id: groups.GroupCounts(1, 0)}


# --- Policy changes (issue 8, point 3) ------------------------------------------


def _people_in(store: Store, group: Group, *, count: int, left: int, joined: int) -> None:
    """``count`` profiles; the first ``left`` unsubscribed from ``group``, the next ``joined``
    subscribed to it explicitly; the rest never set a state for it."""
    with store.write() as session:
        people = [
            profiles.create_profile(session=session, identity=f"p{i}@example.com")
            for i in range(count)
        ]
        for i, person in enumerate(people[: left + joined]):
            subscriptions.set_state(
                session=session,
                profile=person,
                group=group,
                status="unsubscribed" if i < left else "subscribed",
                source="console",
                actor=ACTOR,
            )


def test_policy_change_counts_people_whose_state_flips(store: Store) -> None:
    newsletter = create(store, "Newsletter")
    beta = create(store, "Beta", policy="opt-in")
    assert newsletter.id is not None and beta.id is not None
    _people_in(store, newsletter, count=10, left=2, joined=3)

    with store.read() as session:
        to_in = groups.policy_change(session, group_id=newsletter.id, policy="opt-in")
        same = groups.policy_change(session, group_id=newsletter.id, policy="opt-out")
        to_out = groups.policy_change(session, group_id=beta.id, policy="opt-out")

    # The 5 who never chose go from subscribed to unsubscribed; the 5 who chose keep it.
    assert (to_in.old_policy, to_in.new_policy) == ("opt-out", "opt-in")
    assert (to_in.to_unsubscribed, to_in.to_subscribed, to_in.affected) == (5, 0, 5)
    assert same.affected == 0
    # Nobody chose for Beta: all 10 would be subscribed without ever opting in.
    assert (to_out.to_unsubscribed, to_out.to_subscribed, to_out.affected) == (0, 10, 10)
    assert to_out.describe() == (
        "changing Beta from opt-in to opt-out turns 10 people from unsubscribed to subscribed"
    )


def test_a_policy_change_that_flips_consent_needs_consent(store: Store) -> None:
    newsletter = create(store, "Newsletter")
    assert newsletter.id is not None
    _people_in(store, newsletter, count=3001, left=1, joined=0)

    with pytest.raises(groups.PolicyChangeUnconfirmed) as refused:
        update(store, newsletter.id, policy="opt-in", description="Monthly", name="Monthly news")

    assert refused.value.exit_code == 1
    assert refused.value.change.affected == 3000
    assert refused.value.message == (
        "changing Newsletter from opt-out to opt-in turns 3,000 people "
        "from subscribed to unsubscribed"
    )
    # Nothing changed: not the policy, not the description, no event.
    (stored,) = all_groups(store)
    assert (stored.name, stored.policy, stored.description) == ("Newsletter", "opt-out", "")
    assert events(store, "Group Updated") == []
    with store.read() as session:
        assert groups.group_counts(session)[newsletter.id].subscribed == 3000


def test_a_confirmed_policy_change_records_old_new_and_affected(
    store: Store, fixed_clock: datetime
) -> None:
    newsletter = create(store, "Newsletter")
    assert newsletter.id is not None
    _people_in(store, newsletter, count=4, left=1, joined=1)

    changed = update(store, newsletter.id, policy="opt-in", accept_consent_change=True)

    assert changed.policy == "opt-in"
    (event,) = events(store, "Group Updated")
    assert event.properties["Old Policy"] == "opt-out"
    assert event.properties["New Policy"] == "opt-in"
    assert event.properties["Affected"] == 2
    assert event.properties["Changes"] == {"Policy": ["opt-out", "opt-in"]}
    assert "policy 'opt-out' → 'opt-in' (2 people's state changed)" in ledger.summary(event)
    with store.read() as session:
        assert groups.group_counts(session)[newsletter.id] == groups.GroupCounts(1, 3)


def test_a_policy_change_that_flips_nobody_needs_no_consent(store: Store) -> None:
    newsletter = create(store, "Newsletter")
    assert newsletter.id is not None
    _people_in(store, newsletter, count=2, left=1, joined=1)  # both chose

    changed = update(store, newsletter.id, policy="opt-in")

    assert changed.policy == "opt-in"
    (event,) = events(store, "Group Updated")
    assert (event.properties["Old Policy"], event.properties["Affected"]) == ("opt-out", 0)
