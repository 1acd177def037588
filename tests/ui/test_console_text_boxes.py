"""Escape leaves a text box on the main screen: focus goes back to the section's
main widget, so the number keys switch sections again instead of being typed."""

from pathlib import Path

from console_pilot import SIZE, settle, start
from textual.widgets import ContentSwitcher, DataTable, Input


async def test_escape_leaves_the_profiles_search_and_3_shows_segments(
    sample_db: Path, make_app
) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2", "slash", *"kaito")
        search = app.query_one("#profile-search", Input)
        assert app.focused is search
        await pilot.press("escape")
        assert app.focused is app.query_one("#profiles-table", DataTable)
        await pilot.press("3")
        await settle(pilot)
        assert app.query_one("#sections", ContentSwitcher).current == "segments"
        assert search.value == "kaito"


async def test_escape_leaves_the_event_log_filters(sample_db: Path, make_app) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        for box in ("#log-filter-name", "#log-filter-group"):
            await pilot.press("1")
            app.query_one(box, Input).focus()
            await pilot.press(*"news")
            await pilot.press("escape")
            assert app.focused is app.query_one("#groups-table", DataTable)
            await pilot.press("2")
            await settle(pilot)
            assert app.query_one("#sections", ContentSwitcher).current == "profiles"
            assert app.focused is app.query_one("#profiles-table", DataTable)
            assert app.query_one(box, Input).value == "news"
            app.query_one(box, Input).value = ""
