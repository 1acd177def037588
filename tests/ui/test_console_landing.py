"""The Landing page section: the settings form and its checks, the shown groups, the
live preview for one recipient, and acting as that recipient, driven from the
keyboard and checked in the widgets, the store, the ledger and the log pane."""

from collections.abc import Callable
from pathlib import Path

from console_pilot import (
    CONSOLE_USER,
    NOW,
    SEED_ACTOR,
    SIZE,
    log_lines,
    paste,
    settle,
    start,
    type_text,
)
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Button, Input, SelectionList, Static
from textual.widgets._toast import Toast

from app.core import groups, landing, ledger, profiles
from app.core.models import SUBSCRIBED, UNSUBSCRIBED
from app.core.store import Store
from app.ui.app import SubgroupsApp
from app.ui.modals.confirm import ConfirmModal
from app.ui.sections.landing import LandingSection
from app.ui.widgets.landing_preview import GroupChoice
from app.ui.widgets.landing_recipient import RecipientPane

DEFAULT_TITLE = "Your email preferences"
# A sample person who has never set Promotions (opt-out: subscribed), and left
# Product updates and Weekly digest.
KAITO = "C100002"


# --- helpers -------------------------------------------------------------------------


def section_of(app: SubgroupsApp) -> LandingSection:
    return app.query_one(LandingSection)


def pane_of(app: SubgroupsApp) -> RecipientPane:
    return app.query_one(RecipientPane)


def text_of(widget: Widget) -> str:
    return str(widget.render())


def drawn(widget: Widget) -> str:
    """What the widget draws on screen, line by line."""
    return "\n".join(widget.render_line(y).text for y in range(widget.size.height))


def shown(widget: Widget) -> bool:
    """The widget takes room on screen (errors are hidden with display: none)."""
    return widget.display and widget.region.height > 0


def preview_groups(app: SubgroupsApp) -> dict[str, bool]:
    """The groups the preview shows, by name, and whether each box is ticked."""
    return {
        choice.group.name: choice.checkbox.value
        for choice in app.query(GroupChoice)
        if choice.display
    }


def landing_ready(app: SubgroupsApp) -> bool:
    pane = pane_of(app)
    return (
        section_of(app).saved is not None
        and pane.draft is not None
        and (pane.recipient is not None or bool(pane.note))
    )


async def open_landing(pilot: Pilot[None]) -> None:
    """Press 5 and wait for the settings and the first profile's page."""
    app = pilot.app
    assert isinstance(app, SubgroupsApp)
    await pilot.press("5")
    await settle(pilot, lambda: landing_ready(app), what="the landing page section")


async def tab_to(
    pilot: Pilot[None],
    found: Callable[[Widget | None], bool],
    *,
    back: bool = False,
    limit: int = 60,
) -> None:
    """Press tab (or shift+tab) until the focused widget is the one wanted, as a user would."""
    for _ in range(limit):
        if found(pilot.app.focused):
            return
        await pilot.press("shift+tab" if back else "tab")
    raise AssertionError(f"tab never reached the widget; focus is on {pilot.app.focused}")


async def pick_recipient(pilot: Pilot[None], identity: str) -> None:
    """ctrl+r, type the identity, wait for their page."""
    app = pilot.app
    assert isinstance(app, SubgroupsApp)
    await pilot.press("ctrl+r")
    assert app.focused is app.query_one("#landing-recipient", Input)
    await type_text(pilot, identity)
    pane = pane_of(app)
    await settle(
        pilot,
        lambda: pane.recipient is not None and pane.recipient.identity == identity,
        what=f"the page of {identity}",
    )


def events_named(store: Store, name: str) -> list[ledger.EventRecord]:
    with store.read() as session:
        return ledger.recent_events(session, name=name, limit=10_000)


def group_id(store: Store, name: str) -> int:
    with store.read() as session:
        found = groups.find_group(session, name).id
    assert found is not None
    return found


# --- the settings --------------------------------------------------------------------


async def test_edit_the_title_and_save(sample_db: Path, make_app, open_db) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await open_landing(pilot)
        section = section_of(app)
        # The section opens on the page; e goes to the form.
        assert app.focused is app.query_one("#landing-page-scroll")
        await pilot.press("e")
        title = app.query_one("#landing-title", Input)
        assert app.focused is title and title.value == DEFAULT_TITLE
        state = app.query_one("#landing-state", Static)
        assert text_of(state) == "All settings saved."
        page_title = app.query_one("#page-title", Static)
        assert text_of(page_title) == DEFAULT_TITLE

        await pilot.press("end")
        await type_text(pilot, " at ACME")
        # Unsaved, and the preview already shows it.
        assert text_of(state).startswith("● Unsaved changes")
        assert text_of(page_title) == f"{DEFAULT_TITLE} at ACME"
        assert "unsaved settings" in str(app.query_one("#landing-page").border_title)
        assert not events_named(store, ledger.LANDING_PAGE_UPDATED)

        await pilot.press("ctrl+s")
        await settle(
            pilot,
            lambda: (
                not section.saving
                and not section.dirty()
                and any(ledger.LANDING_PAGE_UPDATED in line for line in log_lines(app))
            ),
            what="the save and its event in the log pane",
        )
        assert text_of(state) == "All settings saved."
        line = next(line for line in log_lines(app) if ledger.LANDING_PAGE_UPDATED in line)
        assert f"'{DEFAULT_TITLE}' → '{DEFAULT_TITLE} at ACME'" in line

    with store.read() as session:
        assert landing.get_settings(session).title == f"{DEFAULT_TITLE} at ACME"
    (event,) = events_named(store, ledger.LANDING_PAGE_UPDATED)
    assert (event.source, event.actor) == ("console", CONSOLE_USER)
    assert event.properties["Changes"] == {"Title": [DEFAULT_TITLE, f"{DEFAULT_TITLE} at ACME"]}


async def test_a_blank_all_email_wording_is_refused_inline_and_nothing_is_saved(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await open_landing(pilot)
        # A change that a partial save would store: the title.
        await pilot.press("e", "end")
        await type_text(pilot, " 2")
        error = app.query_one("#landing-wording-error", Static)
        assert not shown(error)

        await tab_to(pilot, lambda w: w is app.query_one("#landing-wording"))
        await pilot.press("end", "ctrl+u")  # delete the whole line
        assert app.query_one("#landing-wording", Input).value == ""
        assert shown(error)
        assert text_of(error) == "The 'unsubscribe from all email' wording is required"
        # The preview says the page lacks it, rather than drawing an empty box.
        assert "(no wording" in str(app.query_one("#page-all-email").label)

        await pilot.press("ctrl+s")
        await settle(pilot)
        assert shown(error)
        assert app.focused is app.query_one("#landing-wording")
        assert text_of(app.query_one("#landing-state")).startswith("● Unsaved changes")

    with store.read() as session:
        settings = landing.get_settings(session)
    assert (settings.title, settings.all_email_wording) == (
        DEFAULT_TITLE,
        "Unsubscribe from all email",
    )
    assert not events_named(store, ledger.LANDING_PAGE_UPDATED)


async def test_unticking_a_shown_group_hides_it_from_the_preview_and_the_page(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    promotions = group_id(store, "Promotions")
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await open_landing(pilot)
        section = section_of(app)
        listing = app.query_one("#landing-groups", SelectionList)
        # Archived groups are not offered; the hidden-by-default Beta program is, unticked.
        names = [str(listing.get_option_at_index(i).prompt) for i in range(listing.option_count)]
        assert "Holiday sale 2025" not in names and len(names) == 11
        assert group_id(store, "Beta program") not in listing.selected
        assert "Promotions" in preview_groups(app) and "Beta program" not in preview_groups(app)
        assert text_of(app.query_one("#landing-groups-note")) == "10 of 11 active groups shown"

        await tab_to(pilot, lambda w: w is listing)
        while listing.get_option_at_index(listing.highlighted or 0).value != promotions:
            await pilot.press("down")
        await pilot.press("space")
        assert promotions not in listing.selected
        assert "Promotions" not in preview_groups(app)
        assert len(preview_groups(app)) == 9
        assert section.dirty()

        await pilot.press("ctrl+s")
        await settle(
            pilot,
            lambda: not section.saving and not section.dirty(),
            what="the shown groups saved",
        )
        assert "Promotions" not in preview_groups(app)

    with store.read() as session:
        profile = profiles.get_profile(session, KAITO)
        assert profile.id is not None
        page = landing.page_for(session, profile.id)
        assert groups.get_group(session, promotions).shown_on_landing_page is False
    assert "Promotions" not in [g.name for g in page.groups]
    assert len(page.groups) == 9
    updated = [e for e in events_named(store, ledger.GROUP_UPDATED) if e.group_id == promotions]
    assert [(e.source, e.actor) for e in updated] == [("console", CONSOLE_USER)]
    # Nothing else was written: the wording did not change.
    assert not events_named(store, ledger.LANDING_PAGE_UPDATED)


# --- the preview and acting as the recipient --------------------------------------------


async def test_the_preview_shows_the_chosen_recipient_and_their_links(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await open_landing(pilot)
        pane = pane_of(app)
        # The first profile by default.
        assert pane.recipient is not None and pane.recipient.identity == "C100001"

        await pick_recipient(pilot, KAITO)
        boxes = preview_groups(app)
        assert boxes["Promotions"] is True  # opt-out, never set
        assert boxes["Product updates"] is False and boxes["Weekly digest"] is False
        assert boxes["Partner offers"] is False  # opt-in, never set
        assert app.query_one("#page-all-email").value is False  # type: ignore[attr-defined]
        assert "kaito84@example.org" in text_of(app.query_one("#page-for"))
        assert not shown(app.query_one("#page-notice"))

        links = text_of(app.query_one("#landing-links"))
        link = pane.preferences_link()
        assert link is not None and link.startswith("http://127.0.0.1:8080/p/")
        assert link in links and "http://127.0.0.1:8080/u/" in links
        # The link is the real thing: it names Kaito.
        from app.core.tokens import load_keyring, store_binding

        with app.store.read() as session:
            binding = store_binding(session)
        token = load_keyring().verify(link.rsplit("/", 1)[1], store=binding)
        assert pane.recipient is not None and token.profile_id == pane.recipient.profile_id
        assert token.campaign_id is None

        # A base URL typed but not saved: the links follow it, marked as unsaved.
        await tab_to(pilot, lambda w: w is app.query_one("#landing-base-url"), back=True)
        await pilot.press("end", "ctrl+u")
        await paste(pilot, "https://e.example")
        assert "https://e.example/p/" in text_of(app.query_one("#landing-links"))
        assert "unsaved base URL" in text_of(app.query_one("#landing-links"))


async def test_acting_as_the_recipient_changes_their_state_with_one_console_event(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    promotions = group_id(store, "Promotions")
    before = {e.id for e in events_named(store, ledger.CHANNEL_UNSUBSCRIBED)}
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await open_landing(pilot)
        await pick_recipient(pilot, KAITO)
        pane = pane_of(app)
        choice = next(c for c in app.query(GroupChoice) if c.group_id == promotions)
        await tab_to(pilot, lambda w: w is choice.checkbox)
        await pilot.press("space")
        assert preview_groups(app)["Promotions"] is False
        assert choice.has_class("-changed")
        assert "1 change" in str(app.query_one("#page-save", Button).label)

        # Asked first; No changes nothing.
        await pilot.press("ctrl+o")
        confirm = app.screen
        assert isinstance(confirm, ConfirmModal)
        message = text_of(confirm.query_one("#confirm-message"))
        assert "kaito84@example.org" in message
        assert "Promotions: subscribed → unsubscribed" in message
        await pilot.press("n")
        await settle(pilot)
        assert {e.id for e in events_named(store, ledger.CHANNEL_UNSUBSCRIBED)} == before
        assert preview_groups(app)["Promotions"] is False  # still the admin's change

        await pilot.press("ctrl+o")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("y")
        await settle(
            pilot,
            lambda: (
                pane.confirmed
                and not pane.choices
                and any(f"{KAITO}: group 'Promotions'" in line for line in log_lines(app))
            ),
            what="the change saved and its event in the log pane",
        )
        line = next(line for line in log_lines(app) if f"{KAITO}: group 'Promotions'" in line)
        assert "subscribed" in line and "[console]" in line
        # The page now shows what the person chose, and the confirmation text.
        assert preview_groups(app)["Promotions"] is False
        assert not choice.has_class("-changed")
        notice = app.query_one("#page-notice")
        assert shown(notice) and text_of(notice) == "Your preferences are saved."

    new = [e for e in events_named(store, ledger.CHANNEL_UNSUBSCRIBED) if e.id not in before]
    assert len(new) == 1
    (event,) = new
    assert event.identity == KAITO
    assert event.properties["Group"] == "Promotions"
    assert event.properties["Source"] == "console" and event.source == "console"
    assert event.properties["New State"] == UNSUBSCRIBED
    assert event.actor == CONSOLE_USER
    with store.read() as session:
        view = profiles.profile_view(session, KAITO)
    states = {g.group_name: (g.stored, g.effective) for g in view.groups}
    assert states["Promotions"] == (UNSUBSCRIBED, UNSUBSCRIBED)
    # The groups nobody touched kept their states (never set stays never set).
    assert states["Newsletter"][0] is None and states["Newsletter"][1] == SUBSCRIBED


async def test_acting_is_refused_while_the_shown_groups_are_unsaved(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    store = open_db(sample_db)
    before = len(events_named(store, ledger.CHANNEL_UNSUBSCRIBED))
    newsletter = group_id(store, "Newsletter")
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await start(pilot)
        await open_landing(pilot)
        listing = app.query_one("#landing-groups", SelectionList)
        await tab_to(pilot, lambda w: w is listing)
        await pilot.press("space")  # the first, Beta program, not shown: now it is
        assert group_id(store, "Beta program") in listing.selected
        choice = next(c for c in app.query(GroupChoice) if c.group_id == newsletter)
        await tab_to(pilot, lambda w: w is choice.checkbox)
        await pilot.press("space", "ctrl+o")
        await settle(pilot, lambda: bool(app.query(Toast)), what="the refusal")
        assert not isinstance(app.screen, ConfirmModal)
        assert any("Save the settings first" in str(t.render()) for t in app.query(Toast))
    assert len(events_named(store, ledger.CHANNEL_UNSUBSCRIBED)) == before


# --- user text ---------------------------------------------------------------------


SCRIPT = "<script>alert(1)</script>"
BBCODE = "[b]x[/b]"


async def test_group_names_that_look_like_markup_show_literally(
    sample_db: Path, make_app, open_db
) -> None:
    with open_db(sample_db).write() as session:
        for name in (SCRIPT, BBCODE):
            groups.create_group(
                session=session,
                name=name,
                description=f"about [red]{name}[/red]",
                actor=SEED_ACTOR,
                now=NOW,
            )
    app = make_app(sample_db)
    async with app.run_test(size=(140, 60)) as pilot:
        await start(pilot)
        await open_landing(pilot)
        listing = app.query_one("#landing-groups", SelectionList)
        listed = drawn(listing)
        assert SCRIPT in listed and BBCODE in listed

        boxes = preview_groups(app)
        assert SCRIPT in boxes and BBCODE in boxes
        for name in (SCRIPT, BBCODE):
            choice = next(c for c in app.query(GroupChoice) if c.group.name == name)
            assert drawn(choice.checkbox).strip().endswith(name)
            about = choice.query_one(".page-choice-about")
            assert drawn(about).strip() == f"about [red]{name}[/red]"


# --- changes from elsewhere -----------------------------------------------------------


async def test_changes_from_another_process_show_up_and_unsaved_edits_stay(
    sample_db: Path, make_app, open_db
) -> None:
    app = make_app(sample_db)
    other = open_db(sample_db)  # another process: the CLI, the landing server
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await open_landing(pilot)
        await pick_recipient(pilot, KAITO)
        title = app.query_one("#landing-title", Input)
        confirmation = app.query_one("#landing-confirmation", Input)

        # A clean form takes what another admin saved; the preview follows.
        with other.write() as session:
            landing.update_settings(session=session, actor="someone", title="New", source="cli")
        await settle(pilot, lambda: title.value == "New", what="the title saved elsewhere")
        assert text_of(app.query_one("#page-title")) == "New"
        assert not section_of(app).dirty()

        # An unsaved edit survives the next change from elsewhere.
        await tab_to(pilot, lambda w: w is confirmation, back=True)
        await pilot.press("end")  # tab selects the whole text: typing would replace it
        await paste(pilot, " Thanks!")
        with other.write() as session:
            landing.update_settings(session=session, actor="someone", title="Newer", source="cli")
        await settle(
            pilot,
            lambda: section_of(app).saved is not None and section_of(app).saved.title == "Newer",
            what="the second title saved elsewhere",
        )
        assert confirmation.value == "Your preferences are saved. Thanks!"
        assert title.value == "New"  # the form keeps what it showed; ctrl+s would save it
        assert section_of(app).dirty()

        # The person leaves a group on the real page: the preview shows it.
        with other.write() as session:
            profile = profiles.get_profile(session, KAITO)
            assert profile.id is not None
            page = landing.page_for(session, profile.id)
            landing.save_choices(
                session=session,
                profile_id=profile.id,
                campaign_id=None,
                subscribed_group_ids={g.id for g in page.groups if g.subscribed}
                - {group_id(other, "Newsletter")},
                all_email=page.all_email,
            )
        await settle(
            pilot,
            lambda: preview_groups(app)["Newsletter"] is False,
            what="the person's own change in the preview",
        )


# --- keys ------------------------------------------------------------------------------


async def test_help_lists_the_landing_keys_and_the_palette_opens_the_section(
    sample_db: Path, make_app
) -> None:
    from test_console_help import assert_listed_keys_work, open_help
    from textual.command import CommandList, CommandPalette

    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await type_text(pilot, "landing")
        results = app.screen.query_one(CommandList)
        await settle(pilot, lambda: results.option_count > 0, what="the palette's results")

        def prompt(index: int | None) -> str:
            return str(results.get_option_at_index(index or 0).prompt).split("\n")[0]

        prompts = [prompt(i) for i in range(results.option_count)]
        assert "Landing page (5)" in prompts, prompts
        while prompt(results.highlighted) != "Landing page (5)":
            await pilot.press("down")
        await pilot.press("enter")
        await settle(pilot, lambda: landing_ready(app), what="the landing page section")
        assert app.section == "landing"
        assert app.focused is app.query_one("#landing-page-scroll")

        rows = await open_help(pilot)
        listed = {row[1] for row in rows if row[0] == "Landing page"}
        assert listed == {"e", "esc", "^s", "^r", "^o", "^l", "^z, ^t"}
        assert_listed_keys_work(app, rows, "Landing page", LandingSection)
        # In a field, Escape leaves it, so the number keys switch sections again.
        await pilot.press("e")
        assert app.focused is app.query_one("#landing-title")
        await pilot.press("1")  # typed into the title: a field takes the number keys
        assert app.section == "landing"
        await pilot.press("escape", "1")
        assert app.section == "groups"
