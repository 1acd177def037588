"""What the landing page tests share (tests/core/test_landing.py, tests/web/): a store
whose groups, person and campaigns the tests know, and ways to read states and events
back. Importable from any test folder: tests/ is on sys.path once tests/conftest.py
has loaded."""

from dataclasses import dataclass
from typing import Any

from sqlmodel import col, select

from app.core import campaigns, groups, ledger, profiles, subscriptions
from app.core.models import Event, GroupState, Profile
from app.core.store import Store

ACTOR = "tester"
SCRIPT_NAME = "<script>alert(1)</script>"
SCRIPT_DESCRIPTION = '[b]x[/b] <img src=x onerror="alert(2)"> & more'


@dataclass
class LandingWorld:
    """Groups by name, one person (Ann) and two campaigns, all ids."""

    store: Store
    newsletter: int  # opt-out, shown
    promotions: int  # opt-in, shown
    script: int  # opt-out, shown, named <script>alert(1)</script>
    internal: int  # opt-out, hidden from the page
    old: int  # archived (was shown); its opt-outs stay enforced
    ann: int
    bob: int
    campaign_groups: int  # do not send to: Newsletter and Old (archived since)
    campaign_none: int  # no "do not send to" groups

    @property
    def shown(self) -> list[int]:
        """The page's groups, in the order it shows them (by name)."""
        return [self.script, self.newsletter, self.promotions]


def build_world(store: Store) -> LandingWorld:
    """Create the world; nobody has set a state yet (everyone is on the policy defaults)."""
    with store.write() as session:

        def group(name: str, **kw: Any) -> int:
            made = groups.create_group(session=session, name=name, actor=ACTOR, **kw)
            assert made.id is not None
            return made.id

        newsletter = group("Newsletter", description="Monthly news")
        promotions = group("Promotions", policy="opt-in", description="Deals")
        script = group(SCRIPT_NAME, description=SCRIPT_DESCRIPTION)
        internal = group("Internal", shown_on_landing_page=False)
        old = group("Old offers")
        ann = profiles.create_profile(
            session=session, identity="ann", email="ann@example.com", name="Ann"
        )
        bob = profiles.create_profile(
            session=session, identity="bob", email="bob@example.com", name="Bob"
        )
        with_groups = campaigns.create_campaign(
            session=session, name="Spring sale", actor=ACTOR, do_not_send_to=[newsletter, old]
        )
        without = campaigns.create_campaign(session=session, name="Big news", actor=ACTOR)
        groups.archive_group(session=session, group_id=old, actor=ACTOR)
    assert ann.id and bob.id and with_groups.id and without.id
    return LandingWorld(
        store=store,
        newsletter=newsletter,
        promotions=promotions,
        script=script,
        internal=internal,
        old=old,
        ann=ann.id,
        bob=bob.id,
        campaign_groups=with_groups.id,
        campaign_none=without.id,
    )


def set_state(store: Store, profile_id: int, group_id: int | None, status: str) -> None:
    """Set a state the way the CLI would (Source cli)."""
    with store.write() as session:
        profile = session.get(Profile, profile_id)
        group = groups.get_group(session, group_id) if group_id is not None else None
        assert profile is not None
        subscriptions.set_state(
            session=session, profile=profile, group=group, status=status, source="cli",
            actor=ACTOR,
        )  # fmt: skip


def stored_states(store: Store, profile_id: int) -> dict[int | None, str]:
    """The person's stored group states by group id, and all email under None."""
    with store.read() as session:
        profile = session.get(Profile, profile_id)
        assert profile is not None
        rows = session.exec(
            select(GroupState).where(col(GroupState.profile_id) == profile_id)
        ).all()
        states: dict[int | None, str] = {row.group_id: row.state for row in rows}
        states[None] = profile.all_email
        return states


def subscription_events(store: Store, profile_id: int | None = None) -> list[Event]:
    """Every Channel Unsubscribed event (of one person), oldest first."""
    with store.read() as session:
        query = select(Event).where(col(Event.name) == ledger.CHANNEL_UNSUBSCRIBED)
        if profile_id is not None:
            query = query.where(col(Event.profile_id) == profile_id)
        return list(session.exec(query.order_by(col(Event.id))).all())


def ledger_size(store: Store) -> int:
    with store.read() as session:
        return ledger.latest_id(session)
