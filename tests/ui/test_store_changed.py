"""StoreChanged: what new ledger events changed, as the sections read it."""

from app.core.ledger import CHANNEL_UNSUBSCRIBED
from app.ui.messages import StoreChanged


def test_each_flag_follows_the_event_names() -> None:
    group = StoreChanged(names=frozenset({"Group Archived"}))
    assert group.groups_changed and not group.campaigns_changed
    assert not group.subscriptions_changed
    opt_out = StoreChanged(names=frozenset({CHANNEL_UNSUBSCRIBED}))
    assert opt_out.campaigns_changed and opt_out.subscriptions_changed
    assert not opt_out.groups_changed
    assert StoreChanged(names=frozenset({"Campaign Sent"})).campaigns_changed


def test_a_bulk_write_or_the_whole_store_may_have_changed_anything() -> None:
    for change in (StoreChanged(bulk=True), StoreChanged(everything=True)):
        assert change.groups_changed and change.campaigns_changed
        assert change.subscriptions_changed


def test_a_burst_merges_into_one_change() -> None:
    first = StoreChanged(names=frozenset({"Group Created"}), identities=frozenset({"a"}))
    second = StoreChanged(names=frozenset({CHANNEL_UNSUBSCRIBED}), identities=frozenset({"b"}))
    merged = first.merged(second)
    assert merged.names == {"Group Created", CHANNEL_UNSUBSCRIBED}
    assert merged.identities == {"a", "b"}
    assert merged.groups_changed and merged.subscriptions_changed
    assert not merged.bulk and not merged.settled
