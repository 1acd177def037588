"""Measure the landing server's one-click unsubscribes: speed, then durability under kill -9.

    python bench/bench_landing.py [--profiles 20000] [--db PATH] [--seconds 10]
                                  [--connections 16] [--clients 2] [--workers 1,2,4]
                                  [--rounds 2] [--kill-after 3] [--generators raw,http]
                                  [--compare CHECKOUT] [--order id|random] [--take N]
                                  [--keep]

Goals (issue 10): at least 2,000 acknowledged one-click unsubscribes per
second at 1M profiles on SQLite with p99 at most 50 ms (several worker
processes, ``subgroups landing --workers N``); and after a kill -9 of the
server's parent during that load, every acknowledged unsubscribe is in the
store and in the ledger (acknowledged means committed).

1. Speed. ``subgroups landing --port 0 --workers N`` runs as a subprocess on
   a store of ``--profiles`` synthetic profiles over 50 groups, for each N of
   ``--workers``, interleaved over ``--rounds`` rounds (1, 2, 4, 1, 2, 4), so
   the counts are compared under the same load of the machine; with
   ``--compare CHECKOUT`` that checkout's server (e.g. of main) runs too, in
   the same rounds, labelled "before". A load generator of ``--clients``
   processes (multiprocessing, spawn; ``landing_load.py``) keeps
   ``--connections`` keep-alive HTTP/1.1 connections busy for ``--seconds``
   (``raw``: one selectors loop with prebuilt requests; ``http``: an
   ``http.client`` thread each; ``--generators raw,http`` runs both,
   interleaved), each request ``POST /u/<token>`` with
   body ``List-Unsubscribe=One-Click`` for a distinct profile whose state in
   the campaign's one "do not send to" group is not yet unsubscribed (so
   every request is a real change: one state row, one ledger event).
   Printed per run: acknowledged (200) per second, and p50 / p90 / p99 / max
   of the request latency as the client sees it (send to full response
   read), the CPU seconds per acknowledged request of the server (its
   process and workers, during the load) and of the load generator, with the
   load average; then the medians per server, generator and worker count.
   People click in profile id order, or with ``--order random`` at random
   over the store (real traffic: each batch reads pages no other touched).

2. Durability. A fresh server with the largest worker count, the same load
   on fresh profiles; after ``--kill-after`` seconds the bench sends SIGKILL
   to the server's parent process (its workers die with it). The
   generator records every 200 it read before the connection died. Then the
   server is started again on the same store (SQLite replays its WAL on
   open) and, for every acknowledged profile, the bench checks the stored
   state (unsubscribed) and the ledger (its ``Channel Unsubscribed`` event
   with Source ``one_click`` and the campaign's id). Printed: acknowledged,
   found in the store, found in the ledger, missing.

Without --db the store is made in a temporary directory (removed afterwards
unless --keep); with --db PATH, PATH is seeded if empty and reused otherwise
(each run uses profiles the earlier runs did not unsubscribe). The link
keyring is a file of the bench's own (``SUBGROUPS_SECRET_FILE``). Exit code
0 when both goals pass, 1 otherwise.
"""

import argparse
import http.client
import multiprocessing as mp
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func  # noqa: E402
from sqlmodel import col  # noqa: E402
from sqlmodel import select as sql_select  # noqa: E402

from app.core import campaigns  # noqa: E402
from app.core.ledger import CHANNEL_UNSUBSCRIBED  # noqa: E402
from app.core.models import UNSUBSCRIBED, Event, Group, GroupState, Profile  # noqa: E402
from app.core.store import open_store  # noqa: E402
from app.core.tokens import store_binding  # noqa: E402
from bench.landing_load import GENERATORS  # noqa: E402

RATE_GOAL = 2000.0  # acknowledged per second (issue 10)
P99_GOAL = 0.050  # seconds
CAMPAIGN = "Bench one-click"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


# --- the store ----------------------------------------------------------------------


@dataclass
class Fixture:
    db: str
    campaign_id: int
    group_id: int
    candidates: list[int]  # profile ids not yet unsubscribed from the group
    binding: Any  # the store's StoreBinding: links are signed for it


def prepare(db: str, profiles: int) -> Fixture:
    """Seed the store if empty; make the campaign; list the profiles still to unsubscribe."""
    from app.core.seed import store_is_empty
    from app.core.synthetic import seed_synthetic

    store = open_store(db)
    try:
        with store.read() as session:
            empty = store_is_empty(session)
        if empty:
            print(f"Seeding {profiles:,} profiles over 50 groups into {db} …", flush=True)
            started = time.perf_counter()
            seed_synthetic(store=store, profiles=profiles, groups=50, actor="bench")
            print(f"  seeded in {time.perf_counter() - started:.1f} s", flush=True)
        with store.write() as session:
            group = session.exec(sql_select(Group).order_by(col(Group.id))).first()
            assert group is not None and group.id is not None
            try:
                campaign = campaigns.get_campaign(session, CAMPAIGN)
            except campaigns.UnknownCampaign:
                campaign = campaigns.create_campaign(
                    session=session, name=CAMPAIGN, actor="bench", do_not_send_to=[group.id]
                )
            assert campaign.id is not None
            done = set(
                session.exec(
                    sql_select(GroupState.profile_id).where(
                        col(GroupState.group_id) == group.id,
                        col(GroupState.state) == UNSUBSCRIBED,
                    )
                ).all()
            )
            ids = [i for i in session.exec(sql_select(Profile.id).order_by(col(Profile.id))) if i]
            n = int(session.exec(sql_select(func.count()).select_from(Profile)).one())
            binding = store_binding(session)
        print(f"Store {db}: {n:,} profiles; campaign {CAMPAIGN!r} leaves group {group.name!r}.")
        return Fixture(db, campaign.id, group.id, [i for i in ids if i not in done], binding)
    finally:
        store.dispose()


# --- the server ---------------------------------------------------------------------


def start_server(
    db: str, env: dict[str, str], log: Path, workers: int = 1, root: Path = ROOT
) -> tuple[subprocess.Popen[str], str]:
    """``subgroups landing --port 0 --workers N`` on ``db`` from the checkout ``root``.

    Returns the process and its URL. ``root`` is this checkout, or another one
    (``--compare``) whose ``app`` package is imported instead.
    """
    if root != ROOT:
        env = {**env, "PYTHONPATH": str(root)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app",
            "landing",
            "--db",
            db,
            "--port",
            "0",
            "--access-log",
            str(log),
            "--workers",
            str(workers),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if " on http://" not in line:
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    url = line.rsplit(" on ", 1)[1].strip()
    # Drain the rest of its stdout so it never blocks on a full pipe.
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, url


def health_status(url: str) -> int:
    """The status of ``GET /healthz``."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(str(parts.hostname), parts.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    finally:
        conn.close()


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- the load (``landing_load``, in processes of its own) ----------------------------


def run_load(
    url: str,
    paths: list[tuple[int, str]],
    connections: int,
    seconds: float,
    clients: int = 1,
    generator: str = "raw",
) -> tuple[list[Any], Any]:
    """The load from ``clients`` processes (spawned), ``connections`` in all, paths dealt out."""
    generate_load = GENERATORS[generator]
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = []
    for k in range(clients):
        mine = connections // clients + (1 if k < connections % clients else 0)
        proc = ctx.Process(
            target=generate_load, args=(url, paths[k::clients], max(mine, 1), seconds, out)
        )
        proc.start()
        procs.append(proc)
    return procs, out


def collect(procs: list[Any], out: Any) -> tuple[float, list[tuple[int, int, float]], float]:
    """The longest client's time, every client's results, and the clients' CPU seconds."""
    elapsed, results, cpu = 0.0, [], 0.0
    for _ in procs:
        took, mine, used = out.get()
        elapsed, results, cpu = max(elapsed, took), results + mine, cpu + used
    for proc in procs:
        proc.join()
    return elapsed, results, cpu


def make_paths(env: dict[str, str], ids: list[int], fx: Fixture) -> list[tuple[int, str]]:
    from app.core.tokens import load_keyring

    ring = load_keyring(Path(env["SUBGROUPS_SECRET_FILE"]))
    return [(i, f"/u/{ring.sign(i, fx.campaign_id, store=fx.binding)}") for i in ids]


# --- the two runs -------------------------------------------------------------------


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


@dataclass
class Speed:
    label: str  # which server: "after" (this checkout) or "before" (--compare)
    generator: str
    workers: int
    rate: float
    p99: float
    others: int
    load: float
    server_cpu_ms: float  # the server's CPU per acknowledged request, during the load
    client_cpu_ms: float  # the load generators' CPU per acknowledged request


def speed_run(
    fx: Fixture,
    env: dict[str, str],
    args: argparse.Namespace,
    log: Path,
    *,
    workers: int,
    label: str,
    root: Path,
    generator: str,
) -> Speed:
    take = min(len(fx.candidates), args.take)
    paths = make_paths(env, fx.candidates[:take], fx)
    del fx.candidates[:take]
    server, url = start_server(fx.db, env, log, workers, root)
    try:
        # Warm up: every worker answers once, so start-up is not measured.
        for _ in range(4 * workers):
            assert health_status(url) == 200
        cpu_before = tree_cpu(server.pid)
        procs, out = run_load(url, paths, args.connections, args.seconds, args.clients, generator)
        elapsed, results, client_cpu = collect(procs, out)
        server_cpu = tree_cpu(server.pid) - cpu_before
    finally:
        stop_server(server)
    ok = [lat for _, status, lat in results if status == 200]
    other = len(results) - len(ok)
    rate = len(ok) / elapsed if elapsed else 0.0
    p99 = percentile(ok, 99)
    load = os.getloadavg()[0]
    per = 1000 / max(len(ok), 1)
    print(
        f"\n1. Speed, {label} ({root}), {workers} worker(s), {generator} generator: "
        f"{args.connections} keep-alive connections from {args.clients} client process(es) "
        f"for {elapsed:.1f} s; load average {load:.2f}"
    )
    print(f"   acknowledged (200): {len(ok):,}   other answers or failures: {other:,}")
    if len(results) >= take:
        print("   (every prepared link was used: raise --take, the run ended early)")
    print(f"   acknowledged per second: {rate:,.0f}   (goal ≥ {RATE_GOAL:.0f})")
    print(
        f"   CPU ms per acknowledged: server {server_cpu * per:.3f}   "
        f"load generator {client_cpu * per:.3f}"
    )
    if ok:
        print(
            f"   latency ms: p50 {percentile(ok, 50) * 1000:.1f}"
            f"   p90 {percentile(ok, 90) * 1000:.1f}   p99 {p99 * 1000:.1f}"
            f"   max {max(ok) * 1000:.1f}   mean {statistics.fmean(ok) * 1000:.1f}"
            f"   (goal p99 ≤ {P99_GOAL * 1000:.0f})"
        )
    return Speed(
        label, generator, workers, rate, p99, other, load, server_cpu * per, client_cpu * per
    )


def summarise(speeds: list[Speed]) -> bool:
    """Per server, generator and worker count: medians over the rounds; whether "after" passes."""
    print("\nSummary (median over rounds, interleaved):")
    print(
        "   server   generator   workers   acknowledged/s   p99 ms   server CPU ms/ack   "
        "client CPU ms/ack   failures   load averages"
    )
    passed = False
    keys = dict.fromkeys((s.label, s.generator, s.workers) for s in speeds)
    for key in keys:
        label, generator, workers = key
        mine = [s for s in speeds if (s.label, s.generator, s.workers) == key]
        rate = statistics.median(s.rate for s in mine)
        p99 = statistics.median(s.p99 for s in mine)
        server_cpu = statistics.median(s.server_cpu_ms for s in mine)
        client_cpu = statistics.median(s.client_cpu_ms for s in mine)
        others = sum(s.others for s in mine)
        loads = " ".join(f"{s.load:.2f}" for s in mine)
        ok = rate >= RATE_GOAL and p99 <= P99_GOAL and others == 0
        if label == "after":
            passed = passed or ok
        print(
            f"   {label:>6}   {generator:>9}   {workers:>7}   {rate:>14,.0f}   {p99 * 1000:>6.1f}"
            f"   {server_cpu:>17.3f}   {client_cpu:>17.3f}   {others:>8}   {loads}"
            f"   {'PASS' if ok else 'FAIL'}"
        )
    return passed


def durability_run(fx: Fixture, env: dict[str, str], args: argparse.Namespace, log: Path) -> bool:
    take = min(len(fx.candidates), int((args.kill_after + 5) * 6000))
    ids = fx.candidates[:take]
    paths = make_paths(env, ids, fx)
    del fx.candidates[:take]
    workers = max(args.workers)
    server, url = start_server(fx.db, env, log, workers)
    for _ in range(4 * workers):
        assert health_status(url) == 200
    procs, out = run_load(
        url, paths, args.connections, args.kill_after + 30, args.clients, args.generators[0]
    )
    time.sleep(args.kill_after)
    server.send_signal(signal.SIGKILL)  # the parent: its workers die with it
    server.wait()
    killed_at = time.perf_counter()
    elapsed, results, _ = collect(procs, out)
    acked = [pid for pid, status, _ in results if status == 200]
    failed = sum(1 for _, status, _ in results if status != 200)
    print(
        f"\n2. Durability: kill -9 of the parent of {workers} worker(s) after "
        f"{args.kill_after:.1f} s of load ({url})"
    )
    print(
        f"   acknowledged before the kill: {len(acked):,}   unanswered (in flight at the "
        f"kill, or sent after it): {failed:,}"
    )
    # Start it again: the store must open (WAL replayed) and serve.
    restarted_at = time.perf_counter()
    server, url = start_server(fx.db, env, log)
    up = time.perf_counter() - restarted_at
    try:
        health = health_status(url)
    finally:
        stop_server(server)
    print(
        f"   restarted in {up:.2f} s ({time.perf_counter() - killed_at:.1f} s after the kill); "
        f"/healthz {health}"
    )
    store = open_store(fx.db)
    try:
        with store.read() as session:
            states = dict(
                session.exec(
                    sql_select(GroupState.profile_id, GroupState.state).where(
                        col(GroupState.group_id) == fx.group_id,
                        col(GroupState.profile_id).in_(ids),
                    )
                ).all()
            )
            logged = set(
                session.exec(
                    sql_select(Event.profile_id).where(
                        col(Event.name) == CHANNEL_UNSUBSCRIBED,
                        col(Event.source) == "one_click",
                        col(Event.campaign_id) == fx.campaign_id,
                        col(Event.group_id) == fx.group_id,
                        col(Event.profile_id).in_(ids),
                    )
                ).all()
            )
    finally:
        store.dispose()
    in_store = sum(1 for pid in acked if states.get(pid) == UNSUBSCRIBED)
    in_ledger = sum(1 for pid in acked if pid in logged)
    extra = sum(1 for pid in set(ids) - set(acked) if pid in logged)
    missing = len(acked) - min(in_store, in_ledger)
    print(f"   acknowledged and in the store: {in_store:,} / {len(acked):,}")
    print(f"   acknowledged and in the ledger: {in_ledger:,} / {len(acked):,}")
    print(f"   committed but not acknowledged (cut off by the kill): {extra:,}")
    passed = bool(acked) and missing == 0 and health == 200
    print(f"   missing: {missing:,}   {'PASS' if passed else 'FAIL'}")
    return passed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--db", help="an SQLite store to seed once and reuse")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the speed run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument(
        "--clients", type=int, default=2, help="load generator processes (connections split)"
    )
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 4],
        help="worker counts to compare, e.g. 1,2,4 (the durability run uses the largest)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds over the worker counts")
    parser.add_argument(
        "--kill-after", type=float, default=3.0, help="seconds of load before kill -9"
    )
    parser.add_argument(
        "--generators",
        type=lambda text: text.split(","),
        default=["raw"],
        help="load generators to compare: raw (selectors, prebuilt requests), http "
        "(http.client threads); e.g. raw,http (the durability run uses the first)",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout (e.g. of main) whose server runs too, interleaved, as 'before'",
    )
    parser.add_argument(
        "--take", type=int, help="links prepared per speed run (default: 5,000 a second)"
    )
    parser.add_argument(
        "--order",
        choices=["id", "random"],
        default="id",
        help="the order people click in: by profile id (neighbours share pages), or at random "
        "over the store, as real mail traffic comes",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    unknown = [g for g in args.generators if g not in GENERATORS]
    if unknown:
        parser.error(f"--generators: unknown {', '.join(unknown)}; use {', '.join(GENERATORS)}")
    if args.compare is not None and not (args.compare / "app" / "__main__.py").is_file():
        parser.error(f"--compare {args.compare}: no app/__main__.py there")
    servers = [("after", ROOT)] + ([("before", args.compare.resolve())] if args.compare else [])

    workdir = Path(tempfile.mkdtemp(prefix="subgroups-bench-landing-"))
    db = args.db or str(workdir / "landing.db")
    env = dict(os.environ)
    env["SUBGROUPS_SECRET_FILE"] = str(workdir / "link-keys.json")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.pop("SUBGROUPS_DB", None)
    os.environ["SUBGROUPS_SECRET_FILE"] = env["SUBGROUPS_SECRET_FILE"]
    print(
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    try:
        fx = prepare(db, args.profiles)
        if args.order == "random":
            random.Random(10).shuffle(fx.candidates)
        runs = [
            (label, root, generator, workers)
            for _ in range(args.rounds)
            for generator in args.generators
            for label, root in servers
            for workers in args.workers
        ]
        # Each run its own fresh profiles, and as many again for the durability run.
        args.take = args.take or min(
            int(args.seconds * 5000), len(fx.candidates) // (len(runs) + 2)
        )
        speeds = [
            speed_run(
                fx,
                env,
                args,
                workdir / "access-speed.log",
                workers=workers,
                label=label,
                root=root,
                generator=generator,
            )
            for label, root, generator, workers in runs
        ]
        speed = summarise(speeds)
        durable = durability_run(fx, env, args, workdir / "access-durability.log")
    finally:
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
        if args.keep:
            print(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if speed and durable else 1


if __name__ == "__main__":
    sys.exit(main())
