"""Who is acting: the person a process records in the ledger, and the role they have.

Locally the acting person is the operating-system user, as ``owner``: whoever
can open the store file can do anything to it anyway, so the console and the
CLI on the host need no admin entry. A process can instead act as a
registered admin (``SUBGROUPS_ADMIN=NAME`` in its environment; the SSH
server starts each session's console so): it then records that admin's name,
and every write re-reads their role from the store inside its own
transaction, so a role change or a removal takes effect at the next action.

Roles (DESIGN.md, "Admins, roles and Actor"): a ``viewer`` reads everything
and changes nothing; an ``editor`` manages groups, states, segments, imports
and campaign drafts; an ``owner`` also sends campaigns, edits the landing
page settings and manages admins. The services call ``require`` before they
write; recipient-side changes (the landing page, one-click, the simulator)
are not admin actions and are not checked.
"""

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core import clock
from app.core.errors import RoleRefused, RuleRefused

if TYPE_CHECKING:  # the console names the actor before the data layer is imported
    from sqlmodel import Session

VIEWER = "viewer"
EDITOR = "editor"
OWNER = "owner"
ROLES = (VIEWER, EDITOR, OWNER)
_RANK = {role: rank for rank, role in enumerate(ROLES)}

# The environment a process reads to act as a registered admin, and how they came in.
ADMIN_ENV = "SUBGROUPS_ADMIN"
VIA_ENV = "SUBGROUPS_ADMIN_VIA"
LOCAL = "local"

# The sources of changes that admins make (the others are the recipients' own).
ADMIN_SOURCES = frozenset({"console", "cli", "import", "ssh"})


@dataclass(frozen=True)
class Actor:
    """The acting person: ``name`` (what the ledger records), ``role``, and ``via``
    (``local``: the OS user; else how the admin came in, such as ``ssh``).
    ``role`` is None for an admin the store no longer has."""

    name: str
    role: str | None
    via: str

    @property
    def local(self) -> bool:
        return self.via == LOCAL


def admin_key(name: str) -> str:
    """The case-insensitive key admin names are unique by."""
    return name.strip().casefold()


def acting_admin() -> str | None:
    """The registered admin this process acts as, or None (the OS user)."""
    name = (os.environ.get(ADMIN_ENV) or "").strip()
    return name or None


def actor_name() -> str:
    """The name this process records as ``Actor`` (no store needed)."""
    return acting_admin() or clock.os_user()


def role_of(session: "Session", name: str) -> str | None:
    """The stored role of the admin ``name`` (None: no such admin)."""
    from sqlmodel import col, select

    from app.core.models import Admin

    return session.exec(select(Admin.role).where(col(Admin.name_key) == admin_key(name))).first()


def current(session: "Session | None" = None) -> Actor:
    """The acting person; an admin's role is read from ``session`` (None without one)."""
    name = acting_admin()
    if name is None:
        return Actor(clock.os_user(), OWNER, LOCAL)
    via = (os.environ.get(VIA_ENV) or "").strip() or "admin"
    return Actor(name, role_of(session, name) if session is not None else None, via)


def allows(role: str | None, needed: str) -> bool:
    """Whether ``role`` includes ``needed`` (owner > editor > viewer)."""
    return role is not None and _RANK[role] >= _RANK[needed]


def _with_article(role: str) -> str:
    return f"an {role}" if role[0] in "aeiou" else f"a {role}"


def refusal(actor: Actor, needed: str, doing: str) -> str:
    """``ann is a viewer; archiving a group needs the editor role``."""
    who = (
        f"{actor.name} is {_with_article(actor.role)}"
        if actor.role is not None
        else f"{actor.name} is not an admin (any more)"
    )
    return f"{who}; {doing} needs the {needed} role"


def require(session: "Session", needed: str, doing: str) -> Actor:
    """The acting person, if their role allows ``doing``; else ``RoleRefused``.

    Called by each write service before it changes anything, with the
    session of its own transaction: an admin's role is read there, fresh.
    """
    actor = current(session)
    if not allows(actor.role, needed):
        raise RoleRefused(refusal(actor, needed, doing))
    return actor


def require_if_admin_source(session: "Session", source: str, needed: str, doing: str) -> None:
    """``require`` for a change an admin makes; recipients' own changes are not checked."""
    if source in ADMIN_SOURCES:
        require(session, needed, doing)


def require_host_files(doing: str) -> None:
    """Refuse (``RuleRefused``) reading or writing a file on the host for an admin process.

    Files on the host are its own user's: an SSH session runs as that user, so
    a path typed in the console could read the server's keys or overwrite its
    ``authorized_keys``. Imports and exports from files are for the host's
    own user (``subgroups profiles import``/``export`` there).
    """
    name = acting_admin()
    if name is not None:
        raise RuleRefused(
            f"{name} works through subgroups ssh; {doing} uses the server's files, which only "
            "its own user may do (on the host: `subgroups profiles import` or `export`)"
        )
