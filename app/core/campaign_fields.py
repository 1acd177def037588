"""A campaign's fields as stored: each checked, with a message naming the field.

The console's wizard checks each field as it is typed with the same
functions ``campaigns.create_campaign`` and ``update_campaign`` use, so a
form and the service never disagree. A draft may be incomplete; what stops
a send is ``campaigns.send_problems``.
"""

import re
import unicodedata
from collections.abc import Iterable, Sequence
from email.utils import getaddresses, parseaddr

from sqlmodel import Session

from app.core import body_template
from app.core.errors import InvalidInput, RuleRefused, UnknownGroup
from app.core.models import STATUS_ARCHIVED, Campaign, Group, Segment

NAME_MAX = 128
SUBJECT_MAX = 255
ADDRESS_MAX = 320
# local@domain.tld: what a mail server will accept as an envelope sender.
_ADDRESS = re.compile(
    r"^[^@\s<>()\[\],;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


def _no_controls(text: str, what: str, field: str) -> None:
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text):
        raise InvalidInput(f"{what} contains a control character (tab, newline …)", field=field)


def clean_campaign_name(name: str) -> str:
    """The name as stored: trimmed, 1 to 128 characters, no control characters."""
    cleaned = (name or "").strip()
    if not cleaned:
        raise InvalidInput(f"Name is required: type 1 to {NAME_MAX} characters", field="name")
    if len(cleaned) > NAME_MAX:
        raise InvalidInput(
            f"Name is {len(cleaned)} characters long; the most is {NAME_MAX}", field="name"
        )
    _no_controls(cleaned, "Name", "name")
    return cleaned


def clean_subject(subject: str) -> str:
    """The subject as stored: trimmed, not empty, one line, at most 255 characters.

    It is a template like the body (``Hello {{ name }}``): an unknown or
    broken tag is refused, naming the column.
    """
    cleaned = (subject or "").strip()
    if not cleaned:
        raise InvalidInput(
            "Subject is empty: type the line people see in their inbox", field="subject"
        )
    if len(cleaned) > SUBJECT_MAX:
        raise InvalidInput(
            f"Subject is {len(cleaned)} characters long; the most is {SUBJECT_MAX}", field="subject"
        )
    _no_controls(cleaned, "Subject", "subject")
    body_template.check_tags(cleaned, field="subject")
    return cleaned


def clean_from_address(value: str) -> str:
    """A From address: ``news@example.com`` or ``Example News <news@example.com>``.

    Exactly one: ``a@x.org, b@y.org`` is refused (a mail server would take
    the first and readers would see both).
    """
    cleaned = (value or "").strip()
    if not cleaned:
        raise InvalidInput(
            "From is empty: type an address like news@example.com", field="from_address"
        )
    if len(cleaned) > ADDRESS_MAX:
        raise InvalidInput(f"From is longer than {ADDRESS_MAX} characters", field="from_address")
    _no_controls(cleaned, "From", "from_address")
    found = [addr for _name, addr in getaddresses([cleaned]) if "@" in addr]
    if len(found) > 1:
        raise InvalidInput(
            f"From holds {len(found)} addresses ({', '.join(found)}): it takes exactly one "
            "address, like news@example.com or Example News <news@example.com>",
            field="from_address",
        )
    _display, address = parseaddr(cleaned)
    if not address or not _ADDRESS.match(address) or ("<" in cleaned) != (">" in cleaned):
        raise InvalidInput(
            f"From {cleaned!r} is not an email address (like news@example.com "
            "or Example News <news@example.com>)",
            field="from_address",
        )
    return cleaned


def from_email(campaign: Campaign) -> str:
    """The bare address of the campaign's From."""
    return parseaddr(campaign.from_address)[1]


def check_groups(
    session: Session, ids: Iterable[int], *, field: str, already: Sequence[int] = ()
) -> list[int]:
    """Group ids as stored: known, no repeats; newly added ones must be active."""
    result: list[int] = []
    for group_id in ids:
        group = session.get(Group, group_id)
        if group is None:
            raise UnknownGroup(f"No group has id {group_id}", field=field)
        if group.status == STATUS_ARCHIVED and group_id not in already:
            raise RuleRefused(
                f"Group {group.name!r} is archived: new campaigns cannot pick it "
                "(unarchive it first)",
                field=field,
            )
        if group_id not in result:
            result.append(group_id)
    return result


def check_body_draft(body: str) -> None:
    """What a draft's body may not hold even unfinished: too many characters, an unknown tag.

    (An empty body, or one without the unsubscribe link yet, waits for
    ``send_problems``.)
    """
    if len(body) > body_template.MAX_BODY:
        body_template.check_body(body)  # raises the length message
    body_template.check_tags(body)


def check_segment(session: Session, segment_id: int | None) -> int | None:
    if segment_id is not None and session.get(Segment, segment_id) is None:
        raise RuleRefused(f"No segment has id {segment_id}", field="segment")
    return segment_id
