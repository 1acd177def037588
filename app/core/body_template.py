"""Campaign templates: plain text with ``{{ tag }}`` placeholders, for the body and the subject.

The tags (DESIGN.md §1): ``{{ name }}``, ``{{ unsubscribe_url }}`` and
``{{ preferences_url }}``. The subject and the body share this one engine:
the same tags, the same checks, the same rendering. An unknown or broken
tag is refused wherever it stands (``check_tags``); a body must also carry
the unsubscribe link (a message without a way out is not sent) and must not
still hold the wizard's placeholder line. Checking names the line and column
of the first problem, so the console and the CLI can point at it.
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
# The line the wizard's new body holds until the message is written: never sent.
PLACEHOLDER = "Write your message here."
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


def _where(text: str, offset: int, field: str) -> str:
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    if field == "subject":  # one line: the column says where
        return f"Subject, column {column}"
    return f"line {line}, column {column}"


def check_tags(text: str, *, field: str = "body") -> set[str]:
    """The tags ``text`` uses; ``InvalidInput`` (on ``field``) at the first unknown or broken one.

    The message says where: ``line L, column C`` in the body, ``Subject,
    column C`` in the subject.
    """
    known = ", ".join(f"{{{{ {tag} }}}}" for tag in TAGS)
    seen: set[str] = set()
    position = 0
    while (start := text.find(_OPEN, position)) != -1:
        match = _TAG.match(text, start)
        if match is None:
            # Show the broken tag alone: up to its "}}", the next "{{" or the line's end.
            ends = [text.find("}}", start) + 2, text.find(_OPEN, start + 2), start + 24]
            end = min(e for e in ends if e > start + 1)
            snippet = text[start:end].splitlines()[0].rstrip()
            raise InvalidInput(
                f"{_where(text, start, field)}: {snippet!r} is not a tag; "
                "tags look like {{ name }}",
                field=field,
            )
        tag = match.group(1)
        if tag not in TAGS:
            raise InvalidInput(
                f"{_where(text, start, field)}: unknown tag {{{{ {tag} }}}}; the tags are {known}",
                field=field,
            )
        seen.add(tag)
        position = match.end()
    return seen


def placeholder_line(body: str) -> int | None:
    """The line number where the wizard's placeholder still stands, or None."""
    for number, line in enumerate(body.splitlines(), start=1):
        if line.strip() == PLACEHOLDER:
            return number
    return None


def check_body(body: str) -> None:
    """Raise ``InvalidInput`` (field ``body``) naming the first problem and where it is."""
    if not body.strip():
        raise InvalidInput("the body is empty: write the message", field="body")
    if len(body) > MAX_BODY:
        raise InvalidInput(
            f"the body is {len(body):,} characters; at most {MAX_BODY:,}", field="body"
        )
    seen = check_tags(body)
    if "unsubscribe_url" not in seen:
        raise InvalidInput(
            "the body has no {{ unsubscribe_url }} link: every message must let people leave",
            field="body",
        )


def check_ready(body: str) -> None:
    """``check_body``, and the placeholder line must be gone: a body fit to send."""
    check_body(body)
    line = placeholder_line(body)
    if line is not None:
        raise InvalidInput(
            f"the body still says {PLACEHOLDER!r} (line {line}): write the message", field="body"
        )


def render(text: str, values: Mapping[str, str]) -> str:
    """``text`` (a subject or a body) with each tag replaced by its value (assumed checked)."""
    return _TAG.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def uses_tags(text: str) -> bool:
    """Whether ``text`` holds any tag (a subject without tags is the same for everyone)."""
    return _TAG.search(text) is not None


render_body = render  # the name the body's callers know
