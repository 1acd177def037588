"""A group picker that filters as you type: a filter box above a SelectionList.

With up to 50 groups, finding one by arrow keys took dozens of presses. Here a
letter typed on the list goes to the filter box; the list then shows only the
groups whose name contains the text (case-insensitive); Backspace on the list
takes a letter back. Enter or Down in the box goes back to the list. A tick
made while filtered is kept when the filter changes or is cleared:
``selected`` counts hidden ticks too.

The list keeps its own id (``list_id``), so code and tests that look for the
SelectionList by id still find it.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from textual import events, on
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.widgets import Input, SelectionList
from textual.widgets.selection_list import Selection

# Below this many options the list is short enough to scan: no filter box.
FILTER_FROM = 8


@dataclass(frozen=True)
class PickerOption:
    """One choice: the text shown (as typed, never markup), its value, ticked or not."""

    label: str
    value: int
    ticked: bool = False


class GroupPicker(Vertical):
    """A filter box and a SelectionList of groups; see the module docstring."""

    DEFAULT_CSS = """
    GroupPicker {
        height: auto;
        & > .picker-filter {
            width: 1fr;
        }
        & > SelectionList {
            height: auto;
        }
    }
    """

    def __init__(
        self,
        options: Iterable[PickerOption] = (),
        *,
        list_id: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        placeholder: str = "type to filter the groups",
    ) -> None:
        super().__init__(id=id, classes=classes)
        self._options = list(options)
        # Ticks of the options the filter hides (the shown ones live in the list).
        self._ticked = {o.value for o in self._options if o.ticked}
        self._list_id = list_id
        self._placeholder = placeholder

    @staticmethod
    def matches(label: str, text: str) -> bool:
        """Does the filter ``text`` keep the option called ``label``?"""
        return text.strip().casefold() in label.casefold()

    def compose(self) -> ComposeResult:
        yield Input(
            placeholder=self._placeholder,
            compact=True,
            select_on_focus=False,
            classes="picker-filter",
        )
        yield SelectionList[int](
            *[Selection(Content(o.label), o.value, o.ticked) for o in self._options],
            id=self._list_id,
            compact=True,
        )

    def on_mount(self) -> None:
        self._filter_box.display = len(self._options) >= FILTER_FROM

    @property
    def listing(self) -> SelectionList[int]:
        return self.query_one(SelectionList)

    @property
    def _filter_box(self) -> Input:
        return self.query_one(".picker-filter", Input)

    # --- what is ticked -------------------------------------------------------------

    def _shown_values(self) -> set[int]:
        listing = self.listing
        return {listing.get_option_at_index(i).value for i in range(listing.option_count)}

    @property
    def selected(self) -> list[int]:
        """Every ticked value, shown or hidden by the filter, in the options' order."""
        if not self.is_mounted:
            return [o.value for o in self._options if o.value in self._ticked]
        shown = self._shown_values()
        in_list = set(self.listing.selected)
        return [
            o.value
            for o in self._options
            if (o.value in in_list if o.value in shown else o.value in self._ticked)
        ]

    def _keep_shown_ticks(self) -> None:
        """Copy the list's ticks into ``_ticked`` before the list is rebuilt."""
        shown = self._shown_values()
        in_list = set(self.listing.selected)
        self._ticked = (self._ticked - shown) | (shown & in_list)

    def select(self, value: int) -> None:
        if value in self._shown_values():
            self.listing.select(value)
        self._ticked.add(value)

    def deselect(self, value: int) -> None:
        if value in self._shown_values():
            self.listing.deselect(value)
        self._ticked.discard(value)

    def set_options(self, options: Iterable[PickerOption]) -> None:
        """Replace the options (their ticks as given), keeping the filter text."""
        self._options = list(options)
        self._ticked = {o.value for o in self._options if o.ticked}
        self._filter_box.display = len(self._options) >= FILTER_FROM
        self._show(self._filter_box.value)

    def _show(self, text: str) -> None:
        listing = self.listing
        highlighted = listing.highlighted
        listing.clear_options()
        listing.add_options(
            [
                Selection(Content(o.label), o.value, o.value in self._ticked)
                for o in self._options
                if self.matches(o.label, text)
            ]
        )
        if listing.option_count:
            listing.highlighted = min(highlighted or 0, listing.option_count - 1)

    # --- typing -----------------------------------------------------------------------

    @on(Input.Changed, ".picker-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        event.stop()  # the picker's own box: not a field of the form around it
        self._keep_shown_ticks()
        self._show(event.value)
        self.listing.highlighted = 0 if self.listing.option_count else None

    @on(Input.Submitted, ".picker-filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._to_list()

    def _to_list(self) -> None:
        listing = self.listing
        listing.focus()
        if listing.option_count and listing.highlighted is None:
            listing.highlighted = 0

    def on_key(self, event: events.Key) -> None:
        focused = self.screen.focused
        if focused is self._filter_box and event.key == "down":
            event.stop()
            self._to_list()
        elif (
            focused is self.listing
            and self._filter_box.display
            and event.character is not None
            and event.character.isalpha()
        ):
            # Type-to-filter: a letter on the list starts (or goes on with) the filter.
            event.stop()
            event.prevent_default()
            self._edit_filter(self._filter_box.value + event.character)
        elif focused is self.listing and event.key == "backspace" and self._filter_box.value:
            # Backspace on the list takes back the filter's last letter.
            event.stop()
            event.prevent_default()
            self._edit_filter(self._filter_box.value[:-1])

    def _edit_filter(self, text: str) -> None:
        box = self._filter_box
        box.focus()
        box.value = text
        box.cursor_position = len(text)
