"""Why people leave: the optional question after an unsubscribe on the landing page,
against the real server on a loopback port (SQLite and PostgreSQL).

The answer is an ``Unsubscribe Reason`` event tied to the change the link made;
it is never required, and an answer with no change behind it, a forged link or
a bad answer is refused with a clear page and records nothing.
"""

from urllib.parse import urlencode

from landing_world import ledger_size, subscription_events
from web_client import Served, parse_page

from app.core import ledger
from app.core.event_names import UNSUBSCRIBE_REASON

ONE_CLICK = "List-Unsubscribe=One-Click"


def reason_events(served: Served) -> list[ledger.EventRecord]:
    with served.store.read() as session:
        return ledger.recent_events(session, name=UNSUBSCRIBE_REASON)


def test_after_a_one_click_the_optional_question_records_a_reason(served: Served) -> None:
    w = served.world
    token = served.token(w.ann, w.campaign_groups)
    done = served.post(f"/u/{token}", ONE_CLICK)
    assert done.status == 200 and "You are unsubscribed" in done.body
    page = parse_page(done.body)
    choices = [c.attrs["value"] for c in page.controls if c.attrs.get("name") == "reason"]
    assert choices == ["too_many_emails", "not_relevant", "never_signed_up", "other"]
    assert page.labels["reason-too_many_emails"] == "Too many emails"
    assert f'action="../r/{token}"' in done.body  # relative: works behind a path prefix
    change = subscription_events(served.store, w.ann)[-1]

    answer = served.post(
        f"/r/{token}", urlencode({"reason": "other", "details": "<b>weekly</b> is too much"})
    )

    assert answer.status == 200 and "your answer is recorded" in answer.body
    [event] = reason_events(served)
    assert event.identity == "ann" and event.source == "landing_page"
    assert event.properties["Reason"] == "other"
    assert event.properties["Details"] == "<b>weekly</b> is too much"
    assert event.properties["Change Event ID"] == change.id
    assert event.properties["Campaign ID"] == w.campaign_groups


def test_saving_the_page_with_an_unsubscribe_asks_why_and_a_resubscribe_does_not(
    served: Served,
) -> None:
    w = served.world
    token = served.token(w.ann)
    shown = ("shown", ",".join(str(i) for i in w.shown))
    # Untick Newsletter (keep the others as they are): an unsubscribe.
    kept = [("group", str(w.script))]
    saved = served.post(f"/p/{token}", urlencode([*kept, shown]))
    assert saved.status == 200 and "Would you tell us why?" in saved.body
    answer = served.post(f"/r/{token}", urlencode({"reason": "not_relevant"}))
    assert answer.status == 200
    assert [e.properties["Reason"] for e in reason_events(served)] == ["not_relevant"]

    again = served.post(f"/p/{token}", urlencode([*kept, ("group", str(w.newsletter)), shown]))
    assert again.status == 200 and "Would you tell us why?" not in again.body


def test_no_change_behind_the_link_a_forged_link_or_a_bad_answer_records_nothing(
    served: Served,
) -> None:
    w = served.world
    token = served.token(w.bob, w.campaign_groups)
    before = ledger_size(served.store)

    nothing_yet = served.post(f"/r/{token}", urlencode({"reason": "too_many_emails"}))
    assert nothing_yet.status == 400
    assert "no unsubscribe from this link" in nothing_yet.body

    served.post(f"/u/{token}", ONE_CLICK)
    after_change = ledger_size(served.store)
    forged = served.post(f"/r/{token[:-2]}xx", urlencode({"reason": "too_many_emails"}))
    other_link = served.post(
        f"/r/{served.token(w.bob, w.campaign_none)}", urlencode({"reason": "other"})
    )
    unknown = served.post(f"/r/{token}", urlencode({"reason": "spam"}))
    blank = served.post(f"/r/{token}", urlencode({"details": "no choice made"}))
    too_long = served.post(f"/r/{token}", urlencode({"reason": "other", "details": "x" * 501}))

    assert forged.status == 400 and "nothing was changed" in forged.body
    assert other_link.status == 400  # the change was made through another campaign's link
    assert unknown.status == 400 and "not 'spam'" in unknown.body
    assert blank.status == 400 and "not nothing" in blank.body
    assert too_long.status == 400 and "at most 500" in too_long.body
    assert ledger_size(served.store) == after_change > before
    assert reason_events(served) == []

    assert served.post(f"/r/{token}", urlencode({"reason": "other"})).status == 200
    second = served.post(f"/r/{token}", urlencode({"reason": "not_relevant"}))
    assert second.status == 409 and "already recorded" in second.body
    assert len(reason_events(served)) == 1
