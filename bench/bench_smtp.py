"""Measure SMTP sending to a relay that answers after 10 ms, against one that answers at once.

    python bench/bench_smtp.py [--profiles 1500] [--delay-ms 10] [--connections 0,1,8,32]
                               [--rounds 1] [--batch-size 500] [--rcpt-data-only]

Two aiosmtpd relays (``tests/smtp_relay.py``), each in a process of its own so
they do not share the sender's interpreter: one answers every command at
once, the other waits ``--delay-ms`` before answering MAIL FROM, RCPT TO and
the end of DATA (``--rcpt-data-only``: RCPT and DATA only, as issue 13
measured it; aiosmtpd has no hook before its 354 to DATA). A store of
``--profiles`` synthetic profiles (``seed_synthetic``) gets a fresh campaign
to everyone for each send, sent with ``sending.send_campaign`` through
``SmtpPool`` (what ``campaigns send --smtp --connections N`` runs).

``--connections 0`` is the baseline: ``SmtpOutbox``, what ``--smtp`` ran
before the pool (one connection, one command at a time). For each
connection count, the two relays are measured back to back, their
order alternating, so both see the same load. Printed: messages/s of each,
the ratio slow / instant (goal: >= 0.5), and the load average.

Exit code 0 when the largest connection count meets the goal, 1 otherwise.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from app.core import body_template, campaigns, sending  # noqa: E402
from app.core.smtp_outbox import SmtpOutbox  # noqa: E402
from app.core.smtp_pool import SmtpPool  # noqa: E402
from app.core.store import Store, open_store  # noqa: E402
from app.core.synthetic import seed_synthetic  # noqa: E402

GOAL = 0.5  # the slow relay's rate over the instant one's
ACTOR = "bench"
BODY = body_template.DEFAULT_BODY.replace(
    body_template.PLACEHOLDER, "Our November news: 20% off everything in the shop until Sunday."
)


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def serve_relay(port: int, delay_ms: float, delay_mail: bool) -> None:
    """The relay process: serve until stdin closes."""
    from smtp_relay import Relay

    with Relay(port, delay_ms=delay_ms, delay_mail=delay_mail):
        print("ready", flush=True)
        sys.stdin.read()


def start_relay(delay_ms: float, delay_mail: bool) -> tuple[subprocess.Popen[str], int]:
    from smtp_relay import free_port

    port = free_port()
    argv = [sys.executable, __file__, "--serve-relay", str(port), "--delay-ms", str(delay_ms)]
    if not delay_mail:
        argv.append("--rcpt-data-only")
    relay = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert relay.stdout is not None
    if relay.stdout.readline().strip() != "ready":
        raise SystemExit("the relay did not start")
    return relay, port


def send_once(store: Store, port: int, connections: int, batch_size: int) -> tuple[float, int]:
    """One fresh campaign to everyone through the pool (``connections`` 0: through
    ``SmtpOutbox``, one connection, one command at a time, as before the pool):
    (messages/s, messages sent)."""
    with store.write() as session:
        campaign = campaigns.create_campaign(
            session=session, name=f"Bench {time.time_ns()}", actor=ACTOR, source="cli",
            subject="November news", from_address="Example News <news@example.com>", body=BODY,
        )  # fmt: skip
    assert campaign.id is not None
    outbox: SmtpPool | SmtpOutbox
    if connections:
        outbox = SmtpPool("127.0.0.1", port, connections=connections)
    else:
        outbox = SmtpOutbox("127.0.0.1", port)
    try:
        started = time.perf_counter()
        result = sending.send_campaign(
            store=store, campaign_id=campaign.id, outbox=outbox, actor=ACTOR,
            batch_size=batch_size,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    finally:
        if isinstance(outbox, SmtpPool):
            outbox.shutdown()
    assert result.finished and result.failed == 0 and result.deferred == 0, result
    return result.sent / seconds, result.sent


def label(connections: int) -> str:
    if connections == 0:
        return "SmtpOutbox (before)"
    return f"pool, {connections:>2} connections"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=1500)
    parser.add_argument("--delay-ms", type=float, default=10.0)
    parser.add_argument(
        "--connections", default="0,1,8,32", help="0: the one-connection SmtpOutbox (before)"
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--rcpt-data-only", action="store_true")
    parser.add_argument("--serve-relay", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_relay:
        serve_relay(args.serve_relay, args.delay_ms, not args.rcpt_data_only)
        return 0

    counts = [int(n) for n in args.connections.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-smtp-"))
    os.environ.setdefault("XDG_DATA_HOME", str(workdir / "xdg"))
    store = open_store(workdir / "bench.db")
    print(f"Seeding {args.profiles:,} profiles …", flush=True)
    seed_synthetic(store=store, profiles=args.profiles, actor=ACTOR)
    waits = "RCPT and DATA" if args.rcpt_data_only else "MAIL, RCPT and DATA"
    instant, instant_port = start_relay(0, False)
    slow, slow_port = start_relay(args.delay_ms, not args.rcpt_data_only)
    print(f"Relays: instant on {instant_port}; {args.delay_ms:g} ms before {waits} on {slow_port}")
    ratios: dict[int, list[float]] = {n: [] for n in counts}
    try:
        for round_number in range(args.rounds):
            for i, connections in enumerate(counts):
                order = [("instant", instant_port), ("slow", slow_port)]
                if (round_number + i) % 2:
                    order.reverse()
                rates: dict[str, float] = {}
                for name, port in order:
                    rate, sent = send_once(store, port, connections, args.batch_size)
                    rates[name] = rate
                    print(
                        f"  round {round_number + 1}, {label(connections)}, {name:>7}: "
                        f"{sent:,} messages, {rate:,.0f} messages/s ({load()})",
                        flush=True,
                    )
                ratio = rates["slow"] / rates["instant"]
                ratios[connections].append(ratio)
                print(f"  {label(connections)}: slow / instant = {ratio:.2f}x", flush=True)
    finally:
        for relay in (instant, slow):
            assert relay.stdin is not None
            relay.stdin.close()
            relay.wait(timeout=10)
        store.dispose()
    print(f"Summary ({load()}; goal: slow >= {GOAL}x instant):")
    for connections in counts:
        best = max(ratios[connections])
        print(f"  {label(connections)}: {best:.2f}x")
    return 0 if max(ratios[counts[-1]]) >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
