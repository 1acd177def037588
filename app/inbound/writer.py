"""Group commit for inbound mail: one writer thread, many messages per transaction.

Each SMTP session hands its message over at DATA and waits
(``app.core.group_commit``). One thread takes everything queued, applies it
in one write transaction, commits, and only then answers each message: an
acknowledged message (250) is a committed one, so a kill -9 after a 250
loses nothing. Under light load a batch is one message; under heavy load
batches grow by themselves, with no timer.

A ``mailto:`` unsubscribe or a complaint with one recipient (nearly all of
them) goes through ``one_click.one_click_many`` for the whole batch (the
complaints leaving all email), and a one-recipient bounce through
``bounces.record_bounces``; other messages each run in a savepoint, so
one refused message (550) changes nothing and leaves the others of its
batch alone.
"""

import logging

from app.core import bounces, inbound, one_click
from app.core.errors import UnknownProfile
from app.core.group_commit import GroupCommit
from app.core.store import Store
from app.core.tokens import LinkToken

Message = tuple[list[inbound.Recipient], bytes]  # its recipients, its bytes
Answer = list[inbound.Outcome]


def _single(recipients: list[inbound.Recipient], kind: str) -> bool:
    """Whether a message has one recipient, of this kind."""
    return len(recipients) == 1 and recipients[0].kind == kind


class InboundWriter(GroupCommit[Message, Answer]):
    """Applies queued inbound messages in batches, from a thread of its own."""

    thread_name = "inbound-writer"
    log = logging.getLogger("subgroups.inbound")

    def __init__(self, store: Store, domain: inbound.InboundDomain) -> None:
        super().__init__()
        self.store = store
        self.domain = domain

    async def apply(
        self, recipients: list[inbound.Recipient], content: bytes
    ) -> list[inbound.Outcome]:
        """Apply one message; returns once committed (raises ``inbound.Refused``)."""
        return await self.submit((recipients, content))

    def failed(self, exc: Exception) -> BaseException:
        return inbound.Refused(f"4.3.0 not saved, try again later ({type(exc).__name__})")

    def write(self, requests: list[Message]) -> list[Answer | BaseException]:
        outcomes: list[Answer | BaseException] = [inbound.Refused("4.3.0 not handled")] * len(
            requests
        )
        # (index in the batch, token) of the one-recipient mailto and complaint messages.
        mailto: list[tuple[int, LinkToken]] = []
        complaints: list[tuple[int, LinkToken]] = []
        bounced: list[tuple[int, bounces.BounceReport]] = []
        others: list[int] = []
        for i, (recipients, content) in enumerate(requests):
            token = recipients[0].token
            # Reports are read before the transaction: one that does not parse waits for nothing.
            try:
                if _single(recipients, inbound.UNSUBSCRIBE) and token is not None:
                    mailto.append((i, token))
                elif _single(recipients, inbound.BOUNCES) and token is not None:
                    report = bounces.BounceReport(
                        token.profile_id, token.campaign_id, inbound.parse_dsn(content)
                    )
                    bounced.append((i, report))
                elif _single(recipients, inbound.FEEDBACK):
                    complaints.append((i, inbound.complaint_token(self.domain, content)))
                else:
                    others.append(i)
            except inbound.Refused as exc:
                outcomes[i] = exc
        with self.store.write() as session:
            if bounced:
                recorded = bounces.record_bounces(session, [report for _, report in bounced])
                for (i, report), event in zip(bounced, recorded, strict=True):
                    outcomes[i] = (
                        inbound.Refused(f"5.1.1 {event}")
                        if isinstance(event, UnknownProfile)
                        else [inbound.bounce_outcome(report.profile_id, report.bounce, event)]
                    )
            for kind, source, planned in (
                (inbound.UNSUBSCRIBE, "mailto", mailto),
                (inbound.FEEDBACK, "complaint", complaints),
            ):
                if not planned:
                    continue
                results = one_click.one_click_many(
                    session=session,
                    requests=[(t.profile_id, t.campaign_id) for _, t in planned],
                    source=source,
                    all_email=kind == inbound.FEEDBACK,
                )
                for (i, token), result in zip(planned, results, strict=True):
                    if isinstance(result, UnknownProfile):
                        outcomes[i] = inbound.Refused(f"5.1.1 {result}")
                    else:
                        what = "all email" if result.all_email else ", ".join(result.group_names)
                        outcomes[i] = [
                            inbound.Outcome(kind, token.profile_id, f"unsubscribed from {what}")
                        ]
            for i in others:
                recipients, content = requests[i]
                try:
                    with session.begin_nested():
                        outcomes[i] = [
                            inbound.accept(session, self.domain, recipient, content)
                            for recipient in recipients
                        ]
                except inbound.Refused as exc:
                    outcomes[i] = exc
        return outcomes
