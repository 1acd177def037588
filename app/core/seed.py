"""Sample data: a store worth looking at.

``load_sample_data`` loads ``sample_data/``: a dozen believable groups (one
archived) and about 3,000 profiles, with a ledger history spread over the
last 120 days so every stored state has a story ("left Promotions in June,
came back in August"). Groups are made by ``groups.create_group``; states
by ``subscriptions.apply_changes``, so every stored state is explained by
its latest ledger event. It refuses a store that already holds groups or
profiles. The names, plans and helpers here are shared with
``app.core.synthetic``, which makes stores worth measuring.

``profiles.csv`` is generated once by ``write_sample_profiles_csv`` (seeded,
so the same file every time) and committed; regenerate it with
``python -c "from app.core.seed import write_sample_profiles_csv as w; w()"``.
"""

import csv
import json
import random
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from app.core import actors, bulk, clock, ledger, migrations
from app.core import groups as group_service
from app.core.errors import InvalidInput, RuleRefused
from app.core.models import (
    POLICIES,
    POLICY_OPT_OUT,
    STATUS_ACTIVE,
    STATUS_ARCHIVED,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Group,
    Profile,
)
from app.core.store import Store
from app.core.subscriptions import StateChange, apply_changes
from app.resources import resource_dir

Progress = Callable[[int, int], None]

GROUPS_FILE = "groups.json"
PROFILES_FILE = "profiles.csv"
NAMES_FILE = "names.json"
GROUP_COLUMN_PREFIX = "group:"
SAMPLE_PROFILES = 3000
SAMPLE_PROFILES_SEED = 20_261_120
SAMPLE_HISTORY_SEED = 120
HISTORY_DAYS = 120
SOURCE = "import"

UNSUBSCRIBE_REASONS = (
    "Too many emails",
    "Not relevant to me any more",
    "I never signed up for this",
    "Switching to the weekly digest",
    "Moved to another company",
    "Emails land at a bad time",
)
RESUBSCRIBE_REASONS = (
    "Missed the updates",
    "Changed my mind",
    "Back on the team's account",
)

# Reserved example domains only (RFC 2606): never a real mailbox.
EMAIL_DOMAINS = (
    ("example.com", 40),
    ("example.org", 15),
    ("example.net", 15),
    ("mail.example.com", 12),
    ("post.example.org", 10),
    ("inbox.example.net", 8),
)
PLANS = (("free", 45), ("starter", 25), ("pro", 22), ("enterprise", 8))
# Believable rates for the sample groups (others get random ones).
GROUP_RATES: dict[str, tuple[float, float]] = {
    "Promotions": (0.16, 0.02),
    "Weekly digest": (0.12, 0.03),
    "Newsletter": (0.09, 0.04),
    "Events & webinars": (0.07, 0.03),
    "Product updates": (0.04, 0.05),
    "Holiday sale 2025": (0.11, 0.01),
    "Partner offers": (0.01, 0.06),
    "Surveys & feedback": (0.01, 0.1),
    "Release notes": (0.02, 0.14),
    "Beta program": (0.005, 0.03),
}
ASCII_FOLD = str.maketrans({"ß": "ss", "ł": "l", "Ł": "L", "ø": "o", "Ø": "O", "æ": "ae", "'": ""})


@dataclass(frozen=True)
class GroupSpec:
    """One group of ``groups.json``."""

    name: str
    description: str
    policy: str
    shown_on_landing_page: bool
    status: str


@dataclass(frozen=True)
class NamePool:
    """Names common in one country, and how often the country appears."""

    country: str
    weight: int
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


@dataclass(frozen=True)
class SeedSummary:
    """What a seed wrote; ``events`` counts the subscription changes (Channel Unsubscribed)."""

    groups: int
    profiles: int
    states: int
    events: int
    seconds: float


def sample_data_dir() -> Path:
    """The sample_data folder: in the package when installed, at the top of a checkout."""
    return resource_dir("sample_data")


def name_pools() -> list[NamePool]:
    """The names of ``sample_data/names.json``, several countries' worth."""
    raw = json.loads((sample_data_dir() / NAMES_FILE).read_text(encoding="utf-8"))
    return [
        NamePool(
            country=item["country"],
            weight=int(item["weight"]),
            first_names=tuple(item["first_names"]),
            last_names=tuple(item["last_names"]),
        )
        for item in raw
    ]


def store_is_empty(session: Session) -> bool:
    """True when the store holds no group and no profile (a seed may load into it)."""
    has_group = session.exec(select(Group.id).limit(1)).first() is not None
    has_profile = session.exec(select(Profile.id).limit(1)).first() is not None
    return not (has_group or has_profile)


def refuse_unless_empty(session: Session) -> None:
    """Refuse (``RuleRefused``) a store holding groups or profiles: seeds fill empty ones."""
    if store_is_empty(session):
        return
    group_count = session.exec(select(func.count()).select_from(Group)).one()
    profile_count = session.exec(select(func.count()).select_from(Profile)).one()
    raise RuleRefused(
        f"The store already holds {group_count:,} groups and {profile_count:,} profiles; "
        "sample data loads only into an empty store (give a new --db path)"
    )


# --- reading sample_data/ -------------------------------------------------------


def read_group_specs(path: Path) -> list[GroupSpec]:
    """The groups of a ``groups.json`` file, checked."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: cannot read the groups: {exc}") from exc
    if not isinstance(raw, list):
        raise InvalidInput(f"{path}: expected a JSON list of groups")
    specs: list[GroupSpec] = []
    for index, item in enumerate(raw):
        where = f"{path}: group {index + 1}"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise InvalidInput(f"{where}: expected an object with a name")
        policy = item.get("policy", POLICY_OPT_OUT)
        status = item.get("status", STATUS_ACTIVE)
        if policy not in POLICIES or status not in (STATUS_ACTIVE, STATUS_ARCHIVED):
            raise InvalidInput(f"{where}: policy {policy!r} or status {status!r} is not known")
        specs.append(
            GroupSpec(
                name=item["name"],
                description=str(item.get("description", "")),
                policy=policy,
                shown_on_landing_page=bool(item.get("shown_on_landing_page", True)),
                status=status,
            )
        )
    return specs


def read_profile_rows(path: Path, *, group_names: Sequence[str]) -> list[dict[str, str]]:
    """The rows of a sample ``profiles.csv``, checked against the groups it may name."""
    known = set(group_names)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if "identity" not in header:
            raise InvalidInput(f"{path}: line 1: the header has no identity column")
        for column in header:
            if (
                column.startswith(GROUP_COLUMN_PREFIX)
                and column[len(GROUP_COLUMN_PREFIX) :] not in known
            ):
                raise InvalidInput(f"{path}: line 1: column {column!r} names no sample group")
        rows = list(reader)
    for line, row in enumerate(rows, start=2):
        for column, value in row.items():
            is_state = column == "all_email" or column.startswith(GROUP_COLUMN_PREFIX)
            if is_state and value not in ("", SUBSCRIBED, UNSUBSCRIBED):
                raise InvalidInput(
                    f"{path}: line {line}, column {column}: {value!r} is not a state"
                )
    return rows


# --- generating profiles.csv ----------------------------------------------------


def weighted(pairs: Iterable[tuple[Any, int]]) -> tuple[list[Any], list[int]]:
    """(value, weight) pairs as the values and the weights, for ``random.choices``."""
    values, weights = zip(*pairs, strict=True)
    return list(values), list(weights)


def email_spelling(text: str) -> str:
    """A name as an e-mail address spells it: ASCII, lower case, no spaces."""
    folded = unicodedata.normalize("NFKD", text.translate(ASCII_FOLD))
    return folded.encode("ascii", "ignore").decode().lower().replace(" ", "")


def _email_local(rng: random.Random, first: str, last: str) -> str:
    f, last_ascii = email_spelling(first), email_spelling(last)
    pattern = rng.randrange(6)
    if pattern == 0:
        return f"{f}{last_ascii[0]}"
    if pattern == 1:
        return f"{f[0]}.{last_ascii}"
    if pattern == 2:
        return f"{f}_{last_ascii}"
    if pattern == 3:
        return f"{f}{rng.randint(70, 99)}"
    return f"{f}.{last_ascii}"


def generate_sample_profiles(
    *, specs: Sequence[GroupSpec], count: int = SAMPLE_PROFILES, seed: int = SAMPLE_PROFILES_SEED
) -> tuple[list[str], list[list[str]]]:
    """The header and rows of a believable profiles.csv (same seed, same file)."""
    rng = random.Random(seed)
    pools = name_pools()
    domains, domain_weights = weighted(EMAIL_DOMAINS)
    plans, plan_weights = weighted(PLANS)
    # How often each group's cells are unsubscribed / subscribed: opt-out
    # groups mostly collect unsubscribes, opt-in groups mostly subscribes.
    rates = {
        spec.name: GROUP_RATES.get(
            spec.name,
            (rng.uniform(0.04, 0.12), 0.03)
            if spec.policy == POLICY_OPT_OUT
            else (0.01, rng.uniform(0.04, 0.15)),
        )
        for spec in specs
    }
    header = ["identity", "email", "name", "country", "plan", "all_email"]
    header += [GROUP_COLUMN_PREFIX + spec.name for spec in specs]
    rows: list[list[str]] = []
    taken: set[str] = set()
    for n in range(count):
        pool = rng.choices(pools, [pool.weight for pool in pools])[0]
        first, last = rng.choice(pool.first_names), rng.choice(pool.last_names)
        local, domain = _email_local(rng, first, last), rng.choices(domains, domain_weights)[0]
        email = f"{local}@{domain}"
        while email in taken:
            email = f"{local}{rng.randint(2, 999)}@{domain}"
        taken.add(email)
        # Some people tune their mail a lot, most never touch it.
        fussiness = rng.choice((0.4, 0.7, 1.0, 1.0, 1.6, 2.8))
        all_email = UNSUBSCRIBED if rng.random() < 0.035 else ""
        cells: list[str] = []
        for spec in specs:
            unsub, sub = rates[spec.name]
            draw = rng.random()
            if draw < unsub * fussiness:
                cells.append(UNSUBSCRIBED)
            elif draw < (unsub + sub) * fussiness:
                cells.append(SUBSCRIBED)
            else:
                cells.append("")
        plan = rng.choices(plans, plan_weights)[0]
        name = f"{first} {last}"
        rows.append([f"C{100001 + n}", email, name, pool.country, plan, all_email, *cells])
    return header, rows


def write_sample_profiles_csv(
    path: Path | None = None, *, count: int = SAMPLE_PROFILES, seed: int = SAMPLE_PROFILES_SEED
) -> Path:
    """(Re)write sample_data/profiles.csv from the seeded generator."""
    folder = sample_data_dir()
    target = path or folder / PROFILES_FILE
    header, rows = generate_sample_profiles(
        specs=read_group_specs(folder / GROUPS_FILE), count=count, seed=seed
    )
    with target.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return target


def flipped(state: str) -> str:
    """The other state."""
    return SUBSCRIBED if state == UNSUBSCRIBED else UNSUBSCRIBED


def _reason(rng: random.Random, state: str, *, chance: float) -> str | None:
    if rng.random() >= chance:
        return None
    return rng.choice(RESUBSCRIBE_REASONS if state == SUBSCRIBED else UNSUBSCRIBE_REASONS)


def _history(
    rng: random.Random,
    *,
    profile_id: int,
    identity: str,
    group: Group | None,
    final: str,
    start: datetime,
    end: datetime,
    change_of_mind: bool = False,
) -> list[StateChange]:
    """The changes that lead from the default to ``final``, at believable times.

    Mostly one change; now and then a change of mind first (left, then came
    back; or joined, then left), so the ledger tells a story.
    """
    initial = SUBSCRIBED if group is None else None
    span = (end - start).total_seconds()
    first_ts = start + timedelta(seconds=rng.uniform(0, span * 0.9))

    group_id, group_name = (group.id, group.name) if group else (None, None)

    def change(old: str | None, new: str, ts: datetime, *, chance: float) -> StateChange:
        reason = _reason(rng, new, chance=chance)
        return StateChange(profile_id, identity, group_id, group_name, old, new, reason, ts)

    if change_of_mind or rng.random() < 0.05:
        middle = flipped(final)
        later = first_ts + timedelta(seconds=rng.uniform(3600, (end - first_ts).total_seconds()))
        if initial != middle:
            return [
                change(initial, middle, first_ts, chance=0.5),
                change(middle, final, later, chance=0.6),
            ]
    return [change(initial, final, first_ts, chance=0.25)]


def create_groups(
    session: Session, specs: Sequence[GroupSpec], *, actor: str, at: datetime
) -> list[Group]:
    """Create the groups through the group service (with their events), seven minutes apart."""
    created = []
    for index, spec in enumerate(specs):
        created.append(
            group_service.create_group(
                session=session,
                name=spec.name,
                description=spec.description,
                policy=spec.policy,
                shown_on_landing_page=spec.shown_on_landing_page,
                actor=actor,
                source=SOURCE,
                now=at + timedelta(minutes=7 * index),
            )
        )
    return created


def load_sample_data(
    *, store: Store, actor: str, now: datetime | None = None, progress: Progress | None = None
) -> SeedSummary:
    """Load sample_data/ into an empty store, in one transaction (all or nothing).

    Groups are created through the group service, so their admin events
    exist; the archived one is archived three weeks before ``now``. Every
    state in profiles.csv is written with its ledger event (source
    ``import``), timed over the last 120 days. Refused when the store already
    holds groups or profiles.
    """
    started = time.perf_counter()
    now = now or clock.now()
    folder = sample_data_dir()
    specs = read_group_specs(folder / GROUPS_FILE)
    rows = read_profile_rows(folder / PROFILES_FILE, group_names=[s.name for s in specs])
    rng = random.Random(SAMPLE_HISTORY_SEED)
    start, end = now - timedelta(days=HISTORY_DAYS), now - timedelta(minutes=5)
    archive_at = now - timedelta(days=21)
    total = len(rows)
    if progress:
        progress(0, total)
    with store.write() as session:
        actors.require(session, actors.EDITOR, "loading the sample data")
        refuse_unless_empty(session)
        created = create_groups(session, specs, actor=actor, at=start - timedelta(days=60))
        by_name = {group.name: group for group in created}
        archived = {spec.name for spec in specs if spec.status == STATUS_ARCHIVED}
        fixed = {"identity", "email", "name", "all_email"}
        profile_rows = [
            bulk.NewProfileRow(
                identity=row["identity"].strip(),
                email=row.get("email") or None,
                name=row.get("name") or "",
                properties={
                    key: value
                    for key, value in row.items()
                    if key not in fixed and not key.startswith(GROUP_COLUMN_PREFIX) and value
                },
                all_email=SUBSCRIBED,
                created_at=start - timedelta(days=rng.uniform(1, 240)),
            )
            for row in rows
        ]
        by_identity = bulk.insert_profiles(session=session, profiles=profile_rows)
        ids = [by_identity[profile.identity] for profile in profile_rows]
        if progress:
            progress(total // 2, total)
        changes: list[StateChange] = []
        states = 0
        for profile_id, row in zip(ids, rows, strict=True):
            identity = row["identity"].strip()
            for column, value in row.items():
                if not value or not column.startswith(GROUP_COLUMN_PREFIX):
                    continue
                name = column[len(GROUP_COLUMN_PREFIX) :]
                states += 1
                changes += _history(
                    rng,
                    profile_id=profile_id,
                    identity=identity,
                    group=by_name[name],
                    final=value,
                    start=start,
                    end=archive_at if name in archived else end,
                )
            channel_final = row.get("all_email") or SUBSCRIBED
            # A channel resubscribe leaves a story too (left all email, came back).
            if channel_final == UNSUBSCRIBED or rng.random() < 0.01:
                changes += _history(
                    rng,
                    profile_id=profile_id,
                    identity=identity,
                    group=None,
                    final=channel_final,
                    start=start,
                    end=end,
                    change_of_mind=channel_final == SUBSCRIBED,
                )
        # Ledger ids follow time: the archive event sits between the changes before and after it.
        changes.sort(key=lambda change: change.ts or now)
        before = [c for c in changes if c.ts and c.ts < archive_at]
        after = changes[len(before) :]
        events = apply_changes(session=session, changes=before, source=SOURCE, actor=actor, now=now)
        for group in created:
            if group.name in archived:
                assert group.id is not None
                group_service.archive_group(
                    session=session, group_id=group.id, actor=actor, source=SOURCE, now=archive_at
                )
        events += apply_changes(session=session, changes=after, source=SOURCE, actor=actor, now=now)
        ledger.record(
            session,
            name=ledger.SAMPLE_DATA_LOADED,
            source=SOURCE,
            actor=actor,
            now=now,
            properties={"Groups": len(created), "Profiles": len(ids), "States": states},
        )
    with store.engine.begin() as conn:
        migrations.analyze(conn)  # the planner's statistics for the rows just written
    if progress:
        progress(total, total)
    return SeedSummary(
        groups=len(created),
        profiles=len(ids),
        states=states,
        events=events,
        seconds=time.perf_counter() - started,
    )
