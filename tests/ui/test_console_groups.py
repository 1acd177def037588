"""The Groups section: create, edit, archive, unarchive, filter, and the 50 limit,
driven from the keyboard and checked in the widgets and in the store."""

from pathlib import Path

from console_pilot import (
    CONSOLE_USER,
    SIZE,
    column,
    log_lines,
    paste,
    select_row,
    settle,
    start,
    type_text,
)
from textual.widgets import DataTable, Input, Label, Static
from textual.widgets._toast import Toast

from app.core import groups, ledger
from app.core.models import STATUS_ACTIVE, STATUS_ARCHIVED, Group
from app.core.store import Store
from app.ui.modals.confirm import ConfirmModal
from app.ui.modals.group_form import GroupFormModal
from app.ui.sections.groups import GroupsSection

SAMPLE_ACTIVE = [
    "Beta program",
    "Community highlights",
    "Events & webinars",
    "Newsletter",
    "Partner offers",
    "Product updates",
    "Promotions",
    "Release notes",
    "Surveys & feedback",
    "Tips & tutorials",
    "Weekly digest",
]
SAMPLE_ARCHIVED = ["Holiday sale 2025"]
LIMIT_MESSAGE = "50 of 50 groups are active: archive one to make room"


def stored_groups(store: Store) -> dict[str, Group]:
    with store.read() as session:
        return {g.name: g for g in groups.list_groups(session, status="all")}


def events(store: Store, name: str) -> list[ledger.EventRecord]:
    with store.read() as session:
        return ledger.recent_events(session, name=name, limit=10_000)


def text_of(widget: Static | Label) -> str:
    return str(widget.render())


def shown(widget: Static) -> bool:
    """The widget takes room on screen (errors are hidden with display: none)."""
    return widget.display and widget.region.height > 0


def count_label(app: object) -> str:
    return text_of(app.query_one("#active-count", Label))  # type: ignore[attr-defined]


def table_of(app: object) -> DataTable:  # type: ignore[type-arg]
    return app.query_one("#groups-table", DataTable)  # type: ignore[attr-defined, no-any-return]


async def test_first_look_and_f_cycles_active_archived_all(
    sample_db: Path, make_app, open_db
) -> None:
    # Offered only on an empty store: this one has data, so no question comes.
    app = make_app(sample_db, offer_sample_data=True)
    store = open_db(sample_db)
    with store.read() as session:
        counts = groups.group_counts(session)
    by_name = stored_groups(store)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        table = table_of(app)
        assert not isinstance(app.screen, ConfirmModal)
        assert app.focused is table
        assert count_label(app) == "11 / 50 active"
        promotions = by_name["Promotions"].id
        keys = [column.key.value for column in table.ordered_columns]
        row = dict(zip(keys, (str(c) for c in table.get_row(str(promotions))), strict=True))
        assert {k: row[k] for k in keys if k not in ("name", "description", "trend")} == {
            "policy": "opt-out",
            "status": "active",
            "landing": "shown",
            "subscribed": f"{counts[promotions].subscribed:,}",
            "unsubscribed": f"{counts[promotions].unsubscribed:,}",
        }
        seen = []
        for key in ("f", "f", "f", ""):
            seen.append((text_of(app.query_one("#groups-filter", Label)), column(table)))
            await pilot.press(*key)
        assert seen == [
            ("f shows: [active]  archived   all ", SAMPLE_ACTIVE),
            ("f shows:  active  [archived]  all ", SAMPLE_ARCHIVED),
            (
                "f shows:  active   archived  [all]",
                sorted(SAMPLE_ACTIVE + SAMPLE_ARCHIVED, key=str.casefold),
            ),
            ("f shows: [active]  archived   all ", SAMPLE_ACTIVE),
        ]


async def test_n_opens_the_form_and_ctrl_s_creates_the_group(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("n")
        assert isinstance(app.screen, GroupFormModal)
        assert app.focused is app.screen.query_one("#name", Input)
        await type_text(pilot, "Stories")
        await pilot.press("tab")
        await paste(pilot, "How teams use us")
        await pilot.press("ctrl+s")
        await settle(
            pilot,
            lambda: (
                not isinstance(app.screen, GroupFormModal)
                and "Stories" in column(table_of(app))
                and any("'Stories'" in line for line in log_lines(app))
            ),
            what="the new group in the table and the log pane",
        )
        assert count_label(app) == "12 / 50 active"
        line = next(line for line in log_lines(app) if "'Stories'" in line)
        assert "Group Created" in line and CONSOLE_USER in line and "[console]" in line

    group = stored_groups(store)["Stories"]
    assert (group.status, group.description, group.policy) == (
        STATUS_ACTIVE,
        "How teams use us",
        "opt-out",
    )
    assert group.shown_on_landing_page and group.created_by == CONSOLE_USER
    created = [e for e in events(store, ledger.GROUP_CREATED) if e.group_id == group.id]
    assert len(created) == 1
    assert (created[0].source, created[0].actor) == ("console", CONSOLE_USER)
    assert created[0].properties["Group"] == "Stories"


async def test_form_refuses_blank_and_taken_names_inline(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    before = len(events(store, ledger.GROUP_CREATED))
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, GroupFormModal)
        name, name_error = form.query_one("#name", Input), form.query_one("#name-error", Static)
        assert not shown(name_error)
        for typed, message in [
            ("", "Name is required: type 1 to 64 characters"),
            ("   ", "Name is required: type 1 to 64 characters"),
            ("newsletter", "A group named 'Newsletter' already exists; names are unique"),
            (
                "HOLIDAY SALE 2025",
                "A group named 'Holiday sale 2025' (archived) already exists; names are unique",
            ),
        ]:
            await pilot.press("end", "ctrl+u")
            await type_text(pilot, typed) if typed.isspace() else await paste(pilot, typed)
            await pilot.press("ctrl+s")
            await settle(pilot, lambda: shown(name_error) and not form.query_one("#save").disabled)
            assert app.screen is form, "the form stays open"
            assert text_of(name_error) == message, typed
            # Right under the name field, and nowhere else.
            assert name_error.region.y == name.region.bottom
            assert not shown(form.query_one("#form-error", Static))
            assert app.focused is name
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, GroupFormModal)
    assert sorted(stored_groups(store)) == sorted(SAMPLE_ACTIVE + SAMPLE_ARCHIVED)
    assert len(events(store, ledger.GROUP_CREATED)) == before


async def test_enter_or_e_edits_and_rename_keeps_the_id(sample_db: Path, make_app, open_db) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    old = stored_groups(store)["Newsletter"]
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await select_row(pilot, table_of(app), "Newsletter")
        for key in ("enter", "e"):
            await pilot.press(key)
            form = app.screen
            assert isinstance(form, GroupFormModal), key
            assert text_of(form.query_one(".dialog-title", Static)) == "Edit group 'Newsletter'"
            assert form.query_one("#name", Input).value == "Newsletter"
            assert form.query_one("#description", Input).value == old.description
            if key == "enter":
                await pilot.press("escape")
        await pilot.press("end", "ctrl+u")
        await paste(pilot, "Monthly newsletter")
        await pilot.press("ctrl+s")
        await settle(
            pilot,
            lambda: app.screen is not form and "Monthly newsletter" in column(table_of(app)),
            what="the renamed group in the table",
        )
        names = column(table_of(app))
        assert "Newsletter" not in names
        assert count_label(app) == "11 / 50 active"
        # The cursor stays on the renamed group.
        assert names[table_of(app).cursor_row] == "Monthly newsletter"

    now = stored_groups(store)
    assert "Newsletter" not in now
    assert now["Monthly newsletter"].id == old.id
    updated = [e for e in events(store, ledger.GROUP_UPDATED) if e.group_id == old.id]
    assert len(updated) == 1
    assert updated[0].properties["Previous Name"] == "Newsletter"
    assert updated[0].properties["Changes"] == {"Name": ["Newsletter", "Monthly newsletter"]}
    assert (updated[0].source, updated[0].actor) == ("console", CONSOLE_USER)


async def test_archive_asks_first_and_unarchive_brings_it_back(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    group_id = stored_groups(store)["Community highlights"].id
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        unsubscribed = app.query_one(GroupsSection).counts[group_id].unsubscribed  # type: ignore[index]
        await select_row(pilot, table_of(app), "Community highlights")
        # n and escape at the question change nothing.
        for key in ("n", "escape"):
            await pilot.press("a")
            assert isinstance(app.screen, ConfirmModal)
            await pilot.press(key)
            await settle(pilot)
            assert not isinstance(app.screen, ConfirmModal)
            assert count_label(app) == "11 / 50 active"
            assert stored_groups(store)["Community highlights"].status == STATUS_ACTIVE
        assert [e for e in events(store, ledger.GROUP_ARCHIVED) if e.group_id == group_id] == []

        await pilot.press("a")
        confirm = app.screen
        message = text_of(confirm.query_one("#confirm-message", Static))
        assert message.startswith("Archive 'Community highlights'? It frees a slot")
        assert f"its {unsubscribed:,} opt-outs stay enforced" in message
        await pilot.press("y")
        await settle(pilot, lambda: count_label(app) == "10 / 50 active", what="the count to drop")
        assert "Community highlights" not in column(table_of(app))
        group = stored_groups(store)["Community highlights"]
        assert group.status == STATUS_ARCHIVED and group.archived_at is not None
        archived = [e for e in events(store, ledger.GROUP_ARCHIVED) if e.group_id == group_id]
        assert [(e.source, e.actor) for e in archived] == [("console", CONSOLE_USER)]

        await pilot.press("f")
        assert column(table_of(app)) == sorted(SAMPLE_ARCHIVED + ["Community highlights"])
        await select_row(pilot, table_of(app), "Community highlights")
        await pilot.press("u")
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        assert text_of(confirm.query_one("#confirm-message", Static)) == (
            "Unarchive 'Community highlights'? It takes one of the 50 active slots."
        )
        await pilot.press("y")
        await settle(pilot, lambda: count_label(app) == "11 / 50 active", what="the count to rise")
        assert column(table_of(app)) == SAMPLE_ARCHIVED

    group = stored_groups(store)["Community highlights"]
    assert group.status == STATUS_ACTIVE and group.archived_at is None
    unarchived = [e for e in events(store, ledger.GROUP_UNARCHIVED) if e.group_id == group_id]
    assert [(e.source, e.actor) for e in unarchived] == [("console", CONSOLE_USER)]


async def test_at_fifty_create_and_unarchive_are_refused(full_db: Path, make_app, open_db) -> None:
    app = make_app(full_db)
    store = open_db(full_db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await settle(pilot, lambda: app.query_one(GroupsSection).counts is not None)
        assert count_label(app) == "50 / 50 active"
        assert app.query_one(GroupsSection).has_class("-at-limit")

        await pilot.press("n")
        form = app.screen
        assert isinstance(form, GroupFormModal)
        # Said before typing: the form knows the count.
        assert shown(form.query_one("#form-error", Static))
        assert text_of(form.query_one("#form-error", Static)) == LIMIT_MESSAGE
        await paste(pilot, "Group 51")
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: not form.query_one("#save").disabled, what="the refusal")
        assert app.screen is form
        assert text_of(form.query_one("#form-error", Static)) == LIMIT_MESSAGE
        assert not shown(form.query_one("#name-error", Static))
        await pilot.press("escape")

        await pilot.press("f")
        assert column(table_of(app)) == ["Old news"]
        await pilot.press("u", "y")
        await settle(pilot, lambda: bool(app.query(Toast)), what="the refusal notification")
        toasts = [str(toast.render()) for toast in app.query(Toast)]
        assert len(toasts) == 1
        assert "Refused" in toasts[0] and LIMIT_MESSAGE in toasts[0]
        assert count_label(app) == "50 / 50 active"
        assert column(table_of(app)) == ["Old news"]

    stored = stored_groups(store)
    assert "Group 51" not in stored
    assert stored["Old news"].status == STATUS_ARCHIVED
    assert sum(g.status == STATUS_ACTIVE for g in stored.values()) == 50
    assert events(store, ledger.GROUP_UNARCHIVED) == []


async def test_a_policy_change_shows_who_flips_and_asks_first(
    sample_db: Path, make_app, open_db
) -> None:
    """Issue 8, point 3: the form counts (in a worker) and asks; declining changes nothing."""
    from textual.widgets import Select

    app = make_app(sample_db)
    store = open_db(sample_db)
    newsletter = stored_groups(store)["Newsletter"]
    assert newsletter.policy == "opt-out" and newsletter.id is not None
    with store.read() as session:
        change = groups.policy_change(session, group_id=newsletter.id, policy="opt-in")
    assert change.to_unsubscribed > 0
    expected = f"turns {change.to_unsubscribed:,} people from subscribed to unsubscribed"
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await select_row(pilot, table_of(app), "Newsletter")
        for answer in ("n", "y"):
            await pilot.press("e")
            form = app.screen
            assert isinstance(form, GroupFormModal)
            form.query_one("#policy", Select).value = "opt-in"
            effect = form.query_one("#policy-effect", Static)
            await settle(pilot, lambda effect=effect: expected in text_of(effect), what="the count")
            await pilot.press("ctrl+s")
            await settle(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the question")
            question = text_of(app.screen.query_one("#confirm-message", Static))
            assert expected in question and "Newsletter" in question
            await pilot.press(answer)
            if answer == "n":
                # Back at the form, nothing saved.
                await settle(pilot, lambda form=form: app.screen is form)
                assert stored_groups(store)["Newsletter"].policy == "opt-out"
                assert [
                    e for e in events(store, ledger.GROUP_UPDATED) if e.group_id == newsletter.id
                ] == []
                await pilot.press("escape")
                await settle(pilot, lambda: not isinstance(app.screen, GroupFormModal))
            else:
                await settle(
                    pilot,
                    lambda: stored_groups(store)["Newsletter"].policy == "opt-in",
                    what="the saved policy",
                )
    (updated,) = [e for e in events(store, ledger.GROUP_UPDATED) if e.group_id == newsletter.id]
    assert updated.properties["Affected"] == change.affected
    assert updated.properties["New Policy"] == "opt-in"


async def test_the_sparkline_column_keeps_its_room_before_the_trends_arrive(
    sample_db: Path, make_app
) -> None:
    """The 30-day sparklines are read after the groups: a table filled before they
    arrive keeps their ten cells, so the columns never depend on which read came first
    (they did: a quick machine showed seven cells of each sparkline)."""
    from app.ui.sections.groups import TREND_WIDTH

    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        section = app.query_one(GroupsSection)
        section.trends = {}  # as before the trends' read finishes
        section._fill_table()
        await pilot.pause()
        table = table_of(app)
        widths = {column.key.value: column.width for column in table.ordered_columns}
        assert widths["trend"] >= TREND_WIDTH
