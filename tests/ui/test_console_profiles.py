"""The Profiles section: switching to it, searching, a person's effective state
and its origin per group, and changing a state with a reason."""

import threading
from pathlib import Path

import pytest
from console_pilot import (
    CONSOLE_USER,
    SEED_ACTOR,
    SIZE,
    column,
    paste,
    select_row,
    settle,
    show_section,
    start,
    table_rows,
    wait_for,
)
from textual.widgets import ContentSwitcher, DataTable, Input, RadioSet, Select, Static

from app.core import ledger, profiles
from app.core.models import STATUS_ACTIVE, SUBSCRIBED, UNSUBSCRIBED
from app.core.profiles import ProfileView
from app.core.store import Store
from app.ui.modals.change_state import ALL_EMAIL, ChangeStateModal
from app.ui.sections.profiles import ProfilesSection


def view_of(store: Store, identity: str) -> ProfileView:
    with store.read() as session:
        return profiles.profile_view(session, identity)


def shown_identity(app: object) -> str | None:
    view = app.query_one(ProfilesSection).view  # type: ignore[attr-defined]
    return view.identity if view else None


def expected_group_rows(view: ProfileView) -> list[list[str]]:
    """The per-group rows a user should read: name, effective, stored, where from."""
    return [
        [
            g.group_name + ("" if g.group_status == STATUS_ACTIVE else " (archived)"),
            g.effective,
            g.stored or "—",
            g.origin + (f" — {g.reason}" if g.reason else ""),
        ]
        for g in view.groups
    ]


async def search_for(pilot, text: str) -> None:  # type: ignore[no-untyped-def]
    """Press / and type a query; wait for the results (and the detail loads they start)."""
    app = pilot.app
    await pilot.press("slash")
    assert app.focused is app.query_one("#profile-search", Input)
    await paste(pilot, text)
    await settle(
        pilot,
        lambda: str(app.query_one("#profiles-found", Static).render()).endswith(
            f"matching {text!r}"
        ),
        what=f"the search for {text!r}",
    )


def first_profile(store: Store) -> ProfileView:
    """The profile the Profiles section shows first (the first identity in the store)."""
    with store.read() as session:
        return profiles.profile_view(session, profiles.search_profiles(session, "")[0].identity)


async def tab_to(pilot, selector: str, *, limit: int = 8) -> None:  # type: ignore[no-untyped-def]
    """Press tab until the widget matching ``selector`` has focus."""
    target = pilot.app.screen.query_one(selector)
    for _ in range(limit):
        if pilot.app.focused is target:
            return
        await pilot.press("tab")
    assert pilot.app.focused is target, f"tab never reached {selector}"


async def test_2_switches_to_profiles_and_search_filters_them(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    with store.read() as session:
        expected = [p.identity for p in profiles.search_profiles(session, "tanaka")]
        total = profiles.count_profiles(session)
    assert 1 < len(expected) < total
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        switcher = app.query_one("#sections", ContentSwitcher)
        await pilot.press("2")
        assert switcher.current == "profiles"
        table = app.query_one("#profiles-table", DataTable)
        assert app.focused is table
        assert not app.query_one("#groups").display and app.query_one("#profiles").display
        bar = app.query_one("#section-bar", Static).render()
        selected = [span for span in bar.spans if "reverse" in str(span.style)]  # type: ignore[attr-defined]
        assert [str(bar)[s.start : s.end].strip() for s in selected] == ["2 Profiles"]
        assert table.row_count == 200  # the first 200 of the store

        await search_for(pilot, "tanaka")
        assert column(table) == expected
        assert all("tanaka" in row[1].casefold() for row in table_rows(table))
        found = str(app.query_one("#profiles-found", Static).render())
        assert found == f"{len(expected)} of {total:,} profiles matching 'tanaka'"
        # Enter in the search box hands focus to the results.
        await pilot.press("enter")
        assert app.focused is table

        await pilot.press("1")
        assert switcher.current == "groups"
        assert app.focused is app.query_one("#groups-table", DataTable)


async def test_selected_profile_shows_effective_states_and_origin(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    with store.read() as session:
        hits = [p.identity for p in profiles.search_profiles(session, "tanaka")]
    # A person with a story: an explicit unsubscribe that came with a reason.
    views = [view_of(store, identity) for identity in hits]
    person = next(v for v in views if any(g.stored == UNSUBSCRIBED and g.reason for g in v.groups))
    assert person.identity != hits[0]
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")
        await search_for(pilot, "tanaka")
        await pilot.press("enter")
        await select_row(pilot, app.query_one("#profiles-table", DataTable), person.identity)
        await settle(
            pilot, lambda: shown_identity(app) == person.identity, what="the selected profile"
        )
        rows = table_rows(app.query_one("#profile-groups", DataTable))
        summary = str(app.query_one("#profile-summary", Static).render())

    assert rows == expected_group_rows(person)
    by_name = {row[0]: row for row in rows}
    left = next(g for g in person.groups if g.stored == UNSUBSCRIBED and g.reason)
    assert by_name[left.group_name][1:3] == ["unsubscribed", "unsubscribed"]
    assert by_name[left.group_name][3].startswith(f"import by {SEED_ACTOR}, 20")
    assert by_name[left.group_name][3].endswith(f" — {left.reason}")
    default = next(g for g in person.groups if g.stored is None and g.group_status == STATUS_ACTIVE)
    assert by_name[default.group_name][2:] == ["—", f"{default.policy} policy default"]
    assert summary.startswith(person.identity)
    assert f"All email: {person.all_email}" in summary


async def test_the_detail_names_the_other_profiles_with_the_same_address(
    sample_db: Path, make_app, open_db
) -> None:
    """One address is one recipient: a profile whose address another profile carries (in
    another case) says so in its detail."""
    app = make_app(sample_db)
    store = open_db(sample_db)
    person = first_profile(store)
    assert person.email
    with store.write() as session:
        profiles.create_profile(
            session=session, identity="zz-twin", email=f" {person.email.upper()}"
        )
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")
        await settle(
            pilot,
            lambda: (
                "Same address as: zz-twin"
                in str(app.query_one("#profile-summary", Static).render())
            ),
            what="the twin in the summary",
        )
        assert shown_identity(app) == person.identity


async def test_s_unsubscribes_from_a_group_with_a_reason(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    person = first_profile(store)
    group = next(
        g
        for g in person.groups
        if g.effective == SUBSCRIBED and g.stored is None and g.group_status == STATUS_ACTIVE
    )
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")
        assert shown_identity(app) == person.identity
        groups_table = app.query_one("#profile-groups", DataTable)
        await tab_to(pilot, "#profile-groups")
        await select_row(pilot, groups_table, group.group_name)
        await pilot.press("s")
        form = app.screen
        assert isinstance(form, ChangeStateModal)
        # The form opens on the group under the cursor, offering the other state.
        assert form.query_one("#target", Select).value == group.group_id
        assert form.query_one("#status", RadioSet).pressed_button.id == "unsubscribed"  # type: ignore[union-attr]
        await tab_to(pilot, "#reason")
        await paste(pilot, "asked by phone")
        await pilot.press("ctrl+s")
        await settle(
            pilot,
            lambda: (
                app.screen is not form
                and table_rows(groups_table)[column(groups_table).index(group.group_name)][1]
                == UNSUBSCRIBED
            ),
            what="the detail to show the new state",
        )
        row = table_rows(groups_table)[column(groups_table).index(group.group_name)]
        history = table_rows(app.query_one("#profile-history", DataTable))

    after = view_of(store, person.identity)
    changed = next(g for g in after.groups if g.group_id == group.group_id)
    assert (changed.stored, changed.effective, changed.reason) == (
        UNSUBSCRIBED,
        UNSUBSCRIBED,
        "asked by phone",
    )
    assert [g for g in after.groups if g.group_id != group.group_id] == [
        g for g in person.groups if g.group_id != group.group_id
    ]
    new_events = [e for e in after.history if e.id not in {h.id for h in person.history}]
    assert len(new_events) == 1
    event = new_events[0]
    assert event.name == ledger.CHANNEL_UNSUBSCRIBED
    assert (event.source, event.actor) == ("console", CONSOLE_USER)
    assert {
        k: event.properties[k]
        for k in (
            "Group",
            "Group ID",
            "Subscription Type",
            "Old State",
            "New State",
            "Resubscribed",
            "Source",
            "Actor",
            "Reason",
        )
    } == {
        "Group": group.group_name,
        "Group ID": group.group_id,
        "Subscription Type": "Group",
        "Old State": None,
        "New State": UNSUBSCRIBED,
        "Resubscribed": False,
        "Source": "console",
        "Actor": CONSOLE_USER,
        "Reason": "asked by phone",
    }
    when = event.ts.astimezone().strftime("%Y-%m-%d %H:%M")
    assert row == [
        group.group_name,
        UNSUBSCRIBED,
        UNSUBSCRIBED,
        f"console by {CONSOLE_USER}, {when} — asked by phone",
    ]
    assert history[0][:2] == [when, ledger.CHANNEL_UNSUBSCRIBED]
    assert "asked by phone" in history[0][2]


async def test_escape_cancels_and_s_unsubscribes_from_all_email(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    before = first_profile(store)
    identity = before.identity
    assert before.all_email == SUBSCRIBED
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")
        assert shown_identity(app) == identity
        # Escape closes the form and changes nothing.
        await pilot.press("s")
        assert isinstance(app.screen, ChangeStateModal)
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, ChangeStateModal)
        assert view_of(store, identity) == before

        await pilot.press("s")
        form = app.screen
        assert isinstance(form, ChangeStateModal)
        # The form starts on a group, never on the channel-wide state: choose it.
        target = form.query_one("#target", Select)
        assert target.value != ALL_EMAIL
        await pilot.press("shift+tab")
        assert app.focused is target
        await pilot.press("enter")  # opens the list; typing finds the option
        await settle(pilot, lambda: target.expanded, what="the list of targets to open")
        await pilot.press(*"all", "enter")
        assert target.value == ALL_EMAIL
        # The form offers the other state of what is chosen: all email is subscribed now.
        assert form.query_one("#status", RadioSet).pressed_button.id == "unsubscribed"  # type: ignore[union-attr]
        await pilot.press("ctrl+s")
        await settle(
            pilot,
            lambda: (
                app.screen is not form
                and "All email: unsubscribed"
                in str(app.query_one("#profile-summary", Static).render())
            ),
            what="the summary to show the channel-wide opt-out",
        )
        summary = str(app.query_one("#profile-summary", Static).render())
        assert "no campaign reaches this person" in summary
    after = view_of(store, identity)
    assert after.all_email == UNSUBSCRIBED
    assert [g.effective for g in after.groups] == [g.effective for g in before.groups]
    new_events = [e for e in after.history if e.id not in {h.id for h in before.history}]
    assert [
        (e.properties["Subscription Type"], e.properties["Group"], e.source) for e in new_events
    ] == [("Channel", None, "console")]


async def test_after_a_search_the_detail_shows_a_profile_from_the_results(
    sample_db: Path, make_app, open_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race made certain: r reloads the shown person, and that read is held (a busy
    store) until a search has shown its results; then its stale result arrives."""
    app = make_app(sample_db)
    store = open_db(sample_db)
    previous = first_profile(store).identity
    with store.read() as session:
        hits = [p.identity for p in profiles.search_profiles(session, "tanaka")]
    assert previous not in hits
    read = profiles.profile_view
    armed = threading.Event()  # set by the test once the console has loaded
    release = threading.Event()  # set by the test: the held reads may finish
    held: list[str] = []  # reads of the previous person held while armed
    stale: list[str] = []  # results of those reads posted to the section

    def slow_for_previous(session, identity, **kwargs):  # type: ignore[no-untyped-def]
        if identity == previous and armed.is_set():
            held.append(identity)
            assert release.wait(timeout=10), "the held read was never released"
        return read(session, identity, **kwargs)

    monkeypatch.setattr(profiles, "profile_view", slow_for_previous)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await show_section(pilot, "profiles")
        section = app.query_one(ProfilesSection)
        post = section.post_message

        def noting_stale_results(message):  # type: ignore[no-untyped-def]
            """Post as the section does; note each held read's result."""
            posted = post(message)
            view = getattr(message, "view", None)
            if view is not None and view.identity == previous and release.is_set():
                stale.append(view.identity)
            return posted

        monkeypatch.setattr(section, "post_message", noting_stale_results)
        await pilot.press("2")
        assert shown_identity(app) == previous
        armed.set()
        await pilot.press("r")  # reload: search again, read the shown person again (held)
        found = app.query_one("#profiles-found", Static)
        await wait_for(
            pilot,
            lambda: bool(held) and str(found.render()).endswith("in the store"),
            what="the reload's search, with its read of the shown person held",
        )
        await search_for(pilot, "tanaka")
        assert shown_identity(app) in hits
        # A superseded (cancelled) thread worker no longer counts as running, but its
        # thread finishes its read and posts the result: let the held reads go, wait
        # until each has posted (settle then handles all that was posted before it).
        release.set()
        await settle(pilot, lambda: len(stale) == len(held), what="the stale reads' results")
        table = app.query_one("#profiles-table", DataTable)
        assert column(table) == hits
        assert shown_identity(app) == column(table)[table.cursor_row]


async def test_a_superseded_search_does_not_replace_the_newer_results(
    sample_db: Path, make_app, open_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search race made certain: the search for "tanaka" is held (a busy store) while
    the user replaces it with "ito"; when it finally answers, the list and the count
    must still be those of "ito", the text in the box."""
    app = make_app(sample_db)
    store = open_db(sample_db)
    with store.read() as session:
        ito = [p.identity for p in profiles.search_profiles(session, "ito")]
    search = profiles.search_profiles
    release = threading.Event()  # set by the test: the held search may finish
    held: list[str] = []  # searches held
    stale: list[str] = []  # their results, posted to the section after the release

    def slow_for_tanaka(session, query, *args, **kwargs):  # type: ignore[no-untyped-def]
        if query == "tanaka":
            held.append(query)
            assert release.wait(timeout=10), "the held search was never released"
        return search(session, query, *args, **kwargs)

    monkeypatch.setattr(profiles, "search_profiles", slow_for_tanaka)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await show_section(pilot, "profiles")
        section = app.query_one(ProfilesSection)
        post = section.post_message

        def noting_stale_results(message):  # type: ignore[no-untyped-def]
            """Post as the section does; note the held search's results."""
            posted = post(message)
            if getattr(message, "query", None) == "tanaka" and release.is_set():
                stale.append("tanaka")
            return posted

        monkeypatch.setattr(section, "post_message", noting_stale_results)
        await pilot.press("2", "slash")
        await paste(pilot, "tanaka")
        await wait_for(pilot, lambda: bool(held), what="the search for 'tanaka' to start")
        await pilot.press("ctrl+u")  # clear the box, then the newer search
        await paste(pilot, "ito")
        found = app.query_one("#profiles-found", Static)
        await settle(
            pilot,
            lambda: str(found.render()).endswith("matching 'ito'"),
            what="the search for 'ito'",
        )
        release.set()
        await settle(pilot, lambda: len(stale) == len(held), what="the held search's results")
        assert app.query_one("#profile-search", Input).value == "ito"
        assert str(found.render()).endswith("matching 'ito'")
        assert column(app.query_one("#profiles-table", DataTable)) == ito


async def test_history_columns_fit_the_person_shown_not_the_one_before(
    sample_db: Path, make_app, open_db
) -> None:
    """A DataTable's automatic column widths only grow: the history's Detail column must
    be as wide as this person's own events need, whoever was shown before (it made the
    Profiles snapshot depend on which people the cursor passed on the way)."""
    store = open_db(sample_db)
    with store.read() as session:
        people = [p.identity for p in profiles.search_profiles(session, "")][:40]
        lengths = {
            identity: max(
                (len(ledger.summary(e)) for e in profiles.profile_view(session, identity).history),
                default=0,
            )
            for identity in people
        }
    longest = max(people, key=lambda i: lengths[i])
    shortest = min(people, key=lambda i: lengths[i])
    assert lengths[longest] > lengths[shortest]
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2")
        section = app.query_one(ProfilesSection)
        history = app.query_one("#profile-history", DataTable)

        async def show(identity: str) -> int:
            section.show_profile(identity)
            await settle(pilot, lambda: shown_identity(app) == identity, what=identity)
            return list(history.columns.values())[2].content_width

        alone = await show(shortest)
        await show(longest)
        assert await show(shortest) == alone
