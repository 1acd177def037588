"""The lifecycle campaigns and saved segments share: named objects an admin saves.

Each has a unique name compared case-insensitively through its ``name_key``
(``groups.name_key``), is found by id or by name with a message that says
where to look, gets a ledger event naming it (``Campaign``/``Campaign ID``,
``Segment``/``Segment ID``) for each change, and a copy gets the first free
``Copy of X``, ``Copy 2 of X``… A ``SavedKind`` holds what differs between
the two; ``campaigns`` and ``segments`` keep their own rules and events.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlmodel import Session, col, select

from app.core import ledger
from app.core.errors import NameTaken, RuleRefused
from app.core.groups import name_key
from app.core.models import Campaign, Segment

Saved = TypeVar("Saved", Campaign, Segment)


@dataclass(frozen=True)
class SavedKind(Generic[Saved]):
    """One kind of saved object: its model and the words its messages and events use."""

    model: type[Saved]
    noun: str  # "campaign": in messages, and the field an unknown name is about
    label: str  # "Campaign": the event properties naming it
    list_command: str  # where an unknown name's message points
    unknown: type[RuleRefused]
    # The field an unknown id is about (None: not a form field's fault).
    id_field: str | None

    def by_id(self, session: Session, object_id: int, *, fresh: bool = False) -> Saved:
        """The object with this id; ``fresh`` re-reads it even if the session holds it."""
        found = session.get(self.model, object_id, populate_existing=fresh)
        if found is None:
            raise self.unknown(f"No {self.noun} has id {object_id}", field=self.id_field)
        return found

    def by_name(self, session: Session, name: str) -> Saved:
        """The object with this name (case-insensitive)."""
        key = name_key((name or "").strip())
        found = session.exec(select(self.model).where(col(self.model.name_key) == key)).first()
        if found is None:
            raise self.unknown(
                f"No {self.noun} is named {name!r}; `{self.list_command}` lists them",
                field=self.noun,
            )
        return found

    def check_name_free(self, session: Session, key: str, except_id: int | None = None) -> None:
        """Refuse a name key another object of this kind has (``NameTaken``)."""
        query = select(self.model).where(col(self.model.name_key) == key)
        if except_id is not None:
            query = query.where(col(self.model.id) != except_id)
        other = session.exec(query).first()
        if other is not None:
            raise NameTaken(f"A {self.noun} named {other.name!r} already exists", field="name")

    def copy_name(self, session: Session, name: str, *, longest: int) -> str:
        """The first free "Copy of NAME", "Copy 2 of NAME"…, cut to ``longest`` characters."""
        n = 1
        while True:
            candidate = (f"Copy of {name}" if n == 1 else f"Copy {n} of {name}")[:longest]
            taken = session.exec(
                select(self.model).where(col(self.model.name_key) == name_key(candidate))
            ).first()
            if taken is None:
                return candidate
            n += 1

    def record(
        self,
        session: Session,
        event: str,
        saved: Saved,
        *,
        actor: str,
        source: str,
        ts: datetime,
        campaign_id: int | None = None,
        **extra: Any,
    ) -> None:
        """The ledger event ``event`` about ``saved``, naming it by name and id."""
        ledger.record(
            session,
            name=event,
            source=source,
            actor=actor,
            campaign_id=campaign_id,
            now=ts,
            properties={self.label: saved.name, f"{self.label} ID": saved.id, **extra},
        )
