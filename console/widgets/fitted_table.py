"""A DataTable whose columns share out whatever width the terminal has, updated in place.

Rows are put by key as :class:`~console.format.Cell` dicts; a row that exists has only its changed cells
rewritten (``update_cell``), never removed and added again (row removal costs O(rows) in DataTable).
Reordering is coalesced: many puts in one burst of messages lead to one sort, after the burst. The
cursor stays on the row it was on (by key) through sorts and re-layouts: what a dispatcher has selected
must not change under their hands because an alert arrived.

Every cell written makes DataTable draw each visible cell again (its caches are keyed by one update
counter for the whole table), and drawing a cell through Rich is what a busy console spends its frames on.
So cells drawn are kept here by what they show, not by that counter: a frame after one cell changed
draws that cell only; a sort that moves a row only re-stamps its cells with their new row index.

A table of items (incidents, units) stages a row when its item changes and writes the staged rows in
one flush: at once for what a dispatcher must see now, else within ``FLUSH_S``. The subclass says how
(``item``, ``row``, ``rank``: the item behind a key, its cells, its place in the order).

Columns are fixed (``flex=0``) or flexible: a flexible column gets its ``width`` at least and a share of
what is left by its ``flex`` weight, up to ``max_width``; one whose ``width`` is 0 disappears on a narrow
terminal. A resize that changes the widths rebuilds the table once (O(rows), at resize only).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.coordinate import Coordinate
from textual.widgets import DataTable

from console.clock import clock_of
from console.format import Cell, Justify, RowText, fit

#: Cells drawn kept, per table: its visible cells in each of their looks (cursor, hover, focus) several times.
DRAWN_CELLS = 1500
#: DataTable's own caches are keyed by its update counter, so only the current screenful is of use; the
#: thousands of stale entries it would keep are objects every full garbage collection has to walk (its
#: pauses, not drawing, made the slowest frames: bench/console_bench.py).
STALE_CACHE = 256

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class FlatLRU(Generic[K, V]):
    """A least-recently-used cache as DataTable uses its caches (``in``, ``[]``, ``get``, ``clear``), on an
    OrderedDict. Textual's LRUCache links its entries in a ring of lists: a ring dropped by ``clear()``
    (DataTable clears its caches on every cell written) is a reference cycle, so it and every strip and
    segment it held waited for a full garbage collection: ~28,000 objects a second under load, which made
    the full collections that the console keeps rare (DispatchApp.on_mount) pause three times as long
    (bench/console_bench.py). Entries dropped here are freed at once."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __getitem__(self, key: K) -> V:
        value = self._data[key]
        self._data.move_to_end(key)
        return value

    def get(self, key: K, default: V | None = None) -> V | None:
        if key not in self._data:
            return default
        return self[key]

    def __setitem__(self, key: K, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        if len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    set = __setitem__

    def discard(self, key: K) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()


#: Columns reserved at the right for the vertical scrollbar (the CSS below makes it one column wide),
#: so that the layout does not change when the rows start to overflow.
SCROLLBAR = 1


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int  # the whole width with its separating space; the least a flexible column gets
    flex: int = 0
    max_width: int | None = None
    justify: Justify = "left"


def share_widths(columns: Sequence[Column], total: int) -> dict[str, int]:
    """Each column's width for ``total`` terminal cells: minimums first, the rest by flex weight."""
    widths = {c.key: c.width for c in columns}
    spare = total - sum(widths.values())
    if spare < 0:  # narrower than every minimum: flexible columns give way first, down to 4
        for c in sorted((c for c in columns if c.flex), key=lambda c: c.flex):
            take = min(-spare, widths[c.key] - min(c.width, 4))
            widths[c.key] -= take
            spare += take
    growing = [c for c in columns if c.flex]
    while spare > 0 and growing:
        weight = sum(c.flex for c in growing)
        given = 0
        for c in growing:
            room = (c.max_width or total) - widths[c.key]
            add = min(room, max(1, spare * c.flex // weight))
            add = min(add, spare - given)
            widths[c.key] += add
            given += add
        spare -= given
        growing = [c for c in growing if widths[c.key] < (c.max_width or total)]
        if given == 0:
            break
    return widths


class FittedTable(DataTable[Text]):
    DEFAULT_CSS = """
    FittedTable {
        scrollbar-size-vertical: 1;
        overflow-x: hidden;
    }
    /* Focus is shown by the border and the cursor. DataTable's tint of every cell would make a key that
       moves the focus draw both tables again, cell by cell, in the very frame that answers it. */
    FittedTable:focus {
        background-tint: $foreground 0%;
    }
    """

    COLUMNS: ClassVar[tuple[Column, ...]] = ()

    def __init__(self, columns: Sequence[Column] | None = None, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", cell_padding=0, **kwargs)
        self.specs: tuple[Column, ...] = tuple(columns) if columns is not None else self.COLUMNS
        self._held: dict[str, dict[str, Cell]] = {}
        self._widths: dict[str, int] = {}
        self._order: Callable[[str], Any] | None = None
        self._sort_pending = False
        self._flush_at: str | None = None  # "now" or "later": a flush of batched rows is scheduled
        self._pending: dict[str, Any] = {}  # row key -> its item as last written (None: never)
        # (row, column, style, cursor, hover, ...) -> (the value drawn, its row index, its lines)
        self._drawn: FlatLRU[tuple[Any, ...], tuple[object, int, list[list[Segment]]]] = FlatLRU(DRAWN_CELLS)
        # DataTable's own caches, without reference cycles (FlatLRU says why).
        self._cell_render_cache = FlatLRU(STALE_CACHE)  # type: ignore[assignment]
        self._row_render_cache = FlatLRU(STALE_CACHE)  # type: ignore[assignment]
        self._row_renderable_cache = FlatLRU(STALE_CACHE)  # type: ignore[assignment]
        self._line_cache = FlatLRU(STALE_CACHE)  # type: ignore[assignment]
        self._offset_cache = FlatLRU(1)  # type: ignore[assignment]
        self._ordered_row_cache = FlatLRU(1)  # type: ignore[assignment]

    # --- layout --------------------------------------------------------------------------------

    def on_mount(self) -> None:
        self._relayout()

    def on_resize(self, _event: events.Resize) -> None:
        self._relayout()

    def _relayout(self) -> None:
        widths = share_widths(self.specs, max(self.size.width - SCROLLBAR, 0))
        if widths == self._widths:
            return
        self._widths = widths
        selected = self.selected_key
        self.clear(columns=True)
        for c in self.specs:
            label = fit(Cell(c.label, "bold", c.justify), widths[c.key])
            self.add_column(label, width=widths[c.key], key=c.key)
        for key, cells in self._held.items():
            self.add_row(*self._fitted(key, cells), key=key)
        self._sort_now()
        self.select(selected)

    def _fitted(self, key: str, cells: Mapping[str, Cell]) -> list[Text]:
        first = self.specs[0].key if self.specs else ""
        return [fit(cells.get(c.key, Cell("")), self._widths.get(c.key, c.width),
                    row_key=key if c.key == first else None) for c in self.specs]

    # --- drawing ------------------------------------------------------------------------------

    def _render_cell(self, row_index: int, column_index: int, base_style: Style, width: int,
                     cursor: bool = False, hover: bool = False) -> list[list[Segment]]:
        if column_index < 0:  # row labels: none here
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        column_key = self._column_locations.get_key(column_index)
        row_key = self._header_row_key if row_index < 0 else self._row_locations.get_key(row_index)
        if column_key is None or row_key is None:
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value = self.columns[column_key].label if row_index < 0 else self._data[row_key][column_key]
        # Focus (a pseudo-class) changes how the cursor and hover look, and nothing else in a cell: a key
        # moving the focus between tables must not draw both tables again.
        looks = self._pseudo_class_state if cursor or hover else None
        key = (row_key, column_key, base_style, cursor, hover, self._show_hover_cursor, looks, width)
        held = self._drawn.get(key)
        if held is not None and held[0] is value:  # values are replaced, never changed in place
            if held[1] == row_index:
                return held[2]
            # Moved by a sort: the same text, with the row index a mouse click reads from its style.
            meta = Style.from_meta({"row": row_index, "column": column_index})
            lines = [list(Segment.apply_style(line, post_style=meta)) for line in held[2]]
        else:
            lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._drawn[key] = (value, row_index, lines)
        return lines

    # --- rows ----------------------------------------------------------------------------------

    def put(self, key: str, cells: Mapping[str, Cell], *, reorder: bool = True) -> None:
        """Show a row: added if new, else only its changed cells rewritten."""
        held = self._held.get(key)
        if held is None:
            self._held[key] = dict(cells)
            if self._widths:
                self.add_row(*self._fitted(key, cells), key=key)
                if reorder:
                    self.request_sort()
            return
        first = self.specs[0].key if self.specs else ""
        for column, cell in cells.items():
            if held.get(column) != cell:
                held[column] = cell
                if self._widths and column in self._widths:
                    fitted = fit(cell, self._widths[column], row_key=key if column == first else None)
                    self.update_cell(key, column, fitted)
        if reorder:
            self.request_sort()

    def drop(self, key: str) -> None:
        if self._held.pop(key, None) is not None and key in self.rows:
            selected = self.selected_key
            index = self.get_row_index(key)
            self.remove_row(key)
            if selected == key and self.row_count:  # the row below moves up under the cursor
                self.move_cursor(row=min(index, self.row_count - 1), scroll=False)

    def has(self, key: str) -> bool:
        return key in self._held

    def keys(self) -> Iterable[str]:
        return self._held.keys()

    def cells(self, key: str) -> Mapping[str, Cell]:
        return self._held.get(key, {})

    # --- order and selection -------------------------------------------------------------------

    def order_by(self, key: Callable[[str], Any]) -> None:
        """How rows are ordered, as a function of their key."""
        self._order = key

    def request_sort(self) -> None:
        """Sort once, after the messages already waiting have been handled."""
        if self._order is not None and not self._sort_pending:
            self._sort_pending = True
            self.call_later(self._sort_now)

    def _sort_now(self) -> None:
        self._sort_pending = False
        if self._order is None or not self.specs or self.row_count < 2:
            return
        order = self._order
        selected = self.selected_key
        self.sort(self.specs[0].key, key=lambda cell: order(cell.row_key if isinstance(cell, RowText) else ""))
        self.select(selected)

    FLUSH_S: ClassVar[float] = 0.25  # a routine change waits at most this long to be written

    def schedule_flush(self, urgent: bool) -> None:
        """Write batched rows: at once for what a dispatcher must see now, else with the next batch
        (each rewrite makes DataTable draw all its visible lines, so routine changes are gathered)."""
        if urgent and self._flush_at != "now":
            self._flush_at = "now"
            self.call_later(self.flush)  # after the burst of messages already waiting
        elif self._flush_at is None:
            self._flush_at = "later"
            self.set_timer(self.FLUSH_S, self.flush)

    def stage(self, key: str, was: Any, urgent: bool) -> None:
        """Write row ``key`` at the next flush; ``was`` is the item as its row was last written (None:
        never), so that the flush sorts only when the item's place in the order changed."""
        self._pending.setdefault(key, was)
        self.schedule_flush(urgent)

    def unstage(self, key: str) -> None:
        self._pending.pop(key, None)

    def staged(self, key: str) -> bool:
        return key in self._pending

    def flush(self) -> None:
        """Write the rows staged since the last flush, each from its item as it is now."""
        self._flush_at = None
        if not self._pending:
            return
        now = clock_of(self).now()
        pending, self._pending = self._pending, {}
        for key, was in pending.items():
            item = self.item(key)
            if item is not None:  # else withdrawn meanwhile
                self.put(key, self.row(item, now), reorder=was is None or self.rank(was) != self.rank(item))
        self.flushed()

    # Hooks of a table that stages rows: the item behind a row, its cells, its place in the order.
    def item(self, key: str) -> Any:
        raise NotImplementedError

    def row(self, item: Any, now: datetime) -> dict[str, Cell]:
        raise NotImplementedError

    def rank(self, item: Any) -> Any:
        raise NotImplementedError

    def flushed(self) -> None:
        """After a flush wrote rows (e.g. a count in the title)."""

    @property
    def selected_key(self) -> str | None:
        if self.row_count == 0 or not self.is_valid_row_index(self.cursor_row):
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value

    def select(self, key: str | None) -> None:
        if key is not None and key in self.rows:
            self.move_cursor(row=self.get_row_index(key), scroll=False)

    def ordered_keys(self) -> list[str]:
        """Row keys in display order."""
        return [str(self.coordinate_to_cell_key(Coordinate(i, 0)).row_key.value) for i in range(self.row_count)]

    def texts(self) -> list[dict[str, str]]:
        """What each row says, uncut, in display order (for tests, and screenshots in words)."""
        return [{c: cell.text for c, cell in self._held[key].items()} for key in self.ordered_keys()]
