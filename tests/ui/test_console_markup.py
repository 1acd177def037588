"""Group names that look like markup show literally everywhere the console
shows them: table cells, the detail line, forms, confirmations, the log pane."""

from pathlib import Path

from console_pilot import (
    NOW,
    SEED_ACTOR,
    SIZE,
    column,
    log_lines,
    paste,
    rendered_lines,
    select_row,
    settle,
    start,
)
from textual.widgets import DataTable, Input, Static

from app.core import groups
from app.ui.modals.confirm import ConfirmModal
from app.ui.modals.group_form import GroupFormModal

RICH_MARKUP = "[bold red]x[/]"
HTML = "<b>x</b>"
TYPED = "[b]typed[/b] & [link=https://example.com]y[/link]"


def add_groups(db: Path, open_db, *names: str) -> None:  # type: ignore[no-untyped-def]
    with open_db(db).write() as session:
        for name in names:
            groups.create_group(
                session=session, name=name, description=f"about {name}", actor=SEED_ACTOR, now=NOW
            )


async def test_markup_looking_names_show_literally(sample_db: Path, make_app, open_db) -> None:
    add_groups(sample_db, open_db, RICH_MARKUP, HTML)
    store = open_db(sample_db)
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        table = app.query_one("#groups-table", DataTable)
        names = column(table)
        assert RICH_MARKUP in names and HTML in names
        # What the table draws, not only what it holds.
        drawn = "\n".join(rendered_lines(table))
        assert RICH_MARKUP in drawn and HTML in drawn
        assert f"about {RICH_MARKUP}" in drawn

        await select_row(pilot, table, RICH_MARKUP)
        detail = str(app.query_one("#groups-detail", Static).render())
        assert detail.startswith(RICH_MARKUP) and f"about {RICH_MARKUP}" in detail

        await pilot.press("e")
        form = app.screen
        assert isinstance(form, GroupFormModal)
        assert (
            str(form.query_one(".dialog-title", Static).render()) == f"Edit group {RICH_MARKUP!r}"
        )
        assert form.query_one("#name", Input).value == RICH_MARKUP
        await pilot.press("escape")

        await pilot.press("a")
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        assert f"Archive {RICH_MARKUP!r}?" in str(
            confirm.query_one("#confirm-message", Static).render()
        )
        await pilot.press("n")

        assert any(f"group {RICH_MARKUP!r}" in line for line in log_lines(app))
        assert any(f"group {HTML!r}" in line for line in log_lines(app))

        # Typed into the form: stored and shown as typed.
        await pilot.press("n")
        await paste(pilot, TYPED)
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: TYPED in column(table), what="the new group in the table")
        # A name this long ends in "…" (the counts stay on screen): its start shows as typed.
        assert TYPED[:24] in "\n".join(rendered_lines(table))
    with store.read() as session:
        assert groups.find_group(session, TYPED).name == TYPED
