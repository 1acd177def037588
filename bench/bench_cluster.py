"""A rehearsal of several hosts on one PostgreSQL, all on this machine (issue 13 ask 6).

    python bench/bench_cluster.py [--url POSTGRES_URL] [--profiles 40000] [--rounds 2]
                                  [--seconds 8] [--events 150]

The store is a fresh schema of its own (``bench_cluster_<pid>``) in the
database of ``--url`` (default: ``$SUBGROUPS_TEST_PG_URL``, else the local
PostgreSQL 15's ``subgroups_test``), dropped at the end. Every process gets
the same link keys file (``SUBGROUPS_SECRET_FILE``) and data directory, as
every host of a deployment must (README, "Running on several hosts").

1. **Landing scales out.** ``subgroups landing --db URL --workers N`` as a
   process of its own, N = 1 and 2 interleaved over ``--rounds`` rounds (1, 2,
   1, 2), each under the same load: 16 keep-alive connections from 2 client
   processes posting one-click unsubscribes for ``--seconds`` (the load and
   the per-run printout are ``bench_landing.speed_run``'s). Printed per run:
   acknowledged one-clicks/s and p99; then the medians and 2 workers / 1
   worker (goal >= 1.6x).
2. **Event to console across processes.** A follower process waiting on
   ``LedgerWakeups`` (LISTEN/NOTIFY) and a writer process committing
   one-click unsubscribes one at a time, 20-80 ms apart, noting the wall
   clock just before each commit; the follower notes when it read each
   event. Interleaved with the baseline, the follower the console had before
   wake-ups (reading ``id > last`` every 300 ms). Printed: p50 / p95 / max
   (goal p95 <= 150 ms) and the follower's wakes by notification / fallback.
3. **A send.** ``SENDERS`` ``subgroups campaigns send NAME --outbox DIR``
   processes sharing one campaign's send. Printed: messages
   in the Maildir, seconds, messages/s.

The load average (1 min) is printed with each number. Exit code 0.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, make_url, text  # noqa: E402

from app.core import body_template, campaigns  # noqa: E402
from app.core.store import open_store  # noqa: E402
from bench.bench_landing import Fixture, percentile, prepare, speed_run  # noqa: E402

DEFAULT_URL = "postgresql+psycopg://subgroups:subgroups@127.0.0.1:5432/subgroups_test"
WORKERS_GOAL = 1.6  # 2 workers' acknowledged/s over one worker's
LATENCY_GOAL_MS = 150.0  # event to console, p95
OLD_POLL_SECONDS = 0.3  # the console's follower before LedgerWakeups
# How many ``campaigns send`` processes share the send (each claims batches
# with FOR UPDATE SKIP LOCKED; bench_senders.py compares one with three).
SENDERS = 3

FOLLOWER = """
import json, sys, threading, time
from app.core import ledger
from app.core.ledger_wakeups import LedgerWakeups
from app.core.store import open_store
store = open_store(sys.argv[1])
mode, want, limit, poll = sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
wakeups = LedgerWakeups(store.engine) if mode == "notify" else None
with store.read() as session:
    follower = ledger.LedgerFollower(after_id=ledger.latest_id(session))
print("ready", flush=True)
seen, stop, deadline = {}, threading.Event(), time.monotonic() + limit
while len(seen) < want and time.monotonic() < deadline:
    if wakeups is None:
        time.sleep(poll)
    elif not wakeups.wait(stop):
        break
    with store.read() as session:
        fresh = follower.poll(session)
    now = time.time()
    for found in fresh:
        seen[found.id] = now
told = wakeups.told_wakes if wakeups else 0
fallback = wakeups.fallback_wakes if wakeups else 0
print(json.dumps({"seen": seen, "told": told, "fallback": fallback}), flush=True)
store.dispose()
"""

WRITER = """
import json, random, sys, time
from app.core import ledger, one_click
from app.core.store import open_store
store = open_store(sys.argv[1])
campaign = int(sys.argv[2])
random.seed(int(sys.argv[4]))
committed = {}
for profile_id in [int(i) for i in sys.argv[3].split(",")]:
    time.sleep(random.uniform(0.02, 0.08))
    with store.write() as session:
        one_click.one_click_many(session=session, requests=[(profile_id, campaign)])
        event_id = ledger.latest_id(session)
        committed[event_id] = time.time()  # just before the commit (at the end of the block)
print(json.dumps(committed), flush=True)
store.dispose()
"""


def load() -> str:
    return f"load average {os.getloadavg()[0]:.2f}"


def cpu_times() -> tuple[int, int]:
    """(idle, total) jiffies of the whole machine so far (Linux ``/proc/stat``)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait


def schema_url(url: str, schema: str) -> str:
    """``url`` with its search_path set to ``schema``: the bench's own store."""
    with_path = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return with_path.render_as_string(hide_password=False)


def run_sql(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


# --- 1. landing ----------------------------------------------------------------------


def landing(fx: Fixture, env: dict[str, str], args: argparse.Namespace, workdir: Path) -> None:
    print(f"\n== 1. Landing: 1 worker vs 2 workers on PostgreSQL ({load()}) ==", flush=True)
    load_args = argparse.Namespace(take=args.take, connections=16, seconds=args.seconds, clients=2)
    by_workers: dict[int, list[tuple[float, float, str]]] = {1: [], 2: []}
    for _ in range(args.rounds):
        for workers in (1, 2):
            idle_before, total_before = cpu_times()
            speed = speed_run(
                fx, env, load_args, workdir / "access.log",
                workers=workers, label="cluster", root=ROOT, generator="raw",
            )  # fmt: skip
            idle_after, total_after = cpu_times()
            idle, total = idle_after - idle_before, total_after - total_before
            # Whether the machine had a core to spare: if not, more workers cannot help.
            print(f"   the machine's CPU idle during the run: {100 * idle / max(total, 1):.0f} %")
            by_workers[workers].append((speed.rate, speed.p99, f"{speed.load:.2f}"))
    print("\n   workers   acknowledged/s (median)   p99 ms (median)   load averages")
    medians = {}
    for workers, runs in by_workers.items():
        rate = statistics.median(r for r, _, _ in runs)
        p99 = statistics.median(p for _, p, _ in runs) * 1000
        medians[workers] = rate
        loads = ", ".join(x for _, _, x in runs)
        print(f"   {workers:>7}   {rate:>23,.0f}   {p99:>15.1f}   {loads}")
    ratio = medians[2] / medians[1] if medians[1] else float("nan")
    verdict = "met" if ratio >= WORKERS_GOAL else "not met"
    print(f"   2 workers / 1 worker: {ratio:.2f}x (goal >= {WORKERS_GOAL}x: {verdict}; {load()})")


# --- 2. event to console ---------------------------------------------------------------


def follow_once(
    url: str, fx: Fixture, env: dict[str, str], mode: str, ids: list[int], seed: int
) -> tuple[list[float], int, int]:
    """Delays in ms (read minus commit) for one writer run; the follower's told/fallback wakes."""
    follower = subprocess.Popen(
        [sys.executable, "-c", FOLLOWER, url, mode, str(len(ids)), "120", str(OLD_POLL_SECONDS)],
        stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert follower.stdout is not None
    assert follower.stdout.readline().strip() == "ready"
    writer = subprocess.run(
        [sys.executable, "-c", WRITER, url, str(fx.campaign_id)]
        + [",".join(map(str, ids)), str(seed)],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True,
    )  # fmt: skip
    committed = {int(k): v for k, v in json.loads(writer.stdout).items()}
    result = json.loads(follower.stdout.readline())
    follower.wait()
    seen = {int(k): v for k, v in result["seen"].items()}
    delays = [(seen[i] - t) * 1000 for i, t in committed.items() if i in seen]
    missing = len(committed) - len(delays)
    if missing:
        print(f"   ({missing} events never reached the follower)")
    return delays, result["told"], result["fallback"]


def event_to_console(url: str, fx: Fixture, env: dict[str, str], args: argparse.Namespace) -> None:
    print(f"\n== 2. Event to console across processes ({load()}) ==", flush=True)
    delays: dict[str, list[float]] = {"notify": [], "poll": []}
    wakes = [0, 0]
    half = max(args.events // 2, 1)
    for round_ in range(2):
        for mode in ("notify", "poll"):
            ids = fx.candidates[:half]
            del fx.candidates[:half]
            got, told, fallback = follow_once(url, fx, env, mode, ids, seed=round_)
            delays[mode] += got
            wakes[0] += told
            wakes[1] += fallback
            print(
                f"   {mode:>6} round {round_ + 1}: {len(got)} events, "
                f"p95 {percentile(got, 95):.1f} ms ({load()})",
                flush=True,
            )
    names = {
        "notify": "LedgerWakeups (LISTEN/NOTIFY)",
        "poll": f"baseline: id > last every {OLD_POLL_SECONDS * 1000:.0f} ms",
    }
    for mode, found in delays.items():
        print(
            f"   {names[mode]:<38} p50 {percentile(found, 50):6.1f} ms   "
            f"p95 {percentile(found, 95):6.1f} ms   max {max(found, default=0):6.1f} ms"
        )
    p95 = percentile(delays["notify"], 95)
    verdict = "met" if p95 <= LATENCY_GOAL_MS else "not met"
    print(
        f"   follower wakes: {wakes[0]} by notification, {wakes[1]} by the fallback; "
        f"goal p95 <= {LATENCY_GOAL_MS:.0f} ms: {verdict} ({load()})"
    )


# --- 3. a send -------------------------------------------------------------------------


def send(url: str, env: dict[str, str], workdir: Path) -> None:
    print(f"\n== 3. A send: {SENDERS} `campaigns send` process(es) ({load()}) ==", flush=True)
    store = open_store(url)
    name = f"Bench cluster send {time.time_ns()}"
    try:
        with store.write() as session:
            campaigns.create_campaign(
                session=session, name=name, actor="bench", source="cli",
                subject="Our news", from_address="Example News <news@example.com>",
                body=body_template.DEFAULT_BODY.replace(
                    body_template.PLACEHOLDER, "Our news: a new guide to getting started."
                ),
            )  # fmt: skip
    finally:
        store.dispose()
    outbox = workdir / "outbox"
    started = time.perf_counter()
    senders = [
        subprocess.Popen(
            [sys.executable, "-m", "app", "campaigns", "send", name, "--db", url]
            + ["--outbox", str(outbox)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )  # fmt: skip
        for _ in range(SENDERS)
    ]
    codes = []
    for proc in senders:
        out, err = proc.communicate()
        codes.append(proc.returncode)
        if proc.returncode != 0:
            print(f"   a sender exited {proc.returncode}: {(err or out).strip()[:200]}")
    took = time.perf_counter() - started
    messages = sum(1 for _ in (outbox / "new").iterdir()) if (outbox / "new").exists() else 0
    print(
        f"   {messages:,} messages into the Maildir in {took:.1f} s: "
        f"{messages / took:,.0f} messages/s; exit codes {codes} ({load()})"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("SUBGROUPS_TEST_PG_URL", DEFAULT_URL))
    parser.add_argument("--profiles", type=int, default=40_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--take", type=int, default=8_000, help="links prepared per landing run")
    parser.add_argument("--events", type=int, default=150, help="events per follower mode")
    args = parser.parse_args(argv)
    schema = f"bench_cluster_{os.getpid()}"
    url = schema_url(args.url, schema)
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    env = dict(os.environ)
    env["SUBGROUPS_SECRET_FILE"] = str(workdir / "link-keys.json")  # one secret for every host
    env["XDG_DATA_HOME"] = str(workdir / "data")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("SUBGROUPS_DB", None)
    os.environ.update({k: env[k] for k in ("SUBGROUPS_SECRET_FILE", "XDG_DATA_HOME")})
    print(f"bench_cluster: schema {schema} at {make_url(args.url).render_as_string()}; {load()}")
    run_sql(args.url, f'CREATE SCHEMA "{schema}"')
    try:
        fx = prepare(url, args.profiles)
        # The latency and the send take their people first: the landing runs use the rest.
        reserved = fx.candidates[: 2 * args.events]
        del fx.candidates[: 2 * args.events]
        landing(fx, env, args, workdir)
        fx.candidates[:0] = reserved
        event_to_console(url, fx, env, args)
        send(url, env, workdir)
    finally:
        run_sql(args.url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    print(f"\nDone ({load()}).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
