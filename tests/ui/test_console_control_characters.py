"""Control characters in the console (issue 8, point 8).

Text stored before the rule (written here with plain SQL) shows with its
control characters as visible escapes: ESC cannot retitle or clear the
terminal, a newline in an identity cannot forge a line in the live log.
Typed into a form, a control character is refused inline.
"""

import json
from pathlib import Path

from console_pilot import SIZE, log_lines, paste, rendered_lines, settle, start, table_rows
from sqlalchemy import text
from textual.widgets import DataTable, Input, Static

from app.core import groups, ledger, text_rules
from app.core.store import Store
from app.ui.modals.group_form import GroupFormModal
from app.ui.sections.profiles import ProfilesSection

TITLE = "\x1b]0;owned\x07"
CLEAR = "\x1b[2J"
# Sorts first, so the Profiles section shows this person when it opens.
IDENTITY = f"{CLEAR}kaito@example.com\n09:00:00  Channel Unsubscribed  forged"


def taint(store: Store) -> None:
    """Give the first profile controls in its identity, name and a property; log an event."""
    with store.engine.begin() as conn:
        pid = conn.execute(text("SELECT id FROM profile ORDER BY identity LIMIT 1")).scalar_one()
        conn.execute(
            text("UPDATE profile SET identity = :identity, name = :name, properties = :props "
                 "WHERE id = :pid"),
            {
                "identity": IDENTITY, "name": f"Kaito{TITLE}", "pid": pid,
                "props": json.dumps({"plan": f"pro{CLEAR}", "note": "C1 \x9b2J"}),
            },
        )  # fmt: skip
        # The ledger is append-only: a new event, at the time of the newest one.
        conn.execute(
            text(
                "INSERT INTO ledger_event (ts, name, identity, profile_id, source, actor, "
                "properties) SELECT ts, :name, :identity, :pid, 'cli', 'ada', :props "
                "FROM ledger_event ORDER BY id DESC LIMIT 1"
            ),
            {
                "name": ledger.CHANNEL_UNSUBSCRIBED, "identity": IDENTITY, "pid": pid,
                "props": json.dumps(
                    {"Old State": "subscribed", "New State": "unsubscribed",
                     "Reason": f"asked{TITLE}"}
                ),
            },
        )  # fmt: skip


def no_raw_controls(*texts: str) -> None:
    for shown in texts:
        assert not text_rules.has_control(shown), repr(shown)


async def test_stored_control_characters_show_escaped(sample_db: Path, make_app, open_db) -> None:
    taint(open_db(sample_db))
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        escaped = text_rules.shown(IDENTITY)
        assert escaped.startswith("\\x1b[2Jkaito@example.com\\n09:00:00")

        # The live log: the event is one line, its controls visible.
        lines = log_lines(app)
        no_raw_controls(*lines)
        forged = [line for line in lines if "kaito@example.com" in line]
        assert len(forged) == 1  # one line, however long
        assert "Channel Unsubscribed \\x1b[2Jkaito@example.com\\n09:00:00  Channel" in forged[0]
        assert not any(line.startswith("09:00:00  Channel Unsubscribed  forged") for line in lines)

        # The Profiles section: the list, the detail and the history.
        await pilot.press("2")
        section = app.query_one(ProfilesSection)
        await settle(pilot, lambda: section.view is not None and section.view.identity == IDENTITY)
        table = app.query_one("#profiles-table", DataTable)
        assert table_rows(table)[0][:2] == [escaped, "Kaito\\x1b]0;owned\\x07"]
        no_raw_controls(*rendered_lines(table))
        summary = str(app.query_one("#profile-summary", Static).render())
        no_raw_controls(summary.replace("\n", " "))
        assert summary.startswith(escaped) and "  Kaito\\x1b]0;owned\\x07" in summary
        assert "plan: pro\\x1b[2J" in summary and "note: C1 \\x9b2J" in summary
        history = app.query_one("#profile-history", DataTable)
        details = [row[2] for row in table_rows(history)]
        assert any("asked\\x1b]0;owned\\x07" in detail for detail in details)
        no_raw_controls(*details, *rendered_lines(history))


async def test_the_group_form_refuses_a_control_character_inline(
    sample_db: Path, make_app, open_db
) -> None:
    store = open_db(sample_db)
    with store.read() as session:
        before = [(g.name, g.description) for g in groups.list_groups(session, status="all")]
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("n")
        form = app.screen
        assert isinstance(form, GroupFormModal)
        await paste(pilot, "Stories")
        form.query_one("#description", Input).focus()
        await paste(pilot, f"about{TITLE}")
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is form, "the form stays open"
        error = str(form.query_one("#description-error", Static).render())
        assert error.startswith("Description holds a control character, ESC (U+001B)")
        await pilot.press("escape")
        await settle(pilot)
    with store.read() as session:
        after = [(g.name, g.description) for g in groups.list_groups(session, status="all")]
    assert after == before
