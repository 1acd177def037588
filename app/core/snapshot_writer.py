"""Keeping the store's segment index snapshot fresh (see ``app.core.index_snapshot``).

A process whose index has moved well past the stored snapshot (or found none,
or an unusable one) writes a new one from a daemon thread, so the next
process to start replays few events. Only when worth it: small stores build
from the tables in milliseconds and are never snapshotted by the background
writer. A failed write is logged and changes nothing else; counts never wait
for it.
"""

import logging
import threading

from app.core import index_snapshot, ledger
from app.core.segment_index import SegmentIndex
from app.core.store import Store

log = logging.getLogger(__name__)

# Below this many profiles the tables are read as fast as a snapshot.
MIN_PROFILES = 100_000
# A snapshot this many ledger ids behind the index is rewritten.
EVENTS_BEHIND = 20_000
WRITER_KEY = "segment_index_snapshot_writer"


def write_snapshot(store: Store, index: SegmentIndex) -> bool:
    """Read every group's states into the index, then store it as the snapshot.

    Groups are read one at a time (each holds the index's lock only for its
    own read). A snapshot another process stored meanwhile at a newer ledger
    id is kept (unless it is ahead of the ledger itself). True when this one was written.
    """
    with store.read() as session:
        index.refresh(session)
        for group_id in index.missing_groups():
            index.load_groups(session, [group_id])
        index.address_twins(session)  # stored too: a fresh process need not group every address
    ledger_id, max_profile_id, parts = index.snapshot_parts()
    with store.write() as session:
        current = index_snapshot.stored_ledger_id(session)
        # Newer, and not ahead of the ledger (a restored store's would be): kept.
        if current is not None and ledger_id <= current <= ledger.latest_id(session):
            index.snapshot_ledger_id = current
            return False
        index_snapshot.save(
            session, ledger_id=ledger_id, max_profile_id=max_profile_id, parts=parts
        )
    index.snapshot_ledger_id = ledger_id
    return True


def worth_writing(index: SegmentIndex) -> bool:
    """A large index with no stored snapshot, or one far behind it."""
    if not index.built or index.profile_count < MIN_PROFILES:
        return False
    return index.snapshot_ledger_id is None or index.behind() >= EVENTS_BEHIND


def _write_logged(store: Store, index: SegmentIndex) -> None:
    try:
        write_snapshot(store, index)
    except Exception:
        log.exception("could not write the segment index snapshot (counts are unaffected)")


def refresh_in_background(store: Store, index: SegmentIndex) -> threading.Thread | None:
    """Start the snapshot writer if worth it and none runs for this store; the thread."""
    if not worth_writing(index):
        return None
    running = store.cache.get(WRITER_KEY)
    if running is not None and running.is_alive():
        return None
    thread = threading.Thread(
        target=_write_logged, args=(store, index), name="segment-index-snapshot", daemon=True
    )
    store.cache[WRITER_KEY] = thread
    thread.start()
    return thread


def wait_for_writer(store: Store, timeout: float) -> None:
    """Let a running snapshot writer finish (up to ``timeout`` s): a short-lived process
    (a CLI command) calls it before exiting, so its snapshot is not lost with it."""
    running = store.cache.get(WRITER_KEY)
    if running is not None:
        running.join(timeout)
