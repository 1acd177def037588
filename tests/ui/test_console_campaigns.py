"""The Campaigns section and the wizard by keyboard: create a campaign step by
step (each step refusing what is wrong, the draft in the store as soon as
step 1 is left), watch "do not send to Promotions" change the reach, send it
from the review after confirming (deliveries in the store, messages in a
Maildir), and explain a campaign for a person from the Profiles screen."""

from pathlib import Path

from console_pilot import SIZE, changes_heard, paste, settle, start, table_rows, wait_for
from sqlmodel import col, func, select
from textual.widgets import DataTable, Input, Select, SelectionList, Static, TextArea
from textual.widgets.data_table import ColumnKey

from app.core import campaigns, eligibility, groups
from app.core.models import Delivery
from app.core.store import Store
from app.ui.app import SubgroupsApp
from app.ui.modals.confirm import ConfirmModal
from app.ui.modals.explain import ExplainModal, ExplainRow
from app.ui.modals.send_campaign import SendModal
from app.ui.screens.campaign_wizard import CampaignWizard
from app.ui.sections.campaigns import CampaignsSection
from app.ui.widgets.reach import ReachBreakdown

# Someone in the sample data who left Promotions (and is otherwise subscribed to email).
LEFT_PROMOTIONS = "C100008"


def wizard(app: SubgroupsApp) -> CampaignWizard:
    screen = app.screen
    assert isinstance(screen, CampaignWizard), screen
    return screen


def text_of(widget: Static) -> str:
    return str(widget.render())


def error_under(app: SubgroupsApp, field: str) -> str:
    """The message under a wizard field ('' when it shows none)."""
    error = wizard(app).query_one(f"#{field}-error", Static)
    return "" if error.has_class("-empty") else text_of(error)


def reach_shown(app: SubgroupsApp, breakdown_id: str) -> int | None:
    """The reach the breakdown shows (None while it has none)."""
    breakdown = wizard(app).query_one(f"#{breakdown_id}", ReachBreakdown)
    if breakdown.reach is None or breakdown.has_class("-counting"):
        return None
    return int(text_of(breakdown.total.count).replace(",", ""))


async def toggle(pilot, picker: SelectionList, name: str) -> None:  # type: ignore[no-untyped-def, type-arg]
    """Move the picker's cursor to ``name`` with the arrow keys and press space."""
    picker.focus()
    await settle(pilot, lambda: picker.has_focus, what=f"the focus on the picker, for {name}")
    labels = [str(picker.get_option_at_index(i).prompt) for i in range(picker.option_count)]
    target = labels.index(name)
    while picker.highlighted != target:
        await pilot.press("down" if (picker.highlighted or 0) < target else "up")
    await pilot.press("space")


async def test_create_and_send_a_campaign_by_keyboard(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path, tmp_path: Path
) -> None:
    outbox_dir = tmp_path / "outbox"
    app = make_app(sample_db, outbox_dir=outbox_dir)
    check: Store = open_db(sample_db)
    with check.read() as session:
        promotions = groups.find_group(session, "Promotions").id
    assert promotions is not None
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4")
        section = app.query_one(CampaignsSection)
        await settle(pilot, lambda: section.active, what="the campaigns list")
        await pilot.press("n")
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard), what="the wizard")
        steps = wizard(app)
        assert steps.step == 1
        assert steps.query_one("#name", Input).has_focus

        # Step 1: a name, no subject, a From that is no address: Next is refused.
        await paste(pilot, "Spring sale")
        await pilot.press("tab", "tab")
        await paste(pilot, "not-an-address")
        await pilot.press("ctrl+n")
        await settle(pilot, what="the refused step")
        assert steps.step == 1
        assert error_under(app, "subject").startswith("Subject is empty")
        assert "is not an email address" in error_under(app, "from-address")
        assert error_under(app, "name") == ""
        with check.read() as session:
            assert campaigns.list_campaigns(session) == []

        # Fix both (the first problem's field has focus), then Next saves the draft.
        assert steps.query_one("#subject", Input).has_focus
        await paste(pilot, "Our spring sale starts today")
        await pilot.press("tab", "ctrl+u")
        await paste(pilot, "Shop <news@example.com>")
        await pilot.press("ctrl+n")
        await settle(pilot, lambda: steps.step == 2, what="step 2")
        with check.read() as session:
            draft = campaigns.get_campaign(session, "spring sale")
            assert (draft.status, draft.subject, draft.from_address) == (
                campaigns.DRAFT,
                "Our spring sale starts today",
                "Shop <news@example.com>",
            )

        # Step 2: all profiles, with its count.
        await settle(
            pilot, lambda: "Audience: 3,000" in text_of(steps.query_one("#audience-count", Static))
        )
        await pilot.press("ctrl+n")
        await settle(
            pilot, lambda: steps.step == 3 and reach_shown(app, "groups-breakdown") is not None
        )

        # Step 3: "do not send to Promotions" lowers the reach shown, to the service's count.
        before = reach_shown(app, "groups-breakdown")
        assert before == eligibility.reach(check, draft).reach
        await toggle(pilot, steps.query_one("#do-not-send-to", SelectionList), "Promotions")
        await settle(
            pilot,
            lambda: reach_shown(app, "groups-breakdown") not in (None, before),
            what="the new reach",
        )
        draft.do_not_send_to = [promotions]
        expected = eligibility.reach(check, draft).reach
        assert reach_shown(app, "groups-breakdown") == expected < before  # type: ignore[operator]
        breakdown = steps.query_one("#groups-breakdown", ReachBreakdown)
        labels = [text_of(r.label) for r in breakdown.rows]
        assert "Minus people who left Promotions" in labels
        # Right after the all-email opt-outs (DESIGN's order).
        undeliverable = labels.index("Minus undeliverable addresses")
        assert labels[undeliverable - 1] == "Minus people unsubscribed from all email"
        await pilot.press("ctrl+n")
        await settle(pilot, lambda: steps.step == 4, what="step 4")
        with check.read() as session:
            assert campaigns.get_campaign(session, "Spring sale").do_not_send_to == [promotions]

        # Step 4: a body without the unsubscribe link is refused, with the message under it.
        body = steps.query_one("#body", TextArea)
        body.focus()
        await pilot.press("f7")  # select all: the paste replaces it
        await paste(pilot, "Hello {{ name }}, no way out of this one.")
        await pilot.press("ctrl+n")
        await settle(pilot, what="the refused body")
        assert steps.step == 4
        assert "no {{ unsubscribe_url }}" in error_under(app, "body")
        await pilot.press("f7")
        await paste(pilot, "Hello {{ name }}!\nSpring is here.\nLeave: {{ unsubscribe_url }}\n")
        await settle(
            pilot, lambda: "Spring is here." in text_of(steps.query_one("#preview", Static))
        )
        assert error_under(app, "body") == ""
        preview = text_of(steps.query_one("#preview", Static))
        recipient = steps.query_one("#recipient", Input).value
        assert recipient  # the audience's first member, filled in
        assert "/u/" in preview and "/p/" in preview  # the link, and the footer's preferences link
        await pilot.press("ctrl+n")
        await settle(pilot, lambda: steps.step == 5 and steps.review is not None, what="the review")

        # Step 5: the chain and no problems; s asks, y sends.
        assert steps.review is not None and steps.review.problems == []
        assert reach_shown(app, "review-breakdown") == expected
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal), what="the confirmation")
        assert f"to {expected:,} people?" in text_of(
            app.screen.query_one("#confirm-message", Static)
        )
        await pilot.press("y")
        await settle(
            pilot,
            lambda: isinstance(app.screen, SendModal) and app.screen.summary is not None,
            timeout=30,
            what="the send",
        )
        summary = app.screen.summary  # type: ignore[attr-defined]
        assert summary.startswith("Sent ")
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard))
        await settle(
            pilot, lambda: steps.review is not None and steps.review.draft.status == campaigns.SENT
        )
        assert steps.read_only

        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, CampaignWizard))
        table = app.query_one("#campaigns-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1 and "…" not in table_rows(table)[0])

    with check.read() as session:
        sent = session.exec(
            select(func.count()).select_from(Delivery).where(col(Delivery.status) == "sent")
        ).one()
        assert campaigns.get_campaign(session, "Spring sale").status == campaigns.SENT
    files = list((outbox_dir / "new").iterdir())
    assert 0 < sent == len(files) <= expected
    assert f"Sent {sent:,} messages to {outbox_dir}" in summary
    assert table_rows(table)[0][:2] == ["Spring sale", "sent"]
    # A sent campaign has no reach to show (who it would reach today is not who got
    # it): "—", as the CLI prints "-"; Sent says who got it.
    assert table_rows(table)[0][3] == "—"
    assert table_rows(table)[0][4] == f"{sent:,}"


async def test_escape_keeps_the_draft_and_reopens_it(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    """Escape on step 1 saves what is valid; enter on the list reopens it, a markup-like
    name shown literally."""
    app = make_app(sample_db)
    check: Store = open_db(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4", "n")
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard), what="the wizard")
        await paste(pilot, "[b]x[/b] draft")
        await pilot.press("escape")
        await settle(pilot, lambda: not isinstance(app.screen, CampaignWizard), what="closing")
        with check.read() as session:
            assert campaigns.get_campaign(session, "[b]x[/b] draft").subject == ""
        table = app.query_one("#campaigns-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1)
        assert table_rows(table)[0][0] == "[b]x[/b] draft"
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard), what="reopening")
        assert wizard(app).query_one("#name", Input).value == "[b]x[/b] draft"
        assert "[b]x[/b] draft" in text_of(wizard(app).query_one("#wizard-title", Static))


async def test_a_stale_reach_never_replaces_a_newer_one(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    check: Store = open_db(sample_db)
    with check.write() as session:
        campaigns.create_campaign(
            session=session,
            name="Stale",
            subject="Hello",
            from_address="news@example.com",
            actor="test",
        )
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4")
        table = app.query_one("#campaigns-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard))
        # Next: ctrl+f (what a browser user has), then the terminal's ctrl+n.
        await pilot.press("ctrl+f", "ctrl+n")
        await settle(pilot, lambda: reach_shown(app, "groups-breakdown") is not None)
        shown = reach_shown(app, "groups-breakdown")
        steps = wizard(app)
        old = steps.reach_generation
        steps.reach_generation += 1  # a newer choice is being counted
        stale = eligibility.Reach((eligibility.ReachStep("audience", "Stale", 1, 0),), 1, 1)
        steps.post_message(CampaignWizard.Reached(old, stale))
        await pilot.pause()
        assert reach_shown(app, "groups-breakdown") == shown


async def test_explain_a_campaign_from_a_profile(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    """x on a profile asks for the campaign, then shows each step: left out at "Do not send
    to", because they left Promotions."""
    check: Store = open_db(sample_db)
    with check.write() as session:
        promotions = groups.find_group(session, "Promotions").id
        assert promotions is not None
        campaigns.create_campaign(
            session=session, name="Deals", actor="test", do_not_send_to=[promotions]
        )
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("2", "slash")
        await paste(pilot, LEFT_PROMOTIONS)
        profiles = app.query_one("#profiles-table", DataTable)
        await settle(pilot, lambda: profiles.row_count == 1, what="the search")
        await pilot.press("enter")  # to the results
        await pilot.press("x")
        await settle(pilot, lambda: isinstance(app.screen, ExplainModal), what="the explainer")
        modal = app.screen
        assert modal.query_one("#explain-identity", Input).value == LEFT_PROMOTIONS
        # The campaign picker has focus: open it, take the first (only) campaign.
        await pilot.press("enter")
        picker = modal.query_one("#explain-campaign", Select)
        await settle(pilot, lambda: picker.expanded, what="the campaign list to open")
        await pilot.press("down", "enter")
        await settle(pilot, lambda: bool(modal.query(ExplainRow)), what="the explanation")
        rows = {row.step.key: (row.step.passed, row.step.detail) for row in modal.query(ExplainRow)}
        assert rows["audience"][0] is True
        assert rows["do_not_send_to"][0] is False
        assert "left Promotions" in rows["do_not_send_to"][1]
        verdict = text_of(modal.query_one("#explain-verdict", Static))
        assert verdict.startswith("Verdict: Left out")
        await pilot.press("escape")
        assert not isinstance(app.screen, ExplainModal)


async def test_the_list_follows_other_processes(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    """A campaign created by another process (the CLI) shows up, reach counted."""
    app = make_app(sample_db)
    other: Store = open_db(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4")
        table = app.query_one("#campaigns-table", DataTable)
        await settle(pilot, lambda: app.query_one(CampaignsSection).active)
        assert table.row_count == 0
        with other.write() as session:
            made = campaigns.create_campaign(
                session=session, name="From the CLI", actor="cli-user", source="cli"
            )
        reach = eligibility.reach(other, made).reach
        await settle(
            pilot,
            lambda: table.row_count == 1 and table_rows(table)[0][3] == f"{reach:,}",
            what="the new campaign",
        )
        assert table_rows(table)[0][:3] == ["From the CLI", "draft", "All profiles"]


async def test_cancel_a_send_then_send_the_rest(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path, tmp_path: Path, monkeypatch
) -> None:
    """Escape while sending stops after the batch in hand: the campaign is paused with
    part of the audience mailed; sending again mails the rest, nobody twice."""
    import threading

    from app.core import sending
    from app.ui.modals import send_campaign as send_modal

    real_send = sending.send_campaign
    escaped = threading.Event()  # set by the test once Escape has been handled
    sends: list[int] = []

    def held_send(**kwargs):  # type: ignore[no-untyped-def]
        """Small batches; the first send holds after its first batch until Escape."""
        progress = kwargs.pop("progress")
        first_send = not sends
        sends.append(1)

        def holding(p: sending.SendProgress) -> None:
            progress(p)
            if first_send and not escaped.is_set():  # the first batch is in
                assert escaped.wait(timeout=10), "Escape was never pressed"

        return real_send(**kwargs, progress=holding, batch_size=100)

    monkeypatch.setattr(send_modal.sending, "send_campaign", held_send)
    check: Store = open_db(sample_db)
    with check.write() as session:
        made = campaigns.create_campaign(
            session=session,
            name="Halfway",
            subject="Hello",
            from_address="news@example.com",
            body="Hello {{ name }}!\nLeave: {{ unsubscribe_url }}\n",
            actor="test",
        )
    outbox_dir = tmp_path / "outbox"
    app = make_app(sample_db, outbox_dir=outbox_dir)

    def delivered() -> int:
        with check.read() as session:
            return session.exec(
                select(func.count())
                .select_from(Delivery)
                .where(col(Delivery.campaign_id) == made.id, col(Delivery.status) == "sent")
            ).one()

    async def send_from_review(pilot) -> None:  # type: ignore[no-untyped-def]
        steps = wizard(app)
        await settle(pilot, lambda: steps.review is not None and steps.step == 5)
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        # Not settle(): it would wait for the send worker to finish.
        await wait_for(pilot, lambda: isinstance(app.screen, SendModal), what="the send dialog")

    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4")
        table = app.query_one("#campaigns-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1)
        await pilot.press("s")  # to the review
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard))
        await send_from_review(pilot)
        modal = app.screen
        assert isinstance(modal, SendModal)
        await pilot.press("escape")
        escaped.set()
        await settle(pilot, lambda: modal.summary is not None, timeout=30, what="the pause")
        assert modal.summary is not None and modal.summary.startswith("Paused after")
        await pilot.press("enter")
        steps = wizard(app)
        await settle(
            pilot, lambda: steps.review is not None and steps.review.draft.status == "paused"
        )
        first = delivered()
        reach = eligibility.reach(check, made).reach
        assert 0 < first < reach

        # Send again: the rest, nobody twice.
        await send_from_review(pilot)
        modal = app.screen
        assert isinstance(modal, SendModal)
        await settle(pilot, lambda: modal.summary is not None, timeout=60, what="the rest")
        assert modal.summary is not None and modal.summary.startswith("Sent ")
        await pilot.press("enter")
        await settle(
            pilot, lambda: steps.review is not None and steps.review.draft.status == "sent"
        )
    total = delivered()
    assert first < total <= reach
    assert len(list((outbox_dir / "new").iterdir())) == total


def _deals_leaving_promotions(store: Store) -> None:
    """A draft "Deals" to all profiles, not to those who left Promotions."""
    with store.write() as session:
        promotions = groups.find_group(session, "Promotions")
        campaigns.create_campaign(
            session=session,
            name="Deals",
            subject="Hello",
            from_address="news@example.com",
            do_not_send_to=[promotions.id],  # type: ignore[list-item]
            actor="test",
        )


def _leaves_promotions(store: Store, identity: str) -> None:
    """The person leaves Promotions on the landing page (another process)."""
    from app.core import profiles, subscriptions
    from app.core.models import UNSUBSCRIBED

    with store.write() as session:
        subscriptions.set_state(
            session=session,
            profile=profiles.get_profile(session, identity),
            group=groups.find_group(session, "Promotions"),
            status=UNSUBSCRIBED,
            source="landing_page",
            actor="recipient",
        )


async def test_the_reach_follows_opt_outs_from_other_processes(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    """On the Groups step, someone leaving a "do not send to" group elsewhere (the landing
    page) takes one off the reach shown, within a second."""
    other: Store = open_db(sample_db)
    _deals_leaving_promotions(other)
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4")
        table = app.query_one("#campaigns-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1)
        await pilot.press("enter")
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard))
        await pilot.press("ctrl+n", "ctrl+n")
        await settle(pilot, lambda: reach_shown(app, "groups-breakdown") is not None)
        before = reach_shown(app, "groups-breakdown")
        assert before is not None
        _leaves_promotions(other, "C100001")
        await settle(
            pilot, lambda: reach_shown(app, "groups-breakdown") == before - 1, what="the recount"
        )


async def test_a_hidden_list_counts_again_when_shown_not_before(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    """Opt-outs from another process while Groups is shown: the Campaigns list (shown
    once before) counts no reach while hidden (that work would hold up the shown section
    and the live log); pressing 4 shows the reach one lower."""
    other: Store = open_db(sample_db)
    _deals_leaving_promotions(other)
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4")
        section = app.query_one(CampaignsSection)
        await settle(pilot, lambda: len(section.reach) == 1)
        (before,) = section.reach.values()
        assert before is not None
        generation = section.generation
        await pilot.press("1")
        heard = changes_heard(app)
        _leaves_promotions(other, "C100001")
        await settle(pilot, lambda: True in heard, what="the burst of events heard")
        assert section.generation == generation and section.stale
        await pilot.press("4")
        await settle(pilot, lambda: section.reach.get(next(iter(section.reach))) == before - 1)
        assert section.generation == generation + 1 and not section.stale


async def test_a_send_resumed_into_another_outbox_is_refused_as_the_cli_does(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path, tmp_path: Path
) -> None:
    """A campaign whose send began in another Maildir is not resumed into the console's
    outbox: the send dialog gives the CLI's refusal, naming the first outbox; nothing is
    written."""
    check: Store = open_db(sample_db)
    with check.write() as session:
        made = campaigns.create_campaign(
            session=session, name="Elsewhere", subject="Hello",
            from_address="news@example.com", actor="test",
            body="Hello {{ name }}!\nLeave: {{ unsubscribe_url }}\n",
        )  # fmt: skip
        assert made.id is not None
        paused = campaigns.set_status(
            session=session, campaign_id=made.id, status=campaigns.PAUSED, actor="test"
        )
        paused.destination = "maildir:/srv/first-outbox"
        session.add(paused)
    outbox_dir = tmp_path / "outbox"
    app = make_app(sample_db, outbox_dir=outbox_dir)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4")
        table = app.query_one("#campaigns-table", DataTable)
        await settle(pilot, lambda: table.row_count == 1)
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard))
        steps = wizard(app)
        await settle(pilot, lambda: steps.review is not None and steps.step == 5)
        await pilot.press("s")
        await settle(pilot, lambda: isinstance(app.screen, ConfirmModal))
        await pilot.press("y")
        await settle(
            pilot,
            lambda: isinstance(app.screen, SendModal) and app.screen.summary is not None,
            what="the refusal",
        )
        modal = app.screen
        assert isinstance(modal, SendModal)
        assert modal.summary == (
            "Not sent: Campaign 'Elsewhere' was first sent to maildir:/srv/first-outbox; it can "
            f"only be resumed there, not in maildir:{outbox_dir} (people it mailed would be "
            "mailed again)"
        )
    assert not (outbox_dir / "new").exists() or not list((outbox_dir / "new").iterdir())
    with check.read() as session:
        assert campaigns.get_campaign(session, "Elsewhere").status == campaigns.PAUSED


# --- issue 8: tags in the subject, the placeholder body, reach 0 ------------------------


async def _open_at_review(pilot, app: SubgroupsApp, name: str) -> CampaignWizard:  # type: ignore[no-untyped-def]
    """Campaigns (4), enter on ``name``, then ctrl+n to the review (each step saved)."""
    await pilot.press("4")
    table = app.query_one("#campaigns-table", DataTable)
    await settle(pilot, lambda: table.row_count > 0, what="the campaigns list")
    while table_rows(table)[table.cursor_row][0] != name:
        await pilot.press("down")
    await pilot.press("enter")
    await settle(pilot, lambda: isinstance(app.screen, CampaignWizard), what="the wizard")
    steps = wizard(app)
    while steps.step < 5:
        current = steps.step
        await pilot.press("ctrl+n")
        await settle(pilot, lambda current=current: steps.step > current, what="the next step")
    await settle(pilot, lambda: steps.review is not None, what="the review")
    return steps


async def test_an_unknown_tag_is_refused_at_its_step(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    """{{ nmae }} in the subject stops step 1, in the body step 4, each with its message
    under the field; nothing with the typo reaches the store."""
    app = make_app(sample_db)
    check: Store = open_db(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4", "n")
        await settle(pilot, lambda: isinstance(app.screen, CampaignWizard), what="the wizard")
        steps = wizard(app)
        await paste(pilot, "Winter")
        await pilot.press("tab")
        await paste(pilot, "Hello {{ nmae }}, winter is here")
        await pilot.press("tab")
        await paste(pilot, "news@example.com")
        await pilot.press("ctrl+n")
        await settle(pilot, what="the refused step")
        assert steps.step == 1
        assert error_under(app, "subject").startswith("Subject, column 7: unknown tag {{ nmae }}")
        with check.read() as session:
            assert campaigns.list_campaigns(session) == []

        subject = steps.query_one("#subject", Input)
        subject.value = "Hello {{ name }}, winter is here"
        await pilot.press("ctrl+n")
        await settle(pilot, lambda: steps.step == 2, what="step 2")
        await pilot.press("ctrl+n")
        await settle(pilot, lambda: steps.step == 3, what="step 3")
        await pilot.press("ctrl+n")
        await settle(pilot, lambda: steps.step == 4, what="step 4")
        # The untouched placeholder is pointed out (a draft may keep it; a send may not).
        note = steps.query_one("#body-note", Static)
        assert text_of(note).startswith("Line 3 still says 'Write your message here.'")
        body = steps.query_one("#body", TextArea)
        body.text = "Hi {{ name }}\nSee {{ nmae }}\nLeave: {{ unsubscribe_url }}\n"
        await pilot.press("ctrl+n")
        await settle(pilot, what="the refused body")
        assert steps.step == 4
        assert error_under(app, "body").startswith("line 2, column 5: unknown tag {{ nmae }}")
        assert note.has_class("-empty")
    with check.read() as session:
        saved = campaigns.get_campaign(session, "Winter")
        assert saved.subject == "Hello {{ name }}, winter is here"
        assert "nmae" not in saved.body


async def test_the_review_shows_the_message_and_refuses_the_placeholder(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    """The review renders subject and body for step 4's recipient; the untouched
    placeholder body is named as what stops a send, and s offers no send; unsigned
    mail (no DKIM set up) is among what to know."""
    check: Store = open_db(sample_db)
    with check.write() as session:
        campaigns.create_campaign(
            session=session,
            name="Untouched",
            subject="Hi {{ name }}, winter is here",
            from_address="news@example.com",
            actor="test",
        )
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        steps = await _open_at_review(pilot, app, "Untouched")
        review = steps.review
        assert review is not None and review.message is not None
        identity = steps.query_one("#recipient", Input).value
        assert identity and review.recipient == identity
        with check.read() as session:
            from app.core import profiles

            name = profiles.get_profile(session, identity).name
        shown = text_of(steps.query_one("#review-message", Static))
        assert f"Hi {name}, winter is here" in shown
        assert f"Hello {name}," in shown and "{{" not in shown
        problems = text_of(steps.query_one("#review-problems", Static))
        assert "'Write your message here.' (line 3): write the message" in problems
        # No DKIM set up: the review says the mail would go out unsigned (issue 12, ask 8).
        warnings = text_of(steps.query_one("#review-warnings", Static))
        assert "Mail goes out unsigned (no DKIM)" in warnings
        assert steps.query_one("#wizard-next").disabled
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, CampaignWizard)
    with check.read() as session:
        assert campaigns.get_campaign(session, "Untouched").status == campaigns.DRAFT


async def test_the_review_of_a_campaign_that_reaches_nobody_offers_no_send(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    check: Store = open_db(sample_db)
    with check.write() as session:
        nobody = groups.create_group(session=session, name="Nobody yet", policy="opt-in", actor="t")
        campaigns.create_campaign(
            session=session,
            name="Empty",
            subject="Hello",
            from_address="news@example.com",
            body="Hi {{ name }}\nLeave: {{ unsubscribe_url }}\n",
            only_subscribed_to=[nobody.id or 0],
            actor="test",
        )
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        steps = await _open_at_review(pilot, app, "Empty")
        await settle(pilot, lambda: reach_shown(app, "review-breakdown") == 0, what="reach 0")
        problems = text_of(steps.query_one("#review-problems", Static))
        assert "What stops a send" in problems
        assert "reaches nobody (reach 0)" in problems
        assert steps.query_one("#wizard-next").disabled
        await pilot.press("s")
        await settle(pilot)
        assert isinstance(app.screen, CampaignWizard)
    with check.read() as session:
        assert campaigns.get_campaign(session, "Empty").status == campaigns.DRAFT


async def test_a_reach_wider_than_its_header_shows_whole(  # type: ignore[no-untyped-def]
    make_app, open_db, sample_db: Path
) -> None:
    """At 1M a draft's reach (906,865) is longer than "Reach": the column widens to it
    (it was cut to "906,8": the cell came after the column was sized to "…")."""
    check: Store = open_db(sample_db)
    with check.write() as session:
        draft = campaigns.create_campaign(
            session=session,
            name="Wide reach",
            subject="Hello",
            from_address="news@example.com",
            actor="test",
        )
    app = make_app(sample_db)
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        await pilot.press("4")
        section = app.query_one(CampaignsSection)
        table = app.query_one("#campaigns-table", DataTable)
        await settle(pilot, lambda: section.reach.get(draft.id) is not None)
        section.post_message(CampaignsSection.ReachCounted(section.generation, draft.id, 906_865))
        await settle(pilot, lambda: section.reach.get(draft.id) == 906_865)
        row = table_rows(table)[table.get_row_index(str(draft.id))]
        reach = table.columns[ColumnKey("reach")]
        assert "906,865" in row
        assert reach.get_render_width(table) >= len("906,865") + 2 * table.cell_padding
