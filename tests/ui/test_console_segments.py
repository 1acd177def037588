"""The Segments section by keyboard: build "subscribed to Newsletter or Product
updates, not subscribed to Promotions, country DE", watch each clause's count
and the total follow the toggles, save it, edit it, and find it in the store."""

from pathlib import Path

from console_pilot import SIZE, changes_heard, paste, settle, start
from textual.widgets import Input, Select, SelectionList, Static

from app.core import segments
from app.core.segment_rules import (
    ANY,
    EXCLUDE,
    INCLUDE,
    GroupsCondition,
    PropertyCondition,
    SegmentRule,
)
from app.core.store import Store
from app.ui.modals.prompt import PromptModal
from app.ui.sections.segments import SegmentsSection
from app.ui.widgets.clauses import ALL_GROUPS, ClauseEditor, GroupsClause, PropertyClause
from app.ui.widgets.segment_builder import SegmentBuilder


def clause_counts(section: SegmentsSection) -> list[str]:
    return [str(c.render()) for e in section.query(ClauseEditor) for c in e.query(".clause-count")]


def total_text(section: SegmentsSection) -> str:
    return str(section.query_one("#segment-total", Static).render())


def sentence_text(section: SegmentsSection) -> str:
    return str(section.query_one("#segment-sentence", Static).render())


async def segments_counted(pilot) -> SegmentsSection:  # type: ignore[no-untyped-def]
    """3, then wait for the builder's counts: the Segments section."""
    await pilot.press("3")
    section = pilot.app.query_one(SegmentsSection)
    await counted(pilot, section)
    return section


async def counted(pilot, section: SegmentsSection) -> None:  # type: ignore[no-untyped-def]
    """Wait until the counts shown belong to the rule the editors show now."""
    await settle(
        pilot,
        lambda: (
            section.query_one(SegmentBuilder).counts_are_current()
            and "people" in " ".join(clause_counts(section))
            and "Total" in total_text(section)
        ),
        what="segment counts",
    )


async def toggle_group(pilot, clause: GroupsClause, name: str) -> None:  # type: ignore[no-untyped-def]
    """Move the clause's group list cursor to ``name`` with the arrow keys and press space."""
    selection_list = clause.query_one(SelectionList)
    selection_list.focus()
    await settle(pilot, lambda: selection_list.has_focus, what=f"the focus on the list, for {name}")
    labels = [
        str(selection_list.get_option_at_index(i).prompt)
        for i in range(selection_list.option_count)
    ]
    target = labels.index(name)
    while selection_list.highlighted != target:
        await pilot.press("down" if (selection_list.highlighted or 0) < target else "up")
    await pilot.press("space")


def expected(store: Store, rule: SegmentRule) -> int:
    return segments.count(store, rule).total


async def test_build_count_save_and_edit_a_segment_by_keyboard(
    make_app, open_db, sample_db: Path
) -> None:  # type: ignore[no-untyped-def]
    app = make_app(sample_db)
    check = open_db(sample_db)
    with check.read() as session:
        ids = {name: gid for gid, name in segments.group_names(session).items()}
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("3")
        section = app.query_one(SegmentsSection)
        await settle(pilot, lambda: len(section.query(GroupsClause)) == 1, what="the first clause")
        await counted(pilot, section)
        assert sentence_text(section) == "People subscribed to any group"

        # Clause 1: Include any of Newsletter, Product updates.
        first = section.query_one(GroupsClause)
        await toggle_group(pilot, first, "Newsletter")
        await counted(pilot, section)
        assert (
            ALL_GROUPS not in first.query_one(SelectionList).selected
        )  # naming a group replaces All
        await toggle_group(pilot, first, "Product updates")
        await counted(pilot, section)
        include = GroupsCondition(INCLUDE, (ids["Newsletter"], ids["Product updates"]), ANY)
        want_include = expected(check, SegmentRule((include,)))
        assert clause_counts(section) == [f"{want_include:,} people"]

        # Clause 2: ctrl+g adds a groups clause; switch it to Exclude, pick Promotions.
        await pilot.press("ctrl+g")
        await settle(pilot, lambda: len(section.query(GroupsClause)) == 2, what="the second clause")
        second = list(section.query(GroupsClause))[1]
        second.query_one(".clause-mode", Select).value = EXCLUDE
        await toggle_group(pilot, second, "Promotions")
        await counted(pilot, section)
        exclude = GroupsCondition(EXCLUDE, (ids["Promotions"],), ANY)

        # Clause 3: ctrl+o adds a property clause: country is DE (pasted, as a terminal does).
        await pilot.press("ctrl+o")
        await settle(
            pilot, lambda: len(section.query(PropertyClause)) == 1, what="the property clause"
        )
        prop = section.query_one(PropertyClause)
        assert prop.query_one(".clause-key", Input).has_focus
        await paste(pilot, "country")
        await pilot.press("tab", "tab")
        assert prop.query_one(".clause-value", Input).has_focus
        await paste(pilot, "DE")
        await counted(pilot, section)

        rule = SegmentRule((include, exclude, PropertyCondition("country", "equals", ("DE",))))
        want = segments.count(check, rule)
        assert clause_counts(section) == [f"{n:,} people" for n in want.clauses]
        assert total_text(section).startswith(f"Total: {want.total:,} of 3,000 profiles")
        assert sentence_text(section) == (
            "People subscribed to any of Newsletter, Product updates, "
            "and not subscribed to Promotions, and country is DE"
        )
        assert 0 < want.total < want.clauses[0]

        # ctrl+s asks for a name, then saves.
        await pilot.press("ctrl+s")
        await settle(pilot, lambda: isinstance(app.screen, PromptModal), what="the name prompt")
        await paste(pilot, "DE newsletter readers")
        await pilot.press("enter")
        await settle(pilot, lambda: section.segment_id is not None, what="the save")
        with check.read() as session:
            saved = segments.get_segment(session, "de newsletter readers")
            assert segments.segment_rule(saved) == rule
        await settle(
            pilot,
            lambda: "DE newsletter readers" in str(section.query_one("#segment-title").render()),
        )

        # Edit: drop the property clause (ctrl+r in it) and save again: same segment, new rule.
        prop.query_one(".clause-key", Input).focus()
        await pilot.press("ctrl+r")
        await settle(pilot, lambda: not section.query(PropertyClause), what="the clause removal")
        await counted(pilot, section)
        assert total_text(section).startswith(
            f"Total: {expected(check, SegmentRule((include, exclude))):,} of"
        )
        await pilot.press("ctrl+s")
        await settle(pilot, what="the second save")
        with check.read() as session:
            again = segments.get_segment(session, "DE newsletter readers")
            assert again.id == saved.id
            assert segments.segment_rule(again) == SegmentRule((include, exclude))


async def test_a_stale_count_never_replaces_a_newer_one(make_app, sample_db: Path) -> None:  # type: ignore[no-untyped-def]
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        section = await segments_counted(pilot)
        shown = total_text(section)
        builder = section.query_one(SegmentBuilder)
        old = builder.generation
        builder.generation += 1  # a newer rule is being counted
        builder.post_message(
            SegmentBuilder.Counted(old, segments.SegmentCount(1, (1,), 3000), "People stale")
        )
        await pilot.pause()
        assert total_text(section) == shown
        assert sentence_text(section) != "People stale"


async def test_a_hidden_builder_counts_again_when_shown_not_before(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    """A profile imported elsewhere while Groups is shown: the Segments builder (shown
    once before) does not count while hidden; pressing 3 counts once, one more."""
    from app.core import csv_io

    one = sample_db.parent / "one.csv"
    one.write_text("identity,email\nnew-1,new-1@example.com\n")
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        section = await segments_counted(pilot)
        builder = section.query_one(SegmentBuilder)
        before, generation = total_text(section), builder.generation
        await pilot.press("1")
        heard = changes_heard(app)
        other: Store = open_db(sample_db)
        csv_io.import_profiles(store=other, source=one, actor="test", dry_run=False)
        await settle(pilot, lambda: True in heard, what="the burst of events heard")
        assert builder.generation == generation and section.stale
        await pilot.press("3")
        await counted(pilot, section)
        assert builder.generation == generation + 1 and not section.stale
        assert before == "Total: 3,000 of 3,000 profiles (100.0%)"
        assert total_text(section) == "Total: 3,001 of 3,001 profiles (100.0%)"


async def test_export_the_members_to_csv(make_app, sample_db: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """ctrl+w asks for a file and writes the members as a profile CSV, one row each."""
    app = make_app(sample_db)
    target = tmp_path / "members.csv"
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        section = await segments_counted(pilot)
        first = section.query_one(GroupsClause)
        await toggle_group(pilot, first, "Partner offers")  # opt-in: few people
        await counted(pilot, section)
        shown_total = int(total_text(section).split()[1].replace(",", ""))
        await pilot.press("ctrl+w")
        await settle(pilot, lambda: isinstance(app.screen, PromptModal), what="the file prompt")
        app.screen.query_one(Input).value = str(target)
        await pilot.press("enter")
        await settle(
            pilot,
            lambda: target.exists() and not isinstance(app.screen, PromptModal),
            what="the export",
        )
    lines = target.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("identity,")
    assert "group:Partner offers" in lines[0]
    assert len(lines) - 1 == shown_total > 0
