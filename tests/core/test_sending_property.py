"""Property: no delivery ever goes to a profile that was ineligible at its batch's check,
and everyone eligible at their batch's check (with an address) gets exactly one.

Random small stores (groups of either policy, random stored states, some people without
an address), a random campaign ("do not send to", "only subscribed to"), a random batch
size, and random state changes committed from another connection between batches. The
reference is worked out from the store at each check with plain Python
(``sending_world.reference_eligible``), not with the sender's own check.
"""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sending_world import (
    add_campaign,
    add_group,
    add_person,
    deliveries,
    emails_of,
    maildir_messages,
    recipients_of,
    reference_eligible,
    set_state,
    with_usable_email,
)

from app.core import campaigns, eligibility, sending
from app.core.deliveries import SENT
from app.core.errors import RuleRefused
from app.core.models import POLICY_OPT_IN, POLICY_OPT_OUT, SUBSCRIBED, UNSUBSCRIBED
from app.core.outbox import MaildirOutbox
from app.core.store import open_store

STATE = st.sampled_from([None, SUBSCRIBED, UNSUBSCRIBED])


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, object]:
    group_count = draw(st.integers(1, 3))
    people = draw(st.integers(1, 12))
    policies = draw(
        st.lists(
            st.sampled_from([POLICY_OPT_OUT, POLICY_OPT_IN]),
            min_size=group_count,
            max_size=group_count,
        )
    )
    # (person, group index or None for all email) -> state
    initial = draw(
        st.dictionaries(
            st.tuples(
                st.integers(0, people - 1), st.one_of(st.none(), st.integers(0, group_count - 1))
            ),
            st.sampled_from([SUBSCRIBED, UNSUBSCRIBED]),
            max_size=people * 2,
        )
    )
    batch_size = draw(st.integers(1, 5))
    batches = -(-people // batch_size)
    changes = draw(
        st.lists(
            st.tuples(
                st.integers(1, max(1, batches)),  # after this batch
                st.integers(0, people - 1),
                st.one_of(st.none(), st.integers(0, group_count - 1)),
                st.sampled_from([SUBSCRIBED, UNSUBSCRIBED]),
            ),
            max_size=8,
        )
    )
    groups = list(range(group_count))
    return {
        "policies": policies,
        "people": people,
        "no_email": draw(st.sets(st.integers(0, people - 1), max_size=2)),
        "initial": initial,
        "do_not_send_to": draw(
            st.lists(st.sampled_from(groups), unique=True, max_size=group_count)
        ),
        "only_subscribed_to": draw(st.lists(st.sampled_from(groups), unique=True, max_size=2)),
        "batch_size": batch_size,
        "changes": changes,
    }


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(scenario=scenarios())
def test_every_delivery_went_to_someone_eligible_at_their_batchs_check(
    scenario: dict[str, object],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        run(Path(folder), scenario)


def run(folder: Path, scenario: dict[str, object]) -> None:
    store = open_store(folder / "store.db")
    other = open_store(folder / "store.db")  # another connection commits the changes
    try:
        policies: list[str] = scenario["policies"]  # type: ignore[assignment]
        group_ids = [add_group(store, f"G{i}", policy) for i, policy in enumerate(policies)]
        no_email: set[int] = scenario["no_email"]  # type: ignore[assignment]
        people = int(scenario["people"])  # type: ignore[call-overload]
        ids = [add_person(store, f"p{n:02d}", None if n in no_email else "") for n in range(people)]
        initial: dict[tuple[int, int | None], str] = scenario["initial"]  # type: ignore[assignment]
        for (person, group), state in initial.items():
            set_state(store, f"p{person:02d}", None if group is None else group_ids[group], state)
        cid = add_campaign(
            store,
            do_not_send_to=[group_ids[g] for g in scenario["do_not_send_to"]],  # type: ignore[attr-defined]
            only_subscribed_to=[group_ids[g] for g in scenario["only_subscribed_to"]],  # type: ignore[attr-defined]
        )
        batch_size = int(scenario["batch_size"])  # type: ignore[call-overload]
        changes: list[tuple[int, int, int | None, str]] = scenario["changes"]  # type: ignore[assignment]

        # Who is eligible when each batch is checked: before the send for batch 1,
        # then right after the changes made between batches.
        at_check = {1: reference_eligible(store, cid)}

        def between_batches(progress: sending.SendProgress) -> None:
            for after, person, group, state in changes:
                if after == progress.batch:
                    gid = None if group is None else group_ids[group]
                    set_state(other, f"p{person:02d}", gid, state)
            at_check[progress.batch + 1] = reference_eligible(store, cid)

        outbox = folder / "outbox"
        with store.read() as session:
            reach = eligibility.reach(store, campaigns.get_campaign_by_id(session, cid)).reach
        if reach == 0:  # a draft that reaches nobody is refused and stays a draft
            try:
                sending.send_campaign(
                    store=store, campaign_id=cid, outbox=MaildirOutbox(outbox), actor="prop"
                )
            except RuleRefused:
                pass
            else:
                raise AssertionError("a campaign with a reach of 0 was sent")
            with store.read() as session:
                assert campaigns.get_campaign_by_id(session, cid).status == campaigns.DRAFT
            assert not outbox.exists()
            return
        result = sending.send_campaign(
            store=store, campaign_id=cid, outbox=MaildirOutbox(outbox), actor="prop",
            batch_size=batch_size, progress=between_batches,
        )  # fmt: skip
        assert result.finished

        # The audience is everyone, in id order: batch k checks ids[(k-1)*size : k*size].
        expected: dict[int, set[int]] = {}
        for k, begin in enumerate(range(0, len(ids), batch_size), start=1):
            batch = set(ids[begin : begin + batch_size])
            expected[k] = with_usable_email(store, batch & at_check[k])
        got: dict[int, set[int]] = {k: set() for k in expected}
        for delivery in deliveries(store, cid):
            assert delivery.status == SENT
            got[delivery.batch].add(delivery.profile_id)
        assert got == expected
        everyone = set().union(*expected.values()) if expected else set()
        assert recipients_of(maildir_messages(outbox)) == emails_of(store, everyone)
    finally:
        other.dispose()
        store.dispose()
