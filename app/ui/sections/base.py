"""What every section is: a titled widget in the console's ContentSwitcher.

A section (its title and keys are in the registry) has a main widget
(focused when it is shown and when escape leaves a text box), may load on
first being shown (``activate``), decides for itself what to read again when
the store changes (``store_changed``, fed by the app's ``store_changes``
signal; ``reload_when_shown`` leaves a hidden section's reads for when it is
shown again) and refits its table columns when its width changes (``fit_columns``).
"""

from typing import ClassVar

from textual import events, on
from textual.containers import Vertical

from app.ui.context import Console, console
from app.ui.messages import StoreChanged


class Section(Vertical, can_focus=False):
    """One of the console's sections."""

    # The widget focused when the section is shown (a selector).
    MAIN_WIDGET: ClassVar[str] = ""
    # From this width (cells) the section shows its optional columns (0: it has none).
    WIDE: ClassVar[int] = 0

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # At least WIDE cells wide (None: not measured yet).
        self.wide: bool | None = None
        # The store changed while the section was hidden: read again when next shown.
        self.stale = False

    @property
    def subgroups(self) -> Console:
        """The console app: its store, outbox, closing flag and store changes."""
        return console(self)

    def activate(self) -> None:
        """The section is shown (load what waits for that)."""

    def reload(self) -> None:
        """Read again what the section shows."""

    def reload_when_shown(self) -> None:
        """Read again now if the section is on screen, else once it is next shown
        (``catch_up``): a hidden section's reads would only compete with the shown one's
        work and the live log for the one interpreter."""
        if self.display:
            self.reload()
        else:
            self.stale = True

    def catch_up(self) -> None:
        """Shown again: read what changed while hidden, if anything did."""
        if self.stale:
            self.stale = False
            self.reload()

    def focus_main(self) -> None:
        """Focus the section's main widget."""
        self.query_one(self.MAIN_WIDGET).focus()

    # --- the store changed ---------------------------------------------------------

    @on(events.Mount)
    def _follow_the_store(self) -> None:
        self.subgroups.store_changes.subscribe(self, self.store_changed)

    def store_changed(self, change: StoreChanged) -> None:
        """New ledger events (from any process): read again what they concern."""

    # --- responsive columns ------------------------------------------------------------

    def check_width(self) -> bool:
        """Note whether the section is WIDE cells or wider now; True when that changed."""
        wide = self.size.width >= self.WIDE
        changed = wide != self.wide
        self.wide = wide
        return changed

    @on(events.Resize)
    def _fit_to_width(self) -> None:
        # Shown for the first time, or the terminal resized.
        self.fit_columns(changed=self.check_width())

    def fit_columns(self, *, changed: bool) -> None:
        """Fit the columns to the section's new width (``changed``: it crossed WIDE)."""
