"""Measure senders sharing a send: one ``campaigns send`` process against three, on
PostgreSQL, into a Maildir; goal: three senders at least 1.6x one sender's messages/s.

    python bench/bench_senders.py [--db URL] [--profiles 30000] [--runs 2] [--senders 3]
                                  [--batch-size 500]

The store is a PostgreSQL URL (``--db``, else ``$SUBGROUPS_TEST_PG_URL``); the bench
makes a schema of its own there (``bench_senders_<pid>``) and drops it at the end. It
holds ``--profiles`` profiles, every tenth unsubscribed from all email. Each run sends
two fresh campaigns to all of them, one by one sender process and one by ``--senders``
processes started at once (``python -m app campaigns send NAME --outbox DIR``, what an
admin runs on each host), in alternating order from run to run so both see the same
load. For each: the wall time from starting the processes to the last one's exit
(process start-up included, as a user sees it), the messages in the Maildir (checked:
each eligible address exactly once), messages/s, the CPU seconds the sender processes
used (sending is CPU-bound: three senders go faster only with cores to run on); then
the ratio and the load average.

Exit code 0 when every run meets the goal, 1 otherwise.
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, make_url, text  # noqa: E402

from app.core import bulk, campaigns, groups, subscriptions  # noqa: E402
from app.core.models import SUBSCRIBED, UNSUBSCRIBED, Profile  # noqa: E402
from app.core.store import Store, open_store  # noqa: E402

GOAL = 1.6  # three senders' messages/s over one sender's
ACTOR = "bench"
BODY = "Hello {{ name }},\n\nOur November news.\n\nLeave: {{ unsubscribe_url }}\n"


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min), {os.cpu_count()} CPUs"


def with_schema(url: str, schema: str) -> str:
    query = {"options": f"-csearch_path={schema}"}
    return make_url(url).update_query_dict(query).render_as_string(hide_password=False)


def seed(store: Store, people: int) -> int:
    """``people`` profiles, every tenth out of all email; the number eligible."""
    now = datetime.now(UTC)
    rows = [
        bulk.NewProfileRow(f"p{n}", f"p{n}@example.com", f"P {n}", {}, SUBSCRIBED, now)
        for n in range(people)
    ]
    with store.write() as session:
        ids = bulk.insert_profiles(session=session, profiles=rows)
        groups.create_group(session=session, name="Newsletter", actor=ACTOR)
    for start in range(0, people, 5000):
        with store.write() as session:
            for n in range(start - start % 10, min(start + 5000, people), 10):
                profile = session.get(Profile, ids[f"p{n}"])
                assert profile is not None
                subscriptions.set_state(
                    session=session, profile=profile, group=None, status=UNSUBSCRIBED,
                    source="cli", actor=ACTOR,
                )  # fmt: skip
    return sum(1 for n in range(people) if n % 10)


def send(
    url: str, store: Store, *, name: str, senders: int, batch: int, workdir: Path, eligible: int
) -> float:
    """Send a fresh campaign ``name`` with ``senders`` processes; messages/s, checked."""
    with store.write() as session:
        campaigns.create_campaign(
            session=session, name=name, actor=ACTOR, source="cli", subject="News",
            from_address="Shop <shop@example.com>", body=BODY,
        )  # fmt: skip
    outbox = workdir / name.replace(" ", "-")
    command = [sys.executable, "-m", "app", "campaigns", "send", name, "--db", url]
    command += ["--outbox", str(outbox), "--batch-size", str(batch)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(senders)
    ]
    outputs = [p.communicate()[0] for p in processes]
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    codes = [p.returncode for p in processes]
    assert codes == [0] * senders, (codes, outputs)
    files = sorted((outbox / "new").iterdir())
    to = Counter(
        message_from_bytes(f.read_bytes(), policy=email_policy.default)["To"] for f in files
    )
    assert max(to.values()) == 1, "an address got two messages"
    assert len(to) == eligible, (len(to), eligible)
    shares = [int(out.split()[1].replace(",", "")) for out in outputs]
    rate = len(files) / seconds
    print(
        f"  {senders} sender{'s' if senders > 1 else ''}: {len(files):,} messages in "
        f"{seconds:.2f} s = {rate:,.0f} messages/s (per sender: {shares}; the senders' CPU "
        f"{cpu:.1f} s); {load()}",
        flush=True,
    )
    return rate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("SUBGROUPS_TEST_PG_URL"))
    parser.add_argument("--profiles", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--senders", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args(argv)
    if not args.db or not args.db.startswith("postgresql"):
        print("bench_senders: give a PostgreSQL URL (--db or $SUBGROUPS_TEST_PG_URL)")
        return 2
    schema = f"bench_senders_{os.getpid()}"
    admin = create_engine(args.db)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = with_schema(args.db, schema)
    store = open_store(url)
    ok = True
    try:
        print(f"Seeding {args.profiles:,} profiles on PostgreSQL ({schema}) … {load()}")
        eligible = seed(store, args.profiles)
        print(f"{eligible:,} eligible per campaign; batches of {args.batch_size}")
        with tempfile.TemporaryDirectory(prefix="bench-senders-") as folder:
            for run in range(1, args.runs + 1):
                print(f"Run {run}:")
                order = [1, args.senders] if run % 2 else [args.senders, 1]
                rates = {}
                for senders in order:
                    rates[senders] = send(
                        url, store, name=f"Bench {run} x{senders}", senders=senders,
                        batch=args.batch_size, workdir=Path(folder), eligible=eligible,
                    )  # fmt: skip
                ratio = rates[args.senders] / rates[1]
                met = ratio >= GOAL
                ok = ok and met
                print(
                    f"  ratio {args.senders} senders / 1 sender: {ratio:.2f}x "
                    f"(goal >= {GOAL}x: {'met' if met else 'NOT met'}); {load()}",
                    flush=True,
                )
    finally:
        store.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
