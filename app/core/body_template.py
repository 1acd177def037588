"""Campaign body templates: plain text with ``{{ tag }}`` placeholders.

The tags (DESIGN.md §1): ``{{ name }}``, ``{{ unsubscribe_url }}`` and
``{{ preferences_url }}``. A body must carry the unsubscribe link: a message
without a way out is not sent. Checking names the line and column of the
first problem, so the console and the CLI can point at it.
"""

import re
from collections.abc import Mapping

from app.core.errors import InvalidInput

TAGS = ("name", "unsubscribe_url", "preferences_url")
TAG_HELP = {
    "name": "the recipient's name (or their email when no name is known)",
    "unsubscribe_url": "the link that unsubscribes from this campaign's groups",
    "preferences_url": "the link to the recipient's email preferences page",
}
MAX_BODY = 100_000
DEFAULT_BODY = """Hello {{ name }},

Write your message here.

--
You get this email because of your subscription to our mailing lists.
Unsubscribe: {{ unsubscribe_url }}
Manage your email preferences: {{ preferences_url }}
"""

# A tag: "{{", optional spaces, a word, optional spaces, "}}".
_TAG = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_OPEN = "{{"


def _where(body: str, offset: int) -> str:
    line = body.count("\n", 0, offset) + 1
    column = offset - (body.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def check_body(body: str) -> None:
    """Raise ``InvalidInput`` (field ``body``) naming the first problem and where it is."""
    if not body.strip():
        raise InvalidInput("the body is empty: write the message", field="body")
    if len(body) > MAX_BODY:
        raise InvalidInput(
            f"the body is {len(body):,} characters; at most {MAX_BODY:,}", field="body"
        )
    known = ", ".join(f"{{{{ {tag} }}}}" for tag in TAGS)
    seen: set[str] = set()
    position = 0
    while (start := body.find(_OPEN, position)) != -1:
        match = _TAG.match(body, start)
        if match is None:
            # Show the broken tag alone: up to its "}}", the next "{{" or the line's end.
            ends = [body.find("}}", start) + 2, body.find(_OPEN, start + 2), start + 24]
            end = min(e for e in ends if e > start + 1)
            snippet = body[start:end].splitlines()[0].rstrip()
            raise InvalidInput(
                f"{_where(body, start)}: {snippet!r} is not a tag; tags look like {{{{ name }}}}",
                field="body",
            )
        tag = match.group(1)
        if tag not in TAGS:
            raise InvalidInput(
                f"{_where(body, start)}: unknown tag {{{{ {tag} }}}}; the tags are {known}",
                field="body",
            )
        seen.add(tag)
        position = match.end()
    if "unsubscribe_url" not in seen:
        raise InvalidInput(
            "the body has no {{ unsubscribe_url }} link: every message must let people leave",
            field="body",
        )


def render_body(body: str, values: Mapping[str, str]) -> str:
    """The body with each tag replaced by its value (the body is assumed checked)."""
    return _TAG.sub(lambda m: values.get(m.group(1), m.group(0)), body)
