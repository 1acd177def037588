"""The landing page server: DESIGN.md's routes as a Starlette app.

    GET  /p/<token>   the preferences page (a GET never changes anything)
    POST /p/<token>   save the choices; the page again, with the confirmation (200)
    GET  /u/<token>   asks to confirm the unsubscribe
    POST /u/<token>   List-Unsubscribe=One-Click (RFC 8058): unsubscribe, 200, no redirect
    POST /r/<token>   the optional answer why, after an unsubscribe (an Unsubscribe Reason)
    GET  /healthz     "ok" when the store answers (503 when it does not)

HEAD is answered like GET, without a body (HTTP requires it of GET resources;
it changes nothing); every other method is a 405 naming the allowed ones.

The store work runs off the event loop: pages and saves in Starlette's
thread pool, one-click unsubscribes in one writer thread that commits many
per transaction (``writer.OneClickWriter``). A request is answered only
after its transaction commits, so an acknowledged unsubscribe is in the
store and the ledger. On SQLite the writes of this process take turns on one
lock: SQLite allows one writer at a time anyway, and waiting on a lock is
fair and prompt where SQLite's busy handler sleeps and retries.

Every error is a short page (or plain text for clients that do not ask for
HTML) saying what is wrong, with a 4xx status; an unexpected failure is a
500 saying nothing was changed, and its traceback goes to the server's log,
never to the client.
"""

import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from app.core import landing, one_click, unsubscribe_reasons
from app.core.errors import InvalidInput, SubgroupsError, UnknownProfile
from app.core.store import Store
from app.core.tokens import (
    BadToken,
    ExpiredToken,
    Keyring,
    LinkToken,
    SecretFileError,
    StoreBinding,
    load_keyring,
    store_binding,
)
from app.web import pages
from app.web.forms import Form, FormError, read_form
from app.web.writer import OneClickWriter

log = logging.getLogger("subgroups.landing")
TOKEN_SHOWN = 8  # characters of a path segment (a link token) logs keep


def redact_path(path: str) -> str:
    """The path as logs may keep it: every segment longer than ``TOKEN_SHOWN`` cut short.

    Whatever form a request takes (``//p/T``, ``/P/T``, ``/u/T/``, an encoded
    slash, stray characters in the token), no log holds a working link. The
    routes' own names (``p``, ``u``, ``healthz``) are shorter than that.
    """
    return "/".join(
        part[:TOKEN_SHOWN] + "…" if len(part) > TOKEN_SHOWN else part for part in path.split("/")
    )


T = TypeVar("T")

ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"

HEADINGS = {
    400: "This request could not be used",
    404: "Not found",
    405: "Method not allowed",
    409: "Please try again",
    410: "This link has expired",
    413: "Request too large",
    415: "Unsupported content type",
    500: "Something went wrong",
    503: "Please try again in a moment",
}


UNEXPECTED = "something went wrong on our side; nothing was changed, please try again"


class WebError(Exception):
    """An answer other than 200: the status, a message for the person, extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class LinkKeys:
    """The install's keyring, re-read when its file changes (a rotation by another process).

    Links signed with a key added after the server started must work without
    a restart, and a retired key must stop working: the file is looked at
    again (one ``stat``) at most every ``CHECK_SECONDS``. Tokens are checked
    for this server's store (``binding``): another store's links are refused.

    A keyring that becomes unreadable (corrupt, readable by others) fails
    every link with a generic 500; its path and the reason go to the log only.
    """

    CHECK_SECONDS = 1.0

    def __init__(self, binding: StoreBinding, keyring: Keyring | None = None) -> None:
        self.binding = binding
        self._ring = keyring or load_keyring()
        self._path: Path | None = self._ring.path
        self._seen = self._stamp()
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, int] | None:
        if self._path is None:
            return None
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def verify(self, token: str) -> LinkToken:
        now = time.monotonic()
        if now - self._checked >= self.CHECK_SECONDS:
            self._checked = now
            stamp = self._stamp()
            if stamp != self._seen and stamp is not None:
                with self._lock:
                    try:
                        self._ring = load_keyring(self._path, create=False)
                    except SecretFileError as exc:
                        self._checked = 0.0  # look again at the next request
                        log.error("the link keyring cannot be used: %s", exc.message)
                        raise WebError(500, UNEXPECTED) from None
                    self._seen = stamp
        return self._ring.verify(token, store=self.binding)


@dataclass
class Landing:
    """What the endpoints share: the store, the keys, the SQLite write lock."""

    store: Store
    keys: LinkKeys
    write_lock: AbstractContextManager[object]
    writer: OneClickWriter

    def close(self) -> None:
        """Finish the queued one-click unsubscribes and stop their writer."""
        self.writer.close()

    def verify(self, token: str) -> LinkToken:
        """What the link says, or a 400 (malformed, altered, forged) / 410 (expired)."""
        try:
            return self.keys.verify(token)
        except ExpiredToken as exc:
            raise WebError(410, f"{exc.message}; nothing was changed") from exc
        except BadToken as exc:
            raise WebError(400, f"{exc.message}; nothing was changed") from exc

    async def read(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a read session, in the thread pool."""

        def run() -> T:
            with self.store.read() as session:
                return work(session)

        return await run_in_threadpool(run)

    async def write(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a write session, in the thread pool; returns after the commit."""

        def run() -> T:
            with self.write_lock, self.store.write() as session:
                return work(session)

        return await run_in_threadpool(run)


def _landing(request: Request) -> Landing:
    found: Landing = request.app.state.landing
    return found


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=pages.SECURITY_HEADERS)


def _int_field(name: str, value: str) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 12:
        raise WebError(
            400, f"the form field {name!r} must be a group id (a whole number), not {value!r}"
        )
    return int(value)


def _choices(form: Form) -> tuple[set[int], set[int], str]:
    """(groups on the form, ticked groups, all-email state) from the preferences form."""
    shown_text = form.one("shown") or ""
    shown = {_int_field("shown", part) for part in shown_text.split(",") if part != ""}
    ticked = {_int_field("group", value) for value in form.all("group")}
    all_email = form.one("all_email", required=False)
    if all_email not in (None, "unsubscribed"):
        raise WebError(
            400, f"the form field 'all_email' may only be 'unsubscribed', not {all_email!r}"
        )
    return shown, ticked, "unsubscribed" if all_email else "subscribed"


# --- the routes ---------------------------------------------------------------


async def preferences(request: Request) -> Response:
    """``/p/<token>``: the page (GET) or saving it (POST)."""
    app = _landing(request)
    token = request.path_params["token"]
    link = app.verify(token)
    if request.method != "POST":
        page = await app.read(lambda s: landing.page_for(s, link.profile_id, link.campaign_id))
        return _html(pages.preferences_page(page))
    shown, ticked, all_email = _choices(await read_form(request))

    def save(session: Session) -> tuple[landing.LandingPage, bool]:
        changes = landing.save_choices(
            session=session,
            profile_id=link.profile_id,
            campaign_id=link.campaign_id,
            subscribed_group_ids=ticked,
            all_email=all_email,
            page_group_ids=shown,
        )
        left = any(e.properties.get("New State") == "unsubscribed" for e in changes)
        return landing.page_for(session, link.profile_id, link.campaign_id), left

    try:
        page, left = await app.write(save)
    except landing.PageOutdated as exc:
        current = await app.read(lambda s: landing.page_for(s, link.profile_id, link.campaign_id))
        return _html(pages.preferences_page(current, notice=exc.message, problem=True), 409)
    return _html(
        pages.preferences_page(
            page, notice=page.settings.confirmation_text, ask_reason_for=token if left else None
        )
    )


async def unsubscribe(request: Request) -> Response:
    """``/u/<token>``: the confirmation (GET) or the one-click unsubscribe (POST)."""
    app = _landing(request)
    token = request.path_params["token"]
    link = app.verify(token)
    if request.method != "POST":
        view = await app.read(
            lambda s: one_click.one_click_view(s, link.profile_id, link.campaign_id)
        )
        return _html(pages.unsubscribe_confirm_page(view, token))
    form = await read_form(request, multipart=True)
    if form.one(ONE_CLICK_FIELD, required=False) != ONE_CLICK_VALUE:
        raise WebError(
            400,
            f"this is not a one-click unsubscribe: the body must be "
            f"{ONE_CLICK_FIELD}={ONE_CLICK_VALUE} (RFC 8058)",
        )

    settings, scope = await app.writer.unsubscribe(link.profile_id, link.campaign_id)
    return _html(pages.unsubscribed_page(settings, scope, token))


async def reason(request: Request) -> Response:
    """``POST /r/<token>``: why the person left, tied to the unsubscribe this link made.

    Optional and after the fact: the change is already committed. A link that
    made no unsubscribe, an answer that is not one of the choices, or a second
    answer is refused (4xx) and nothing is recorded.
    """
    app = _landing(request)
    token = request.path_params["token"]
    link = app.verify(token)
    form = await read_form(request)
    answer = form.one("reason", required=False)
    details = form.one("details", required=False)

    def save(session: Session) -> landing.PageSettings:
        unsubscribe_reasons.record_reason(
            session=session,
            profile_id=link.profile_id,
            campaign_id=link.campaign_id,
            reason=answer,
            details=details,
        )
        return landing.page_settings(session)

    settings = await app.write(save)
    return _html(pages.reason_thanks_page(settings, token))


async def health(request: Request) -> Response:
    """``/healthz``: 200 "ok" when the store answers a query, else 503."""
    app = _landing(request)
    try:
        await app.read(lambda s: s.execute(text("SELECT 1")).scalar())
    except OperationalError:
        return PlainTextResponse("store unavailable\n", status_code=503)
    return PlainTextResponse("ok\n", headers={"Cache-Control": "no-store"})


# --- errors -------------------------------------------------------------------


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def error_response(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """A plain answer saying what is wrong: a small page for browsers, text otherwise."""
    extra = dict(headers or {})
    if _wants_html(request):
        heading = HEADINGS.get(status, "This request could not be used")
        body = pages.error_page(heading, message[:1].upper() + message[1:])
        return HTMLResponse(body, status_code=status, headers={**pages.SECURITY_HEADERS, **extra})
    return PlainTextResponse(
        f"{message}\n", status_code=status, headers={"Cache-Control": "no-store", **extra}
    )


async def _on_web_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, WebError)
    return error_response(request, exc.status, exc.message, exc.headers)


async def _on_form_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormError)
    return error_response(request, exc.status, f"{exc.message}; nothing was changed")


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    # Starlette's own refusals: unknown path (404), method not allowed (405, with Allow).
    assert isinstance(exc, HTTPException)
    allowed = (exc.headers or {}).get("Allow", "GET, POST")
    messages = {
        404: "there is no page at this address",
        405: f"{request.method} is not allowed here; use {allowed}",
    }
    message = messages.get(exc.status_code, str(exc.detail or "this request could not be used"))
    return error_response(request, exc.status_code, message, dict(exc.headers or {}))


async def _on_subgroups_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SubgroupsError)
    if isinstance(exc, UnknownProfile):
        status = 404
    elif isinstance(exc, InvalidInput):
        status = 400
    else:
        status = 409
    message = exc.message if "nothing was" in exc.message else f"{exc.message}; nothing was changed"
    return error_response(request, status, message)


async def _on_operational_error(request: Request, exc: Exception) -> Response:
    log.warning("store error on %s %s: %s", request.method, redact_path(request.url.path), exc)
    return error_response(
        request, 503, "the store is busy or unreachable; nothing was changed, please try again"
    )


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this answer, so the server's log gets the traceback.
    return error_response(request, 500, UNEXPECTED)


ExceptionHandler = Callable[[Request, Exception], Awaitable[Response]]
EXCEPTION_HANDLERS: dict[type[Exception], ExceptionHandler] = {
    WebError: _on_web_error,
    FormError: _on_form_error,
    HTTPException: _on_http_exception,
    SubgroupsError: _on_subgroups_error,
    OperationalError: _on_operational_error,
    Exception: _on_unexpected,
}


def handler_for(exc: Exception) -> ExceptionHandler:
    """The answer's maker for ``exc``, chosen as Starlette chooses (the nearest class)."""
    for kind in type(exc).__mro__:
        found = EXCEPTION_HANDLERS.get(kind)
        if found is not None:
            return found
    return _on_unexpected


def create_app(
    store: Store,
    *,
    keyring: Keyring | None = None,
    write_lock: AbstractContextManager[object] | None = None,
) -> Starlette:
    """The landing page app over an open store (and the install's keyring by default).

    ``write_lock`` is held around every write transaction; by default a lock
    of this process on SQLite (one writer at a time), none on PostgreSQL.
    Worker processes sharing one SQLite file pass a lock across processes.
    """
    lock: AbstractContextManager[object]
    if write_lock is not None:
        lock = write_lock
    else:
        lock = threading.Lock() if store.is_sqlite else nullcontext()
    with store.read() as session:
        binding = store_binding(session)
    state = Landing(
        store=store,
        keys=LinkKeys(binding, keyring),
        write_lock=lock,
        writer=OneClickWriter(store, lock),
    )
    methods = ["GET", "POST"]  # Starlette adds HEAD to GET routes
    app = Starlette(
        routes=[
            Route("/p/{token}", preferences, methods=methods),
            Route("/u/{token}", unsubscribe, methods=methods),
            Route("/r/{token}", reason, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ],
        exception_handlers=dict(EXCEPTION_HANDLERS),
    )
    app.state.landing = state
    return app
