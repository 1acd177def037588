"""Each group's counts from the audience index (``segments.group_counts``) are the
SQL count's (``groups.group_counts``), before and after the index has read every
group, after later state changes and a policy change; and the ledger id they are
as of lets the console move them by later events without counting one twice.
"""

from datetime import UTC, datetime

from app.core import groups, ledger, profiles, segments, subscriptions
from app.core.models import POLICY_OPT_IN, SUBSCRIBED, UNSUBSCRIBED
from app.core.seed import load_sample_data
from app.core.store import Store

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def sql_counts(store: Store) -> dict[int, groups.GroupCounts]:
    with store.read() as session:
        return groups.group_counts(session)


def test_the_index_counts_as_sql_does(store: Store) -> None:
    load_sample_data(store=store, actor="seed", now=NOW)
    expected = sql_counts(store)
    # A fresh index (whatever it has read), then one that has read every group.
    counts, as_of = segments.group_counts(store)
    assert counts == expected
    index = segments.index_for(store)
    with store.read() as session:
        index.load_groups(session)
        latest = ledger.latest_id(session)
    counts, as_of = segments.group_counts(store)
    assert counts == expected
    assert as_of == latest

    # Later changes: an opt-out, a resubscribe, and a group turned opt-in.
    with store.read() as session:
        people = [p.identity for p in profiles.search_profiles(session, "")[:2]]
        newsletter = groups.find_group(session, "Newsletter")
    for identity, status in zip(people, (UNSUBSCRIBED, SUBSCRIBED), strict=True):
        with store.write() as session:
            subscriptions.set_state_for(
                session=session,
                identity=identity,
                group="Newsletter",
                status=status,
                source="cli",
                actor="t",
            )
    with store.write() as session:
        assert newsletter.id is not None
        groups.update_group(
            session=session,
            group_id=newsletter.id,
            policy=POLICY_OPT_IN,
            actor="t",
            accept_consent_change=True,
        )
    with store.read() as session:
        latest = ledger.latest_id(session)
    counts, as_of = segments.group_counts(store)
    assert counts == sql_counts(store)
    assert as_of == latest
