"""Subscription group lifecycle: create, update, archive, unarchive, list, count.

Rules (DESIGN.md §1): names are 1-64 characters after trimming and unique
case-insensitively across all groups, archived ones included; descriptions
are at most 280 characters; at most 50 groups are active, checked inside the
write transaction; groups are never deleted. Every action writes its admin
event to the ledger in the same transaction.
"""

import unicodedata
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, text
from sqlmodel import Session, col, select

from app.core import actors, clock, ledger
from app.core.errors import (
    GroupLimitReached,
    InvalidInput,
    NameTaken,
    RuleRefused,
    UnknownGroup,
    WrongStatus,
)
from app.core.limits import MAX_ACTIVE_GROUPS
from app.core.models import (
    POLICIES,
    POLICY_OPT_IN,
    STATUS_ACTIVE,
    STATUS_ARCHIVED,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Group,
    GroupState,
    Profile,
)
from app.core.text_rules import refuse_controls

NAME_MAX = 64
DESCRIPTION_MAX = 280
STATUS_FILTERS = ("active", "archived", "all")


def limit_message(active: int) -> str:
    """What a user reads when the limit refuses them."""
    return f"{active} of {MAX_ACTIVE_GROUPS} groups are active: archive one to make room"


def clean_name(name: str) -> str:
    """The name as stored: trimmed; refused if blank, too long or holding control characters."""
    cleaned = (name or "").strip()
    if not cleaned:
        raise InvalidInput("Name is required: type 1 to 64 characters", field="name")
    if len(cleaned) > NAME_MAX:
        raise InvalidInput(
            f"Name is {len(cleaned)} characters long; the most is {NAME_MAX}", field="name"
        )
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in cleaned):
        raise InvalidInput("Name contains a control character (tab, newline …)", field="name")
    return cleaned


def name_key(name: str) -> str:
    """The case-insensitive key a name is unique by."""
    return unicodedata.normalize("NFKC", name).casefold()


def clean_description(description: str | None) -> str:
    """The description as stored: trimmed, one line, at most 280 characters."""
    cleaned = (description or "").strip()
    if len(cleaned) > DESCRIPTION_MAX:
        raise InvalidInput(
            f"Description is {len(cleaned)} characters long; the most is {DESCRIPTION_MAX}",
            field="description",
        )
    return refuse_controls(cleaned, what="Description", field="description")


def clean_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise InvalidInput(
            f"Policy {policy!r} is not one of: {', '.join(POLICIES)}", field="policy"
        )
    return policy


def _lock_groups(session: Session) -> None:
    """Hold the group lock until commit, so the active count cannot change under us.

    SQLite: write sessions already hold the file's write lock from BEGIN
    IMMEDIATE. PostgreSQL: a transaction-scoped advisory lock.
    """
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(727050)"))
    elif not session.info.get("write"):
        raise RuntimeError("group changes need a write session (Store.write())")


def active_count(session: Session) -> int:
    """How many groups are active now."""
    return int(
        session.exec(
            select(func.count()).select_from(Group).where(col(Group.status) == STATUS_ACTIVE)
        ).one()
    )


def _check_name_free(session: Session, key: str, *, except_id: int | None = None) -> None:
    query = select(Group).where(col(Group.name_key) == key)
    if except_id is not None:
        query = query.where(col(Group.id) != except_id)
    other = session.exec(query).first()
    if other is not None:
        where = " (archived)" if other.status == STATUS_ARCHIVED else ""
        raise NameTaken(
            f"A group named {other.name!r}{where} already exists; names are unique", field="name"
        )


def _check_room(session: Session) -> None:
    active = active_count(session)
    if active >= MAX_ACTIVE_GROUPS:
        raise GroupLimitReached(limit_message(active))


def _group_properties(group: Group) -> dict[str, object]:
    return {"Group": group.name, "Group ID": group.id, "Channel": "Email"}


def create_group(
    *,
    session: Session,
    name: str,
    description: str = "",
    policy: str = "opt-out",
    shown_on_landing_page: bool = True,
    actor: str,
    source: str = "console",
    now: datetime | None = None,
) -> Group:
    """Create an active group; refused when the name is taken or 50 are active."""
    actors.require(session, actors.EDITOR, "creating a group")
    cleaned = clean_name(name)
    desc = clean_description(description)
    policy = clean_policy(policy)
    _lock_groups(session)
    key = name_key(cleaned)
    _check_name_free(session, key)
    _check_room(session)
    ts = now or clock.now()
    group = Group(
        name=cleaned,
        name_key=key,
        description=desc,
        policy=policy,
        shown_on_landing_page=shown_on_landing_page,
        status=STATUS_ACTIVE,
        created_at=ts,
        updated_at=ts,
        created_by=actor,
        updated_by=actor,
    )
    session.add(group)
    session.flush()
    ledger.record(
        session,
        name=ledger.GROUP_CREATED,
        source=source,
        actor=actor,
        group_id=group.id,
        now=ts,
        properties={
            **_group_properties(group),
            "Description": desc,
            "Policy": policy,
            "Shown On Landing Page": shown_on_landing_page,
        },
    )
    return group


def get_group(session: Session, group_id: int, *, fresh: bool = False) -> Group:
    """The group with this id; ``fresh`` re-reads it even if the session holds it.

    The services ask for a fresh copy after taking the group lock: a copy the
    session loaded before the lock may predate another admin's change.
    """
    group = session.get(Group, group_id, populate_existing=fresh)
    if group is None:
        raise UnknownGroup(f"No group has id {group_id}")
    return group


def find_group(session: Session, name: str) -> Group:
    """The group with this name (case-insensitive, archived included)."""
    key = name_key((name or "").strip())
    group = session.exec(select(Group).where(col(Group.name_key) == key)).first()
    if group is None:
        raise UnknownGroup(
            f"No group is named {name!r}; `subgroups groups list --all` lists them", field="group"
        )
    return group


@dataclass(frozen=True)
class PolicyChange:
    """What changing a group's default policy does to people's effective state.

    Only people with no stored state for the group follow the policy: they
    are the ones whose effective state flips. Those who chose keep their
    choice.
    """

    group: str
    old_policy: str
    new_policy: str
    to_unsubscribed: int  # subscribed -> unsubscribed (opt-out -> opt-in)
    to_subscribed: int  # unsubscribed -> subscribed (opt-in -> opt-out)

    @property
    def affected(self) -> int:
        return self.to_unsubscribed + self.to_subscribed

    def describe(self) -> str:
        """One line: ``changing G from opt-out to opt-in turns N people from … to …``."""
        if self.to_unsubscribed:
            n, old, new = self.to_unsubscribed, SUBSCRIBED, UNSUBSCRIBED
        else:
            n, old, new = self.to_subscribed, UNSUBSCRIBED, SUBSCRIBED
        people = "person" if n == 1 else "people"
        return (
            f"changing {self.group} from {self.old_policy} to {self.new_policy} turns "
            f"{n:,} {people} from {old} to {new}"
        )


class PolicyChangeUnconfirmed(RuleRefused):
    """A policy change would flip people's effective state and was not confirmed."""

    def __init__(self, change: PolicyChange, *, hint: str = "") -> None:
        super().__init__(change.describe() + (f"; {hint}" if hint else ""), field="policy")
        self.change = change


def policy_change(session: Session, *, group_id: int, policy: str) -> PolicyChange:
    """How many people's effective state changing ``group_id`` to ``policy`` would flip."""
    policy = clean_policy(policy)
    group = get_group(session, group_id)
    flipped = 0
    if policy != group.policy:
        total = int(session.exec(select(func.count()).select_from(Profile)).one())
        chose = int(
            session.exec(
                select(func.count())
                .select_from(GroupState)
                .where(col(GroupState.group_id) == group_id)
            ).one()
        )
        flipped = total - chose
    to_unsubscribed = flipped if policy == POLICY_OPT_IN else 0
    return PolicyChange(
        group.name, group.policy, policy, to_unsubscribed, flipped - to_unsubscribed
    )


def update_group(
    *,
    session: Session,
    group_id: int,
    name: str | None = None,
    description: str | None = None,
    policy: str | None = None,
    shown_on_landing_page: bool | None = None,
    accept_consent_change: bool = False,
    actor: str,
    source: str = "console",
    now: datetime | None = None,
) -> Group:
    """Change a group's name, description, policy or landing-page visibility.

    Renaming keeps the id; past events keep the name the group had then.
    Writes one ``Group Updated`` event listing what changed, or nothing when
    nothing did. A policy change that flips anyone's effective state (people
    who never chose follow the policy) is refused with
    ``PolicyChangeUnconfirmed`` unless ``accept_consent_change``: consent is
    never flipped silently. The event then records the old and new policy
    and how many people it affected.
    """
    actors.require(session, actors.EDITOR, "changing a group")
    changes: dict[str, list[object]] = {}
    new_name = clean_name(name) if name is not None else None
    new_desc = clean_description(description) if description is not None else None
    new_policy = clean_policy(policy) if policy is not None else None
    _lock_groups(session)
    group = get_group(session, group_id, fresh=True)
    old_name = group.name
    policy_facts: dict[str, object] = {}
    if new_policy is not None and new_policy != group.policy:
        # Counted under the group lock, before anything changes: the number asked about.
        change = policy_change(session, group_id=group_id, policy=new_policy)
        if change.affected and not accept_consent_change:
            raise PolicyChangeUnconfirmed(change)
        policy_facts = {
            "Old Policy": group.policy,
            "New Policy": new_policy,
            "Affected": change.affected,
        }
    if new_name is not None and new_name != group.name:
        key = name_key(new_name)
        _check_name_free(session, key, except_id=group.id)
        changes["Name"] = [group.name, new_name]
        group.name, group.name_key = new_name, key
    if new_desc is not None and new_desc != group.description:
        changes["Description"] = [group.description, new_desc]
        group.description = new_desc
    if new_policy is not None and new_policy != group.policy:
        changes["Policy"] = [group.policy, new_policy]
        group.policy = new_policy
    if shown_on_landing_page is not None and shown_on_landing_page != group.shown_on_landing_page:
        changes["Shown On Landing Page"] = [group.shown_on_landing_page, shown_on_landing_page]
        group.shown_on_landing_page = shown_on_landing_page
    if not changes:
        return group
    ts = now or clock.now()
    group.updated_at, group.updated_by = ts, actor
    session.add(group)
    session.flush()
    ledger.record(
        session,
        name=ledger.GROUP_UPDATED,
        source=source,
        actor=actor,
        group_id=group.id,
        now=ts,
        properties={
            **_group_properties(group),
            "Previous Name": old_name,
            "Changes": changes,
            **policy_facts,
        },
    )
    return group


def _set_status(
    session: Session, group_id: int, status: str, *, actor: str, source: str, now: datetime | None
) -> Group:
    """Archive or unarchive, with the limit checked for unarchive and the admin event."""
    doing = "archiving a group" if status == STATUS_ARCHIVED else "unarchiving a group"
    actors.require(session, actors.EDITOR, doing)
    _lock_groups(session)
    group = get_group(session, group_id, fresh=True)
    if group.status == status:
        raise WrongStatus(f"Group {group.name!r} is already {status}")
    if status == STATUS_ACTIVE:
        _check_room(session)
    ts = now or clock.now()
    group.status = status
    group.archived_at = ts if status == STATUS_ARCHIVED else None
    group.updated_at, group.updated_by = ts, actor
    session.add(group)
    session.flush()
    ledger.record(
        session,
        name=ledger.GROUP_ARCHIVED if status == STATUS_ARCHIVED else ledger.GROUP_UNARCHIVED,
        source=source,
        actor=actor,
        group_id=group.id,
        now=ts,
        properties=_group_properties(group),
    )
    return group


def archive_group(
    *,
    session: Session,
    group_id: int,
    actor: str,
    source: str = "console",
    now: datetime | None = None,
) -> Group:
    """Archive a group: it frees a slot and leaves pickers, but its opt-outs stay enforced."""
    return _set_status(session, group_id, STATUS_ARCHIVED, actor=actor, source=source, now=now)


def unarchive_group(
    *,
    session: Session,
    group_id: int,
    actor: str,
    source: str = "console",
    now: datetime | None = None,
) -> Group:
    """Bring an archived group back, if a slot is free."""
    return _set_status(session, group_id, STATUS_ACTIVE, actor=actor, source=source, now=now)


def list_groups(session: Session, *, status: str = "active") -> list[Group]:
    """Groups by status filter (active, archived or all), by name."""
    if status not in STATUS_FILTERS:
        raise InvalidInput(f"Status filter {status!r} is not one of: {', '.join(STATUS_FILTERS)}")
    query = select(Group)
    if status != "all":
        query = query.where(col(Group.status) == status)
    return list(session.exec(query.order_by(col(Group.name_key))).all())


@dataclass(frozen=True)
class GroupCounts:
    """Effective subscribed and unsubscribed profiles of one group."""

    subscribed: int
    unsubscribed: int


def group_counts(session: Session) -> dict[int, GroupCounts]:
    """Effective counts per group, from the stored states and each group's policy.

    A never-set state counts as the policy says (opt-out: subscribed). The
    channel-wide email opt-out is not folded in here: it is a separate fact
    shown beside these counts.
    """
    total = int(session.exec(select(func.count()).select_from(Profile)).one())
    stored: dict[tuple[int, str], int] = {}
    rows = session.exec(
        select(GroupState.group_id, GroupState.state, func.count()).group_by(
            col(GroupState.group_id), col(GroupState.state)
        )
    ).all()
    for stored_group_id, state, n in rows:
        stored[(stored_group_id, state)] = int(n)
    result: dict[int, GroupCounts] = {}
    for group_id, policy in session.exec(select(Group.id, Group.policy)).all():
        assert group_id is not None
        subscribed = stored.get((group_id, SUBSCRIBED), 0)
        unsubscribed = stored.get((group_id, UNSUBSCRIBED), 0)
        if policy == POLICY_OPT_IN:
            result[group_id] = GroupCounts(subscribed, total - subscribed)
        else:
            result[group_id] = GroupCounts(total - unsubscribed, unsubscribed)
    return result


def group_to_json(group: Group) -> dict[str, object]:
    """The group's JSON shape (DESIGN.md §2)."""
    return {
        "id": group.id,
        "name": group.name,
        "description": group.description,
        "channel": group.channel,
        "policy": group.policy,
        "status": group.status,
        "shown_on_landing_page": group.shown_on_landing_page,
        "created_at": group.created_at.isoformat(),
        "updated_at": group.updated_at.isoformat(),
        "archived_at": group.archived_at.isoformat() if group.archived_at else None,
        "created_by": group.created_by,
        "updated_by": group.updated_by,
    }
