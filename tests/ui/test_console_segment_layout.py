"""At 80x24 a condition just added to the segment builder is scrolled into view
and has the focus, so the user can fill it in at once."""

from pathlib import Path

from console_pilot import settle, start
from textual.containers import VerticalScroll

from app.ui.sections.segments import SegmentsSection
from app.ui.widgets.clauses import ClauseEditor, EmailClause, GroupsClause, PropertyClause


def sentence(section: SegmentsSection) -> str:
    return str(section.query_one("#segment-sentence").render())


async def test_an_added_condition_is_in_view_with_the_focus_at_80x24(
    sample_db: Path, make_app
) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        await pilot.press("3")
        section = app.query_one(SegmentsSection)
        await settle(pilot, lambda: len(section.query(ClauseEditor)) == 1, what="the first clause")
        scroll = section.query_one("#segment-clauses", VerticalScroll)
        for key, kind in (
            ("ctrl+g", GroupsClause),
            ("ctrl+o", PropertyClause),
            ("ctrl+b", EmailClause),
        ):
            count = len(section.query(ClauseEditor))
            await pilot.press(key)
            await settle(
                pilot,
                lambda c=count: (
                    len(section.query(ClauseEditor)) == c + 1
                    and "…" not in str(list(section.query(".clause-count"))[-1].render())
                    and app.focused is not None
                    and list(section.query(ClauseEditor))[-1] in app.focused.ancestors
                ),
                what=f"the condition {key} adds, counted and focused",
            )
            # Focused and scrolled to in one callback; settle() lets the scroll be drawn.
            await settle(pilot)
            added = list(section.query(ClauseEditor))[-1]
            assert isinstance(added, kind)
            focused = app.focused
            assert focused is not None and added in focused.ancestors, (
                f"after {key} the focus is on {focused!r}, not in the new condition"
            )
            # The new condition's top (its kind and count) and the focused control lie
            # inside the scroll's visible region (a groups condition is taller than it).
            view = scroll.content_region
            box, control = added.region, focused.region
            assert box.height > 0
            assert view.y <= box.y < view.bottom, (
                f"after {key} the new condition {box} starts outside the view {view}"
            )
            assert view.y <= control.y and control.bottom <= view.bottom, (
                f"after {key} the focused control {control} is outside the view {view}"
            )
            if box.height <= view.height:  # it fits: all of it shows, borders included
                assert box.bottom <= view.bottom, f"after {key}: {box} cut at {view}"
            if kind is PropertyClause:
                # Filled in, it counts: the sentence above grows a line, the view shrinks.
                await pilot.press(*"country", "tab", "tab", "D", "E")
                await settle(pilot, lambda: "country is DE" in sentence(section))
