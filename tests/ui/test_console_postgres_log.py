"""The console on a PostgreSQL store: an unsubscribe committed by another process (the CLI)
shows in the live event log, woken by the notification its commit sent (LISTEN/NOTIFY),
not by the fallback wake-up that covers a missed notification."""

import subprocess
from collections.abc import Callable

import pytest
from console_pilot import SIZE, log_lines, settle, start
from sqlmodel import col, select

from app.core.models import SUBSCRIBED, Group, GroupState, Profile
from app.core.store import Store, open_store
from app.core.synthetic import seed_synthetic
from app.ui.app import POLL_SECONDS, SubgroupsApp

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_console_store(pg_url: str) -> str:
    """A PostgreSQL store with a few synthetic people in three groups."""
    store = open_store(pg_url)
    try:
        seed_synthetic(store=store, profiles=30, groups=3, states_per_profile=2, actor="test")
    finally:
        store.dispose()
    return pg_url


def someone_and_a_group(url: str) -> tuple[str, str]:
    """A person subscribed to a group: unsubscribing them there changes something."""
    store: Store = open_store(url)
    try:
        with store.read() as session:
            found = session.exec(
                select(Profile.identity, Group.name)
                .join(GroupState, col(GroupState.profile_id) == col(Profile.id))
                .join(Group, col(Group.id) == col(GroupState.group_id))
                .where(col(GroupState.state) == SUBSCRIBED)
                .order_by(col(Profile.id))
            ).first()
    finally:
        store.dispose()
    assert found is not None
    return found[0], found[1]


async def test_an_unsubscribe_from_the_cli_wakes_the_console_by_notification(
    pg_console_store: str,
    make_app: Callable[..., SubgroupsApp],
    python: str,
    subprocess_env: dict[str, str],
) -> None:
    identity, group = someone_and_a_group(pg_console_store)
    app = make_app(pg_console_store, poll_seconds=POLL_SECONDS)  # a URL, not a file
    # The fallback far off: within this test only a notification can wake the log.
    app.ledger_fallback = 600
    async with app.run_test(size=SIZE) as pilot:
        await start(pilot)
        wakeups = app.ledger_wakeups
        assert wakeups is not None
        before = log_lines(app)[-1:]
        subprocess.run(
            [python, "-m", "app", "profiles", "set", identity, "--group", group]
            + ["--status", "unsubscribed", "--reason", "by phone", "--db", pg_console_store],
            env=subprocess_env,
            check=True,
            capture_output=True,
        )
        await settle(
            pilot,
            lambda: log_lines(app)[-1:] != before,
            timeout=20,
            what="the CLI's unsubscribe in the log",
        )
        line = log_lines(app)[-1]
        assert "Channel Unsubscribed" in line
        assert f"{identity}: group '{group}'" in line and "by phone [cli]" in line
        assert wakeups.told_wakes >= 1
        assert wakeups.fallback_wakes == 0  # it was the notification that woke it
