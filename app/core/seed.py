"""Sample and synthetic data: a store worth looking at, and one worth measuring.

``load_sample_data`` loads ``sample_data/``: a dozen believable groups (one
archived) and about 3,000 profiles, with a ledger history spread over the
last 120 days so every stored state has a story ("left Promotions in June,
came back in August"). ``seed_synthetic`` makes N profiles over up to 50
groups for measuring at scale. Groups are made by ``groups.create_group``;
states by ``subscriptions.apply_changes``, or at synthetic scale by the same
rows written through the driver's executemany, so every stored state is
explained by its latest ledger event. Both refuse a store that already holds
groups or profiles.

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

from sqlalchemy import Column, Table, bindparam, func, insert, update
from sqlmodel import Session, select

from app.core import clock, ledger
from app.core import groups as group_service
from app.core.errors import InvalidInput, RuleRefused
from app.core.models import (
    POLICIES,
    POLICY_OPT_IN,
    POLICY_OPT_OUT,
    STATUS_ACTIVE,
    STATUS_ARCHIVED,
    SUBSCRIBED,
    UNSUBSCRIBED,
    Event,
    Group,
    GroupState,
    Profile,
)
from app.core.store import Store
from app.core.subscriptions import StateChange, apply_changes, change_properties
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
SYNTHETIC_CHUNK = 20_000
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


def _refuse_unless_empty(session: Session) -> None:
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


def _weighted(pairs: Iterable[tuple[Any, int]]) -> tuple[list[Any], list[int]]:
    values, weights = zip(*pairs, strict=True)
    return list(values), list(weights)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.translate(ASCII_FOLD))
    return folded.encode("ascii", "ignore").decode().lower().replace(" ", "")


def _email_local(rng: random.Random, first: str, last: str) -> str:
    f, last_ascii = _ascii(first), _ascii(last)
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
    domains, domain_weights = _weighted(EMAIL_DOMAINS)
    plans, plan_weights = _weighted(PLANS)
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


# --- writing to the store -------------------------------------------------------


def _processor(session: Session, column: Column[Any]) -> Callable[[Any], Any] | None:
    """How the ORM converts a value of this column for the driver (None: as it is)."""
    dialect = session.get_bind().dialect
    return column.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[no-any-return]


def _executemany(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
    *,
    ready: Iterable[str] = (),
) -> None:
    """INSERT ``rows`` (values in ``columns`` order) in one driver call (COPY on PostgreSQL).

    Per-row statement handling in SQLAlchemy costs more than the database's
    own work at a million rows, so values go straight to the driver. Each is
    converted by its column type's own bind processor, so rows are stored
    exactly as the ORM stores them; columns named in ``ready`` hold values
    the caller already converted that way (once for many rows).
    """
    if not rows:
        return
    compiled = insert(table).compile(dialect=session.get_bind().dialect, column_keys=list(columns))
    order = list(compiled.positiontup or columns)
    where = [columns.index(key) for key in order]
    skip = set(ready)
    convert = [None if key in skip else _processor(session, table.c[key]) for key in order]
    params: list[Any] | Sequence[tuple[Any, ...]] = rows
    if any(convert) or where != list(range(len(columns))):
        params = [
            tuple(c(row[i]) if c else row[i] for i, c in zip(where, convert, strict=True))
            for row in rows
        ]
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # COPY takes a third off executemany's time on PostgreSQL (psycopg 3).
        quote = connection.dialect.identifier_preparer.quote
        sql = f"COPY {quote(table.name)} ({', '.join(map(quote, order))}) FROM STDIN"
        with connection.connection.cursor().copy(sql) as copy:  # type: ignore[attr-defined]
            for row in params:
                copy.write_row(row)
        return
    if not compiled.positional:
        params = [dict(zip(order, row, strict=True)) for row in params]
    connection.exec_driver_sql(compiled.string, params)


def _insert_profiles(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Bulk-insert profiles; their new ids, in the order of ``rows``."""
    table = Profile.__table__  # type: ignore[attr-defined]
    columns = list(rows[0]) if rows else []
    before = session.exec(select(func.coalesce(func.max(Profile.id), 0))).one()
    _executemany(session, table, columns, [tuple(row[key] for key in columns) for row in rows])
    new = session.execute(select(table.c.identity, table.c.id).where(table.c.id > before)).all()
    by_identity = {identity: profile_id for identity, profile_id in new}
    return [by_identity[row["identity"]] for row in rows]


def _flip(state: str) -> str:
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
    if change_of_mind or rng.random() < 0.05:
        middle = _flip(final)
        later = first_ts + timedelta(seconds=rng.uniform(3600, (end - first_ts).total_seconds()))
        if initial != middle:
            return [
                StateChange(
                    profile_id,
                    identity,
                    group,
                    initial,
                    middle,
                    _reason(rng, middle, chance=0.5),
                    first_ts,
                ),
                StateChange(
                    profile_id,
                    identity,
                    group,
                    middle,
                    final,
                    _reason(rng, final, chance=0.6),
                    later,
                ),
            ]
    return [
        StateChange(
            profile_id, identity, group, initial, final, _reason(rng, final, chance=0.25), first_ts
        )
    ]


def _create_groups(
    session: Session, specs: Sequence[GroupSpec], *, actor: str, at: datetime
) -> list[Group]:
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
        _refuse_unless_empty(session)
        created = _create_groups(session, specs, actor=actor, at=start - timedelta(days=60))
        by_name = {group.name: group for group in created}
        archived = {spec.name for spec in specs if spec.status == STATUS_ARCHIVED}
        fixed = {"identity", "email", "name", "all_email"}
        profile_rows = [
            {
                "identity": row["identity"].strip(),
                "email": row.get("email") or None,
                "name": row.get("name") or "",
                "properties": {
                    key: value
                    for key, value in row.items()
                    if key not in fixed and not key.startswith(GROUP_COLUMN_PREFIX) and value
                },
                "all_email": SUBSCRIBED,
                "created_at": start - timedelta(days=rng.uniform(1, 240)),
            }
            for row in rows
        ]
        ids = _insert_profiles(session, profile_rows)
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
    if progress:
        progress(total, total)
    return SeedSummary(
        groups=len(created),
        profiles=len(ids),
        states=states,
        events=events,
        seconds=time.perf_counter() - started,
    )


# --- synthetic stores for measuring ---------------------------------------------

# fmt: off
SYNTHETIC_TOPICS = (
    "Newsletter", "Product updates", "Promotions", "Events", "Digest",
    "Partner offers", "Surveys", "Tips", "Release notes", "Beta program",
)
# fmt: on
SYNTHETIC_REGIONS = ("Americas", "EMEA", "APAC", "LATAM", "Nordics")


def synthetic_group_specs(count: int) -> list[GroupSpec]:
    """``count`` (at most 50) believable group names, every fourth one opt-in."""
    names = [f"{topic} · {region}" for region in SYNTHETIC_REGIONS for topic in SYNTHETIC_TOPICS]
    return [
        GroupSpec(
            name=name,
            description=f"Synthetic group {index + 1} for measuring at scale.",
            policy=POLICY_OPT_IN if index % 4 == 3 else POLICY_OPT_OUT,
            shown_on_landing_page=True,
            status=STATUS_ACTIVE,
        )
        for index, name in enumerate(names[:count])
    ]


def _write_first_changes(session: Session, changes: Sequence[StateChange], *, actor: str) -> int:
    """Apply changes of fresh profiles (group states never set, channel from subscribed).

    The rows ``apply_changes`` writes, with the same event properties
    (``change_properties``), but through the driver's executemany: at a
    million profiles this is the difference between minutes and half an
    hour. Events are written in the order given.
    """
    event_table = Event.__table__  # type: ignore[attr-defined]
    profile_table = Profile.__table__  # type: ignore[attr-defined]
    to_json = _processor(session, event_table.c.properties) or (lambda value: value)
    to_ts = _processor(session, event_table.c.ts) or (lambda value: value)
    properties: dict[tuple[int | None, str], Any] = {}
    state_rows: list[tuple[Any, ...]] = []
    event_rows: list[tuple[Any, ...]] = []
    channel_rows: list[dict[str, Any]] = []
    name = ledger.CHANNEL_UNSUBSCRIBED
    for change in changes:
        group = change.group
        group_id = group.id if group else None
        key = (group_id, change.new)
        if key not in properties:  # a few distinct values for a million events
            properties[key] = to_json(
                change_properties(
                    group=group,
                    old=change.old,
                    new=change.new,
                    source=SOURCE,
                    actor=actor,
                    campaign_id=None,
                    reason=None,
                )
            )
        ts = to_ts(change.ts)  # converted once for both rows
        pid = change.profile_id
        if group is None:
            channel_rows.append({"b_id": pid, "b_state": change.new})
        else:
            state_rows.append((pid, group_id, change.new, ts))
        event_rows.append(
            (ts, name, change.identity, pid, group_id, None, SOURCE, actor, properties[key])
        )
    state_columns = ("profile_id", "group_id", "state", "updated_at")
    event_columns = (
        "ts", "name", "identity", "profile_id", "group_id", "campaign_id", "source", "actor",
        "properties",
    )  # fmt: skip
    state_table = GroupState.__table__  # type: ignore[attr-defined]
    _executemany(session, state_table, state_columns, state_rows, ready=("updated_at",))
    if channel_rows:
        session.execute(
            update(profile_table)
            .where(profile_table.c.id == bindparam("b_id"))
            .values(all_email=bindparam("b_state")),
            channel_rows,
        )
    _executemany(session, event_table, event_columns, event_rows, ready=("ts", "properties"))
    return len(event_rows)


def seed_synthetic(
    *,
    store: Store,
    profiles: int,
    groups: int = 50,
    states_per_profile: int = 5,
    actor: str,
    now: datetime | None = None,
    progress: Progress | None = None,
    seed: int = 0,
    chunk_size: int = SYNTHETIC_CHUNK,
) -> SeedSummary:
    """Fill an empty store with ``profiles`` profiles over ``groups`` groups, for measuring.

    Each profile gets about ``states_per_profile`` stored states (between two
    fewer and two more), each with its ledger event; 2% have left all email.
    One transaction per ``chunk_size`` profiles, so a million profiles never
    sit in memory at once; an interrupted seed keeps the chunks it finished.
    """
    if profiles < 0:
        raise InvalidInput(f"profiles must be 0 or more, not {profiles}", field="profiles")
    if not 1 <= groups <= len(SYNTHETIC_TOPICS) * len(SYNTHETIC_REGIONS):
        raise InvalidInput(f"groups must be between 1 and 50, not {groups}", field="groups")
    if not 0 <= states_per_profile <= groups:
        raise InvalidInput(
            f"states per profile must be between 0 and {groups}, not {states_per_profile}",
            field="states_per_profile",
        )
    started = time.perf_counter()
    now = now or clock.now()
    rng = random.Random(seed)
    start = now - timedelta(days=HISTORY_DAYS)
    span = (now - start).total_seconds() - 60
    # Every country alike here; names with their e-mail spelling worked out once.
    pools = [
        (
            pool.country,
            [(name, _ascii(name)) for name in pool.first_names],
            [(name, _ascii(name)) for name in pool.last_names],
        )
        for pool in name_pools()
    ]
    plans, plan_weights = _weighted(PLANS)
    with store.write() as session:
        _refuse_unless_empty(session)
        created = _create_groups(
            session, synthetic_group_specs(groups), actor=actor, at=start - timedelta(days=30)
        )
    # Likely final state: opt-out groups mostly collect unsubscribes, opt-in ones subscribes.
    likely = [UNSUBSCRIBED if g.policy == POLICY_OPT_OUT else SUBSCRIBED for g in created]
    low, high = max(0, states_per_profile - 2), min(groups, states_per_profile + 2)
    states = events = 0
    for chunk_start in range(0, profiles, chunk_size):
        chunk_end = min(profiles, chunk_start + chunk_size)
        # Each chunk covers its own slice of the 120 days, so ledger ids follow time.
        slice_start = start + timedelta(seconds=span * chunk_start / max(profiles, 1))
        slice_span = span * (chunk_end - chunk_start) / max(profiles, 1)
        rows: list[dict[str, Any]] = []
        for n in range(chunk_start, chunk_end):
            country, firsts, lasts = rng.choice(pools)
            first, first_ascii = rng.choice(firsts)
            last, last_ascii = rng.choice(lasts)
            rows.append(
                {
                    "identity": f"S{n + 1:07d}",
                    "email": f"{first_ascii}.{last_ascii}.{n + 1}@example.net",
                    "name": f"{first} {last}",
                    "properties": {"country": country, "plan": rng.choices(plans, plan_weights)[0]},
                    "all_email": SUBSCRIBED,
                    "created_at": start - timedelta(days=30 * rng.random()),
                }
            )
        with store.write() as session:
            ids = _insert_profiles(session, rows)
            changes: list[StateChange] = []
            for profile_id, row in zip(ids, rows, strict=True):
                identity = row["identity"]
                for index in rng.sample(range(groups), rng.randint(low, high)):
                    state = likely[index] if rng.random() < 0.75 else _flip(likely[index])
                    ts = slice_start + timedelta(seconds=slice_span * rng.random())
                    changes.append(
                        StateChange(profile_id, identity, created[index], None, state, None, ts)
                    )
                if rng.random() < 0.02:
                    ts = slice_start + timedelta(seconds=slice_span * rng.random())
                    changes.append(
                        StateChange(profile_id, identity, None, SUBSCRIBED, UNSUBSCRIBED, None, ts)
                    )
            changes.sort(key=lambda change: change.ts or now)
            events += _write_first_changes(session, changes, actor=actor)
            states += sum(1 for change in changes if change.group is not None)
        if progress:
            progress(chunk_end, profiles)
    with store.write() as session:
        ledger.record(
            session,
            name=ledger.SAMPLE_DATA_LOADED,
            source=SOURCE,
            actor=actor,
            now=now,
            properties={
                "Groups": groups,
                "Profiles": profiles,
                "States": states,
                "Synthetic": True,
            },
        )
    return SeedSummary(
        groups=groups,
        profiles=profiles,
        states=states,
        events=events,
        seconds=time.perf_counter() - started,
    )
