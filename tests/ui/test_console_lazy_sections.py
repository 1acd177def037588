"""Each section is built the first time it is shown: before that it has no widgets
and its module (with its dialogs and services) is not imported; the campaign
wizard and the dialogs are imported when first opened. The palette still offers
every section's actions.

The import checks run in a fresh interpreter: in this one, other tests have
imported every module already.
"""

import json
import subprocess
import sys
from pathlib import Path

from console_pilot import SIZE, settle, show_section, start
from textual.widgets import DataTable

from app.ui.messages import RunSectionAction
from app.ui.sections.registry import SECTIONS


async def test_a_section_not_yet_shown_has_no_widgets(sample_db: Path, make_app) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        assert app.built_section("groups") is not None
        for key in ("profiles", "segments", "campaigns", "landing"):
            assert app.built_section(key) is None, f"{key} was built before it was shown"
        assert not app.query("#profiles-table")
        assert not app.query("#segments-table")

        await pilot.press("2")
        await show_section(pilot, "profiles")
        assert app.built_section("profiles") is not None
        assert app.query_one("#profiles-table", DataTable).row_count > 0
        # Shown once, kept: back to Groups and again to Profiles reuses it.
        profiles = app.built_section("profiles")
        await pilot.press("1", "2")
        await settle(pilot)
        assert app.built_section("profiles") is profiles
        assert app.built_section("segments") is None


async def test_the_palette_runs_an_action_of_a_section_not_built_yet(
    sample_db: Path, make_app
) -> None:
    """Choosing "Campaigns: ..." from the palette builds the section, shows it, runs the action."""
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        assert app.built_section("campaigns") is None
        app.post_message(RunSectionAction("campaigns", "reload"))
        await show_section(pilot, "campaigns")
        assert app.section == "campaigns"
        # This sample store has no campaigns: the section says so once loaded.
        assert str(app.query_one("#campaigns-summary").render()) == "No campaigns yet."


# Run in a fresh interpreter: prints which modules were imported at each point.
PROBE = """
import asyncio, json, sys
from pathlib import Path

from app.core.store import open_store
from app.ui.app import SubgroupsApp

WATCHED = {watched!r}
seen = {{}}

def note(when):
    seen[when] = sorted(m for m in WATCHED if m in sys.modules)

async def main():
    store = open_store(Path({db!r}))
    app = SubgroupsApp(store=store, offer_sample_data=False)
    app.animation_level = "none"
    note("before start")
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(200):
            await pilot.pause(0.02)
            if app.built_section("groups") is not None and app.query("#groups-table"):
                break
        note("started")
        # Every section's actions are offered before any is built.
        from app.ui.commands import SubgroupsCommands
        provider = SubgroupsCommands(app.screen)
        seen["palette sections"] = sorted({{e[2] for e in provider._entries()}})
        note("palette listed")
        await pilot.press("4")
        for _ in range(200):
            await pilot.pause(0.02)
            if app.built_section("campaigns") is not None and app.query("#campaigns-table"):
                break
        note("campaigns shown")
        await pilot.press("n")
        for _ in range(250):
            await pilot.pause(0.02)
            if type(app.screen).__name__ == "CampaignWizard":
                break
        note("wizard opened")
        app.exit()
    store.dispose()

asyncio.run(main())
print(json.dumps(seen))
"""

SECTION_MODULES = [entry.module for entry in SECTIONS.values()]
WIZARD = "app.ui.screens.campaign_wizard"
DIALOGS = [
    "app.ui.modals.confirm",
    "app.ui.modals.group_form",
    "app.ui.modals.change_state",
    "app.ui.modals.import_csv",
    "app.ui.modals.explain",
    "app.ui.modals.help",
    "app.ui.modals.event_detail",
    "app.ui.modals.send_campaign",
]


def test_section_wizard_and_dialog_modules_are_imported_when_first_needed(
    sample_db: Path,
) -> None:
    script = PROBE.format(watched=[*SECTION_MODULES, WIZARD, *DIALOGS], db=str(sample_db))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["before start"] == []
    # Started on Groups: its module only; no wizard, no dialog.
    assert seen["started"] == ["app.ui.sections.groups"]
    assert seen["palette sections"] == sorted(["", *SECTIONS])
    assert seen["palette listed"] == ["app.ui.sections.groups"]
    assert seen["campaigns shown"] == ["app.ui.sections.campaigns", "app.ui.sections.groups"]
    assert WIZARD in seen["wizard opened"]
