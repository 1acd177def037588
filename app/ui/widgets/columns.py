"""Column widths that keep a table's numbers and states on screen.

A DataTable sizes a column to its widest cell, so one 64-character group name
pushed Subscribed / Unsubscribed (or a profile's state, a segment's count)
past the right edge. Here the columns are measured from their cells, then the
"flexible" ones (names, identities) give up width until the columns that
matter fit the table; their cells end in an ellipsis (``cut``).
"""

from collections.abc import Collection, Mapping, Sequence

from rich.text import Text
from textual.widgets import DataTable

from app.core import text_rules

# DataTable's default cell_padding: one cell each side of every column.
PADDING = 1
# A flexible column keeps at least this many cells.
MINIMUM = 8


def fit_widths(
    natural: Sequence[int],
    available: int,
    *,
    flexible: Collection[int],
    keep: int | None = None,
    minimum: int | Mapping[int, int] = MINIMUM,
) -> list[int]:
    """Content widths for columns whose cells want ``natural`` widths.

    Columns 0 to ``keep`` (all, when None) must fit in ``available`` cells,
    padding included: the widest flexible column among them shrinks first, a
    cell at a time, down to ``minimum`` (one for all, or per column). With no
    room known (``available`` of 0: not laid out yet) the natural widths are kept.
    """
    floor = minimum if isinstance(minimum, Mapping) else dict.fromkeys(flexible, minimum)
    widths = list(natural)
    if available <= 0 or not widths:
        return widths
    last = len(widths) - 1 if keep is None else min(keep, len(widths) - 1)
    excess = sum(widths[: last + 1]) + 2 * PADDING * (last + 1) - available
    while excess > 0:
        shrinkable = [i for i in flexible if i <= last and widths[i] > floor.get(i, MINIMUM)]
        if not shrinkable:
            break
        widths[max(shrinkable, key=lambda i: widths[i])] -= 1
        excess -= 1
    return widths


def room(table: DataTable, rows: int | None = None) -> int:  # type: ignore[type-arg]
    """The cells a table has for its columns: its width less its vertical scrollbar's,
    unless ``rows`` rows (and the header) are known to fit its height."""
    if not table.size.width:
        return 0
    lines = (rows or 0) + (1 if table.show_header else 0)
    fits = rows is not None and lines <= table.size.height
    scrollbar = 0 if fits else table.styles.scrollbar_size_vertical
    return max(table.size.width - scrollbar, 0)


def natural_widths(labels: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    """Each column's widest cell (or its label)."""
    return [max([len(label)] + [len(row[i]) for row in rows]) for i, label in enumerate(labels)]


def set_columns(
    table: DataTable,  # type: ignore[type-arg]
    labels: Sequence[str],
    widths: Sequence[int],
    keys: Sequence[str] | None = None,
) -> None:
    """Replace the table's rows and columns with columns of these widths."""
    table.clear(columns=True)
    for i, label in enumerate(labels):
        table.add_column(label, width=widths[i], key=keys[i] if keys else None)


def cut(text: str, style: str = "") -> Text:
    """A cell that ends in an ellipsis when its column is narrower (never markup; control
    characters shown as escapes)."""
    return Text(text_rules.shown(text), style=style, no_wrap=True, overflow="ellipsis")
