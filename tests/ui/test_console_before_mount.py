"""The section shown and the log pane's visibility can be set before the console
starts (as a script or a test does): it starts showing them, rather than failing
on widgets that do not exist yet.

Before issue 9 the watchers guarded with ``self.is_mounted``, a method on App
(so always true): setting either before start-up raised NoMatches.
"""

from pathlib import Path

from console_pilot import SIZE, settle, start
from textual.widgets import ContentSwitcher, DataTable

from app.ui.widgets.event_log import EventLogPane


async def test_a_section_and_the_log_chosen_before_start_up_are_shown(
    sample_db: Path, make_app
) -> None:
    app = make_app(sample_db)
    app.section = "profiles"
    app.show_log = False
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await settle(pilot)
        assert app.query_one("#sections", ContentSwitcher).current == "profiles"
        assert app.focused is app.query_one("#profiles-table", DataTable)
        assert not app.query_one(EventLogPane).display
        assert "2 Profiles" in str(app.query_one("#section-bar").render())
