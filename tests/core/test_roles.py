"""Roles at the service layer: every write service, tried by a viewer, an editor, an owner
and a removed admin. An allowed call writes; a refused one says who they are, what role
they have and which it needs, and changes nothing (every table compared, the outbox too).

The acting person is chosen as the SSH server's sessions choose it: ``SUBGROUPS_ADMIN``
in the environment. The world is built by the host's own user (an owner)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from admin_keys import ECDSA, ED25519, RSA, SPARE
from sqlalchemy import text
from sqlmodel import SQLModel

from app.core import (
    actors,
    admins,
    campaigns,
    csv_io,
    erasure,
    groups,
    landing,
    one_click,
    profiles,
    recipient,
    sample_campaigns,
    seed,
    segments,
    sending,
    subscriptions,
    synthetic,
)
from app.core.errors import RoleRefused
from app.core.models import UNSUBSCRIBED
from app.core.outbox import MaildirOutbox
from app.core.segment_rules import SegmentRule
from app.core.ssh_keys import parse_key_line
from app.core.store import Store, open_store

HOST = "host-user"
BODY = "Hello {{ name }},\n\nNews.\n\nUnsubscribe: {{ unsubscribe_url }}\n"
# The admins of every world: name -> role.
ADMINS = {"vi": actors.VIEWER, "ed": actors.EDITOR, "ow": actors.OWNER}
KEYS = {"vi": ED25519, "ed": RSA, "ow": ECDSA}


@dataclass
class World:
    store: Store
    folder: Path
    ids: dict[str, int]

    @property
    def outbox(self) -> MaildirOutbox:
        return MaildirOutbox(self.folder / "outbox")


def _add_admins(store: Store) -> None:
    with store.write() as s:
        for name, role in ADMINS.items():
            admins.add_admin(
                session=s,
                name=name,
                key=parse_key_line(KEYS[name].line, where=name),
                role=role,
                actor=HOST,
            )


def build_world(url: str, folder: Path, *, empty: bool = False) -> World:
    """Admins vi/ed/ow; unless ``empty``: News (active), Old (archived), ann and bob,
    the segment Pros, the drafts Draft and Paused (a paused send), and a CSV file."""
    store = open_store(url)
    _add_admins(store)
    ids: dict[str, int] = {}
    (folder / "people.csv").write_text(
        "identity,email,group:News\ncy,cy@example.com,unsubscribed\n", encoding="utf-8"
    )
    if empty:
        return World(store, folder, ids)
    with store.write() as s:
        ids["news"] = groups.create_group(session=s, name="News", actor=HOST).id or 0
        old = groups.create_group(session=s, name="Old", actor=HOST)
        ids["old"] = groups.archive_group(session=s, group_id=old.id or 0, actor=HOST).id or 0
        for who in ("ann", "bob"):
            person = profiles.create_profile(
                session=s, identity=who, email=f"{who}@example.com", name=who.title()
            )
            ids[who] = person.id or 0
        ids["pros"] = (
            segments.save_segment(session=s, name="Pros", rule=SegmentRule(), actor=HOST).id or 0
        )
        for name in ("Draft", "Paused"):
            ids[name.lower()] = (
                campaigns.create_campaign(
                    session=s,
                    name=name,
                    actor=HOST,
                    subject="News",
                    from_address="news@example.com",
                    body=BODY,
                ).id
                or 0
            )
        campaigns.set_status(
            session=s, campaign_id=ids["paused"], status=campaigns.PAUSED, actor=HOST
        )
    return World(store, folder, ids)


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table (but the segment index's snapshots, a cache)."""
    with store.engine.connect() as conn:
        return {
            name: [tuple(row) for row in conn.execute(text(f'SELECT * FROM "{name}" ORDER BY 1'))]
            for name in SQLModel.metadata.tables
            if name != "index_snapshot"
        }


def sent_files(world: World) -> list[Path]:
    new = world.folder / "outbox" / "new"
    return sorted(new.iterdir()) if new.exists() else []


# --- the services, each as one call ------------------------------------------------------

Call = Callable[[World], object]


def _in_write(fn: Callable[..., object]) -> Callable[[World], object]:
    def call(world: World) -> object:
        with world.store.write() as session:
            return fn(session, world)

    return call


def _send(world: World) -> object:
    return sending.send_campaign(
        store=world.store,
        campaign_id=world.ids["draft"],
        outbox=world.outbox,
        actor=actors.actor_name(),
    )


def _import(world: World) -> object:
    return csv_io.import_profiles(
        store=world.store, source=world.folder / "people.csv", actor=actors.actor_name()
    )


def _apply_previewed_import(world: World) -> object:
    path = world.folder / "people.csv"
    # The preview (a dry run) writes nothing: anyone may make it.
    plan = csv_io.import_profiles(store=world.store, source=path, actor=HOST, dry_run=True)
    return csv_io.apply_import(store=world.store, plan=plan.plan, actor=actors.actor_name())


def _actor() -> str:
    return actors.actor_name()


# (what, role needed, the call, whether it needs an empty store)
CASES: list[tuple[str, str, Call, bool]] = [
    (
        "creating a group",
        actors.EDITOR,
        _in_write(lambda s, w: groups.create_group(session=s, name="Fresh", actor=_actor())),
        False,
    ),
    (
        "changing a group",
        actors.EDITOR,
        _in_write(
            lambda s, w: groups.update_group(
                session=s, group_id=w.ids["news"], description="Weekly", actor=_actor()
            )
        ),
        False,
    ),
    (
        "archiving a group",
        actors.EDITOR,
        _in_write(
            lambda s, w: groups.archive_group(session=s, group_id=w.ids["news"], actor=_actor())
        ),
        False,
    ),
    (
        "unarchiving a group",
        actors.EDITOR,
        _in_write(
            lambda s, w: groups.unarchive_group(session=s, group_id=w.ids["old"], actor=_actor())
        ),
        False,
    ),
    (
        "changing a subscription",
        actors.EDITOR,
        _in_write(
            lambda s, w: subscriptions.set_state_for(
                session=s,
                identity="ann",
                group="News",
                status=UNSUBSCRIBED,
                source="cli",
                actor=_actor(),
            )
        ),
        False,
    ),
    (
        "changing subscriptions",
        actors.EDITOR,
        _in_write(
            lambda s, w: subscriptions.apply_changes(
                session=s,
                changes=[
                    subscriptions.StateChange(
                        w.ids["ann"], "ann", None, None, "subscribed", "unsubscribed"
                    )
                ],
                source="import",
                actor=_actor(),
            )
        ),
        False,
    ),
    (
        "changing a person's subscriptions",
        actors.EDITOR,
        _in_write(
            lambda s, w: recipient.act_as_recipient(
                session=s,
                profile_id=w.ids["ann"],
                group_choices={w.ids["news"]: False},
                all_email=None,
                page_group_ids=[w.ids["news"]],
                actor=_actor(),
            )
        ),
        False,
    ),
    (
        "saving a segment",
        actors.EDITOR,
        _in_write(
            lambda s, w: segments.save_segment(
                session=s, name="Everyone", rule=SegmentRule(), actor=_actor()
            )
        ),
        False,
    ),
    (
        "renaming a segment",
        actors.EDITOR,
        _in_write(
            lambda s, w: segments.rename_segment(
                session=s, segment_id=w.ids["pros"], name="Experts", actor=_actor()
            )
        ),
        False,
    ),
    (
        "copying a segment",
        actors.EDITOR,
        _in_write(
            lambda s, w: segments.duplicate_segment(
                session=s, segment_id=w.ids["pros"], actor=_actor()
            )
        ),
        False,
    ),
    (
        "deleting a segment",
        actors.EDITOR,
        _in_write(
            lambda s, w: segments.delete_segment(
                session=s, segment_id=w.ids["pros"], actor=_actor()
            )
        ),
        False,
    ),
    (
        "creating a campaign draft",
        actors.EDITOR,
        _in_write(lambda s, w: campaigns.create_campaign(session=s, name="Next", actor=_actor())),
        False,
    ),
    (
        "changing a campaign draft",
        actors.EDITOR,
        _in_write(
            lambda s, w: campaigns.update_campaign(
                session=s, campaign_id=w.ids["draft"], subject="Later news", actor=_actor()
            )
        ),
        False,
    ),
    (
        "cancelling a campaign draft",
        actors.EDITOR,
        _in_write(
            lambda s, w: campaigns.set_status(
                session=s,
                campaign_id=w.ids["draft"],
                status=campaigns.CANCELLED,
                actor=_actor(),
            )
        ),
        False,
    ),
    (
        "cancelling a campaign's send",
        actors.OWNER,
        _in_write(
            lambda s, w: campaigns.set_status(
                session=s,
                campaign_id=w.ids["paused"],
                status=campaigns.CANCELLED,
                actor=_actor(),
            )
        ),
        False,
    ),
    ("importing profiles", actors.EDITOR, _import, False),
    (
        "erasing a profile",
        actors.OWNER,
        _in_write(
            lambda s, w: erasure.erase_profile(
                session=s, identity="ann", reason="asked", source="cli", actor=_actor()
            )
        ),
        False,
    ),
    ("importing profiles", actors.EDITOR, _apply_previewed_import, False),
    ("sending a campaign", actors.OWNER, _send, False),
    (
        "changing the landing page settings",
        actors.OWNER,
        _in_write(
            lambda s, w: landing.update_settings(session=s, title="Your mail", actor=_actor())
        ),
        False,
    ),
    (
        "choosing the landing page's groups",
        actors.OWNER,
        _in_write(lambda s, w: landing.set_shown_groups(session=s, group_ids=[], actor=_actor())),
        False,
    ),
    (
        "adding an admin",
        actors.OWNER,
        _in_write(
            lambda s, w: admins.add_admin(
                session=s,
                name="dee",
                key=parse_key_line(SPARE.line, where="spare"),
                actor=_actor(),
            )
        ),
        False,
    ),
    (
        "changing an admin's role",
        actors.OWNER,
        _in_write(
            lambda s, w: admins.set_role(session=s, name="vi", role=actors.EDITOR, actor=_actor())
        ),
        False,
    ),
    (
        "removing an admin",
        actors.OWNER,
        _in_write(lambda s, w: admins.remove_admin(session=s, name="vi", actor=_actor())),
        False,
    ),
    (
        "loading the sample data",
        actors.EDITOR,
        lambda w: seed.load_sample_data(store=w.store, actor=_actor()),
        True,
    ),
    (
        "loading the sample data and its campaigns",
        actors.OWNER,
        lambda w: sample_campaigns.load_sample(store=w.store, actor=_actor(), outbox=w.outbox),
        True,
    ),
    (
        "seeding the store",
        actors.EDITOR,
        lambda w: synthetic.seed_synthetic(
            store=w.store, profiles=20, groups=3, states_per_profile=2, actor=_actor()
        ),
        True,
    ),
]


# Recipient-side changes are not admin actions: the same for every role.
RECIPIENT_CASES: list[tuple[str, Call]] = [
    (
        "the landing page",
        _in_write(
            lambda s, w: landing.save_choices(
                session=s,
                profile_id=w.ids["ann"],
                campaign_id=None,
                subscribed_group_ids=[],
                all_email="subscribed",
            )
        ),
    ),
    (
        "one-click",
        _in_write(
            lambda s, w: one_click.one_click(session=s, profile_id=w.ids["bob"], campaign_id=None)
        ),
    ),
]

# Who acts: an admin's name (their role from ADMINS), or "gone": an admin since removed.
ACTING = ("vi", "ed", "ow", "gone")


def new_actors(store: Store, after_id: int) -> set[str]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT actor FROM ledger_event WHERE id > :i"), {"i": after_id})
        return {row[0] for row in rows}


def last_event_id(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT coalesce(max(id), 0) FROM ledger_event")).scalar_one())


def who_is(acting: str) -> str:
    """The start of a refusal: ``vi is a viewer``, ``ed is an editor``, ``gone is not an admin``."""
    role = ADMINS.get(acting)
    if role is None:
        return f"{acting} is not an admin"
    return f"{acting} is {'an' if role[0] in 'aeiou' else 'a'} {role}"


@pytest.mark.parametrize("acting", ACTING)
@pytest.mark.parametrize(
    ("doing", "needed", "call", "empty"),
    CASES,
    ids=[f"{i:02d} {doing}" for i, (doing, *_) in enumerate(CASES)],
)
def test_each_write_service_checks_the_role_it_needs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    acting: str,
    doing: str,
    needed: str,
    call: Call,
    empty: bool,
) -> None:
    world = build_world(str(tmp_path / "store.db"), tmp_path, empty=empty)
    try:
        monkeypatch.setenv(actors.ADMIN_ENV, acting)
        before, last = dump(world.store), last_event_id(world.store)
        if actors.allows(ADMINS.get(acting), needed):
            call(world)
            assert acting in new_actors(world.store, last), "an allowed call writes, as them"
            return
        with pytest.raises(RoleRefused) as refused:
            call(world)
        assert refused.value.message.startswith(who_is(acting)), refused.value.message
        assert refused.value.message.endswith(f"{doing} needs the {needed} role")
        assert refused.value.exit_code == 1
        assert dump(world.store) == before
        assert sent_files(world) == []
    finally:
        world.store.dispose()


@pytest.mark.parametrize(("what", "call"), RECIPIENT_CASES, ids=[w for w, _ in RECIPIENT_CASES])
def test_recipients_changes_are_not_role_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, what: str, call: Call
) -> None:
    world = build_world(str(tmp_path / "store.db"), tmp_path)
    try:
        monkeypatch.setenv(actors.ADMIN_ENV, "vi")  # a viewer's process (the console's simulator)
        last = last_event_id(world.store)
        call(world)
        assert new_actors(world.store, last) == {"recipient"}
    finally:
        world.store.dispose()


@pytest.mark.postgres
def test_on_postgresql_a_viewer_is_refused_everything_and_nothing_changes(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = build_world(pg_url, tmp_path)
    try:
        monkeypatch.setenv(actors.ADMIN_ENV, "vi")
        before = dump(world.store)
        for doing, needed, call, empty in CASES:
            if empty:
                continue
            with pytest.raises(RoleRefused, match=f"^vi is a viewer; {doing} needs the {needed}"):
                call(world)
        assert dump(world.store) == before
        monkeypatch.setenv(actors.ADMIN_ENV, "ed")
        with world.store.write() as s:
            groups.create_group(session=s, name="By ed", actor=actors.actor_name())
        assert new_actors(world.store, last_event_id(world.store) - 1) == {"ed"}
    finally:
        world.store.dispose()


def test_a_role_change_takes_effect_at_the_next_action(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The role is read in each write's own transaction: no restart needed."""
    world = build_world(str(tmp_path / "store.db"), tmp_path)
    try:
        monkeypatch.setenv(actors.ADMIN_ENV, "ed")
        with world.store.write() as s:
            groups.create_group(session=s, name="First", actor=actors.actor_name())
        monkeypatch.delenv(actors.ADMIN_ENV)
        with world.store.write() as s:
            admins.set_role(session=s, name="ed", role=actors.VIEWER, actor=HOST)
        monkeypatch.setenv(actors.ADMIN_ENV, "ed")
        with (
            pytest.raises(RoleRefused, match="ed is a viewer; creating a group"),
            world.store.write() as s,
        ):
            groups.create_group(session=s, name="Second", actor=actors.actor_name())
    finally:
        world.store.dispose()


def test_the_host_user_is_an_owner_without_being_an_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(actors.ADMIN_ENV, raising=False)
    actor = actors.current()
    assert (actor.role, actor.via, actor.local) == (actors.OWNER, "local", True)
    assert actors.actor_name() == actor.name != ""
