"""Measure ``subgroups inbound``: messages processed per second over real SMTP.

    python bench/bench_inbound.py [--profiles 20000] [--db PATH] [--messages 3000]
                                  [--connections 8] [--clients 2] [--rounds 2]
                                  [--mixes mailto,mixed,bounce,complaint]
                                  [--keep]

Goal (issue 12): at least 500 messages a second processed (each one answered
250 after its change is committed).

``subgroups inbound --port 0`` runs as a subprocess on a store of
``--profiles`` synthetic profiles over 50 groups. ``--clients`` client
processes (multiprocessing, spawn) hold ``--connections`` SMTP connections
between them (a thread each, smtplib), each sending its share of
``--messages`` messages, one after another, each to a distinct profile not
touched before (every message is a real change: one state row and one ledger
event, or one bounce). Mixes:
``mailto`` (every message to ``unsubscribe+T@D``) and ``mixed`` (70%
mailto, 20% bounces to ``bounces+T@D`` with RFC 3464's simple DSN, 10%
complaints to ``fbl@D`` with RFC 5965's example report quoting our
List-Unsubscribe). The mixes run interleaved over ``--rounds`` rounds, so
they are compared under the same load of the machine.

Printed per run: messages answered 250 per second (wall time from the first
connection to the last answer), the listener's CPU milliseconds per message
and the clients', and the load average before and after; then the median
rate per mix. Afterwards the store is checked: every message answered 250
has its event in the ledger. Exit code 0 when every mix's median reaches the
goal, 1 otherwise.

Without --db the store is made in a temporary directory (removed afterwards
unless --keep); with --db PATH it is seeded if empty and reused (each run
takes profiles the earlier ones did not touch).
"""

import argparse
import multiprocessing as mp
import os
import random
import shutil
import signal
import smtplib
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from sqlalchemy import func  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from app.core import campaigns  # noqa: E402
from app.core.models import Event, Group, Profile  # noqa: E402
from app.core.store import open_store  # noqa: E402
from app.core.tokens import load_keyring, store_binding  # noqa: E402

GOAL = 500.0
DOMAIN = "in.bench.example"
CAMPAIGN = "Inbound bench"
MIXES = {
    "mailto": (1.0, 0.0, 0.0),
    "mixed": (0.7, 0.2, 0.1),
    "bounce": (0.0, 1.0, 0.0),
    "complaint": (0.0, 0.0, 1.0),
}


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f}/{five:.2f}"


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its live children (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pending = [pid]
    while pending:
        current = pending.pop()
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (OSError, IndexError, ValueError):
            continue
        pending += [int(child) for child in children]
    return total


def prepare(db: str, profiles: int) -> tuple[int, list[int], Any]:
    """Seed if empty; the campaign (leaving group 1); the profile ids, shuffled; the binding."""
    from app.core.seed import store_is_empty
    from app.core.synthetic import seed_synthetic

    store = open_store(db)
    try:
        with store.read() as session:
            empty = store_is_empty(session)
        if empty:
            print(f"Seeding {profiles:,} profiles over 50 groups into {db} ...", flush=True)
            seed_synthetic(store=store, profiles=profiles, groups=50, actor="bench")
        with store.write() as session:
            group = session.exec(select(Group).order_by(col(Group.id))).first()
            assert group is not None and group.id is not None
            try:
                campaign = campaigns.get_campaign(session, CAMPAIGN)
            except campaigns.UnknownCampaign:
                campaign = campaigns.create_campaign(
                    session=session, name=CAMPAIGN, actor="bench", do_not_send_to=[group.id]
                )
            touched = set(
                session.exec(
                    select(Event.profile_id).where(col(Event.campaign_id) == campaign.id)
                ).all()
            )
            ids = [i for i in session.exec(select(Profile.id)) if i and i not in touched]
            binding = store_binding(session)
        assert campaign.id is not None
        random.Random(12).shuffle(ids)
        return campaign.id, ids, binding
    finally:
        store.dispose()


def messages_for(
    ids: list[int], mix: str, campaign_id: int, binding: Any
) -> list[tuple[str, bytes]]:
    """(recipient, content) for each profile id, as the mix says."""
    from inbound_mail import SOFT_DSN, arf

    ring = load_keyring()
    mailto, bounce, _complaint = MIXES[mix]
    rng = random.Random(len(ids))
    out: list[tuple[str, bytes]] = []
    for pid in ids:
        token = ring.sign(pid, campaign_id, store=binding)
        draw = rng.random()
        if draw < mailto:
            out.append((f"unsubscribe+{token}@{DOMAIN}", b"Subject: unsubscribe\r\n\r\n"))
        elif draw < mailto + bounce:
            out.append((f"bounces+{token}@{DOMAIN}", SOFT_DSN))
        else:
            out.append((f"fbl@{DOMAIN}", arf(token).replace(b"in.example.org", DOMAIN.encode())))
    return out


def _connection(port: int, batch: list[tuple[str, bytes]], done: list[int]) -> None:
    """One SMTP connection sending its messages one after another."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as smtp:
        for rcpt, content in batch:
            try:
                smtp.sendmail("mailer-daemon@example.net", [rcpt], content)
                done.append(1)
            except smtplib.SMTPException:
                pass


def client(port: int, shares: list[list[tuple[str, bytes]]], start: Any, out: Any) -> None:
    """One client process: a thread per connection; reports its 250s, CPU and end time."""
    start.wait()
    done: list[int] = []
    cpu = time.process_time()
    threads = [threading.Thread(target=_connection, args=(port, s, done)) for s in shares]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((len(done), time.process_time() - cpu, time.perf_counter()))


def start_server(db: str, env: dict[str, str]) -> tuple["subprocess.Popen[str]", int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "inbound", "--db", db, "--port", "0", "--domain", DOMAIN],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if " on 127.0.0.1:" not in first:
        raise SystemExit(f"the listener did not start: {first}{proc.stderr.read()}")  # type: ignore[union-attr]
    return proc, int(first.split(" on 127.0.0.1:")[1].split()[0])


def run(
    db: str,
    env: dict[str, str],
    mix: str,
    ids: list[int],
    fx: tuple[int, Any],
    connections: int,
    clients: int,
) -> tuple[float, int, float, float, str]:
    campaign_id, binding = fx
    messages = messages_for(ids, mix, campaign_id, binding)
    proc, port = start_server(db, env)
    try:
        ctx = mp.get_context("spawn")
        start, out = ctx.Event(), ctx.Queue()
        shares = [messages[i::connections] for i in range(connections)]
        procs = [
            ctx.Process(target=client, args=(port, shares[i::clients], start, out))
            for i in range(min(clients, connections))
        ]
        for p in procs:
            p.start()
        time.sleep(1.0)  # every client imported and waiting
        before_load = load()
        server_cpu = tree_cpu(proc.pid)
        began = time.perf_counter()
        start.set()
        results = [out.get(timeout=600) for _ in procs]
        ended = max(r[2] for r in results)
        server_cpu = tree_cpu(proc.pid) - server_cpu
        for p in procs:
            p.join()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    acknowledged = sum(r[0] for r in results)
    rate = acknowledged / (ended - began)
    client_cpu = sum(r[1] for r in results)
    loads = f"{before_load} -> {load()}"
    return (
        rate,
        acknowledged,
        1000 * server_cpu / acknowledged,
        1000 * client_cpu / acknowledged,
        loads,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="an SQLite store to seed once and reuse")
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--messages", type=int, default=3_000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--clients", type=int, default=2, help="client processes (threads share)")
    parser.add_argument("--mixes", default="mailto,mixed")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    mixes = [m.strip() for m in args.mixes.split(",") if m.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="bench-inbound-"))
    db = args.db or str(workdir / "inbound.db")
    os.environ["SUBGROUPS_SECRET_FILE"] = str(workdir / "link-keys.json")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        campaign_id, ids, binding = prepare(db, args.profiles)
        needed = args.messages * len(mixes) * args.rounds
        if len(ids) < needed:
            raise SystemExit(f"the store has {len(ids):,} untouched profiles; {needed:,} needed")
        print(
            f"{args.messages:,} messages a run over {args.connections} connections; "
            f"mixes {', '.join(mixes)}; {args.rounds} rounds; load {load()}",
            flush=True,
        )
        rates: dict[str, list[float]] = {m: [] for m in mixes}
        taken = 0
        for round_no in range(1, args.rounds + 1):
            for mix in mixes:
                batch = ids[taken : taken + args.messages]
                taken += args.messages
                rate, acked, server_ms, client_ms, loads = run(
                    db, env, mix, batch, (campaign_id, binding), args.connections, args.clients
                )
                rates[mix].append(rate)
                print(
                    f"round {round_no} {mix:7s} {rate:7.0f} msg/s  ({acked:,} answered 250; "
                    f"listener {server_ms:.2f} ms CPU/msg, clients {client_ms:.2f}; "
                    f"load {loads})",
                    flush=True,
                )
        store = open_store(db, create=False)
        try:
            with store.read() as session:
                events = session.exec(
                    select(func.count())
                    .select_from(Event)
                    .where(col(Event.campaign_id) == campaign_id)
                ).one()
        finally:
            store.dispose()
        print(f"Ledger: {events:,} events of the bench's campaign (one per message or more).")
        passed = True
        for mix, values in rates.items():
            median = statistics.median(values)
            ok = median >= GOAL
            passed &= ok
            print(
                f"{mix:7s} median {median:7.0f} msg/s  goal {GOAL:.0f}: {'PASS' if ok else 'FAIL'}"
            )
        return 0 if passed else 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
