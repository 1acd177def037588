"""Group commit for one-click unsubscribes (``app.core.group_commit``).

Mail providers post one-click unsubscribes in bursts. Each needs a write
transaction, and SQLite allows one writer at a time: one transaction per
request would spend most of its time opening and committing (about 4 ms of
CPU each through the ORM, a ceiling near 250 a second). Here the endpoints
queue their request and wait; one thread writes everything queued in one
transaction (``one_click.one_click_many``), commits, and only then answers
each waiting request: an acknowledged unsubscribe is always a committed one.

With several worker processes (``workers``) the writers take turns on one
write lock (see ``group_commit``).
"""

import logging
from contextlib import AbstractContextManager

from app.core import landing, one_click
from app.core.errors import UnknownProfile
from app.core.group_commit import GroupCommit
from app.core.store import Store

OneClick = tuple[int, int | None]  # (profile id, campaign id) as the link says
Unsubscribed = tuple[landing.PageSettings, one_click.UnsubscribeScope]


class OneClickWriter(GroupCommit[OneClick, Unsubscribed]):
    """Writes queued one-click unsubscribes in batches, from a thread of its own."""

    thread_name = "landing-one-click-writer"
    log = logging.getLogger("subgroups.landing")

    def __init__(self, store: Store, write_lock: AbstractContextManager[object]) -> None:
        super().__init__(write_lock)
        self.store = store

    async def unsubscribe(self, profile_id: int, campaign_id: int | None) -> Unsubscribed:
        """Unsubscribe as the link says; returns once committed (raises ``UnknownProfile``)."""
        return await self.submit((profile_id, campaign_id))

    def write(self, requests: list[OneClick]) -> list[Unsubscribed | BaseException]:
        with self.store.write() as session:
            results = one_click.one_click_many(session=session, requests=requests)
            settings = landing.page_settings(session)
        return [r if isinstance(r, UnknownProfile) else (settings, r) for r in results]
