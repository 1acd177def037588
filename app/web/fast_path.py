"""``POST /u/<token>`` below Starlette: the usual one-click unsubscribe, answered directly.

Mail providers post one-click unsubscribes in bursts, nearly all alike: the
urlencoded body ``List-Unsubscribe=One-Click`` with a Content-Length, to a
good link. For that request Starlette's routing, request object and
response classes cost about as much as the rest of the request's Python
(bench/README.md). ``OneClickFastPath`` sits in front of the app (inside the
access log): it recognises exactly that request, checks the link, queues the
unsubscribe for the group commit (``writer.OneClickWriter``) and, once it is
committed, sends the same answer the Starlette route would: the same page,
status and headers.

Everything else goes to the app unchanged: other paths and methods, another
body or content type (multipart, extra fields, a chunked body), and a link
that does not verify. A request whose body was already read is handed on
with that body replayed, so the app's checks and messages apply as before.
A failure of the write itself is answered by the app's own exception
handlers (``server.handler_for``), as the route's would be.
"""

from collections.abc import MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request

from app.web import pages
from app.web.forms import URLENCODED, content_type
from app.web.server import (
    EXCEPTION_HANDLERS,
    ONE_CLICK_FIELD,
    ONE_CLICK_VALUE,
    Landing,
    WebError,
    handler_for,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

ONE_CLICK_BODY = f"{ONE_CLICK_FIELD}={ONE_CLICK_VALUE}".encode("ascii")
_LENGTH = str(len(ONE_CLICK_BODY)).encode("ascii")
_CHARSETS = (None, "utf-8", "utf8", "us-ascii", "ascii")  # as forms.read_form accepts
# The headers Starlette's HTMLResponse sends with the security headers, in its order.
_PAGE_HEADERS = [
    (name.lower().encode("latin-1"), value.encode("latin-1"))
    for name, value in pages.SECURITY_HEADERS.items()
]
_HTML = (b"content-type", b"text/html; charset=utf-8")


def one_click_token(scope: Scope) -> str | None:
    """The token of a ``POST /u/<token>`` with a one-click-sized urlencoded body; else None."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    token = path[3:]
    if not path.startswith("/u/") or not token or "/" in token:
        return None
    kind: bytes | None = None
    length: bytes | None = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if kind is not None:
                return None
            kind = value
        elif name == b"content-length":
            if length is not None:
                return None
            length = value
        elif name == b"transfer-encoding":
            return None
    if length != _LENGTH or kind is None:
        return None
    media, params = content_type(kind.decode("latin-1"))
    if media != URLENCODED or params.get("charset", None) not in _CHARSETS:
        return None
    return token


class OneClickFastPath:
    """ASGI: the usual one-click unsubscribe answered here; everything else by ``app``."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.landing: Landing = app.state.landing

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        token = one_click_token(scope)
        if token is None:
            await self.app(scope, receive, send)
            return
        read: list[Message] = []
        body = b""
        while True:
            message = await receive()
            read.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            if not message.get("more_body", False) or len(body) > len(ONE_CLICK_BODY):
                break
        complete = read[-1]["type"] == "http.request" and not read[-1].get("more_body", False)
        link = None
        if complete and body == ONE_CLICK_BODY:
            try:
                link = self.landing.verify(token)
            except WebError:
                link = None  # the app says what is wrong with it
        if link is None:
            await self.app(scope, _replay(read, receive), send)
            return
        try:
            settings, left = await self.landing.writer.unsubscribe(
                link.profile_id, link.campaign_id
            )
        except Exception as exc:
            handler = handler_for(exc)
            response = await handler(Request(scope), exc)
            await response(scope, receive, send)
            if handler is EXCEPTION_HANDLERS[Exception]:
                raise  # as Starlette does: the server's log gets the traceback
            return
        page = pages.unsubscribed_page(settings, left, token).encode("utf-8")
        headers = [*_PAGE_HEADERS, (b"content-length", str(len(page)).encode("ascii")), _HTML]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": page})


def _replay(read: list[Message], receive: Any) -> Any:
    """A ``receive`` that gives the messages already read, then the connection's own."""
    pending = list(read)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        message: Message = await receive()
        return message

    return replayed
