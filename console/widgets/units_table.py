"""The units table: every radio identity heard, by alias (else identity), with its last position, when it
was last heard, where, and whether the gateway that heard it is online now.

A fleet of a thousand moving units rewrites rows hundreds of times a second, and every cell rewritten
makes DataTable draw all its visible lines again at the next frame (its render cache is keyed by an
update counter). So a unit that merely moved is written at most every ``FittedTable.FLUSH_S``, with all the
others that moved meanwhile; a unit heard for the first time, in emergency, or whose gateway went up
or down is written at once. Ages are rewritten once a second for the rows on screen only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from textual.message import Message

from bridge.views import UnitView
from console import format as fmt
from console.format import Cell
from console.widgets.fitted_table import Column, FittedTable


def unit_order(u: UnitView) -> tuple[str, str]:
    """Alphabetical by what a dispatcher calls it: rows do not jump about with every beacon."""
    return ((u.alias or u.unit).casefold(), u.unit)


class UnitsTable(FittedTable):
    DEFAULT_CSS = """
    UnitsTable {
        height: 1fr;
        border: round $primary 60%;
        border-title-color: $text;
        border-title-style: bold;
    }
    UnitsTable:focus {
        border: round $primary;
    }
    """

    COLUMNS = (
        Column("unit", "unit", 19, flex=3, max_width=26),
        Column("alias", "alias", 10, flex=3, max_width=24),
        Column("heard", "heard", 6, justify="right"),
        Column("position", "position", 17),
        Column("where", "channel@gw", 14, flex=2, max_width=30),
        Column("online", "gw", 7),
        Column("kind", "last", 0, flex=1, max_width=8),
    )

    class UnitChosen(Message):
        """The dispatcher pressed enter on a unit."""

        def __init__(self, unit: str) -> None:
            super().__init__()
            self.unit = unit

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.units: dict[str, UnitView] = {}
        self.order_by(lambda key: unit_order(self.units[key]) if key in self.units else ("\uffff", key))
        self.border_title = "Units"

    def show(self, unit: UnitView) -> None:
        held = self.units.get(unit.unit)
        self.units[unit.unit] = unit
        urgent = (held is None or unit.gateway_online != held.gateway_online
                  or (unit.last_kind == "alert") != (held.last_kind == "alert"))
        self.stage(unit.unit, held, urgent)

    def item(self, key: str) -> UnitView | None:
        return self.units.get(key)

    def rank(self, item: UnitView) -> tuple[str, str]:
        return unit_order(item)

    def flushed(self) -> None:
        self.border_title = f"Units: {len(self.units)}"

    def tick(self, now: datetime) -> None:
        """Ages move on: rewritten for the rows on screen (the others are when they scroll into view,
        within a second)."""
        top = max(int(self.scroll_y), 0)
        for row in self.ordered_rows[top: top + self.size.height]:
            unit = self.units.get(str(row.key.value))
            if unit is not None and not self.staged(unit.unit):
                self.put(unit.unit, {"heard": Cell(fmt.age(unit.last_heard, now), justify="right")}, reorder=False)

    def row(self, u: UnitView, now: datetime) -> dict[str, Cell]:
        p = u.position
        if u.gateway_online is None:
            online = Cell("?", "dim")
        elif u.gateway_online:
            online = Cell("● up", "green")
        else:
            online = Cell("✗ DOWN", "bold red")
        return {
            "unit": Cell(u.unit, "bold red" if u.last_kind == "alert" else ""),
            "alias": Cell(u.alias or ""),
            "heard": Cell(fmt.age(u.last_heard, now), justify="right"),
            "position": Cell(fmt.position(p.lat, p.lon) if p else "-"),
            "where": Cell(fmt.where(u.last_channel, u.last_gateway)),
            "online": online,
            "kind": Cell(u.last_kind or "", "dim"),
        }

    def on_data_table_row_selected(self, event: FittedTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(self.UnitChosen(event.row_key.value))
