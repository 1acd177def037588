"""The Insights section (key 6) and the Groups table's sparkline, against a hand count.

A small store whose story the test knows: News lost ann (one click) and dan
(mailto) this month and bob (the CLI) 40 days ago; Deals lost cid (the
console) and gained eve this month; ann gave a reason.
"""

from datetime import timedelta
from pathlib import Path

from console_pilot import NOW, SIZE, column, settle, show_section, table_rows, wait_for
from textual.widgets import DataTable, Static

from app.core import groups, profiles, subscriptions
from app.core.store import open_store
from app.core.unsubscribe_reasons import record_reason
from app.ui.sections.groups import GroupsSection
from app.ui.sections.insights import InsightsSection


def write_story(path: Path) -> None:
    store = open_store(path)
    try:
        with store.write() as session:
            news = groups.create_group(session=session, name="News", actor="t", now=NOW)
            deals = groups.create_group(session=session, name="[b]Deals[/b]", actor="t", now=NOW)
            for name, group, status, source, days in (
                ("ann", news, "unsubscribed", "one_click", 2),
                ("dan", news, "unsubscribed", "mailto", 3),
                ("bob", news, "unsubscribed", "cli", 40),
                ("cid", deals, "unsubscribed", "console", 10),
                ("eve", deals, "subscribed", "landing_page", 1),
            ):
                person = profiles.create_profile(session=session, identity=name, now=NOW)
                subscriptions.set_state(
                    session=session, profile=person, group=group, status=status, source=source,
                    actor="t", now=NOW - timedelta(days=days),
                )  # fmt: skip
                if name == "ann":
                    assert person.id is not None
                    record_reason(
                        session=session, profile_id=person.id, campaign_id=None,
                        reason="too_many_emails", details=None, now=NOW - timedelta(days=2),
                    )  # fmt: skip
    finally:
        store.dispose()


def summary(app: object) -> str:
    return str(app.query_one("#insights-summary", Static).render())  # type: ignore[attr-defined]


async def test_insights_switch_between_30_and_90_days_and_by_key(tmp_path: Path, make_app) -> None:
    db = tmp_path / "store.db"
    write_story(db)
    app = make_app(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("6")
        await show_section(pilot, "insights")
        section = app.query_one(InsightsSection)
        table = app.query_one("#insights-table", DataTable)
        await wait_for(pilot, lambda: section.data is not None, what="the insights")
        assert summary(app).startswith("3 unsubscribes in the last 30 days · 1 reasons given")
        assert table_rows(table) == [["News", "2"], ["[b]Deals[/b]", "1"]]
        assert sum(section.data.total) == 3 and len(section.data.days) == 30

        await pilot.press("d")
        await wait_for(pilot, lambda: section.data is not None and len(section.data.days) == 90)
        await settle(pilot)
        assert summary(app).startswith("4 unsubscribes in the last 90 days")
        assert table_rows(table)[0] == ["News", "3"]

        await pilot.press("b")
        await settle(pilot)
        by_source = dict(table_rows(table))
        assert by_source["one_click"] == by_source["mailto"] == by_source["cli"] == "1"
        assert by_source["console"] == "1" and by_source["bounce"] == "0"
        assert "by source" in summary(app)

        await pilot.press("b", "b")  # campaign, then reason
        await settle(pilot)
        assert table_rows(table)[0] == ["Too many emails", "1"]
        assert [c.label.plain for c in table.columns.values()] == ["Reason", "Given"]

        await pilot.press("d")  # back to 30 days: bob's unsubscribe drops out
        await wait_for(pilot, lambda: section.data is not None and len(section.data.days) == 30)
        await pilot.press("b")
        await settle(pilot)
        assert dict(table_rows(table))["News"] == "2"


async def test_the_groups_table_shows_each_groups_net_change(tmp_path: Path, make_app) -> None:
    db = tmp_path / "store.db"
    write_story(db)
    app = make_app(db)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, lambda: bool(app.query_one(GroupsSection).trends))
        table = app.query_one("#groups-table", DataTable)
        labels = [c.label.plain for c in table.columns.values()]
        trends = dict(zip(column(table), column(table, labels.index("30 days")), strict=True))
        # News only lost people: its running total ends at its lowest (▁), having started high.
        assert trends["News"][-1] == "▁" and trends["News"][0] == "█"
        # Deals lost one then gained one: back where it started.
        assert trends["[b]Deals[/b]"][0] == trends["[b]Deals[/b]"][-1] == "█"
        assert "▁" in trends["[b]Deals[/b]"]


async def test_the_sparkline_follows_unsubscribes_from_another_process(
    tmp_path: Path, make_app, open_db
) -> None:
    db = tmp_path / "store.db"
    write_story(db)
    app = make_app(db)
    async with app.run_test(size=SIZE) as pilot:
        section = app.query_one(GroupsSection)
        await settle(pilot, lambda: bool(section.trends))
        news = next(row.id for row in section.rows if row.name == "News")
        assert section.trends[news][-1] == 0  # nothing today yet
        other = open_db(db)
        with other.write() as session:
            person = profiles.create_profile(session=session, identity="gus")
            subscriptions.set_state(
                session=session, profile=person, group=groups.find_group(session, "News"),
                status="unsubscribed", source="landing_page", actor="recipient",
            )  # fmt: skip
        await wait_for(pilot, lambda: section.trends[news][-1] == -1, what="the new sparkline")
