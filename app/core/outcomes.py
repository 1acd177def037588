"""What became of each message of a batch handed to an outbox (``Outbox.deliver_many``)."""

import re
from collections.abc import Callable
from dataclasses import dataclass

# What became of one message of ``Outbox.deliver_many``.
SENT = "sent"  # the outbox took it (250 after DATA)
REFUSED = "refused"  # refused for good (5xx): never retried
DEFERRED = "deferred"  # refused for now (4xx) after the retries: not sent, try again later
AMBIGUOUS = "ambiguous"  # handed over, then the connection broke: never sent again
NOT_SENT = "not sent"  # never handed over

_ENHANCED_STATUS = re.compile(r"^\d{3}[ -]?([245]\.\d{1,3}\.\d{1,3})\b")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one message handed to ``deliver_many``, and the server's words."""

    status: str
    reply: str = ""  # "550 5.1.1 No such user", as the server said it

    @property
    def enhanced_status(self) -> str | None:
        """The reply's enhanced status code (RFC 3463: ``5.1.1``), if it has one."""
        match = _ENHANCED_STATUS.match(self.reply)
        return match.group(1) if match else None


# ``report(index, outcome)``: message ``index`` (its place in the batch) is settled.
Report = Callable[[int, Outcome], None]
