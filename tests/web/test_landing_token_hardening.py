"""Tokens and the landing server under probing (issue 8, point 10), against the real
server: one canonical encoding per token, an unknown key id answered like any bad link,
a broken keyring kept out of the visitor's page, and no working token in the access log."""

import base64
import logging
from pathlib import Path
from urllib.parse import quote

import pytest
from test_landing_refusals import ONE_CLICK, assert_refused, snapshot, valid_form
from web_client import Served

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def _every_way(served: Served, token: str) -> list[tuple[str, str, str | None]]:
    return [
        ("GET", f"/p/{token}", None),
        ("POST", f"/p/{token}", valid_form(served)),
        ("GET", f"/u/{token}", None),
        ("POST", f"/u/{token}", ONE_CLICK),
    ]


def _ask(served: Served, method: str, path: str, body: str | None):  # noqa: ANN202
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    return served.request(method, path, body, headers)


def non_canonical(token: str) -> dict[str, str]:
    """Spellings of the same token that decode to the same bytes (or would, leniently)."""
    last = ALPHABET.index(token[-1])
    return {
        "junk inside": token[:10] + quote("!!..~~", safe="!~") + token[10:],
        "padding": token + "==",
        "one pad": token + "=",
        "unused bits set": token[:-1] + ALPHABET[last ^ 1],
        "a space inside": token[:5] + "%20" + token[5:],
    }


def test_only_the_canonical_spelling_of_a_token_is_accepted(served_sqlite: Served) -> None:
    served = served_sqlite
    w = served.world
    token = served.token(w.ann, w.campaign_none)
    before = snapshot(served)
    for what, variant in non_canonical(token).items():
        for method, path, body in _every_way(served, variant):
            answer = _ask(served, method, path, body)
            assert_refused(answer, 400, "not valid")
            assert "nothing was changed" in answer.body, what
    assert snapshot(served) == before
    # The canonical one still works.
    assert served.get(f"/p/{token}").status == 200


def _with_key_id(token: str, key_id: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[1:3] = key_id.to_bytes(2, "big")
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_an_unknown_key_id_is_answered_like_a_forged_link(served_sqlite: Served) -> None:
    served = served_sqlite
    w = served.world
    token = served.token(w.ann, w.campaign_none)
    before = snapshot(served)
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BA")
    for method, path, body in _every_way(served, forged):
        as_forged = _ask(served, method, path, body)
        unknown = _ask(served, method, path.replace(forged, _with_key_id(token, 4242)), body)
        assert_refused(unknown, 400, "not valid")
        assert (unknown.status, unknown.body) == (as_forged.status, as_forged.body)
    assert snapshot(served) == before


def test_a_corrupt_keyring_gives_visitors_a_generic_500_and_the_log_the_path(
    link_keyring: Path, served_sqlite: Served, caplog: pytest.LogCaptureFixture
) -> None:
    served = served_sqlite
    w = served.world
    token = served.token(w.ann, w.campaign_none)
    assert served.keyring.path == link_keyring
    before = snapshot(served)
    link_keyring.write_text('{"current": 1, "keys": {"1": "not hex"}}\n')

    with caplog.at_level(logging.ERROR, logger="subgroups.landing"):
        for method, path, body in _every_way(served, token):
            for accept in ("text/html", "*/*"):
                headers = {"Accept": accept}
                if body:
                    headers["Content-Type"] = "application/x-www-form-urlencoded"
                answer = served.request(method, path, body, headers)
                assert answer.status == 500, answer.body
                assert "went wrong" in answer.body.lower()
                assert str(link_keyring.parent) not in answer.body
                assert "link-keys" not in answer.body and "hex" not in answer.body
    assert snapshot(served) == before
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert str(link_keyring) in logged and "not a readable link keyring" in logged


def test_the_access_log_never_holds_a_whole_token(served_sqlite: Served) -> None:
    served = served_sqlite
    w = served.world
    token = served.token(w.ann, w.campaign_none)
    every_char = "".join(f"%{ord(c):02X}" for c in token)
    paths = [
        f"/p/{token}",
        f"//p/{token}",
        f"/P/{token}",
        f"/U/{token}",
        f"/u/{token}/",
        f"/%2Fp%2F{token}",
        f"/p%2F{token}",
        f"/p/{every_char}",
        f"/p/{token}?utm=1",
        f"/anything/else/{token}",
        f"/p/{token[:10]}!!..~~{token[10:]}",
    ]
    for path in paths:
        served.get(path)
    served.post(f"//u/{token}", ONE_CLICK)
    log = served.log.getvalue()
    assert log.count("\n") == len(paths) + 1
    # Not the token, nor any dozen characters of it in a row.
    for start in range(len(token) - 11):
        assert token[start : start + 12] not in log, (token[start : start + 12], log)
