"""What the landing server tests share: a small HTTP client on ``http.client`` bound to a
running server, and a parser that reads pages as a browser and a screen reader would."""

import http.client
import io
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser

from landing_world import LandingWorld

from app.core.store import Store
from app.core.tokens import Keyring, StoreBinding, store_binding

FORM = "application/x-www-form-urlencoded"


class LockedLog(io.StringIO):
    """The access log, written by the server thread and read by the test."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            return super().write(text)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: str


@dataclass
class Served:
    """A running landing server and what the tests need around it."""

    url: str
    host: str
    port: int
    world: LandingWorld
    keyring: Keyring
    log: LockedLog

    @property
    def store(self) -> Store:
        return self.world.store

    @property
    def binding(self) -> StoreBinding:
        """The store the server's links are bound to."""
        with self.store.read() as session:
            return store_binding(session)

    def token(self, profile_id: int, campaign_id: int | None = None) -> str:
        return self.keyring.sign(profile_id, campaign_id, store=self.binding)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """One request on a fresh connection; the whole answer."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            data = body.encode() if isinstance(body, str) else body
            conn.request(method, path, body=data, headers=headers or {})
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
        finally:
            conn.close()

    def get(self, path: str, **headers: str) -> Answer:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, body: bytes | str, content_type: str = FORM) -> Answer:
        return self.request("POST", path, body, {"Content-Type": content_type})


@dataclass
class Control:
    """One form control of a page."""

    tag: str
    attrs: dict[str, str | None]

    @property
    def checked(self) -> bool:
        return "checked" in self.attrs


@dataclass
class PageParts:
    """What a page is made of, as a browser and a screen reader see it."""

    controls: list[Control] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # for= id -> label text
    tags: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)  # every src= and href=
    meta: list[dict[str, str | None]] = field(default_factory=list)
    html_lang: str | None = None

    def checkbox(self, control_id: str) -> Control:
        found = [c for c in self.controls if c.attrs.get("id") == control_id]
        assert len(found) == 1, f"no single control with id {control_id!r}"
        return found[0]

    def group_boxes(self) -> dict[int, bool]:
        """Group id -> ticked, for each group checkbox on the page."""
        return {
            int(str(c.attrs["value"])): c.checked
            for c in self.controls
            if c.attrs.get("name") == "group"
        }


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts = PageParts()
        self._label_for: str | None = None
        self._label_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.parts.tags.append(tag)
        if tag in ("input", "button", "select", "textarea"):
            self.parts.controls.append(Control(tag, found))
        if tag == "label":
            self._label_for = found.get("for")
            self._label_text = []
        if tag == "meta":
            self.parts.meta.append(found)
        if tag == "html":
            self.parts.html_lang = found.get("lang")
        for key in ("src", "href"):
            if found.get(key):
                self.parts.urls.append(str(found[key]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self._label_for:
            self.parts.labels[self._label_for] = "".join(self._label_text)
            self._label_for = None

    def handle_data(self, data: str) -> None:
        if self._label_for is not None:
            self._label_text.append(data)


def parse_page(html: str) -> PageParts:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.parts
