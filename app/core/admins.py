"""The admins who may use the console over SSH: add, list, change role, remove.

Each admin has a name (their SSH login name), a role (``actors.ROLES``) and
one OpenSSH public key. Managing admins needs the owner role. Every change
writes its ledger event in the same transaction: ``Admin Added``, ``Admin
Removed``, ``Admin Role Changed``, each with ``Admin``, ``Role`` and
``Actor``.

The last owner is kept: removing or demoting the only owner while other
admins remain is refused, as it would leave them with nobody who can manage
admins or send over SSH (the host's own user can always, locally).
"""

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from app.core import actors, clock, ledger
from app.core.actors import OWNER, ROLES
from app.core.errors import InvalidInput, NameTaken, RuleRefused, UnknownAdmin
from app.core.event_names import ADMIN_ADDED, ADMIN_REMOVED, ADMIN_ROLE_CHANGED
from app.core.models import Admin
from app.core.ssh_keys import PublicKey
from app.core.text_rules import control_problem

NAME_MAX = 32
# A login name an SSH client can send as typed: letters, digits, '.', '_', '-'.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class AdminRow:
    """An admin as plain data (safe to hand between threads)."""

    name: str
    role: str
    key_fingerprint: str
    added_at: datetime

    def to_json(self) -> dict[str, Any]:
        """``admins list --json``: name, role, key_fingerprint, added_at."""
        return {
            "name": self.name,
            "role": self.role,
            "key_fingerprint": self.key_fingerprint,
            "added_at": self.added_at.isoformat(),
        }


def _row(admin: Admin) -> AdminRow:
    return AdminRow(admin.name, admin.role, admin.key_fingerprint, admin.added_at)


def clean_name(name: str) -> str:
    """An admin name as stored; ``InvalidInput`` saying what is wrong with it."""
    problem = control_problem(name or "")
    if problem is not None:
        raise InvalidInput(f"Admin name {problem}", field="name")
    cleaned = (name or "").strip()
    if not cleaned:
        raise InvalidInput("Admin name is required: their SSH login name", field="name")
    if len(cleaned) > NAME_MAX:
        raise InvalidInput(
            f"Admin name is {len(cleaned)} characters long; the most is {NAME_MAX}", field="name"
        )
    if not _NAME.fullmatch(cleaned):
        raise InvalidInput(
            f"Admin name {cleaned!r} is not a login name: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit",
            field="name",
        )
    return cleaned


def clean_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"Role {role!r} is not one of: {', '.join(ROLES)}", field="role")
    return role


def find_admin(session: Session, name: str) -> Admin:
    """The admin with this name (case-insensitive); ``UnknownAdmin`` if none."""
    found = session.exec(
        select(Admin).where(col(Admin.name_key) == actors.admin_key(name or ""))
    ).first()
    if found is None:
        raise UnknownAdmin(
            f"No admin is named {name!r}; `subgroups admins list` lists them", field="name"
        )
    return found


def login_admin(session: Session, name: str) -> AdminRow | None:
    """The admin an SSH login name names, or None (no store lookup error for strangers)."""
    found = session.exec(
        select(Admin).where(col(Admin.name_key) == actors.admin_key(name or ""))
    ).first()
    return _row(found) if found is not None else None


def public_key_of(session: Session, name: str) -> str | None:
    """The OpenSSH key line of the admin ``name`` (None: no such admin)."""
    return session.exec(
        select(Admin.public_key).where(col(Admin.name_key) == actors.admin_key(name or ""))
    ).first()


def list_admins(session: Session) -> list[AdminRow]:
    """Every admin, by name."""
    return [_row(a) for a in session.exec(select(Admin).order_by(col(Admin.name_key))).all()]


def _owners(session: Session) -> int:
    return int(
        session.exec(select(func.count()).select_from(Admin).where(col(Admin.role) == OWNER)).one()
    )


def _admins(session: Session) -> int:
    return int(session.exec(select(func.count()).select_from(Admin)).one())


def _keep_an_owner(session: Session, admin: Admin, what: str) -> None:
    if admin.role == OWNER and _owners(session) == 1 and _admins(session) > 1:
        raise RuleRefused(
            f"{admin.name} is the last owner; {what} would leave the other admins with nobody "
            "who can manage admins or send: make another admin an owner first"
        )


def add_admin(
    *,
    session: Session,
    name: str,
    key: PublicKey,
    role: str = actors.EDITOR,
    actor: str,
    source: str = "cli",
    now: datetime | None = None,
) -> AdminRow:
    """Register an admin with their public key; refused if the name or the key is taken."""
    actors.require(session, OWNER, "adding an admin")
    cleaned = clean_name(name)
    role = clean_role(role)
    key_name = actors.admin_key(cleaned)
    other = session.exec(select(Admin).where(col(Admin.name_key) == key_name)).first()
    if other is not None:
        raise NameTaken(f"An admin named {other.name!r} already exists", field="name")
    holder = session.exec(
        select(Admin).where(col(Admin.key_fingerprint) == key.fingerprint)
    ).first()
    if holder is not None:
        raise NameTaken(
            f"That key ({key.fingerprint}) is already {holder.name}'s; each admin has their own",
            field="key",
        )
    ts = now or clock.now()
    admin = Admin(
        name=cleaned,
        name_key=key_name,
        role=role,
        public_key=key.line,
        key_fingerprint=key.fingerprint,
        added_at=ts,
        added_by=actor,
    )
    session.add(admin)
    session.flush()
    ledger.record(
        session,
        name=ADMIN_ADDED,
        source=source,
        actor=actor,
        now=ts,
        properties={
            "Admin": cleaned,
            "Role": role,
            "Key Type": key.kind,
            "Key Fingerprint": key.fingerprint,
        },
    )
    return _row(admin)


def set_role(
    *,
    session: Session,
    name: str,
    role: str,
    actor: str,
    source: str = "cli",
    now: datetime | None = None,
) -> tuple[AdminRow, str]:
    """Give an admin another role; returns the admin and their previous role.

    The same role again changes nothing and writes nothing.
    """
    actors.require(session, OWNER, "changing an admin's role")
    role = clean_role(role)
    admin = find_admin(session, name)
    previous = admin.role
    if previous == role:
        return _row(admin), previous
    if role != OWNER:
        _keep_an_owner(session, admin, f"making them {role}")
    admin.role = role
    session.add(admin)
    session.flush()
    ledger.record(
        session,
        name=ADMIN_ROLE_CHANGED,
        source=source,
        actor=actor,
        now=now or clock.now(),
        properties={"Admin": admin.name, "Role": role, "Previous Role": previous},
    )
    return _row(admin), previous


def remove_admin(
    *,
    session: Session,
    name: str,
    actor: str,
    source: str = "cli",
    now: datetime | None = None,
) -> AdminRow:
    """Remove an admin: their key no longer logs in, and their open sessions can change nothing."""
    actors.require(session, OWNER, "removing an admin")
    admin = find_admin(session, name)
    _keep_an_owner(session, admin, "removing them")
    gone = _row(admin)
    session.delete(admin)
    session.flush()
    ledger.record(
        session,
        name=ADMIN_REMOVED,
        source=source,
        actor=actor,
        now=now or clock.now(),
        properties={"Admin": gone.name, "Role": gone.role, "Key Fingerprint": gone.key_fingerprint},
    )
    return gone
