"""The console run as a registered admin (as ``subgroups ssh`` runs it for a session):
a viewer's refused action is shown, saying their role and the one needed, and nothing
changes; an editor's action is recorded under the admin's name."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from admin_keys import ED25519, RSA
from console_pilot import SIZE, column, paste, select_row, settle, start
from textual.widgets import DataTable, Input, Static
from textual.widgets._toast import Toast

from app.core import actors, admins, groups, ledger
from app.core.event_names import ADMIN_SESSION_ENDED, ADMIN_SESSION_STARTED
from app.core.models import STATUS_ACTIVE
from app.core.ssh_keys import parse_key_line
from app.core.store import Store
from app.ui.modals.group_form import GroupFormModal
from app.ui.modals.prompt import PromptModal
from app.ui.widgets.presence import PresenceLine


def add_admins(store: Store) -> None:
    with store.write() as s:
        for name, key, role in (("vi", ED25519, actors.VIEWER), ("ed", RSA, actors.EDITOR)):
            admins.add_admin(
                session=s,
                name=name,
                key=parse_key_line(key.line, where=name),
                role=role,
                actor="host",
            )


def table_of(app: object) -> DataTable:  # type: ignore[type-arg]
    return app.query_one("#groups-table", DataTable)  # type: ignore[attr-defined, no-any-return]


def archived_events(store: Store) -> list[ledger.EventRecord]:
    with store.read() as s:
        return ledger.recent_events(s, name=ledger.GROUP_ARCHIVED, limit=1000)


async def test_a_viewer_is_told_their_role_and_nothing_changes(
    sample_db: Path, make_app, open_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_db(sample_db)
    add_admins(store)
    before = archived_events(store)
    monkeypatch.setenv(actors.ADMIN_ENV, "vi")
    app = make_app(sample_db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await select_row(pilot, table_of(app), "Newsletter")
        await pilot.press("a", "y")
        await settle(pilot, lambda: bool(app.query(Toast)), what="the refusal notification")
        toasts = [str(toast.render()) for toast in app.query(Toast)]
        assert len(toasts) == 1
        assert "Refused" in toasts[0]
        assert "vi is a viewer; archiving a group needs the editor role" in toasts[0]
        assert "Newsletter" in column(table_of(app))

        await pilot.press("n")
        form = app.screen
        assert isinstance(form, GroupFormModal)
        await paste(pilot, "By a viewer")
        await pilot.press("ctrl+s")
        error = form.query_one("#form-error", Static)
        await settle(pilot, lambda: error.display and not form.query_one("#save").disabled)
        assert str(error.render()) == "vi is a viewer; creating a group needs the editor role"
        assert app.screen is form, "the form stays open"
    with store.read() as s:
        assert groups.find_group(s, "Newsletter").status == STATUS_ACTIVE
        assert "By a viewer" not in {g.name for g in groups.list_groups(s, status="all")}
    assert archived_events(store) == before


async def test_an_editors_action_is_recorded_under_their_name(
    sample_db: Path, make_app, open_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_db(sample_db)
    add_admins(store)
    monkeypatch.setenv(actors.ADMIN_ENV, "ed")
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await select_row(pilot, table_of(app), "Newsletter")
        await pilot.press("a", "y")
        await settle(
            pilot, lambda: "Newsletter" not in column(table_of(app)), what="the group to go"
        )
    (event,) = [e for e in archived_events(store) if e.properties.get("Group") == "Newsletter"]
    assert (event.actor, event.properties["Actor"], event.source) == ("ed", "ed", "console")


async def test_an_admin_session_cannot_write_the_servers_files(
    sample_db: Path, make_app, open_db, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export's path is a file of the server's own user (its authorized_keys, say)."""
    store = open_db(sample_db)
    add_admins(store)
    monkeypatch.setenv(actors.ADMIN_ENV, "ed")
    target = tmp_path / "authorized_keys"
    app = make_app(sample_db)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await pilot.press("3")
        await settle(pilot)
        await pilot.press("ctrl+w")
        await settle(pilot, lambda: isinstance(app.screen, PromptModal), what="the file prompt")
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await settle(pilot, lambda: bool(app.query(Toast)), what="the refusal")
        (toast,) = [str(t.render()) for t in app.query(Toast)]
        assert "ed works through subgroups ssh; exporting to a file uses the server's files" in (
            " ".join(toast.split())
        )
    assert not target.exists()


async def test_the_console_shows_who_else_is_connected(sample_db: Path, make_app, open_db) -> None:
    store = open_db(sample_db)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        app = make_app(sample_db)
        async with app.run_test(size=SIZE) as pilot:
            await start(pilot)
            line = app.query_one(PresenceLine)
            assert not line.display  # nobody else: the line takes no room
            with store.write() as s:
                ledger.record(
                    s,
                    name=ADMIN_SESSION_STARTED,
                    source="ssh",
                    actor="bob",
                    properties={
                        "Role": "viewer",
                        "Client": "10.0.0.7:50000",
                        "Session": "b1",
                        "Host": socket.gethostname(),
                        "Process": other.pid,
                    },
                )
            await settle(pilot, lambda: line.display, what="the presence line")
            assert str(line.render()) == "Also connected over SSH: bob (viewer)"
            with store.write() as s:
                ledger.record(
                    s,
                    name=ADMIN_SESSION_ENDED,
                    source="ssh",
                    actor="bob",
                    properties={"Session": "b1"},
                )
            await settle(pilot, lambda: not line.display, what="the line to go")
    finally:
        other.kill()
        other.wait()
