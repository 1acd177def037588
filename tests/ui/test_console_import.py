"""The import dialog imports the plan it previewed, and refuses a file changed since."""

import os
from pathlib import Path

from console_pilot import SIZE, paste, settle, start
from sqlalchemy import func
from sqlmodel import select
from textual.widgets import Button, Static

from app.core.models import Event, Profile
from app.core.store import Store
from app.ui.modals.import_csv import ImportModal

TEXT = "identity,email,name\nNEW001,new1@example.com,Nina Neu\nNEW002,new2@example.com,Omar\n"


def counts(store: Store) -> tuple[int, int]:
    with store.read() as session:
        people = session.exec(select(func.count()).select_from(Profile)).one()
        events = session.exec(select(func.count()).select_from(Event)).one()
    return int(people), int(events)


async def preview(pilot, path: Path) -> ImportModal:  # type: ignore[no-untyped-def]
    await pilot.press("2")  # the section first: it is built when first shown
    await pilot.press("i")
    await settle(pilot, lambda: isinstance(pilot.app.screen, ImportModal))
    await paste(pilot, str(path))
    await pilot.press("enter")
    modal = pilot.app.screen
    assert isinstance(modal, ImportModal)
    await settle(pilot, lambda: modal.step == "preview", what="the preview")
    return modal


async def test_a_file_changed_after_the_preview_is_refused_and_the_dialog_says_so(
    sample_db: Path, make_app, open_db, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(TEXT, encoding="utf-8")
    store = open_db(sample_db)
    before = counts(store)
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        modal = await preview(pilot, path)
        summary = str(modal.query_one("#import-summary", Static).render())
        assert "2 new profiles" in summary
        # Meanwhile the file is saved again with another row.
        with path.open("a", encoding="utf-8") as more:
            more.write("NEW003,new3@example.com,Pia\n")

        await pilot.press("ctrl+s")
        await settle(pilot, lambda: modal.step == "file", what="the refusal")

        error = str(modal.query_one("#import-error", Static).render())
        assert error.startswith(f"{path} changed since it was previewed")
        assert error.endswith(f"nothing was imported; preview {path} again")
        assert pilot.app.screen is modal  # the dialog stays open, for another preview
        assert str(modal.query_one("#import-next", Button).label) == "Preview (ctrl+s)"
    assert counts(store) == before


async def test_the_previewed_plan_is_imported_from_the_dialog(
    sample_db: Path, make_app, open_db, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(TEXT, encoding="utf-8")
    store = open_db(sample_db)
    people, events = counts(store)
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await preview(pilot, path)
        os.utime(path)  # touched, not changed: still the file previewed

        await pilot.press("ctrl+s")
        await settle(pilot, lambda: not isinstance(pilot.app.screen, ImportModal))
    assert counts(store) == (people + 2, events + 1)  # the Profiles Imported event
