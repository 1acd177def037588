"""The landing server as a recipient meets it: the page, saving it, the one-click
unsubscribe, escaping, accessibility; against the real server on a loopback port."""

import re
from datetime import date

import pytest
from landing_world import (
    SCRIPT_DESCRIPTION,
    SCRIPT_NAME,
    ledger_size,
    set_state,
    stored_states,
    subscription_events,
)
from web_client import Served, parse_page

from app.core import campaigns, landing


def form(*pairs: tuple[str, object]) -> str:
    from urllib.parse import urlencode

    return urlencode([(k, str(v)) for k, v in pairs])


def shown_field(served: Served) -> tuple[str, str]:
    return ("shown", ",".join(str(i) for i in served.world.shown))


def test_the_page_shows_each_groups_state_and_the_all_email_switch(served: Served) -> None:
    w = served.world
    set_state(served.store, w.ann, w.newsletter, "unsubscribed")
    set_state(served.store, w.ann, w.promotions, "subscribed")
    answer = served.get(f"/p/{served.token(w.ann, w.campaign_groups)}")
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/html")
    page = parse_page(answer.body)
    # Ticked means subscribed; the script group is never set (opt-out: subscribed).
    assert page.group_boxes() == {w.script: True, w.newsletter: False, w.promotions: True}
    assert not page.checkbox("all-email").checked
    assert "ann@example.com" in answer.body and "Your email preferences" in answer.body
    assert "Unsubscribe from all email" in page.labels.values()

    set_state(served.store, w.ann, None, "unsubscribed")
    page = parse_page(served.get(f"/p/{served.token(w.ann)}").body)
    assert page.checkbox("all-email").checked


def test_the_page_follows_the_settings_and_the_shown_groups(served_sqlite: Served) -> None:
    served, w = served_sqlite, served_sqlite.world
    with served.store.write() as session:
        landing.update_settings(
            session=session,
            actor="ada",
            title="Mail from Acme",
            intro="Pick what you want.",
            all_email_wording="Stop all Acme email",
            confirmation_text="Done: we will respect that.",
        )
        landing.set_shown_groups(session=session, actor="ada", group_ids=[w.internal])
    answer = served.get(f"/p/{served.token(w.ann)}")
    page = parse_page(answer.body)
    assert "<title>Mail from Acme</title>" in answer.body and "Pick what you want." in answer.body
    assert page.group_boxes() == {w.internal: True}
    assert page.labels["all-email"] == "Stop all Acme email"
    # The one-click answer (written by the batch writer) uses the saved wording too.
    done = served.post(f"/u/{served.token(w.ann)}", "List-Unsubscribe=One-Click")
    assert "<title>Mail from Acme</title>" in done.body
    assert "Done: we will respect that." in done.body


def test_pages_are_small_labelled_and_load_nothing_external(served_sqlite: Served) -> None:
    served, w = served_sqlite, served_sqlite.world
    token = served.token(w.ann, w.campaign_groups)
    for path in (f"/p/{token}", f"/u/{token}"):
        answer = served.get(path)
        page = parse_page(answer.body)
        assert answer.status == 200 and len(answer.body) < 16_000
        assert page.html_lang == "en"
        assert any(m.get("name") == "viewport" for m in page.meta)
        # No JavaScript, no external anything: only relative links to our own pages.
        assert "script" not in page.tags and "link" not in page.tags and "img" not in page.tags
        assert all(not re.match(r"^(https?:)?//", url) for url in page.urls), page.urls
        csp = answer.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert answer.headers["cache-control"] == "no-store"
        # Every visible control has a label that names it.
        for control in page.controls:
            if control.attrs.get("type") in ("hidden", "submit") or control.tag == "button":
                continue
            assert page.labels.get(str(control.attrs.get("id")), "").strip(), control.attrs
        assert any(c.tag == "button" for c in page.controls)  # a real submit button


def test_a_group_named_script_shows_literally(served_sqlite: Served) -> None:
    served, w = served_sqlite, served_sqlite.world
    with served.store.write() as session:
        campaign = campaigns.create_campaign(
            session=session, name="Scripted", actor="ada", do_not_send_to=[w.script]
        )
    token = served.token(w.ann, campaign.id)
    for answer in (
        served.get(f"/p/{token}"),
        served.get(f"/u/{token}"),
        served.post(f"/u/{token}", "List-Unsubscribe=One-Click"),
    ):
        assert answer.status == 200
        assert SCRIPT_NAME not in answer.body and "<img" not in answer.body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.body
        assert "script" not in parse_page(answer.body).tags
    page = served.get(f"/p/{token}").body
    assert SCRIPT_DESCRIPTION not in page
    assert "[b]x[/b] &lt;img src=x onerror=&quot;alert(2)&quot;&gt; &amp; more" in page
    assert parse_page(page).labels[f"group-{w.script}"] == SCRIPT_NAME  # reads literally


def test_saving_changes_exactly_what_changed(served: Served) -> None:
    w = served.world
    token = served.token(w.ann, w.campaign_none)
    before = ledger_size(served.store)
    # Untick Newsletter; keep the script group ticked and Promotions (opt-in) unticked.
    answer = served.post(f"/p/{token}", form(("group", w.script), shown_field(served)))
    assert answer.status == 200 and "location" not in answer.headers
    assert "Your preferences are saved." in answer.body
    assert parse_page(answer.body).group_boxes() == {
        w.script: True,
        w.newsletter: False,
        w.promotions: False,
    }
    events = [e for e in subscription_events(served.store, w.ann) if (e.id or 0) > before]
    assert [(e.group_id, e.properties["New State"], e.source, e.campaign_id) for e in events] == [
        (w.newsletter, "unsubscribed", "landing_page", w.campaign_none)
    ]
    # Never-set states stay never set: only Newsletter is stored.
    assert stored_states(served.store, w.ann) == {w.newsletter: "unsubscribed", None: "subscribed"}

    # Posting the same form again (a browser refresh) changes nothing.
    again = served.post(f"/p/{token}", form(("group", w.script), shown_field(served)))
    assert again.status == 200 and len(subscription_events(served.store, w.ann)) == 1

    # Tick everything and leave all email.
    served.post(
        f"/p/{token}",
        form(
            ("group", w.script),
            ("group", w.newsletter),
            ("group", w.promotions),
            ("all_email", "unsubscribed"),
            shown_field(served),
        ),
    )
    assert stored_states(served.store, w.ann) == {
        w.newsletter: "subscribed",
        w.promotions: "subscribed",
        None: "unsubscribed",
    }
    assert len(subscription_events(served.store, w.ann)) == 4


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_leaves_the_campaigns_groups_with_200_and_no_redirect(
    served: Served, encoding: str
) -> None:
    w = served.world
    token = served.token(w.ann, w.campaign_groups)
    if encoding == "urlencoded":
        body, kind = "List-Unsubscribe=One-Click", "application/x-www-form-urlencoded"
    else:  # what RFC 8058 says a mail client SHOULD send
        body = (
            '--XyZ\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
            "One-Click\r\n--XyZ--\r\n"
        )
        kind = "multipart/form-data; boundary=XyZ"
    answer = served.post(f"/u/{token}", body, kind)
    assert answer.status == 200
    assert "location" not in answer.headers
    assert "You are unsubscribed from" in answer.body and "Newsletter" in answer.body
    assert stored_states(served.store, w.ann) == {
        w.newsletter: "unsubscribed",
        w.old: "unsubscribed",  # archived, still left: its opt-outs stay enforced
        None: "subscribed",
    }
    events = subscription_events(served.store, w.ann)
    assert {(e.group_id, e.source, e.properties["Campaign ID"]) for e in events} == {
        (w.newsletter, "one_click", w.campaign_groups),
        (w.old, "one_click", w.campaign_groups),
    }
    # A second click: still 200, nothing more written.
    assert served.post(f"/u/{token}", body, kind).status == 200
    assert len(subscription_events(served.store, w.ann)) == 2


def test_one_click_without_campaign_groups_leaves_all_email(served_sqlite: Served) -> None:
    served, w = served_sqlite, served_sqlite.world
    for profile, campaign_id in ((w.ann, w.campaign_none), (w.bob, None)):
        answer = served.post(
            f"/u/{served.token(profile, campaign_id)}", "List-Unsubscribe=One-Click"
        )
        assert answer.status == 200 and "all email" in answer.body
        assert stored_states(served.store, profile) == {None: "unsubscribed"}
        [event] = subscription_events(served.store, profile)
        assert (event.source, event.campaign_id, event.group_id) == ("one_click", campaign_id, None)


def test_the_confirmation_page_asks_and_its_button_unsubscribes(served_sqlite: Served) -> None:
    served, w = served_sqlite, served_sqlite.world
    token = served.token(w.ann, w.campaign_groups)
    answer = served.get(f"/u/{token}")
    page = parse_page(answer.body)
    assert answer.status == 200 and "Unsubscribe" in answer.body
    assert "Newsletter" in answer.body and "Old offers" in answer.body
    assert f"../p/{token}" in page.urls  # the way to the preferences page
    # The form posts what a one-click client posts; a browser sends it urlencoded.
    fields = {
        str(c.attrs.get("name")): c.attrs.get("value") for c in page.controls if c.tag == "input"
    }
    assert fields == {"List-Unsubscribe": "One-Click"}
    assert served.post(f"/u/{token}", form(*fields.items())).status == 200
    assert stored_states(served.store, w.ann)[w.newsletter] == "unsubscribed"


def test_a_get_or_head_never_changes_anything(served: Served) -> None:
    """Mail scanners open links: no GET (or HEAD) may unsubscribe anyone."""
    w = served.world
    before = (ledger_size(served.store), stored_states(served.store, w.ann))
    for campaign_id in (w.campaign_groups, w.campaign_none, None):
        token = served.token(w.ann, campaign_id)
        for method in ("GET", "HEAD"):
            for path in (f"/p/{token}", f"/u/{token}", f"/u/{token}?List-Unsubscribe=One-Click"):
                answer = served.request(method, path)
                assert answer.status == 200
                if method == "HEAD":
                    assert answer.body == ""
    assert (ledger_size(served.store), stored_states(served.store, w.ann)) == before


def test_health_and_an_access_log_line_per_request_without_tokens(served_sqlite: Served) -> None:
    served, w = served_sqlite, served_sqlite.world
    health = served.get("/healthz")
    assert (health.status, health.body) == (200, "ok\n")
    token = served.token(w.ann)
    served.get(f"/p/{token}")
    served.post(f"/u/{token}", "List-Unsubscribe=One-Click")
    served.request("DELETE", f"/p/{token}")
    lines = served.log.getvalue().splitlines()
    assert len(lines) == 4
    assert re.search(r'"GET /healthz HTTP/1.1" 200 3 [\d.]+ms$', lines[0])
    assert f'"GET /p/{token[:8]}… HTTP/1.1" 200' in lines[1]
    assert f'"POST /u/{token[:8]}… HTTP/1.1" 200' in lines[2]
    assert f'"DELETE /p/{token[:8]}… HTTP/1.1" 405' in lines[3]
    assert all(line.startswith("127.0.0.1 - - [") for line in lines)
    # The log never holds a working link.
    assert token not in served.log.getvalue()


def test_links_from_a_rotated_key_work_without_a_restart(served_sqlite: Served) -> None:
    served, w = served_sqlite, served_sqlite.world
    old = served.token(w.ann)
    served.keyring.rotate()  # as a sender in another process would
    new = served.keyring.sign(w.ann, None, store=served.binding, today=date.today())
    assert served.get(f"/p/{new}").status == 200
    assert served.get(f"/p/{old}").status == 200  # old links keep working
