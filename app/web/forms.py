"""Reading a posted form: content type, size limit, and the fields, with the standard library.

The preferences form is ``application/x-www-form-urlencoded`` (what a browser
sends), parsed with ``urllib.parse``. The one-click unsubscribe also accepts
``multipart/form-data``: RFC 8058 §3.2 says a mail client SHOULD post that
and MAY post the urlencoded form, so refusing it would break compliant
clients. The tiny multipart bodies it carries are read with the ``email``
package's MIME parser (no python-multipart needed).

Everything wrong raises ``FormError`` with the HTTP status and a message
naming what is wrong; nothing here touches the store. A field (name or
value) holding a control character is refused whatever the field
(``app.core.text_rules``): no form of ours has a use for one.
"""

import email.parser
import email.policy
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request

from app.core.text_rules import control_problem

URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_BODY_BYTES = 16 * 1024  # the largest form is 50 group ids: a few hundred bytes
MAX_FIELDS = 200


class FormError(Exception):
    """A request whose body cannot be taken: ``status`` (4xx) and a message saying why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Form:
    """The fields of a posted form, in order (a name may repeat)."""

    fields: tuple[tuple[str, str], ...]

    def all(self, name: str) -> list[str]:
        """Every value of ``name``."""
        return [value for key, value in self.fields if key == name]

    def one(self, name: str, *, required: bool = True) -> str | None:
        """The single value of ``name``; missing (when required) or repeated is a 400."""
        values = self.all(name)
        if len(values) > 1:
            raise FormError(
                400, f"the form field {name!r} is given {len(values)} times; send it once"
            )
        if not values:
            if required:
                raise FormError(400, f"the form is missing the field {name!r}")
            return None
        return values[0]


def content_type(header: str | None) -> tuple[str, dict[str, str]]:
    """The media type (lower case) and parameters of a Content-Type header."""
    if not header:
        return "", {}
    kind, _, rest = header.partition(";")
    params: dict[str, str] = {}
    for part in rest.split(";"):
        key, sep, value = part.partition("=")
        if sep:
            params[key.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), params


def _check_length(request: Request) -> None:
    length = request.headers.get("content-length")
    if length is None:
        return
    if not length.isdigit():
        raise FormError(400, "the Content-Length header is not a number")
    if int(length) > MAX_BODY_BYTES:
        raise FormError(413, f"the request body is larger than {MAX_BODY_BYTES:,} bytes")


async def read_body(request: Request) -> bytes:
    """The body, refused (413) as soon as it passes ``MAX_BODY_BYTES``.

    A stated Content-Length over the limit is refused before reading; a
    chunked body is counted as it arrives, so a huge one is never held.
    """
    _check_length(request)
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise FormError(413, f"the request body is larger than {MAX_BODY_BYTES:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_urlencoded(body: bytes, charset: str | None) -> Form:
    if charset and charset.lower() not in ("utf-8", "utf8", "us-ascii", "ascii"):
        raise FormError(415, f"the form's charset {charset!r} is not supported; send UTF-8")
    try:
        # A urlencoded body is ASCII; anything else is percent-encoded UTF-8.
        text = body.decode("ascii")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError as exc:  # UnicodeDecodeError is a ValueError too
        raise FormError(400, "the form could not be read (it is not URL-encoded UTF-8)") from exc
    return Form(tuple(pairs))


def _parse_multipart(body: bytes, header: str) -> Form:
    if not content_type(header)[1].get("boundary"):
        raise FormError(400, "the multipart form has no boundary")
    raw = b"Content-Type: " + header.encode("latin-1", "replace") + b"\r\n\r\n" + body
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(raw)
    parts = list(message.iter_parts()) if message.is_multipart() else []
    if not parts:
        raise FormError(400, "the multipart form could not be read (no parts found)")
    if len(parts) > MAX_FIELDS:
        raise FormError(400, f"the form has more than {MAX_FIELDS} fields")
    fields: list[tuple[str, str]] = []
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_content_disposition() != "form-data":
            raise FormError(400, "a part of the multipart form has no form-data name")
        payload = part.get_payload(decode=True)
        try:
            value = payload.decode("utf-8") if isinstance(payload, bytes) else ""
        except UnicodeDecodeError as exc:
            raise FormError(400, f"the form field {name!r} is not UTF-8") from exc
        fields.append((name, value))
    return Form(tuple(fields))


async def read_form(request: Request, *, multipart: bool = False) -> Form:
    """The posted form: 415 for another content type, 413 when too big, 400 when unreadable."""
    header = request.headers.get("content-type")
    kind, params = content_type(header)
    accepted = [URLENCODED, MULTIPART] if multipart else [URLENCODED]
    if kind not in accepted:
        raise FormError(
            415,
            f"the form must be sent as {' or '.join(accepted)}"
            + (f", not {kind}" if kind else " (no Content-Type was given)"),
        )
    body = await read_body(request)
    if kind == MULTIPART:
        form = _parse_multipart(body, header or "")
    else:
        form = _parse_urlencoded(body, params.get("charset"))
    _refuse_controls(form)
    return form


def _refuse_controls(form: Form) -> None:
    """A 400 for the first field whose name or value holds a control character."""
    for name, value in form.fields:
        problem = control_problem(name)
        if problem is not None:
            raise FormError(400, f"the name of a form field {problem}")
        problem = control_problem(value)
        if problem is not None:
            raise FormError(400, f"the form field {name!r} {problem}")
