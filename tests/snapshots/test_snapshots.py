"""Screenshots of each console view, at a roomy terminal (120x40) and at the
classic 80x24. Review tests/snapshots/__snapshots__ (or snapshot_report.html
after a failure) before accepting changes with --snapshot-update.

What would vary between runs and machines, and what pins it, is listed in
snapshot_support.py. The fixtures are here rather than in a conftest.py, so
tests/ui's ``from conftest import`` (another folder) is never shadowed.
"""

import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
from snapshot_support import (
    CONSOLE_USER,
    SIZES,
    STORE_NAME,
    before,
    console_on,
    load_sample_store,
    local_time_in_utc,
    profile_shown,
    segment_counted,
    settle,
    show,
    write_full_store,
    write_small_store,
)
from textual.pilot import Pilot
from textual.widgets import DataTable

from app.core import clock, profiles
from app.core.models import UNSUBSCRIBED
from app.core.store import Store, open_store
from app.ui.app import SubgroupsApp
from app.ui.modals.help import HelpScreen


@pytest.fixture(autouse=True)
def pinned(
    monkeypatch: pytest.MonkeyPatch, fixed_clock: datetime, tmp_path: Path
) -> Iterator[None]:
    """The services' clock, UTC, the Actor's name, and ./ is the folder the store lives in."""
    monkeypatch.setattr(clock, "os_user", lambda: CONSOLE_USER)
    monkeypatch.chdir(tmp_path)
    with local_time_in_utc():
        yield


@pytest.fixture(scope="session")
def sample_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample data loaded once (at NOW); tests copy it."""
    path = tmp_path_factory.mktemp("template") / "sample.db"
    load_sample_store(path)
    return path


@pytest.fixture
def sample_store(sample_template: Path, tmp_path: Path) -> Path:
    """./store.db holds the sample data."""
    path = tmp_path / STORE_NAME
    shutil.copyfile(sample_template, path)
    return path


@pytest.fixture
def full_store(tmp_path: Path) -> Path:
    """./store.db holds 50 active groups (the limit) and one archived."""
    path = tmp_path / STORE_NAME
    write_full_store(path)
    return path


@pytest.fixture
def small_store(tmp_path: Path) -> Path:
    """./store.db holds a few groups, two named like markup, and a short history."""
    path = tmp_path / STORE_NAME
    write_small_store(path)
    return path


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[tuple[int, int]], SubgroupsApp]]:
    """Build the console on ./store.db for a terminal of the given size."""
    stores: list[Store] = []

    def make(size: tuple[int, int]) -> SubgroupsApp:
        app, store = console_on(size, monkeypatch)
        stores.append(store)
        return app

    yield make
    for store in stores:
        store.dispose()


def _person_with_a_story(db: Path) -> tuple[str, str]:
    """The search text and the identity of a sample person who left a group, saying why."""
    store = open_store(db)
    try:
        with store.read() as session:
            for hit in profiles.search_profiles(session, "tanaka"):
                view = profiles.profile_view(session, hit.identity)
                if any(g.stored == UNSUBSCRIBED and g.reason for g in view.groups):
                    return "tanaka", hit.identity
    finally:
        store.dispose()
    raise AssertionError("the sample data has no Tanaka who left a group with a reason")


@pytest.mark.parametrize("size", SIZES)
def test_groups(snap_compare, console, sample_store: Path, size: tuple[int, int]) -> None:
    """Groups on the sample data: the 11 active groups with policy, status, landing
    page and their subscribed / unsubscribed counts filled in, "11 / 50 active"
    with its gauge, the filter (active), the first group's details under the table,
    the live event log with the newest sample events (yesterday's with their date,
    today's by time alone), and the footer's keys. At 80 columns the Description
    column gives way, the table scrolls, and the footer loses its last keys."""
    assert snap_compare(console(size), terminal_size=size, run_before=before())


@pytest.mark.parametrize("size", SIZES)
def test_group_form_with_an_error(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """The New group form after typing "holiday sale 2025" and pressing ctrl+s: the
    name is taken by an archived group, and the service's message shows in red right
    under the Name field; the form stays open with what was typed."""

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("n", *"holiday", "space", *"sale", "space", *"2025", "ctrl+s")
        await settle(
            pilot, lambda: not pilot.app.screen.query_one("#name-error").has_class("-empty")
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_groups_at_the_limit(
    snap_compare, console, full_store: Path, size: tuple[int, int]
) -> None:
    """Groups with 50 active groups: "50 / 50 active" in the error colour, the gauge
    full, the groups listed by name with zero counts (no profiles), and Group Created
    events in the log pane."""
    assert snap_compare(console(size), terminal_size=size, run_before=before())


@pytest.mark.parametrize("size", SIZES)
def test_profiles(snap_compare, console, sample_store: Path, size: tuple[int, int]) -> None:
    """Profiles after searching "tanaka" and selecting a person who left a group with a
    reason: the results (identity, name, all email), and on the right the person's
    summary, each group's effective and stored state and where it came from, the
    archived group marked, then the start of their history. The detail pane is too
    narrow for "Where from" (its first characters show at 120 columns, none at 80,
    where Stored goes too) and for the history's Detail."""
    query, identity = _person_with_a_story(sample_store)

    async def steps(pilot: Pilot[None]) -> None:
        app = pilot.app
        await show(pilot, "2")
        found = app.query_one("#profiles-found")
        await pilot.press("slash", *query)
        await settle(pilot, lambda: str(found.render()).endswith(f"matching {query!r}"))
        await pilot.press("enter")  # from the search box to the results
        table = app.query_one("#profiles-table", DataTable)
        while str(table.get_row_at(table.cursor_row)[0]) != identity:
            await pilot.press("down")
        await settle(pilot, lambda: profile_shown(app, identity))

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_event_log(snap_compare, console, small_store: Path, size: tuple[int, int]) -> None:
    """A small store's Groups screen: groups named "<b>x</b>" and "[bold red]x[/]"
    shown literally in the table and the detail line. Below, the live event log:
    yesterday's Group Created events with their date (at 120x40), today's
    unsubscribes by time alone with those names and a reason "[red]too many[/red]"
    shown literally, and today's Group Archived event for Newsletter."""
    assert snap_compare(console(size), terminal_size=size, run_before=before())


@pytest.mark.parametrize("size", SIZES)
def test_event_log_detail(snap_compare, console, small_store: Path, size: tuple[int, int]) -> None:
    """L moves to the log's lines, up three times and enter: the whole event in a
    dialog, "Event 5: Channel Unsubscribed", then each field (event id, time with the
    date and zone, name, identity alice@example.com, group id, source landing_page, no
    actor) and under Properties each property as stored: Group "[bold red]x[/]" shown
    literally, Resubscribed false, Old State null, New State unsubscribed; at 120x40
    also Campaign ID null, Actor (empty) and the Reason "[red]too many[/red]" as
    typed, and the Close button; at 80x24 the rows scroll and Close stays in view."""

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.modals.event_detail import EventDetailModal

        await pilot.press("L", "up", "up", "up", "enter")
        await settle(pilot, lambda: isinstance(pilot.app.screen, EventDetailModal))

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_event_log_filters(snap_compare, console, small_store: Path, size: tuple[int, int]) -> None:
    """The log filtered by source "landing" and person "alice": "filtered" in the bar,
    the four boxes (event name and group empty, source "landing", person "alice") and
    only alice@example.com's two unsubscribes from the landing page (groups
    "[bold red]x[/]" and "<b>x</b>", shown literally); bob's and the admin's events
    are left out."""

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.widgets.event_log import EventLogPane

        await pilot.click("#log-filter-source")
        await pilot.press(*"landing")
        await pilot.click("#log-filter-person")
        await pilot.press(*"alice")
        pane = pilot.app.query_one(EventLogPane)
        await settle(pilot, lambda: pane.query_one("#log-lines").option_count == 2)

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare, console, sample_store: Path, size: tuple[int, int]) -> None:
    """F1 help over the Groups screen: what subgroups does, then every key by where it
    works (Everywhere, Groups, Profiles, Forms) with what it does; Escape closes it."""

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("f1")
        assert isinstance(pilot.app.screen, HelpScreen)

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


def _save_sample_segment(db: Path) -> None:
    """A saved segment on the sample data: Newsletter or Product updates, not Promotions, DE."""
    from snapshot_support import NOW

    from app.core import segments
    from app.core.segment_rules import (
        ANY,
        EXCLUDE,
        INCLUDE,
        GroupsCondition,
        PropertyCondition,
        SegmentRule,
    )

    store = open_store(db)
    try:
        with store.write() as session:
            ids = {name: gid for gid, name in segments.group_names(session).items()}
            rule = SegmentRule(
                (
                    GroupsCondition(INCLUDE, (ids["Newsletter"], ids["Product updates"]), ANY),
                    GroupsCondition(EXCLUDE, (ids["Promotions"],), ANY),
                    PropertyCondition("country", "equals", ("DE",)),
                )
            )
            segments.save_segment(
                session=session, name="DE readers", rule=rule, actor=CONSOLE_USER, now=NOW
            )
    finally:
        store.dispose()


@pytest.mark.parametrize("size", SIZES)
def test_segment_builder(snap_compare, console, sample_store: Path, size: tuple[int, int]) -> None:
    """Segments with the saved segment "DE readers" opened (enter on the list): the
    sentence "People subscribed to any of Newsletter, Product updates, and not
    subscribed to Promotions, and country is DE", the total of 3,000 profiles, then
    the clauses, each with its own count: Include any of Newsletter and Product
    updates (ticked), Exclude Promotions, and the country property; below, the
    first members with the groups they are subscribed to. At 80x24 the clauses
    scroll."""
    _save_sample_segment(sample_store)

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.sections.segments import SegmentsSection

        app = pilot.app
        await show(pilot, "3")
        section = app.query_one(SegmentsSection)
        table = app.query_one("#segments-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1)
        await pilot.press("enter")
        await settle(
            pilot,
            lambda: (
                section.segment_id is not None
                and segment_counted(pilot.app)
                and "…" not in " ".join(str(c.render()) for c in section.query(".clause-count"))
            ),
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_import_preview(
    snap_compare, console, sample_store: Path, tmp_path: Path, size: tuple[int, int]
) -> None:
    """The import dialog's preview of people.csv (3 rows): 2 new profiles, the state
    changes by group (all email, Newsletter, Promotions) and a kept unsubscribe
    (the file says subscribed where the person had unsubscribed), then each change
    by line: nothing is written until ctrl+s."""
    store = open_store(sample_store)
    with store.read() as session:
        kept = next(
            v.identity
            for p in profiles.search_profiles(session, "C1000")
            for v in [profiles.profile_view(session, p.identity)]
            if any(g.group_name == "Newsletter" and g.stored == UNSUBSCRIBED for g in v.groups)
        )
    store.dispose()
    (tmp_path / "people.csv").write_text(
        "identity,email,name,country,group:Newsletter,group:Promotions,all_email\n"
        f"{kept},,,,subscribed,,\n"
        "NEW001,new1@example.com,Nina Neu,DE,subscribed,unsubscribed,\n"
        "NEW002,new2@example.com,Omar Otro,ES,,,unsubscribed\n",
        encoding="utf-8",
    )

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.modals.import_csv import ImportModal

        await pilot.press("2", "i")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ImportModal))
        await pilot.press(*"people.csv", "enter")
        await settle(pilot, lambda: pilot.app.screen.step == "preview")  # type: ignore[attr-defined]

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_import_problems(
    snap_compare, console, sample_store: Path, tmp_path: Path, size: tuple[int, int]
) -> None:
    """The import dialog after a file with problems: "bad.csv: 3 problem(s); nothing
    was imported." and each problem with its line and column: a malformed email, an
    unknown state word (with the allowed words), a duplicate identity."""
    (tmp_path / "bad.csv").write_text(
        "identity,email,group:Newsletter\n"
        "A1,not-an-email,\n"
        "A2,a2@example.com,maybe\n"
        "A1,a1@example.com,\n",
        encoding="utf-8",
    )

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.modals.import_csv import ImportModal

        await pilot.press("2", "i")
        await settle(pilot, lambda: isinstance(pilot.app.screen, ImportModal))
        await pilot.press(*"bad.csv", "enter")
        await settle(pilot, lambda: pilot.app.screen.step == "problems")  # type: ignore[attr-defined]

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


# --- campaigns ---------------------------------------------------------------------

# A fixed signing key: the links in the preview are the same on every run.
FIXED_KEYRING = {"current": 1, "keys": {"1": "5e" * 32}}
# Someone in the sample data who left Promotions.
LEFT_PROMOTIONS = "C100008"


@pytest.fixture
def fixed_link_keyring(link_keyring: Path) -> Path:
    """The test's link keyring (SUBGROUPS_SECRET_FILE) holds a known key."""
    import json
    import os

    link_keyring.parent.mkdir(parents=True, exist_ok=True)
    link_keyring.write_text(json.dumps(FIXED_KEYRING), encoding="utf-8")
    os.chmod(link_keyring, 0o600)
    return link_keyring


def _write_campaigns(db: Path, *, sent_and_cancelled: bool) -> None:
    """The draft "Spring sale" (no groups chosen yet); with ``sent_and_cancelled``, also
    "Autumn newsletter" sent to "DE readers" minus who left Newsletter (into ./outbox, a
    relative path so the ledger's event names no temporary folder), two of whose
    recipients then used its one-click unsubscribe, and "Winter teaser", cancelled."""
    from snapshot_support import NOW

    from app.core import campaigns, groups, one_click, outbox, sending
    from app.core.body_template import DEFAULT_BODY
    from app.core.models import Delivery

    _save_sample_segment(db)
    store = open_store(db)
    try:
        with store.write() as session:
            campaigns.create_campaign(
                session=session,
                name="Spring sale",
                subject="Our spring sale starts today",
                from_address="Example Shop <news@example.com>",
                body=DEFAULT_BODY.replace(
                    "Write your message here.", "Everything in the shop is 20% off until Sunday."
                ),
                actor=CONSOLE_USER,
                now=NOW,
            )
        if not sent_and_cancelled:
            return
        with store.write() as session:
            newsletter = groups.find_group(session, "Newsletter").id
            segment = segments_by_name(session)["DE readers"]
            autumn = campaigns.create_campaign(
                session=session,
                name="Autumn newsletter",
                subject="What is new this autumn",
                from_address="news@example.com",
                body=DEFAULT_BODY.replace("Write your message here.", "Our autumn news."),
                segment_id=segment,
                do_not_send_to=[newsletter] if newsletter else [],
                actor=CONSOLE_USER,
                now=NOW,
            )
            teaser = campaigns.create_campaign(
                session=session, name="Winter teaser", actor=CONSOLE_USER, now=NOW
            )
            campaigns.set_status(
                session=session,
                campaign_id=teaser.id,  # type: ignore[arg-type]
                status=campaigns.CANCELLED,
                actor=CONSOLE_USER,
                now=NOW,
            )
        assert autumn.id is not None
        sending.send_campaign(
            store=store,
            campaign_id=autumn.id,
            outbox=outbox.MaildirOutbox(Path("outbox")),
            actor=CONSOLE_USER,
            source="console",
            # A heartbeat reads the ticking test clock on a timer: on a slow machine a beat
            # would move every later event a second on. This send is over long before an hour.
            heartbeat_seconds=3600,
        )
        with store.write() as session:
            from sqlmodel import col, select

            first_two = session.exec(
                select(Delivery.profile_id)
                .where(col(Delivery.campaign_id) == autumn.id)
                .order_by(col(Delivery.profile_id))
                .limit(2)
            ).all()
            for profile_id in first_two:
                one_click.one_click(session=session, profile_id=profile_id, campaign_id=autumn.id)
    finally:
        store.dispose()


def segments_by_name(session: object) -> dict[str, int]:
    from app.core import segments

    return {s.name: s.id for s in segments.list_segments(session) if s.id is not None}  # type: ignore[arg-type]


async def _open_campaign(pilot: Pilot[None], name: str) -> None:
    """4, then enter on the campaign ``name``: the wizard at step 1."""
    from app.ui.screens.campaign_wizard import CampaignWizard

    app = pilot.app
    await pilot.press("4")
    table = app.query_one("#campaigns-table", DataTable)
    await settle(pilot, lambda: table.row_count > 0)
    while str(table.get_row_at(table.cursor_row)[0]) != name:
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot, lambda: isinstance(app.screen, CampaignWizard))


def _wizard(pilot: Pilot[None]):  # type: ignore[no-untyped-def]
    from app.ui.screens.campaign_wizard import CampaignWizard

    screen = pilot.app.screen
    assert isinstance(screen, CampaignWizard)
    return screen


async def _to_step(pilot: Pilot[None], step: int) -> None:
    """ctrl+n until the wizard shows ``step`` (each step saved on the way)."""
    wizard = _wizard(pilot)
    while wizard.step < step:
        current = wizard.step
        await pilot.press("ctrl+n")
        await settle(pilot, lambda current=current: wizard.step > current)  # type: ignore[misc]


def screen_text(pilot: Pilot[None]) -> str:
    """What the terminal shows now, as plain text lines."""
    strips = pilot.app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


def _reach_counted(pilot: Pilot[None], breakdown_id: str) -> bool:
    from app.ui.widgets.reach import ReachBreakdown

    breakdown = _wizard(pilot).query_one(f"#{breakdown_id}", ReachBreakdown)
    return breakdown.reach is not None and not breakdown.has_class("-counting")


@pytest.mark.parametrize("size", SIZES)
def test_campaigns_list(
    snap_compare, console, sample_store: Path, fixed_link_keyring: Path,
    size: tuple[int, int],
) -> None:  # fmt: skip
    """Campaigns (4) with three campaigns, newest change first: "Autumn newsletter" sent
    to the segment "DE readers" (its reach, messages sent, and the 2 unsubscribes made
    through its one-click link), "Winter teaser" cancelled, the draft "Spring sale" with
    all profiles as its audience; every Reach cell counted. Under the table, the
    selected campaign's status, when it was sent and what the keys do; the log pane
    shows the campaign events and the two unsubscribes."""
    _write_campaigns(sample_store, sent_and_cancelled=True)

    async def steps(pilot: Pilot[None]) -> None:
        await pilot.press("4")
        table = pilot.app.query_one("#campaigns-table", DataTable)
        await settle(
            pilot,
            lambda: (
                table.row_count == 3
                and all("…" not in str(table.get_row_at(i)[3]) for i in range(3))
            ),
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_campaign_wizard_details(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """Wizard step 1 (Details) of a new campaign after typing the name "Spring launch",
    leaving Subject empty, typing "news@" as From and pressing ctrl+n: the step bar with
    1 Details highlighted, the name kept, and in red under Subject "Subject is empty…"
    and under From "'news@' is not an email address…"; the status line says to fix the
    field; the footer lists ctrl+n Next, ctrl+b Back, ctrl+s Save, Escape Close."""

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.screens.campaign_wizard import CampaignWizard

        app = pilot.app
        await pilot.press("4", "n")
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard))
        await pilot.press(*"Spring", "space", *"launch", "tab", "tab", *"news@", "ctrl+n")
        await settle(
            pilot, lambda: not app.screen.query_one("#from-address-error").has_class("-empty")
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_campaign_wizard_audience(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """Wizard step 2 (Audience) of the draft "Spring sale": All profiles (chosen) and
    the saved segment "DE readers", each with its count, then "Audience: 3,000 of 3,000
    profiles" and where segments come from; the title names the campaign and its
    status (draft)."""
    _write_campaigns(sample_store, sent_and_cancelled=False)

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.widgets.campaign_steps import AudienceStep

        await _open_campaign(pilot, "Spring sale")
        await _to_step(pilot, 2)
        audience = _wizard(pilot).query_one(AudienceStep)
        await settle(
            pilot,
            lambda: (
                len(audience.counts) == 2
                and "Audience: " in str(audience.query_one("#audience-count").render())
            ),
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_campaign_wizard_groups(
    snap_compare, console, sample_store: Path, size: tuple[int, int]
) -> None:
    """Wizard step 3 (Groups) of "Spring sale" after ticking Promotions in "Do not send
    this campaign to the following subscription groups": the active groups in both
    pickers (Promotions ticked), and on the right the live reach, step by step: all
    profiles 3,000, no "only subscribed to" groups, minus people unsubscribed from all
    email, minus people who left Promotions (with how many each step drops), then the
    reach. At 80x24 the pickers scroll, but the step opens with the heading "Do not send
    this campaign to the following subscription groups" in view above its picker."""
    _write_campaigns(sample_store, sent_and_cancelled=False)

    async def steps(pilot: Pilot[None]) -> None:
        from textual.widgets import SelectionList

        await _open_campaign(pilot, "Spring sale")
        await _to_step(pilot, 3)
        wizard = _wizard(pilot)
        await settle(pilot, lambda: _reach_counted(pilot, "groups-breakdown"))
        assert "Do not send this campaign to" in screen_text(pilot)
        picker = wizard.query_one("#do-not-send-to", SelectionList)
        assert picker.has_focus
        labels = [str(picker.get_option_at_index(i).prompt) for i in range(picker.option_count)]
        for _ in range(labels.index("Promotions")):
            await pilot.press("down")
        await pilot.press("space")
        await settle(
            pilot,
            lambda: (
                _reach_counted(pilot, "groups-breakdown")
                and "Promotions"
                in str(wizard.query_one("#groups-breakdown").rows[-1].label.render())
            ),
        )
        assert "Do not send this campaign to" in screen_text(pilot)

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_campaign_wizard_content(
    snap_compare, console, sample_store: Path, fixed_link_keyring: Path,
    size: tuple[int, int],
) -> None:  # fmt: skip
    """Wizard step 4 (Content) of "Spring sale": the body template in the editor, the
    three tags and what each stands for, and on the right the preview for the audience's
    first member (C100001, filled in): From, To, Subject, the List-Unsubscribe headers
    (one-click, RFC 8058) and List-Id, then the body with the name and the signed
    unsubscribe and preferences links (a fixed test key)."""
    _write_campaigns(sample_store, sent_and_cancelled=False)

    async def steps(pilot: Pilot[None]) -> None:
        from textual.widgets import Input

        await _open_campaign(pilot, "Spring sale")
        await _to_step(pilot, 4)
        wizard = _wizard(pilot)
        await settle(
            pilot,
            lambda: (
                "/u/" in str(wizard.query_one("#preview").render())
                and bool(wizard.query_one("#recipient", Input).value)
                # The body is focused after a refresh: its cursor is part of the picture.
                and wizard.query_one("#body").has_focus
            ),
        )

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_campaign_wizard_review(
    snap_compare, console, sample_store: Path, fixed_link_keyring: Path,
    size: tuple[int, int],
) -> None:  # fmt: skip
    """Wizard step 5 (Review) of "Spring sale" as saved (no groups chosen): every choice
    (name, subject, from, audience, no "do not send to" groups), the chain's counts and
    the reach, the warnings that matter (no groups chosen, so the unsubscribe link
    unsubscribes from all email; the audience is all profiles), then the message as the
    first member gets it (subject and body filled in). Docked above the Send… (s) button
    and never scrolled away, even at 80x24: the HTTPS warning (the base URL is http) and
    "Ready to send"; the footer shows s Send and x Explain."""
    _write_campaigns(sample_store, sent_and_cancelled=False)

    async def steps(pilot: Pilot[None]) -> None:
        await _open_campaign(pilot, "Spring sale")
        await _to_step(pilot, 5)
        wizard = _wizard(pilot)
        await settle(
            pilot, lambda: wizard.review is not None and _reach_counted(pilot, "review-breakdown")
        )
        shown = screen_text(pilot)
        for seen in ("only over HTTPS", "Ready to send", "Send… (s)"):
            assert seen in shown, shown

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_campaign_explainer(
    snap_compare, console, sample_store: Path, fixed_link_keyring: Path,
    size: tuple[int, int],
) -> None:  # fmt: skip
    """The explainer over the review of "Autumn newsletter" (sent; read-only), for
    C100008: each step with its mark and detail, the verdict and its reason."""
    _write_campaigns(sample_store, sent_and_cancelled=True)

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.modals.explain import ExplainModal, ExplainRow

        app = pilot.app
        await _open_campaign(pilot, "Autumn newsletter")
        wizard = _wizard(pilot)
        assert wizard.step == 5
        await settle(pilot, lambda: wizard.review is not None)
        await pilot.press("x")
        await settle(pilot, lambda: isinstance(app.screen, ExplainModal))
        await pilot.press(*LEFT_PROMOTIONS, "enter")
        await settle(pilot, lambda: bool(app.screen.query(ExplainRow)))

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


# --- landing page --------------------------------------------------------------------

# A sample person who left Product updates and Weekly digest, and never set Promotions.
LANDING_RECIPIENT = "C100002"


async def _open_landing_for(pilot: Pilot[None], identity: str) -> None:
    """Section 5, then ctrl+r and the identity: wait for that person's page."""
    from app.ui.widgets.landing_recipient import RecipientPane

    app = pilot.app
    await show(pilot, "5")
    pane = app.query_one(RecipientPane)
    await settle(pilot, lambda: pane.draft is not None and pane.recipient is not None)
    await pilot.press("ctrl+r", *identity)
    await settle(pilot, lambda: pane.recipient is not None and pane.recipient.identity == identity)


@pytest.mark.parametrize("size", SIZES)
def test_landing_page(
    snap_compare, console, sample_store: Path, fixed_link_keyring: Path, size: tuple[int, int]
) -> None:
    """The Landing page section for the sample recipient C100002 (Kaito Ito): on the
    left the stored settings ("All settings saved."), the title, intro, all-email
    wording, confirmation text and base URL, then the active groups with the ten shown
    ticked (Beta program not; the archived Holiday sale 2025 absent). On the right,
    "Preview as C100002" with the person's name, email and identity, then their page:
    the title, intro, "Preferences for kaito84@example.org" and each shown group with
    its description and a box ticked where they are subscribed (Product updates and the
    opt-in Partner offers unticked). At 120x40 the form scrolls below Promotions and the
    page below Promotions; at 80x24 both columns scroll after a few fields and a group."""

    async def steps(pilot: Pilot[None]) -> None:
        await _open_landing_for(pilot, LANDING_RECIPIENT)

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_landing_page_bottom_and_links(
    snap_compare, console, sample_store: Path, fixed_link_keyring: Path, size: tuple[int, int]
) -> None:
    """The bottom of C100002's page, scrolled to with the keyboard (the sheet's border in
    the accent colour while its scroll area has focus): the last groups, the "All email"
    box with the wording "Unsubscribe from all email" (unticked: they still get email)
    and its note, "Save my choices (ctrl+o)", what the page says after a save, then the
    person's real links on the public base URL, signed with a fixed test key:
    Preferences (/p/…) and Unsubscribe from all email (/u/…)."""

    async def steps(pilot: Pilot[None]) -> None:
        await _open_landing_for(pilot, LANDING_RECIPIENT)
        pilot.app.query_one("#landing-page-scroll").focus()
        await pilot.press("end")

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_landing_page_unsaved_with_an_error(
    snap_compare, console, sample_store: Path, fixed_link_keyring: Path, size: tuple[int, int]
) -> None:
    """The Landing page section while editing, nothing saved: the title changed to
    "Email preferences at ACME" and the all-email wording emptied. At the top
    "● Unsaved changes · ctrl+s saves, ctrl+t reverts"; under the emptied field, in
    red, "The 'unsubscribe from all email' wording is required" (the form scrolled to
    it). The preview follows the form: its sheet is titled "Their page · with your
    unsaved settings" and shows the new title."""

    async def steps(pilot: Pilot[None]) -> None:
        await _open_landing_for(pilot, LANDING_RECIPIENT)
        app = pilot.app
        app.query_one("#landing-title").focus()
        await pilot.press("end", "ctrl+u", *"Email", "space", *"preferences", "space")
        await pilot.press(*"at", "space", *"ACME")
        app.query_one("#landing-wording").focus()
        await pilot.press("end", "ctrl+u")
        await settle(pilot, lambda: not app.query_one("#landing-wording-error").has_class("-empty"))

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))


@pytest.mark.parametrize("size", SIZES)
def test_landing_act_as_recipient(
    snap_compare, console, sample_store: Path, fixed_link_keyring: Path, size: tuple[int, int]
) -> None:
    """Acting as the recipient, before anything is saved: on C100002's page Promotions
    was unticked (its row marked in the warning colour), then ctrl+o asks "Save these
    choices as kaito84@example.org? This changes a real person's consent:" with
    "Promotions: subscribed → unsubscribed" and that each change is a Channel
    Unsubscribed event with Source console and Actor console-admin; No has the focus."""

    async def steps(pilot: Pilot[None]) -> None:
        from app.ui.modals.confirm import ConfirmModal
        from app.ui.widgets.landing_preview import GroupChoice

        await _open_landing_for(pilot, LANDING_RECIPIENT)
        app = pilot.app
        choice = next(c for c in app.query(GroupChoice) if c.group.name == "Promotions")
        choice.checkbox.focus()
        await pilot.press("space", "ctrl+o")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))

    assert snap_compare(console(size), terminal_size=size, run_before=before(steps))
