"""The ledger's new events for the log pane, read by the console's ledger poller."""

from app.core import ledger
from app.core.store import Store
from app.ui.messages import NewEvents


def new_events(store: Store, follower: ledger.LedgerFollower, *, keep: int) -> NewEvents | None:
    """The events committed after the follower's cursor (None: none); after a bulk
    write (an import, the sample data) only its newest ``keep``, with how many went
    by, rather than all of them. Raises SQLAlchemy's OperationalError when busy."""
    with store.read() as session:
        fresh = follower.poll(session)
    if len(fresh) < ledger.PAGE:
        return NewEvents(fresh) if fresh else None
    with store.read() as session:
        latest = ledger.latest_id(session)
        skipped = follower.skip_to(max(follower.last, latest - keep))
        fresh += follower.poll(session)
    shown = fresh[-keep:]
    return NewEvents(shown, skipped=skipped + len(fresh) - len(shown))
