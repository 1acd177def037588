"""The landing server refuses a posted form holding a control character (issue 8, point 8).

Whatever field it is in, known to the page or not: a 400 naming the field,
a clear page for a browser, and nothing changed.
"""

from urllib.parse import urlencode

from landing_world import ledger_size, stored_states
from web_client import Served, parse_page

TITLE = "\x1b]0;owned\x07"


def test_a_form_field_with_a_control_character_is_a_400_that_changes_nothing(
    served_sqlite: Served,
) -> None:
    served = served_sqlite
    w = served.world
    p = f"/p/{served.token(w.ann, w.campaign_groups)}"
    u = f"/u/{served.token(w.ann, w.campaign_groups)}"
    shown = ",".join(str(i) for i in w.shown)
    before = (ledger_size(served.store), stored_states(served.store, w.ann))
    posts = [
        (p, urlencode([("shown", shown), ("all_email", "unsubscribed"), ("note", TITLE)])),
        (p, urlencode([("shown", shown), ("all_email", "unsubscribed"), (f"n{TITLE}", "x")])),
        (u, urlencode([("List-Unsubscribe", "One-Click"), ("from", "a\nb")])),
    ]
    for path, body in posts:
        answer = served.post(path, body)
        assert answer.status == 400, (body, answer.status, answer.body)
        assert "control character" in answer.body and "nothing was changed" in answer.body
        assert "\x1b" not in answer.body and "\n" not in answer.body.strip()
    multipart = (
        '--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n'
        f'--b\r\nContent-Disposition: form-data; name="why"\r\n\r\nx{TITLE}\r\n--b--\r\n'
    )
    answer = served.post(u, multipart, "multipart/form-data; boundary=b")
    assert answer.status == 400 and "'why'" in answer.body, answer.body
    # A browser gets a page saying what is wrong.
    page = served.request(
        "POST", p, posts[0][1],
        {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
    )  # fmt: skip
    assert page.status == 400 and page.headers["content-type"].startswith("text/html")
    assert "script" not in parse_page(page.body).tags
    assert "The form field &#x27;note&#x27; holds a control character" in page.body
    assert (ledger_size(served.store), stored_states(served.store, w.ann)) == before
