"""Several processes on one store at once: the limit and the ledger still hold.

DESIGN.md §1 and §3: the 50-active check runs inside the write transaction,
so admins working at the same moment (several consoles on one host over
SQLite, several hosts on PostgreSQL) can never push the count past 50; and
every state change has exactly one event, so the ledger explains the state.

Each worker is a separate ``python`` process that opens the store, says it is
ready, waits for "go", then runs its tasks, one write transaction each, as
the CLI would; all start together so their transactions overlap.
"""

import json
import random
import select
import subprocess
from typing import Any

from app.core import groups, ledger, profiles
from app.core.store import open_store

LIMIT_MESSAGE = "50 of 50 groups are active: archive one to make room"

WORKER = r"""
import json
import os
import sys

from app.core import groups, profiles, subscriptions
from app.core.errors import SubgroupsError
from app.core.store import open_store

config = json.loads(sys.argv[1])
actor = config["actor"]
store = open_store(config["url"])
print("ready", flush=True)
sys.stdin.readline()
results = []
for task in config["tasks"]:
    kind = task[0]
    try:
        with store.write() as session:
            if kind == "create":
                groups.create_group(session=session, name=task[1], actor=actor, source="cli")
                outcome = "ok"
            elif kind == "unarchive":
                # As `subgroups groups unarchive NAME` does: look it up, then act.
                group = groups.find_group(session, task[1])
                groups.unarchive_group(
                    session=session, group_id=group.id, actor=actor, source="cli"
                )
                outcome = "ok"
            else:
                # As `subgroups profiles set` does: look both up, then change.
                profile = profiles.get_profile(session, config["identity"])
                group = groups.find_group(session, task[1]) if task[1] else None
                event = subscriptions.set_state(
                    session=session, profile=profile, group=group, status=task[2],
                    source="cli", actor=actor,
                )
                outcome = "changed" if event is not None else "same"
        results.append([*task, outcome, ""])
    except SubgroupsError as exc:
        results.append([*task, type(exc).__name__, str(exc)])
    except Exception as exc:  # reported, and the test fails on it
        results.append([*task, "crash", f"{type(exc).__name__}: {exc}"])
store.dispose()
print(json.dumps(results), flush=True)
os._exit(0)  # skip the interpreter's slow teardown: the results are out
"""


def race(
    python: str, env: dict[str, str], url: str, task_lists: list[list[list[Any]]], **config: Any
) -> list[list[Any]]:
    """Run one worker process per task list, all released at once; their results, flattened."""
    procs = []
    try:
        for number, tasks in enumerate(task_lists):
            payload = json.dumps({"url": url, "tasks": tasks, "actor": f"admin{number}", **config})
            procs.append(
                subprocess.Popen(
                    [python, "-c", WORKER, payload],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        for proc in procs:
            assert proc.stdout is not None
            readable, _, _ = select.select([proc.stdout], [], [], 60)
            line = proc.stdout.readline() if readable else ""
            assert line.strip() == "ready", f"worker did not start: {proc.communicate(timeout=5)}"
        for proc in procs:  # release them together
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        results: list[list[Any]] = []
        for proc in procs:
            out, err = proc.communicate(timeout=90)
            assert proc.returncode == 0, err
            results.extend(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_racing_creates_and_unarchives_never_pass_50_active(
    store_url: str, python: str, subprocess_env: dict[str, str]
) -> None:
    store = open_store(store_url)
    try:
        with store.write() as session:
            for i in range(10):
                group = groups.create_group(session=session, name=f"Old {i}", actor="setup")
                assert group.id is not None
                groups.archive_group(session=session, group_id=group.id, actor="setup")
            for i in range(45):
                groups.create_group(session=session, name=f"Group {i}", actor="setup")
        with store.read() as session:
            assert groups.active_count(session) == 45
            setup_last_id = ledger.latest_id(session)

        # Three admins, each trying three new groups and bringing back the same six
        # archived ones (so they also race each other for one group): 5 free slots.
        rng = random.Random(50)
        task_lists: list[list[list[Any]]] = []
        for w in range(3):
            tasks: list[list[Any]] = [["create", f"New {w}{n}"] for n in "abc"]
            tasks += [["unarchive", f"Old {n}"] for n in range(6)]
            rng.shuffle(tasks)
            task_lists.append(tasks)
        results = race(python, subprocess_env, store_url, task_lists)

        crashes = [r for r in results if r[2] not in ("ok", "GroupLimitReached", "WrongStatus")]
        assert crashes == []
        done = [r for r in results if r[2] == "ok"]
        refused = [r for r in results if r[2] == "GroupLimitReached"]
        already = [r for r in results if r[2] == "WrongStatus"]
        # Some create is refused at 50 and nothing is archived meanwhile, so all 5 slots fill.
        assert len(done) == 5
        assert len(refused) + len(already) == len(results) - 5
        assert {r[3] for r in refused} == {LIMIT_MESSAGE}
        assert all(r[0] == "unarchive" and "already active" in r[3] for r in already)

        with store.read() as session:
            assert groups.active_count(session) == 50
            by_name = {g.name: g for g in groups.list_groups(session, status="all")}
            after = ledger.events_after(session, after_id=setup_last_id, limit=1000)
            history = ledger.events_after(session, after_id=0, limit=1000)

        created_ok = {r[1] for r in done if r[0] == "create"}
        unarchived_ok = [r[1] for r in done if r[0] == "unarchive"]
        # One event per success (so each group comes back once), none for a refusal.
        assert sorted(e.properties["Group"] for e in after if e.name == "Group Created") == sorted(
            created_ok
        )
        assert sorted(
            e.properties["Group"] for e in after if e.name == "Group Unarchived"
        ) == sorted(unarchived_ok)
        assert len(set(unarchived_ok)) == len(unarchived_ok)
        assert len(after) == 5
        for r in refused:
            if r[0] == "create":
                assert r[1] not in by_name
            elif r[1] not in unarchived_ok:
                assert by_name[r[1]].status == "archived"
        for r in already:
            assert r[1] in unarchived_ok
        # Replaying the ledger in order, the count is never above 50 at any moment.
        active, highest = 0, 0
        for event in history:
            active += {"Group Created": 1, "Group Unarchived": 1, "Group Archived": -1}.get(
                event.name, 0
            )
            highest = max(highest, active)
        assert (active, highest) == (50, 50)
    finally:
        store.dispose()


def test_racing_state_changes_for_one_profile_keep_the_ledger_true(
    store_url: str, python: str, subprocess_env: dict[str, str]
) -> None:
    store = open_store(store_url)
    try:
        with store.write() as session:
            newsletter = groups.create_group(session=session, name="Newsletter", actor="setup")
            ann = profiles.create_profile(session=session, identity="ann@example.com")

        # Three admins flipping Ann's Newsletter state and her all-email switch at once.
        rng = random.Random(8058)
        task_lists = [
            [
                [
                    "set",
                    rng.choice(["Newsletter", "Newsletter", None]),
                    rng.choice(["subscribed", "unsubscribed"]),
                ]
                for _ in range(25)
            ]
            for _ in range(3)
        ]
        results = race(python, subprocess_env, store_url, task_lists, identity="ann@example.com")

        assert [r for r in results if r[3] not in ("changed", "same")] == []
        with store.read() as session:
            assert ann.id is not None
            history = list(reversed(ledger.profile_events(session, profile_id=ann.id, limit=1000)))
            view = profiles.profile_view(session, "ann@example.com")

        changed = [r for r in results if r[3] == "changed"]
        assert len(history) == len(changed) > 0
        # Each event starts where the one before it for the same thing ended.
        current: dict[int | None, str | None] = {newsletter.id: None, None: "subscribed"}
        for event in history:
            old, new = event.properties["Old State"], event.properties["New State"]
            assert old == current[event.group_id], (
                f"event {event.id} starts from a state that was not current"
            )
            assert old != new
            current[event.group_id] = new
        # And the last one is what is stored now.
        (group_view,) = view.groups
        assert group_view.stored == current[newsletter.id]
        assert view.all_email == current[None]
    finally:
        store.dispose()
