"""One-click unsubscribe (RFC 8058): what a link's unsubscribe leaves, and doing it.

A campaign's link leaves the campaign's "do not send to" groups, else all
email (DESIGN.md §1). ``one_click_view`` reads the confirmation page
(``GET /u/``); ``one_click`` unsubscribes one person; ``one_click_many`` is the
web server's group commit, many requests in one transaction. Every change is
a ``Channel Unsubscribed`` event with Source ``one_click`` and the Campaign ID
the link carried, as ``subscriptions.set_state`` writes it.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as core_select
from sqlmodel import Session

from app.core import bulk, clock, groups, landing, subscriptions
from app.core.errors import UnknownProfile
from app.core.landing import RECIPIENT, PageSettings
from app.core.ledger import EventRecord
from app.core.models import UNSUBSCRIBED, Campaign, Group


@dataclass(frozen=True)
class UnsubscribeScope:
    """What a one-click unsubscribe leaves: the campaign's groups, or all email."""

    # (id, name) of the campaign's "do not send to" groups, archived ones
    # included; empty means all email.
    groups: tuple[tuple[int, str], ...]

    @property
    def all_email(self) -> bool:
        return not self.groups

    @property
    def group_names(self) -> list[str]:
        return [name for _, name in self.groups]


def unsubscribe_scope(session: Session, campaign_id: int | None) -> UnsubscribeScope:
    """The campaign rule (DESIGN.md §1): its "do not send to" groups, else all email.

    A link without a campaign, or naming a campaign the store does not have,
    leaves all email: an unsubscribe link must always unsubscribe.
    """
    # Core statements built once: the one-click path runs this for every batch.
    listed = (
        session.connection().execute(_CAMPAIGN_GROUPS, {"id": campaign_id}).scalar()
        if campaign_id
        else None
    )
    if not listed:
        return UnsubscribeScope(groups=())
    ids = list(dict.fromkeys(int(i) for i in listed))
    found = {row.id: row.name for row in session.connection().execute(_GROUP_NAMES, {"ids": ids})}
    return UnsubscribeScope(groups=tuple((i, found[i]) for i in ids if i in found))


_CAMPAIGN = Campaign.__table__  # type: ignore[attr-defined]
_GROUP = Group.__table__  # type: ignore[attr-defined]
_CAMPAIGN_GROUPS = core_select(_CAMPAIGN.c.do_not_send_to).where(_CAMPAIGN.c.id == bindparam("id"))
_GROUP_NAMES = core_select(_GROUP.c.id, _GROUP.c.name).where(
    _GROUP.c.id.in_(bindparam("ids", expanding=True))
)


def _rows(session: Session, sql: str, params: Sequence[Any]) -> list[Any]:
    """The rows of ``sql`` (``?`` placeholders) sent as it is, through the connection.

    A batch's reads skip SQLAlchemy's statement handling (an expanding IN
    compiled anew for each batch size, result rows): a third less CPU than a
    Core statement for these few-row reads (bench/README.md), and still seen
    by the engine's listeners (``tests/core/test_query_plans.py`` explains them).
    """
    connection = session.connection()
    if connection.dialect.paramstyle != "qmark":  # psycopg; our SQL holds no other ? or %
        sql = sql.replace("?", "%s")
    return list(connection.exec_driver_sql(sql, tuple(params)))


def _people_for_update(session: Session, profile_ids: Sequence[int]) -> list[Any]:
    """(id, identity, all_email) of these people; on PostgreSQL locked, in id order
    (so batches cannot deadlock)."""
    lock = " FOR UPDATE" if session.get_bind().dialect.name == "postgresql" else ""
    rows: list[Any] = []
    for chunk in bulk.chunks(profile_ids, bulk.IN_CHUNK):
        marks = ", ".join(["?"] * len(chunk))
        sql = f"SELECT id, identity, all_email FROM {bulk.PROFILE.name} WHERE id IN ({marks})"
        rows += _rows(session, f"{sql} ORDER BY id{lock}", chunk)
    return rows


def _states_of(session: Session, profile_ids: Sequence[int]) -> list[Any]:
    """(profile id, group id, state) of every stored state of these people.

    By profile only (the primary key's lead column), the groups kept in
    Python: with "group_id IN" too, SQLite walked whole groups through the
    (group, state) index, 7-11 ms a batch at 1M profiles. A profile has few
    states.
    """
    rows: list[Any] = []
    table = bulk.GROUP_STATE.name
    for chunk in bulk.chunks(profile_ids, bulk.IN_CHUNK):
        marks = ", ".join(["?"] * len(chunk))
        sql = f"SELECT profile_id, group_id, state FROM {table} WHERE profile_id IN ({marks})"
        rows += _rows(session, sql, chunk)
    return rows


@dataclass(frozen=True)
class OneClickView:
    """What the unsubscribe confirmation page (``GET /u/``) shows."""

    settings: PageSettings
    email: str | None
    identity: str
    scope: UnsubscribeScope
    # True when every state the unsubscribe would change already is unsubscribed.
    already: bool


def one_click_view(
    session: Session, profile_id: int, campaign_id: int | None = None
) -> OneClickView:
    """The confirmation page for an unsubscribe link; reads only."""
    profile = landing.linked_profile(session, profile_id)
    assert profile.id is not None
    scope = unsubscribe_scope(session, campaign_id)
    if scope.all_email:
        already = profile.all_email == UNSUBSCRIBED
    else:
        stored = landing.stored_group_states(session, profile.id)
        already = all(stored.get(group_id) == UNSUBSCRIBED for group_id, _ in scope.groups)
    return OneClickView(
        settings=PageSettings.of(landing.get_settings(session)),
        email=profile.email,
        identity=profile.identity,
        scope=scope,
        already=already,
    )


def one_click(
    *,
    session: Session,
    profile_id: int,
    campaign_id: int | None,
    source: str = "one_click",
    actor: str = RECIPIENT,
) -> tuple[UnsubscribeScope, list[EventRecord]]:
    """Unsubscribe as the campaign rule says; returns the scope and the events written.

    Unsubscribing twice writes nothing the second time. A group's stored
    state is set even where its policy already means "not subscribed"
    (opt-in, never set): the unsubscribe is then explicit and survives a
    later change of the group's policy. Call it in a write session.
    """
    profile = landing.linked_profile(session, profile_id, lock=True)
    scope = unsubscribe_scope(session, campaign_id)
    if scope.all_email:
        return scope, landing.set_state_records(
            session, profile, None, UNSUBSCRIBED, source, actor, campaign_id
        )
    events: list[EventRecord] = []
    for group_id, _ in scope.groups:
        group = groups.get_group(session, group_id)
        events += landing.set_state_records(
            session, profile, group, UNSUBSCRIBED, source, actor, campaign_id
        )
    return scope, events


def one_click_many(
    *,
    session: Session,
    requests: Sequence[tuple[int, int | None]],
    source: str = "one_click",
    actor: str = RECIPIENT,
    now: datetime | None = None,
    all_email: bool = False,
) -> list[UnsubscribeScope | UnknownProfile]:
    """Many one-click unsubscribes in one transaction (the server's group commit).

    ``requests`` are (profile id, campaign id) pairs, as their links say.
    Each gets the same changes ``one_click`` would make, written with
    ``subscriptions.apply_changes`` (the same rows and ``Channel Unsubscribed``
    events as ``set_state``) after one read of the people and their states
    for the whole batch: per request, the scope it left, or ``UnknownProfile``
    for a link naming nobody (the others still go through). A person named
    twice is changed once. With ``all_email`` every request leaves all email,
    whatever its campaign's groups (a spam complaint, ``app.core.inbound``).
    Call it in a write session; nothing is visible until it commits.
    """
    profile_ids = sorted({profile_id for profile_id, _ in requests})
    people = {
        pid: (identity, all_email)
        for pid, identity, all_email in _people_for_update(session, profile_ids)
    }
    campaign_ids = {campaign_id for _, campaign_id in requests}
    scopes = {
        campaign_id: UnsubscribeScope(groups=())
        if all_email
        else unsubscribe_scope(session, campaign_id)
        for campaign_id in campaign_ids
    }
    group_ids = {group_id for scope in scopes.values() for group_id, _ in scope.groups}
    # A change names its group by id and name, as the scopes just read them (in
    # this transaction): no group row is loaded through the ORM.
    ts = now or clock.now()
    stored: dict[tuple[int, int], str] = {}
    if group_ids and people:
        rows = _states_of(session, sorted(people))
        stored = {(pid, gid): state for pid, gid, state in rows if gid in group_ids}
    channel = {pid: all_email for pid, (_, all_email) in people.items()}
    plans: dict[int | None, list[subscriptions.StateChange]] = {}
    results: list[UnsubscribeScope | UnknownProfile] = []
    for profile_id, campaign_id in requests:
        person = people.get(profile_id)
        if person is None:
            results.append(
                UnknownProfile("this link names a recipient we no longer know", field="token")
            )
            continue
        identity = person[0]
        scope = scopes[campaign_id]
        plan = plans.setdefault(campaign_id, [])
        if scope.all_email:
            old = channel[profile_id]
            if old != UNSUBSCRIBED:
                plan.append(
                    subscriptions.StateChange(profile_id, identity, None, None, old, UNSUBSCRIBED)
                )
                channel[profile_id] = UNSUBSCRIBED
        else:
            for group_id, group_name in scope.groups:
                key = (profile_id, group_id)
                previous = stored.get(key)
                if previous != UNSUBSCRIBED:
                    plan.append(
                        subscriptions.StateChange(
                            profile_id, identity, group_id, group_name, previous, UNSUBSCRIBED
                        )
                    )
                    stored[key] = UNSUBSCRIBED
        results.append(scope)
    for campaign_id, plan in plans.items():
        if plan:
            subscriptions.apply_changes(
                session=session,
                changes=plan,
                source=source,
                actor=actor,
                campaign_id=campaign_id,
                now=ts,
            )
    return results
