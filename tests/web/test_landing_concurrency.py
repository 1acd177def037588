"""Many requests at once: nothing is lost, and the ledger still explains every state.

Saves of one person's page run one after the other (the profile's row lock on
PostgreSQL, the write lock on SQLite); one-click unsubscribes are committed in
batches by one writer thread. Either way each request sees and answers its own
committed state, and for every (person, group) the events chain from the first
state to the stored one without a gap or a repeat.
"""

import asyncio
import random
import threading
from collections import defaultdict
from urllib.parse import urlencode

from landing_world import build_world, stored_states, subscription_events
from web_client import Served, parse_page

from app.core import profiles
from app.core.store import Store
from app.web.writer import OneClickWriter

THREADS = 8
SAVES_PER_THREAD = 5


def test_concurrent_saves_of_one_page_lose_nothing(served: Served) -> None:
    w = served.world
    token = served.token(w.ann, w.campaign_none)
    shown = ",".join(str(i) for i in w.shown)
    outcomes: list[tuple[tuple[int, ...], bool, int, dict[int, bool], bool]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def saver(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(SAVES_PER_THREAD):
                ticked = tuple(sorted(g for g in w.shown if rng.random() < 0.5))
                leave_all = rng.random() < 0.3
                fields = [("shown", shown)] + [("group", str(g)) for g in ticked]
                if leave_all:
                    fields.append(("all_email", "unsubscribed"))
                answer = served.post(f"/p/{token}", urlencode(fields))
                page = parse_page(answer.body)
                boxes = page.group_boxes() if answer.status == 200 else {}
                all_box = page.checkbox("all-email").checked if answer.status == 200 else False
                with lock:
                    outcomes.append((ticked, leave_all, answer.status, boxes, all_box))
        except BaseException as exc:  # noqa: BLE001 - reported below
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=saver, args=(seed,)) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert len(outcomes) == THREADS * SAVES_PER_THREAD
    for ticked, leave_all, status, boxes, all_box in outcomes:
        assert status == 200
        # Each answer shows its own save, committed whole: no other save half mixed in.
        assert boxes == {g: g in ticked for g in w.shown}
        assert all_box == leave_all

    # The ledger explains every state: per (person, group) the events form one chain.
    chains: dict[int | None, list[tuple[str | None, str]]] = defaultdict(list)
    for event in subscription_events(served.store, w.ann):
        assert event.source == "landing_page" and event.campaign_id == w.campaign_none
        chains[event.group_id].append(
            (event.properties["Old State"], event.properties["New State"])
        )
    stored = stored_states(served.store, w.ann)
    for key, chain in chains.items():
        first_old = "subscribed" if key is None else None
        assert chain[0][0] == first_old, (key, chain)
        for (_, before), (old, _) in zip(chain, chain[1:], strict=False):
            assert old == before, (key, chain)  # no lost or doubled update
        assert all(old != new for old, new in chain)  # every event is a change
        assert stored[key] == chain[-1][1]  # the stored state is the last event's
    # Every stored state came with its events (nothing changed without the ledger).
    assert set(stored) - {None} <= set(chains)

    # The page as it stands is exactly one of the saves (the last to commit).
    final = parse_page(served.get(f"/p/{token}").body)
    final_choice = (
        tuple(sorted(g for g, ticked in final.group_boxes().items() if ticked)),
        final.checkbox("all-email").checked,
    )
    assert final_choice in {(ticked, leave_all) for ticked, leave_all, *_ in outcomes}


def test_concurrent_one_clicks_are_each_committed_once(served: Served) -> None:
    """Ten clients clicking forty people's links, every link ten times over."""
    w = served.world
    with served.store.write() as session:
        people = [
            profiles.create_profile(session=session, identity=f"p{i}", email=f"p{i}@x.org").id
            for i in range(40)
        ]
    paths = [f"/u/{served.token(pid, w.campaign_groups)}" for pid in people if pid]
    statuses: list[int] = []
    lock = threading.Lock()

    def clicker(seed: int) -> None:
        order = list(paths)
        random.Random(seed).shuffle(order)
        for path in order:
            status = served.post(path, "List-Unsubscribe=One-Click").status
            with lock:
                statuses.append(status)

    threads = [threading.Thread(target=clicker, args=(seed,)) for seed in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert statuses == [200] * (10 * len(paths))
    by_person: dict[int | None, list[int | None]] = defaultdict(list)
    for event in subscription_events(served.store):
        assert event.source == "one_click" and event.campaign_id == w.campaign_groups
        by_person[event.profile_id].append(event.group_id)
    for pid in people:
        assert pid is not None
        assert sorted(g or 0 for g in by_person[pid]) == sorted([w.newsletter, w.old])
        assert stored_states(served.store, pid) == {
            w.newsletter: "unsubscribed",
            w.old: "unsubscribed",
            None: "subscribed",
        }


class WatchedLock:
    """A write lock another process holds, telling when the writer starts waiting for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.waiting = threading.Event()

    def __enter__(self) -> "WatchedLock":
        self.waiting.set()
        self.lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def test_one_clicks_queued_while_another_process_writes_join_one_transaction(
    sqlite_store: Store,
) -> None:
    """Worker processes take turns on the write lock: what queues during a turn waits for
    the next one, and then goes in one transaction, not one per request."""
    w = build_world(sqlite_store)
    lock = WatchedLock()
    writer = OneClickWriter(sqlite_store, lock)

    async def scenario() -> list[object]:
        lock.lock.acquire()  # another worker's transaction
        first = asyncio.create_task(writer.unsubscribe(w.ann, w.campaign_groups))
        await asyncio.get_running_loop().run_in_executor(None, lock.waiting.wait, 10)
        second = asyncio.create_task(writer.unsubscribe(w.bob, w.campaign_groups))
        await asyncio.sleep(0)  # it is queued
        lock.lock.release()
        return list(await asyncio.gather(first, second))

    try:
        answers = asyncio.run(scenario())
    finally:
        writer.close()
    assert len(answers) == 2
    assert writer.batches == 1
    for person in (w.ann, w.bob):
        assert stored_states(sqlite_store, person)[w.newsletter] == "unsubscribed"
