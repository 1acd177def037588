"""What the landing server refuses: bad tokens and bad requests get a 4xx with a plain
message, never a traceback, and change nothing (DESIGN.md §2, Bad input)."""

import base64
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from landing_world import ledger_size, stored_states
from web_client import Answer, Served, parse_page

from app.core import tokens
from app.core.tokens import load_keyring

ONE_CLICK = "List-Unsubscribe=One-Click"


def snapshot(served: Served) -> tuple[int, dict[int | None, str], dict[int | None, str]]:
    """Everything a refused request must leave as it was."""
    w = served.world
    return (
        ledger_size(served.store),
        stored_states(served.store, w.ann),
        stored_states(served.store, w.bob),
    )


def assert_refused(answer: Answer, status: int | tuple[int, ...], says: str = "") -> None:
    statuses = status if isinstance(status, tuple) else (status,)
    assert answer.status in statuses, (answer.status, answer.body)
    assert answer.body.strip(), "a refusal says why"
    assert "Traceback" not in answer.body and 'File "' not in answer.body
    assert says.lower() in answer.body.lower(), answer.body


def valid_form(served: Served) -> str:
    w = served.world
    shown = ",".join(str(i) for i in w.shown)
    return urlencode([("shown", shown), ("all_email", "unsubscribed")])


# --- tokens ---------------------------------------------------------------------------


def _flip(token: str) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[10] ^= 1  # the profile id: another person, the same signature
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def bad_tokens(served: Served, tmp_path: Path) -> Iterator[tuple[str, str, int, str]]:
    """(what, token, status, the message says) for each way a link can be wrong."""
    w = served.world
    good = served.token(w.ann, w.campaign_none)
    other_install = load_keyring(tmp_path / "other-install.json")
    yield (
        "forged",
        other_install.sign(w.ann, w.campaign_none, store=served.binding),
        400,
        "signature",
    )
    yield "altered", _flip(good), 400, "signature"
    yield "truncated", good[:-4], 400, "not valid"
    yield "extended", good + "AAAA", 400, "not valid"
    yield "garbage", "not-a-token", 400, "not valid"
    too_old = date.today() - timedelta(days=tokens.MAX_AGE_DAYS + 1)
    yield (
        "too old",
        served.keyring.sign(w.ann, None, store=served.binding, today=too_old),
        410,
        "expired",
    )
    # Last: retiring the key every token above was signed with.
    retired = served.token(w.ann, w.campaign_none)
    served.keyring.rotate()
    served.keyring.retire(1)
    # A retired key is a key id the server does not know: answered as any forged link.
    yield "retired key", retired, 400, "signature"


def test_bad_tokens_get_4xx_and_change_nothing(served_sqlite: Served, tmp_path: Path) -> None:
    served = served_sqlite
    before = snapshot(served)
    for what, token, status, says in bad_tokens(served, tmp_path):
        for method, path, body in (
            ("GET", f"/p/{token}", None),
            ("POST", f"/p/{token}", valid_form(served)),
            ("GET", f"/u/{token}", None),
            ("POST", f"/u/{token}", ONE_CLICK),
        ):
            headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            answer = served.request(method, path, body, headers)
            assert_refused(answer, status, says)
            assert "nothing was changed" in answer.body, what
    assert snapshot(served) == before


def test_a_valid_link_for_someone_unknown_is_404(served_sqlite: Served) -> None:
    served = served_sqlite
    before = snapshot(served)
    token = served.token(987654, served.world.campaign_none)
    assert_refused(served.get(f"/p/{token}"), 404, "no longer know")
    assert_refused(served.post(f"/u/{token}", ONE_CLICK), 404, "no longer know")
    assert snapshot(served) == before


def test_browsers_get_an_error_page_scripts_plain_text(served_sqlite: Served) -> None:
    served = served_sqlite
    page = served.get("/p/not-a-token", Accept="text/html,application/xhtml+xml")
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>" in page.body and "This link is not valid" in page.body
    assert "script" not in parse_page(page.body).tags
    plain = served.get("/p/not-a-token", Accept="*/*")
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.body.startswith("this link is not valid")


# --- bad requests ---------------------------------------------------------------------


Case = tuple[str, str, str, bytes | str | Iterator[bytes] | None, dict[str, str], int, str]


def kind(content_type: str) -> dict[str, str]:
    return {"Content-Type": content_type}


def bad_requests(served: Served) -> list[Case]:
    """(case, method, path, body, headers, status, what the message says)."""
    w = served.world
    p = f"/p/{served.token(w.ann, w.campaign_groups)}"
    u = f"/u/{served.token(w.ann, w.campaign_groups)}"
    s = "shown=" + ",".join(str(i) for i in w.shown)
    form = kind("application/x-www-form-urlencoded")
    latin = kind("application/x-www-form-urlencoded; charset=latin-1")
    multipart = kind("multipart/form-data; boundary=b")
    huge = b"group=1&" * 4000  # 32 KB
    not_here = "not on this page"
    number = "whole number"
    unreadable = "could not be read"
    one_click = "List-Unsubscribe=One-Click"
    return [
        ("no shown field", "POST", p, "group=1&all_email=unsubscribed", form, 400, "'shown'"),
        ("empty form", "POST", p, "", form, 400, "'shown'"),
        ("shown twice", "POST", p, f"{s}&{s}", form, 400, "once"),
        ("group not a number", "POST", p, f"{s}&group=abc", form, 400, number),
        ("shown not numbers", "POST", p, "shown=1,x,3", form, 400, number),
        ("negative group", "POST", p, f"{s}&group=-1", form, 400, number),
        ("hidden group", "POST", p, f"{s}&group={w.internal}", form, 400, not_here),
        ("archived group", "POST", p, f"{s}&group={w.old}", form, 400, not_here),
        ("no such group", "POST", p, f"{s}&group=99999", form, 400, not_here),
        ("page changed", "POST", p, f"{s},{w.internal}&group={w.internal}", form, 409, "changed"),
        ("bad all_email", "POST", p, f"{s}&all_email=maybe", form, 400, "all_email"),
        ("not utf-8", "POST", p, f"{s}&all_email=%ff", form, 400, unreadable),
        ("not urlencoded", "POST", p, f"{s}&junk", form, 400, unreadable),
        ("not ascii", "POST", p, f"{s}&x=é".encode(), form, 400, unreadable),
        ("bad charset", "POST", p, s, latin, 415, "charset"),
        ("json", "POST", p, "{}", kind("application/json"), 415, "x-www-form-urlencoded"),
        ("text", "POST", u, ONE_CLICK, kind("text/plain"), 415, "multipart/form-data"),
        ("no content type", "POST", u, ONE_CLICK, {}, 415, "no content-type"),
        ("multipart on /p/", "POST", p, "--b--\r\n", multipart, 415, "urlencoded"),
        ("no boundary", "POST", u, "x", kind("multipart/form-data"), 400, "boundary"),
        ("multipart garbage", "POST", u, "garbage", multipart, 400, unreadable),
        ("huge body", "POST", p, huge, form, 413, "larger than"),
        ("huge one-click", "POST", u, huge, form, 413, "larger than"),
        ("huge chunked body", "POST", p, iter([huge[:8000]] * 4), form, 413, "larger than"),
        ("bad content-length", "POST", p, None, {**form, "Content-Length": "x"}, 400, ""),
        ("one-click body wrong", "POST", u, "List-Unsubscribe=Yes", form, 400, one_click),
        ("one-click body empty", "POST", u, "", form, 400, one_click),
        ("PUT", "PUT", p, "x", form, 405, "not allowed"),
        ("DELETE", "DELETE", u, None, {}, 405, "not allowed"),
        ("PATCH", "PATCH", p, "x", form, 405, "not allowed"),
        ("OPTIONS", "OPTIONS", u, None, {}, 405, "not allowed"),
        ("POST health", "POST", "/healthz", "x", form, 405, "not allowed"),
        ("unknown path", "GET", "/admin", None, {}, 404, "no page"),
        ("no token", "GET", "/p/", None, {}, 404, "no page"),
        ("token and more", "POST", f"{u}/more", ONE_CLICK, form, 404, "no page"),
    ]


def test_bad_requests_get_4xx_with_a_plain_message_and_change_nothing(
    served_sqlite: Served,
) -> None:
    served = served_sqlite
    before = snapshot(served)
    for case, method, path, body, headers, status, says in bad_requests(served):
        answer = served.request(method, path, body, headers)
        assert answer.status == status, (case, answer.status, answer.body)
        assert_refused(answer, status, says)
        if status == 405:
            assert set(answer.headers["allow"].split(", ")) >= {"GET", "POST"} or (
                path == "/healthz"
            ), case
    assert snapshot(served) == before


def test_a_page_changed_since_it_was_opened_is_shown_again(served_sqlite: Served) -> None:
    """An admin showed another group meanwhile: nothing saved, the page as it is now."""
    served, w = served_sqlite, served_sqlite.world
    token = served.token(w.ann)
    old_form = urlencode([("shown", ",".join(map(str, w.shown))), ("group", w.script)])
    from app.core import landing

    with served.store.write() as session:
        landing.set_shown_groups(session=session, actor="ada", group_ids=[*w.shown, w.internal])
    before = snapshot(served)
    answer = served.post(f"/p/{token}", old_form)
    assert answer.status == 409 and "nothing was saved" in answer.body
    assert w.internal in parse_page(answer.body).group_boxes()  # the page as it is now
    assert snapshot(served) == before


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_a_store_that_fails_gets_a_plain_500_or_503(
    served_sqlite: Served, method: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected failure: a plain message, no traceback, nothing changed."""
    from app.core import landing, one_click

    served, w = served_sqlite, served_sqlite.world

    def broken(*args: object, **kwargs: object) -> object:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(landing, "page_for", broken)
    monkeypatch.setattr(one_click, "one_click_many", broken)
    before = snapshot(served)
    token = served.token(w.ann, w.campaign_none)
    answer = served.get(f"/p/{token}") if method == "GET" else served.post(f"/u/{token}", ONE_CLICK)
    assert answer.status == 500
    assert "nothing was changed" in answer.body
    assert "secret internals" not in answer.body and "Traceback" not in answer.body
    assert snapshot(served) == before
    # The server is still up.
    assert served.get("/healthz").status == 200
