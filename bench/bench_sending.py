"""Measure sending: 100k messages into a Maildir outbox, goal at least 2,000 messages/s.

    python bench/bench_sending.py [--profiles 100000] [--db PATH] [--batch-size 500]
                                  [--groups 2] [--runs 1] [--audience-opt-in N] [--keep]
                                  [--dkim]

The store is seeded with ``app.core.synthetic.seed_synthetic`` (50 groups,
about five stored states per profile, 2% unsubscribed from all email), or
reused with ``--db PATH`` (seeded first if missing or empty). Each run
creates a fresh campaign to all profiles whose "do not send to" groups are
the first ``--groups`` groups, and sends it with
``app.core.sending.send_campaign`` (what the CLI and the console call) into
a Maildir in a fresh temporary folder. With ``--audience-opt-in N`` the
campaign's audience is instead a saved segment "Include all of" the store's
first N opt-in groups (on a synthetic 10M store, N=2 gives about 56,000
people rather than 10M messages and files).

Printed for each run (wall time, seconds):

- **send_campaign**: the whole call, from the status change to ``Campaign
  Sent``; **messages/s** is the messages written divided by it (the goal);
- **building messages**: the time inside ``CampaignMail.render`` (token,
  body, headers, encoding);
- **writing files**: the time inside ``MaildirOutbox.deliver`` (write to
  ``tmp/``, rename into ``new/``);
- **the rest**: the audience (the segment index), each batch's eligibility
  check and claim, marking deliveries sent, the ledger events;
- each part also as messages/s, as if it ran alone.

With ``--dkim`` each run is two sends, one unsigned and one DKIM-signed
(``app.core.dkim_signing``, a fresh 2048-bit key; settings switched between
them), in alternating order, so the two are measured side by side under the
same load; each also prints the process's CPU seconds. Then the signing cost
alone: the same messages rendered unsigned, signed, and signed with dkimpy's
own pure-Python RSA step (what ``dkim_signing`` hands to OpenSSL), in
interleaved rounds, as milliseconds per message.

Exit code 0 when every run meets the goal, 1 otherwise.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from app.core import (  # noqa: E402
    body_template,
    campaigns,
    dkim_keys,
    dkim_signing,
    segments,
    sending,
    settings,
    tokens,
)
from app.core.mail import CampaignMail, Recipient  # noqa: E402
from app.core.models import POLICY_OPT_IN, STATUS_ACTIVE, Group, Profile  # noqa: E402
from app.core.outbox import MaildirOutbox, OutgoingMessage  # noqa: E402
from app.core.seed import store_is_empty  # noqa: E402
from app.core.segment_rules import GroupsCondition, SegmentRule  # noqa: E402
from app.core.store import Store, open_store  # noqa: E402
from app.core.synthetic import seed_synthetic  # noqa: E402

GOAL = 2_000.0  # messages per second
ACTOR = "bench"
# The default body with its placeholder line written (a campaign that still
# says "Write your message here." is refused at send time).
BODY = body_template.DEFAULT_BODY.replace(
    body_template.PLACEHOLDER,
    "Our November news: 20% off everything in the shop until Sunday, and a new\n"
    "guide to getting started. Thank you for reading.",
)


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def prepare(path: Path, profiles_wanted: int) -> float | None:
    """Seed the store if it is empty; the seconds it took, or None when it was reused."""
    store = open_store(path)
    try:
        with store.read() as session:
            empty = store_is_empty(session)
        if not empty:
            return None
        print(f"Seeding {profiles_wanted:,} profiles over 50 groups into {path} …", flush=True)
        started = time.perf_counter()
        seed_synthetic(store=store, profiles=profiles_wanted, actor=ACTOR)
        return time.perf_counter() - started
    finally:
        store.dispose()


class TimedMaildir(MaildirOutbox):
    """A Maildir outbox that adds up the time spent writing."""

    seconds = 0.0
    messages = 0

    def deliver(self, message: OutgoingMessage) -> None:
        started = time.perf_counter()
        super().deliver(message)
        self.seconds += time.perf_counter() - started
        self.messages += 1


class RunResult(NamedTuple):
    """What one send measured."""

    rate: float  # messages/s, the whole send_campaign
    cpu: float  # the process's CPU seconds in send_campaign
    sent: int
    building: float  # seconds in CampaignMail.render (signing included)


def run_once(
    store: Store,
    *,
    run: int | str,
    groups: int,
    batch_size: int,
    workdir: Path,
    audience_opt_in: int,
) -> RunResult:
    """One send of a fresh campaign; prints the numbers and returns what it measured."""
    with store.write() as session:
        group_ids = list(session.exec(select(Group.id).order_by(col(Group.id)).limit(groups)).all())
        segment_id = None
        if audience_opt_in:
            opt_in = session.exec(
                select(Group.id)
                .where(col(Group.policy) == POLICY_OPT_IN, col(Group.status) == STATUS_ACTIVE)
                .order_by(col(Group.id))
                .limit(audience_opt_in)
            ).all()
            rule = SegmentRule((GroupsCondition("include", tuple(g or 0 for g in opt_in), "all"),))
            segment_id = segments.save_segment(
                session=session, name=f"Bench audience {run} {time.time_ns()}", rule=rule,
                actor=ACTOR, source="cli",
            ).id  # fmt: skip
        campaign = campaigns.create_campaign(
            session=session,
            name=f"Bench {run} {time.time_ns()}",
            actor=ACTOR,
            source="cli",
            subject="Our November news — 20% off everything",
            from_address="Example News <news@example.com>",
            body=BODY,
            do_not_send_to=[gid for gid in group_ids if gid is not None],
            segment_id=segment_id,
        )
        profiles = int(session.exec(select(func.count()).select_from(Profile)).one())
    assert campaign.id is not None
    outbox = TimedMaildir(workdir / f"outbox-{run}")

    building = [0.0]
    render = CampaignMail.render

    def timed_render(self: CampaignMail, *args: object, **kwargs: object) -> OutgoingMessage:
        started = time.perf_counter()
        try:
            return render(self, *args, **kwargs)  # type: ignore[arg-type]
        finally:
            building[0] += time.perf_counter() - started

    CampaignMail.render = timed_render  # type: ignore[method-assign]
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        result = sending.send_campaign(
            store=store,
            campaign_id=campaign.id,
            outbox=outbox,
            actor=ACTOR,
            batch_size=batch_size,
        )
        total = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    finally:
        CampaignMail.render = render  # type: ignore[method-assign]
    files = len(os.listdir(outbox.path / "new"))
    assert files == result.sent == outbox.messages, (files, result.sent, outbox.messages)
    rest = total - building[0] - outbox.seconds
    rate = result.sent / total
    print(
        f"Run {run}: {profiles:,} profiles, audience {result.total:,}, "
        f"{result.batches} batches of {batch_size}, {load()}"
    )
    print(
        f"  sent {result.sent:,}, skipped {result.skipped:,} (not eligible), "
        f"{result.without_email:,} without email; {files:,} files in {outbox.path}/new"
    )
    rows = [
        ("send_campaign (the goal)", total),
        ("building messages", building[0]),
        ("writing files", outbox.seconds),
        ("the rest (audience, checks, claims, marks)", rest),
        ("CPU seconds of the process", cpu),
    ]
    for label, seconds in rows:
        per_second = result.sent / seconds if seconds > 0 else float("inf")
        print(f"  {label:<44} {seconds:7.2f} s  {per_second:>10,.0f} messages/s")
    verdict = "PASS" if rate >= GOAL else "FAIL"
    print(f"  => {rate:,.0f} messages/s (goal {GOAL:,.0f}): {verdict}", flush=True)
    shutil.rmtree(outbox.path, ignore_errors=True)
    return RunResult(rate, cpu, result.sent, building[0])


def make_key(workdir: Path) -> Path:
    """A fresh 2048-bit RSA key file (as ``openssl genrsa`` makes), for the signed sends."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = workdir / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return path


def set_dkim(store: Store, key_file: Path | None) -> None:
    """DKIM on (with this key) or off, through the settings a user would change."""
    with store.write() as session:
        for key, value in (
            ("dkim-domain", "example.com" if key_file else ""),
            ("dkim-selector", "bench" if key_file else ""),
            ("dkim-key", str(key_file) if key_file else ""),
        ):
            settings.set_setting(session=session, key=key, value=value, actor=ACTOR)


def dkim_runs(store: Store, args: argparse.Namespace, workdir: Path) -> list[float]:
    """Unsigned and signed sends, interleaved (order alternating per run); the rates."""
    key_file = make_key(workdir)
    found: dict[str, list[RunResult]] = {"unsigned": [], "signed": []}
    for run in range(1, args.runs + 1):
        order = ["unsigned", "signed"] if run % 2 else ["signed", "unsigned"]
        for kind in order:
            set_dkim(store, key_file if kind == "signed" else None)
            found[kind].append(
                run_once(
                    store,
                    run=f"{run} {kind}",
                    groups=args.groups,
                    batch_size=args.batch_size,
                    workdir=workdir,
                    audience_opt_in=args.audience_opt_in,
                )  # fmt: skip
            )
    set_dkim(store, None)  # a reused store (--db) is left unsigned, as it came
    print("DKIM side by side (medians over the runs):")
    medians = {}
    for kind, results in found.items():
        rate = sorted(r.rate for r in results)[len(results) // 2]
        cpu_ms = sorted(r.cpu / r.sent * 1000 for r in results)[len(results) // 2]
        build_ms = sorted(r.building / r.sent * 1000 for r in results)[len(results) // 2]
        medians[kind] = (rate, cpu_ms, build_ms)
        print(
            f"  {kind:<9} {rate:>8,.0f} messages/s, CPU {cpu_ms:.3f} ms/message, "
            f"building {build_ms:.3f} ms/message"
        )
    (u_rate, u_cpu, u_build), (s_rate, s_cpu, s_build) = medians["unsigned"], medians["signed"]
    print(
        f"  signed/unsigned: {s_rate / u_rate:.2f}x the rate, {s_cpu / u_cpu:.2f}x the CPU; "
        f"signing adds {s_build - u_build:.3f} ms of building per message",
        flush=True,
    )
    return [r.rate for results in found.values() for r in results]


def signing_cost(workdir: Path, messages: int = 2_000, rounds: int = 5) -> None:
    """Milliseconds per message: rendering alone, rendering and signing (OpenSSL's RSA step),
    and signing with dkimpy's own pure-Python RSA (fewer messages: it is slow), interleaved."""
    key = dkim_keys.read_key_file(make_key(workdir))
    signer = dkim_signing.DkimSigner(domain="example.com", selector="bench", key=key)
    ring = tokens.Keyring({1: b"k" * 32}, 1)

    def mail(with_signer: dkim_signing.DkimSigner | None) -> CampaignMail:
        return CampaignMail(
            campaign_id=1, created_at=datetime(2026, 12, 1, tzinfo=UTC),
            subject="Our November news — 20% off everything",
            from_address="Example News <news@example.com>", body=BODY,
            groups=[(1, "Promotions")], base_url="https://email.example.com", keyring=ring,
            link_store=tokens.StoreBinding("0" * 32), inbound_domain="in.example.com",
            signer=with_signer,
        )  # fmt: skip

    unsigned, signed = mail(None), mail(signer)
    now = datetime.now(UTC)
    times: dict[str, list[float]] = {"unsigned": [], "signed": [], "dkimpy RSA": []}
    per_round = messages // rounds
    slow_count = max(1, per_round // 20)
    for round_no in range(rounds):
        people = [
            Recipient(round_no * per_round + i, f"p{i}@example.org", f"Person {i}")
            for i in range(per_round)
        ]
        for kind, which, count in (
            ("unsigned", unsigned, per_round),
            ("signed", signed, per_round),
            ("dkimpy RSA", signed, slow_count),
        ):
            saved = dict(dkim_signing._openssl_keys)
            if kind == "dkimpy RSA":
                dkim_signing._openssl_keys.clear()  # dkimpy's own RSA step
            started = time.process_time()
            for person in people[:count]:
                which.render(person, now)
            times[kind].append((time.process_time() - started) / count * 1000)
            dkim_signing._openssl_keys.update(saved)
    print(f"Signing cost ({rounds} interleaved rounds, CPU ms per message, medians), {load()}:")
    base = sorted(times["unsigned"])[rounds // 2]
    for kind, values in times.items():
        median = sorted(values)[rounds // 2]
        extra = "" if kind == "unsigned" else f"  (+{median - base:.3f} ms for the signature)"
        print(f"  {kind:<11} {median:8.3f} ms{extra}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profiles", type=int, default=100_000, help="profiles to seed")
    parser.add_argument("--db", type=Path, help="an SQLite store to reuse (seeded if empty)")
    parser.add_argument("--batch-size", type=int, default=sending.BATCH_SIZE)
    parser.add_argument("--groups", type=int, default=0, help="'do not send to' groups")
    parser.add_argument("--runs", type=int, default=1, help="campaigns to send")
    parser.add_argument(
        "--audience-opt-in",
        type=int,
        default=0,
        metavar="N",
        help="audience: a segment of people subscribed to all of the first N opt-in groups",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary store")
    parser.add_argument(
        "--dkim", action="store_true", help="each run: an unsigned and a DKIM-signed send"
    )
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="subgroups-bench-sending-"))
    # The link keyring goes with the benchmark, never into the user's data directory.
    os.environ.setdefault("SUBGROUPS_SECRET_FILE", str(workdir / "link-keys.json"))
    # And the DKIM key's copy (``settings set dkim-key``) too.
    os.environ["XDG_DATA_HOME"] = str(workdir / "xdg")
    path = args.db or workdir / "bench.db"
    print(load())
    try:
        seeded = prepare(path, args.profiles)
        if seeded is not None:
            print(f"Seeding took {seeded:.1f} s")
        store = open_store(path)
        try:
            rates = [] if not args.dkim else dkim_runs(store, args, workdir)
            if args.dkim:
                signing_cost(workdir)
            rates += [
                run_once(
                    store,
                    run=run,
                    groups=args.groups,
                    batch_size=args.batch_size,
                    workdir=workdir,
                    audience_opt_in=args.audience_opt_in,
                ).rate
                for run in range(1, args.runs + 1)
                if not args.dkim
            ]
        finally:
            store.dispose()
    finally:
        if args.keep:
            print(f"Kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(load())
    return 0 if all(rate >= GOAL for rate in rates) else 1


if __name__ == "__main__":
    sys.exit(main())
