"""Measure the campaign reach breakdown at scale (issue 4 goal: p50 at most 50 ms after
warm-up on 1M profiles, the same budget as segment counts).

    python bench/bench_reach.py [--profiles 1000000] [--db PATH] [--runs 200]
                                [--check-sample N]

The store is seeded like bench_segments.py (or reused with ``--db``). A draft
campaign is made whose audience is a saved segment of two group clauses
(Include any of two groups, Exclude a third), with "only people subscribed to
all of" one group and "do not send to" three groups, one of them archived
after it was attached (still enforced). Timed, through the services the
console's wizard and ``campaigns show`` call:

- warm-up: the first ``eligibility.reach`` on a freshly opened store;
- ``eligibility.reach`` ``--runs`` times (p50 / p95 / max): a read session,
  catching the index up with the ledger, and the bitset steps;
- ``eligibility.eligible_now`` for one batch of 500 audience members (the
  sender's per-batch check, straight from the database);
- ``explainer.explain`` for one person.

The answer is checked once: the last step's count equals the number of
audience members ``eligible_now`` keeps. At 10M that whole-audience check
reads every audience member's rows (1,434 s for 9.2M); with ``--check-sample
N`` it runs on N audience members drawn at random instead, and each of them
must be kept by ``eligible_now`` exactly when it is in the index's bitmap after
step 4 (the output says the check was sampled). Exit code 0 when the reach
p50 meets the goal and the check agrees.
"""

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench_segments import line, load, prepare, timed  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from app.core import campaigns, eligibility, explainer, groups, segments  # noqa: E402
from app.core.models import Campaign, Group, Profile  # noqa: E402
from app.core.segment_rules import GroupsCondition, SegmentRule  # noqa: E402
from app.core.store import Store, open_store  # noqa: E402

GOAL_MS = 50.0
ACTOR = "bench"
NAME = "Bench reach"


def setup(db: Path) -> int:
    """The bench campaign's id (made on first use, kept for later runs)."""
    store = open_store(db)
    try:
        with store.write() as session:
            existing = session.exec(select(Campaign).where(col(Campaign.name) == NAME)).first()
            if existing is not None:
                return existing.id or 0
            ids = [g.id or 0 for g in groups.list_groups(session)][:8]
            rule = SegmentRule(
                (
                    GroupsCondition(mode="include", group_ids=(ids[0], ids[1]), match="any"),
                    GroupsCondition(mode="exclude", group_ids=(ids[2],), match="any"),
                )
            )
            segment = segments.save_segment(session=session, name=NAME, rule=rule, actor=ACTOR)
            campaign = campaigns.create_campaign(
                session=session,
                name=NAME,
                actor=ACTOR,
                subject="Bench",
                from_address="bench@example.com",
                segment_id=segment.id,
                only_subscribed_to=[ids[3]],
                do_not_send_to=[ids[4], ids[5], ids[6]],
            )
            archived_id = ids[6]
        with store.write() as session:  # attached, then archived: still enforced
            groups.archive_group(session=session, group_id=archived_id, actor=ACTOR)
        return campaign.id or 0
    finally:
        store.dispose()


def sampled_check(store: Store, campaign: Campaign, audience: list[int], size: int) -> bool:
    """``eligible_now`` on ``size`` audience members drawn at random against the index.

    A sampled member must be kept exactly when it is in the bitmap after step 4
    (the steps ``eligible_now`` checks; step 5, one per address, is the sender's).
    """
    sample = sorted(random.Random(10).sample(audience, size))
    index = segments.index_for(store)
    with store.read() as session:
        segments.refresh(store, index, session)
        with index.locked():
            chain = eligibility._chain(index, session, campaign)
        after_step_4 = next(bits for key, _, bits in chain if key == eligibility.DO_NOT_SEND)
        started = time.perf_counter()
        kept = eligibility.eligible_now(session, campaign, sample)
    check_s = time.perf_counter() - started
    expected = {pid for pid in sample if pid in after_step_4}
    agree = kept == expected
    print(
        f"check (SAMPLED, not the whole audience): eligible_now over {size:,} of the "
        f"{len(audience):,} audience members, drawn at random, keeps {len(kept):,} in "
        f"{check_s:.1f} s; the index after step 4 holds {len(expected):,} of them: "
        f"{'agree' if agree else f'DISAGREE ({len(kept ^ expected):,} differ)'}"
    )
    return agree


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="an SQLite store to reuse (seeded if empty)")
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument(
        "--check-sample",
        type=int,
        default=0,
        metavar="N",
        help="check N audience members drawn at random (default 0: the whole audience)",
    )
    args = parser.parse_args(argv)
    db = args.db or Path("/tmp/subgroups-bench-reach/bench.db")
    db.parent.mkdir(parents=True, exist_ok=True)
    seeded = prepare(db, args.profiles)
    if seeded is not None:
        print(f"seeded {args.profiles:,} profiles in {seeded:.1f} s")
    campaign_id = setup(db)

    store = open_store(db)
    with store.read() as session:
        campaign = campaigns.get_campaign_by_id(session, campaign_id)
        archived = [g.name for g in session.exec(select(Group)) if g.status == "archived"]
        profile_count = session.exec(select(Profile.id).order_by(col(Profile.id).desc())).first()
    print(f"store: {db} ({profile_count:,} profiles; archived groups: {', '.join(archived)})")
    print(load())

    started = time.perf_counter()
    result = eligibility.reach(store, campaign)
    print(f"warm-up (first reach on a fresh store): {time.perf_counter() - started:.2f} s")
    for step in result.steps:
        print(f"  {step.count:>10,}  {step.label} (-{step.dropped:,})")

    reach_ms = timed(lambda: eligibility.reach(store, campaign), args.runs)
    print(line("eligibility.reach", reach_ms))

    audience = eligibility.audience_ids(store, campaign)
    batch = audience[:500]
    with store.read() as session:
        batch_ms = timed(lambda: eligibility.eligible_now(session, campaign, batch), 20)
    print(line("eligible_now, one batch of 500", batch_ms))
    with store.read() as session:
        identity = session.get(Profile, audience[len(audience) // 2]).identity  # type: ignore[union-attr]
    explain_ms = timed(lambda: explainer.explain(store, campaign, identity), 20)
    print(line("explain, one person", explain_ms))

    if args.check_sample and args.check_sample < len(audience):
        agree = sampled_check(store, campaign, audience, args.check_sample)
    else:
        started = time.perf_counter()
        with store.read() as session:
            kept = eligibility.eligible_now(session, campaign, audience)
        check_s = time.perf_counter() - started
        agree = len(kept) == result.reach
        print(
            f"check: eligible_now over the whole audience ({len(audience):,}) keeps "
            f"{len(kept):,} in {check_s:.1f} s; reach says {result.reach:,}: "
            f"{'agree' if agree else 'DISAGREE'}"
        )
    store.dispose()
    p50 = sorted(reach_ms)[len(reach_ms) // 2]
    ok = p50 <= GOAL_MS and agree
    print(f"goal: reach p50 <= {GOAL_MS:.0f} ms: {'pass' if ok else 'FAIL'} ({p50:.1f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
