"""Column widths that keep a table's numbers and states on screen.

A DataTable sizes a column to its widest cell, so one 64-character group name
pushed Subscribed / Unsubscribed (or a profile's state, a segment's count)
past the right edge. Here the columns are measured from their cells, then the
"flexible" ones (names, identities) give up width until the columns that
matter fit the table; their cells end in an ellipsis (``cut``).
"""

from collections.abc import Collection, Sequence

from rich.text import Text
from textual.widgets import DataTable

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
    minimum: int = MINIMUM,
) -> list[int]:
    """Content widths for columns whose cells want ``natural`` widths.

    Columns 0 to ``keep`` (all, when None) must fit in ``available`` cells,
    padding included: the widest flexible column among them shrinks first, a
    cell at a time, down to ``minimum``. With no room known (``available`` of
    0: not laid out yet) the natural widths are kept.
    """
    widths = list(natural)
    if available <= 0 or not widths:
        return widths
    last = len(widths) - 1 if keep is None else min(keep, len(widths) - 1)
    excess = sum(widths[: last + 1]) + 2 * PADDING * (last + 1) - available
    shrinkable = [i for i in flexible if i <= last]
    while excess > 0:
        widest = max(shrinkable, key=lambda i: widths[i], default=None)
        if widest is None or widths[widest] <= minimum:
            break
        widths[widest] -= 1
        excess -= 1
    return widths


def room(table: DataTable) -> int:  # type: ignore[type-arg]
    """The cells a table has for its columns (its vertical scrollbar's room kept free)."""
    if not table.size.width:
        return 0
    return max(table.size.width - table.styles.scrollbar_size_vertical, 0)


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
    """A cell that ends in an ellipsis when its column is narrower (never markup)."""
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")
