"""The email landing page (preference center): its settings and what it does.

Settings live in one row (``LandingSettings``, id 1); a store that never saved
them reads the defaults. Which groups the page shows is a fact of each group
(``shown_on_landing_page``, active groups only), edited through
``groups.update_group`` so it is a ``Group Updated`` event like any other.

The page's services are plain functions the HTTP server (``app.web``) and the
console's preview share: ``page_for`` reads what a recipient sees,
``save_choices`` saves the form (RFC 8058's one-click unsubscribe is in
``one_click``, acting as a recipient from the console in ``recipient``).
They change states only through ``subscriptions.set_state``, so
every change is one ``Channel Unsubscribed`` event with its Source and the
Campaign ID the link carried.
"""

import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from app.core import actors, clock, groups, ledger, subscriptions
from app.core.errors import InvalidInput, RuleRefused, UnknownGroup, UnknownProfile
from app.core.ledger import EventRecord
from app.core.models import (
    STATES,
    STATUS_ACTIVE,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Group,
    GroupState,
    LandingSettings,
    Profile,
)
from app.core.profiles import effective_state

# The Actor of changes a recipient makes on the page or by one click: the
# person is named by the event's identity; this says it was them.
RECIPIENT = "recipient"

# field -> (label in messages, longest allowed, required)
SETTING_RULES: dict[str, tuple[str, int, bool]] = {
    "title": ("Title", 120, True),
    "intro": ("Intro text", 1000, False),
    "all_email_wording": ("The 'unsubscribe from all email' wording", 200, True),
    "confirmation_text": ("Confirmation text", 500, True),
    "base_url": ("Public base URL", 500, True),
}
# Event property names for the settings, as the ledger shows them.
SETTING_LABELS = {
    "title": "Title",
    "intro": "Intro",
    "all_email_wording": "All Email Wording",
    "confirmation_text": "Confirmation Text",
    "base_url": "Base URL",
}


class PageOutdated(RuleRefused):
    """The form was made for other groups than the page shows now; nothing was saved."""


# --- settings -----------------------------------------------------------------


def get_settings(session: Session) -> LandingSettings:
    """The landing page settings (defaults when never saved); not added to the session."""
    row = session.get(LandingSettings, 1)
    if row is not None:
        return row
    return LandingSettings(id=1, updated_at=clock.now())


def _clean_text(field: str, value: str) -> str:
    """A setting as stored: trimmed, within its length, required ones non-empty."""
    label, longest, required = SETTING_RULES[field]
    cleaned = (value or "").strip()
    if required and not cleaned:
        raise InvalidInput(f"{label} is required", field=field)
    if len(cleaned) > longest:
        raise InvalidInput(
            f"{label} is {len(cleaned)} characters long; the most is {longest}", field=field
        )
    # The intro may span lines; nothing else may hold a control character.
    allowed = {"\n", "\r", "\t"} if field == "intro" else set()
    if any(unicodedata.category(ch) in ("Cc", "Cf") and ch not in allowed for ch in cleaned):
        raise InvalidInput(f"{label} contains a control character", field=field)
    return cleaned


def clean_base_url(value: str) -> str:
    """The public base URL as stored: an http(s) URL with a host, no query, no trailing /.

    It goes into every message's links and List-Unsubscribe header, so it may
    not hold ``<``, ``>``, ``"`` (they would end the header's ``<...>`` or an
    HTML attribute) nor a user part (``user:pass@``: a link that shows one host
    and goes to another, or hands out a password).
    """
    cleaned = _clean_text("base_url", value)
    bad = sorted({ch for ch in cleaned if ch in '<>"'})
    if bad:
        raise InvalidInput(
            f"Public base URL {cleaned!r} must not contain {' or '.join(bad)}", field="base_url"
        )
    parts = urlsplit(cleaned)
    if "@" in parts.netloc:
        raise InvalidInput(
            f"Public base URL {cleaned!r} must not have a user part (user:password@ before "
            "the host); give just the address, such as https://email.example.com",
            field="base_url",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(
            f"Public base URL {cleaned!r} must start with http:// or https:// and name a host "
            "(such as https://email.example.com)",
            field="base_url",
        )
    if any(ch.isspace() for ch in cleaned) or parts.query or parts.fragment:
        raise InvalidInput(
            f"Public base URL {cleaned!r} must not contain spaces, a ?query or a #fragment",
            field="base_url",
        )
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError:
        raise InvalidInput(
            f"Public base URL {cleaned!r} has a port that is not a number from 0 to 65535",
            field="base_url",
        ) from None
    return cleaned.rstrip("/")


def clean_setting(field: str, value: str) -> str:
    """One setting as ``update_settings`` would store it, or ``InvalidInput`` naming the field.

    For forms that check each field as it is typed (the console's landing page section).
    """
    return clean_base_url(value) if field == "base_url" else _clean_text(field, value)


def update_settings(
    *,
    session: Session,
    actor: str,
    title: str | None = None,
    intro: str | None = None,
    all_email_wording: str | None = None,
    confirmation_text: str | None = None,
    base_url: str | None = None,
    source: str = "console",
    now: datetime | None = None,
) -> LandingSettings:
    """Change the page's wording or base URL (None keeps a setting as it is).

    Every value is checked before anything is written. Writes one
    ``Landing Page Updated`` event listing what changed, or nothing when
    nothing did. Call it in a write session.
    """
    actors.require(session, actors.OWNER, "changing the landing page settings")
    given = {
        "title": title,
        "intro": intro,
        "all_email_wording": all_email_wording,
        "confirmation_text": confirmation_text,
        "base_url": base_url,
    }
    cleaned = {
        field: clean_base_url(value) if field == "base_url" else _clean_text(field, value)
        for field, value in given.items()
        if value is not None
    }
    row = session.get(LandingSettings, 1, populate_existing=True)
    ts = now or clock.now()
    if row is None:
        row = LandingSettings(id=1, updated_at=ts)
    changes = {
        SETTING_LABELS[field]: [getattr(row, field), value]
        for field, value in cleaned.items()
        if getattr(row, field) != value
    }
    if not changes:
        return row
    for field, value in cleaned.items():
        setattr(row, field, value)
    row.updated_at = ts
    session.add(row)
    session.flush()
    ledger.record(
        session,
        name=ledger.LANDING_PAGE_UPDATED,
        source=source,
        actor=actor,
        now=ts,
        properties={"Changes": changes},
    )
    return row


def shown_groups(session: Session) -> list[Group]:
    """The groups the page shows: active and marked shown, by name."""
    return list(
        session.exec(
            select(Group)
            .where(col(Group.status) == STATUS_ACTIVE, col(Group.shown_on_landing_page))
            .order_by(col(Group.name_key))
        ).all()
    )


def set_shown_groups(
    *, session: Session, actor: str, group_ids: Collection[int], source: str = "console"
) -> list[Group]:
    """Show exactly these active groups on the page (and hide the other active ones).

    Each group whose visibility changes gets its ``Group Updated`` event
    (through ``groups.update_group``). An unknown or archived id is refused
    before anything changes. Returns the groups shown now.
    """
    actors.require(session, actors.OWNER, "choosing the landing page's groups")
    wanted = set(group_ids)
    active = {g.id: g for g in groups.list_groups(session, status=STATUS_ACTIVE) if g.id}
    for group_id in sorted(wanted - set(active)):
        group = session.get(Group, group_id)
        if group is None:
            raise UnknownGroup(f"No group has id {group_id}", field="groups")
        raise InvalidInput(
            f"Group {group.name!r} is archived: only active groups can be shown on the page",
            field="groups",
        )
    for active_id, group in active.items():
        show = active_id in wanted
        if group.shown_on_landing_page != show:
            groups.update_group(
                session=session,
                group_id=active_id,
                shown_on_landing_page=show,
                actor=actor,
                source=source,
            )
    return shown_groups(session)


# --- what a recipient sees --------------------------------------------------------


@dataclass(frozen=True)
class PageSettings:
    """The page's wording, as plain data (safe to hand between threads)."""

    title: str
    intro: str
    all_email_wording: str
    confirmation_text: str
    base_url: str

    @classmethod
    def of(cls, row: LandingSettings) -> "PageSettings":
        return cls(
            title=row.title,
            intro=row.intro,
            all_email_wording=row.all_email_wording,
            confirmation_text=row.confirmation_text,
            base_url=row.base_url,
        )


# What a store that never saved its settings shows (the model's defaults).
DEFAULT_SETTINGS = PageSettings(
    **{name: LandingSettings.model_fields[name].default for name in SETTING_RULES}
)
_SETTINGS_TABLE = LandingSettings.__table__  # type: ignore[attr-defined]
_SETTINGS = core_select(
    *(_SETTINGS_TABLE.c[name] for name in SETTING_RULES),
).where(_SETTINGS_TABLE.c.id == 1)


def page_settings(session: Session) -> PageSettings:
    """The page's wording as plain data, in one Core query (read for every one-click batch)."""
    row = session.connection().execute(_SETTINGS).first()
    if row is None:
        return DEFAULT_SETTINGS
    return PageSettings(**dict(zip(SETTING_RULES, row, strict=True)))


@dataclass(frozen=True)
class PageGroup:
    """One group on the page, with the recipient's effective state."""

    id: int
    name: str
    description: str
    state: str

    @property
    def subscribed(self) -> bool:
        return self.state == SUBSCRIBED


@dataclass(frozen=True)
class LandingPage:
    """Everything the preferences page shows one recipient."""

    settings: PageSettings
    profile_id: int
    identity: str
    email: str | None
    name: str
    campaign_id: int | None
    groups: tuple[PageGroup, ...]
    all_email: str

    @property
    def all_email_unsubscribed(self) -> bool:
        return self.all_email == UNSUBSCRIBED

    @property
    def group_ids(self) -> frozenset[int]:
        return frozenset(g.id for g in self.groups)


def linked_profile(session: Session, profile_id: int, *, lock: bool = False) -> Profile:
    """The profile a link names; ``lock`` holds its row until commit (PostgreSQL)."""
    query = select(Profile).where(col(Profile.id) == profile_id)
    if lock:
        # populate_existing: a copy loaded before the lock may be stale.
        query = query.with_for_update().execution_options(populate_existing=True)
    profile = session.exec(query).first()
    if profile is None:
        raise UnknownProfile("this link names a recipient we no longer know", field="token")
    return profile


def stored_group_states(session: Session, profile_id: int) -> dict[int, str]:
    """The person's stored states, by group id (groups never set are missing)."""
    rows = session.exec(
        select(GroupState.group_id, GroupState.state).where(
            col(GroupState.profile_id) == profile_id
        )
    ).all()
    return {group_id: state for group_id, state in rows}


def _page(session: Session, profile: Profile, campaign_id: int | None) -> LandingPage:
    assert profile.id is not None
    stored = stored_group_states(session, profile.id)
    return LandingPage(
        settings=PageSettings.of(get_settings(session)),
        profile_id=profile.id,
        identity=profile.identity,
        email=profile.email,
        name=profile.name,
        campaign_id=campaign_id,
        groups=tuple(
            PageGroup(
                id=g.id,
                name=g.name,
                description=g.description,
                state=effective_state(g.policy, stored.get(g.id)),
            )
            for g in shown_groups(session)
            if g.id is not None
        ),
        all_email=profile.all_email,
    )


def page_for(
    session: Session, profile_id: int, campaign_id: int | None = None, *, lock: bool = False
) -> LandingPage:
    """The preferences page of the profile a link names (``UnknownProfile`` if gone).

    ``lock`` (in a write session) locks the person until commit, so the states
    read stay true for a ``save_choices`` built from them (PostgreSQL; SQLite's
    write lock already holds them).
    """
    return _page(session, linked_profile(session, profile_id, lock=lock), campaign_id)


def save_choices(
    *,
    session: Session,
    profile_id: int,
    campaign_id: int | None,
    subscribed_group_ids: Collection[int],
    all_email: str,
    source: str = "landing_page",
    actor: str = RECIPIENT,
    page_group_ids: Collection[int] | None = None,
) -> list[EventRecord]:
    """Save the page's form: one ``set_state`` per state that really changes.

    ``subscribed_group_ids`` are the ticked groups: every shown group not in it
    is to be unsubscribed. A group the form left as it is (its effective state
    already matches) is not touched, so a never-set state stays never set.
    ``page_group_ids`` are the groups the form was made for (None: the page as
    it is now); when they differ from the groups shown now, ``PageOutdated``
    is raised, as unticked boxes would otherwise unsubscribe from groups the
    person never saw. Any id not on the page is ``InvalidInput``. Nothing is
    written unless everything checks out. Call it in a write session; returns
    the events written, in order.
    """
    if all_email not in STATES:
        raise InvalidInput(
            f"All email must be one of: {', '.join(STATES)} (not {all_email!r})",
            field="all_email",
        )
    # Lock the person first, so the states read below stay true until commit
    # and two saves of one profile at once are applied one after the other.
    profile = linked_profile(session, profile_id, lock=True)
    assert profile.id is not None
    page = _page(session, profile, campaign_id)
    shown = page.group_ids
    if page_group_ids is not None and set(page_group_ids) != shown:
        raise PageOutdated(
            "the groups on this page changed since it was opened; nothing was saved. "
            "Check your choices and save again",
            field="shown",
        )
    ticked = set(subscribed_group_ids)
    stray = sorted(ticked - shown)
    if stray:
        raise InvalidInput(
            f"group {stray[0]} is not on this page; nothing was saved", field="group"
        )
    events: list[EventRecord] = []
    for item in page.groups:
        wanted = SUBSCRIBED if item.id in ticked else UNSUBSCRIBED
        if item.state == wanted:
            continue
        group = groups.get_group(session, item.id)
        events += set_state_records(session, profile, group, wanted, source, actor, campaign_id)
    if profile.all_email != all_email:
        events += set_state_records(session, profile, None, all_email, source, actor, campaign_id)
    return events


def set_state_records(
    session: Session,
    profile: Profile,
    group: Group | None,
    status: str,
    source: str,
    actor: str,
    campaign_id: int | None,
) -> list[EventRecord]:
    """``subscriptions.set_state``, its event as a list of records (empty: nothing changed)."""
    event = subscriptions.set_state(
        session=session,
        profile=profile,
        group=group,
        status=status,
        source=source,
        actor=actor,
        campaign_id=campaign_id,
    )
    return [ledger.to_record(event)] if event is not None else []
