"""The Groups gauge's number is on screen before the store is open: the console
counts the active groups with a first look at the SQLite file (the standard
library's sqlite3) while SQLAlchemy and the store still load, and the opened
store's own count then takes its place, agreeing with it.
"""

import json
import re
import sys
import threading
from pathlib import Path

import pytest
from console_pilot import SIZE, run_on_a_terminal, settle, start
from textual.widgets import ContentSwitcher, Label

from app.core import first_look, groups
from app.core.store import Store, open_store
from app.ui.app import SubgroupsApp
from app.ui.sections.groups import GroupsSection


def shown_count(app: SubgroupsApp) -> str:
    """What the Groups header says, and whose header it is."""
    label = app.query_one("#active-count", Label)
    owner = "section" if isinstance(label.parent and label.parent.parent, GroupsSection) else "look"
    return f"{owner}: {label.render()}"


@pytest.mark.parametrize("look_done", ["at once", "after the first frame"])
async def test_the_gauge_shows_the_first_look_until_the_store_opens(
    full_db: Path, look_done: str
) -> None:
    """50 active groups (one archived, not counted): "50 / 50 active" while the store
    is still opening, hidden while another section is chosen, then the section's.
    The number keys switch sections meanwhile (nothing else has the focus)."""
    may_open = threading.Event()
    may_look = threading.Event()
    if look_done == "at once":
        may_look.set()
    stores: list[Store] = []

    def look() -> int | None:
        may_look.wait(30)
        return first_look.active_groups(str(full_db))

    def slow_open() -> Store:
        may_open.wait(30)
        stores.append(open_store(full_db))
        return stores[-1]

    app = SubgroupsApp(
        open_store=slow_open,
        first_look=look,
        offer_sample_data=False,
    )
    app.animation_level = "none"
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            may_look.set()
            for _ in range(100):
                if app.query("#groups-first-look"):
                    break
                await pilot.pause(0.02)
            await pilot.pause()
            assert app.store is None  # still opening
            assert shown_count(app) == "look: 50 / 50 active"
            look = app.query_one("#groups-first-look")
            assert look.has_class("-at-limit")  # drawn as the section draws a full store
            await pilot.press("2")
            await pilot.pause()
            assert app.section == "profiles"
            assert not look.display
            await pilot.press("1")
            await pilot.pause()
            assert look.display
            may_open.set()
            await start(pilot)
            await settle(pilot)
            assert shown_count(app) == "section: 50 / 50 active"
            assert not app.query("#groups-first-look")  # gone: one header
            assert app.query_one("#sections", ContentSwitcher).current == "groups"
    finally:
        may_open.set()
        may_look.set()
        for store in stores:
            store.dispose()


# Started as ``python -c PROBE OUT --db F``: notes, when the gauge's number is
# first written to the terminal, whether SQLAlchemy is loaded and whether the store
# is open; then, once the Groups section has read the groups, what it shows.
PROBE = """
import json, re, sys
from textual.drivers.linux_driver import LinuxDriver

out = sys.argv[1]
seen = {}
write = LinuxDriver.write
NUMBER = re.compile(r"(\\d+) / 50 active")

def noting_write(self, data):
    found = NUMBER.search(data)
    if found and "first number" not in seen:
        seen["first number"] = found.group(0)
        seen["sqlalchemy loaded"] = "sqlalchemy" in sys.modules
        seen["store open"] = self._app.store is not None
    write(self, data)

LinuxDriver.write = noting_write

from app.ui.app import SubgroupsApp
ready = SubgroupsApp._store_ready

async def noting_ready(self):
    await ready(self)

    def loaded():
        section = self.built_section("groups")
        if section is None or section.active is None:
            return
        seen["loaded"] = str(section.query_one("#active-count").render())
        seen["first look left"] = len(self.query("#groups-first-look"))
        with open(out, "w") as fh:  # now: the console leaves with os._exit
            json.dump(seen, fh)
        self.exit()

    self.set_interval(0.05, loaded)

SubgroupsApp._store_ready = noting_ready

from app.cli import run
sys.exit(run(sys.argv[2:]))
"""


def test_the_number_is_on_screen_before_sqlalchemy_is_loaded(
    sample_db: Path, tmp_path: Path
) -> None:
    out = tmp_path / "seen.json"
    code = run_on_a_terminal([sys.executable, "-c", PROBE, str(out), "--db", str(sample_db)])
    assert code == 0
    seen = json.loads(out.read_text())
    store = open_store(sample_db)
    try:
        with store.read() as session:
            active = groups.active_count(session)
    finally:
        store.dispose()
    expected = f"{active} / 50 active"
    assert re.fullmatch(r"\d+ / 50 active", expected)
    # First on screen: the store's real number, with SQLAlchemy not loaded yet.
    assert seen["first number"] == expected
    assert seen["sqlalchemy loaded"] is False
    assert seen["store open"] is False
    # Once the section has read the groups: the same number, in one header.
    assert seen["loaded"] == expected
    assert seen["first look left"] == 0
