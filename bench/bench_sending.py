"""Measure sending: 100k messages into a Maildir outbox, goal at least 2,000 messages/s.

    python bench/bench_sending.py [--profiles 100000] [--db PATH] [--batch-size 500]
                                  [--groups 2] [--runs 1] [--audience-opt-in N] [--keep]

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

Exit code 0 when every run meets the goal, 1 otherwise.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from app.core import body_template, campaigns, segments, sending  # noqa: E402
from app.core.mail import CampaignMail  # noqa: E402
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


def run_once(
    store: Store, *, run: int, groups: int, batch_size: int, workdir: Path, audience_opt_in: int
) -> float:
    """One send of a fresh campaign; prints the numbers and returns messages/s."""
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
        started = time.perf_counter()
        result = sending.send_campaign(
            store=store,
            campaign_id=campaign.id,
            outbox=outbox,
            actor=ACTOR,
            batch_size=batch_size,
        )
        total = time.perf_counter() - started
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
    ]
    for label, seconds in rows:
        per_second = result.sent / seconds if seconds > 0 else float("inf")
        print(f"  {label:<44} {seconds:7.2f} s  {per_second:>10,.0f} messages/s")
    verdict = "PASS" if rate >= GOAL else "FAIL"
    print(f"  => {rate:,.0f} messages/s (goal {GOAL:,.0f}): {verdict}", flush=True)
    shutil.rmtree(outbox.path, ignore_errors=True)
    return rate


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
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="subgroups-bench-sending-"))
    # The link keyring goes with the benchmark, never into the user's data directory.
    os.environ.setdefault("SUBGROUPS_SECRET_FILE", str(workdir / "link-keys.json"))
    path = args.db or workdir / "bench.db"
    print(load())
    try:
        seeded = prepare(path, args.profiles)
        if seeded is not None:
            print(f"Seeding took {seeded:.1f} s")
        store = open_store(path)
        try:
            rates = [
                run_once(
                    store,
                    run=run,
                    groups=args.groups,
                    batch_size=args.batch_size,
                    workdir=workdir,
                    audience_opt_in=args.audience_opt_in,
                )
                for run in range(1, args.runs + 1)
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
