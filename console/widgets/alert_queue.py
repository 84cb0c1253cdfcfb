"""The alert queue: open incidents, unacknowledged above acknowledged and newest first within each.

Unmistakable by design: an unacknowledged incident's state cell is red and its marker flashes (the app's
timer calls :meth:`AlertQueue.flash`; only those cells are rewritten), its unit is in bold red; an
acknowledged one is yellow. The bell and the toast are the app's (they are about news, not about rows).

What a dispatcher must see at once is written at once: a new incident, one acknowledged or overdue. A
repeated alert on an incident already shown (its count, its latest position) is written at most every
``FittedTable.FLUSH_S`` with the others of that moment: each rewrite makes DataTable draw all its visible lines
again, and an alert storm would otherwise spend the console's time redrawing (bench/console_bench.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.message import Message

from bridge.views import IncidentView
from console import format as fmt
from console.format import Cell
from console.state import NEW, queue_order
from console.widgets.fitted_table import Column, FittedTable

FLASH_ON = "bold white on red"
FLASH_OFF = "bold red"


class AlertQueue(FittedTable):
    DEFAULT_CSS = """
    AlertQueue {
        height: 1fr;
        border: round $error 60%;
        border-title-color: $text;
        border-title-style: bold;
    }
    AlertQueue:focus {
        border: round $error;
    }
    AlertQueue.-unacknowledged {
        border: heavy $error;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("enter", "open", "Detail")]

    COLUMNS = (
        Column("id", "#", 5, justify="right"),
        Column("state", "state", 6),
        Column("unit", "unit", 19, flex=3, max_width=26),
        Column("alias", "alias", 9, flex=3, max_width=24),
        Column("where", "channel@gw", 12, flex=2, max_width=30),
        Column("position", "position", 17),
        Column("age", "age", 5, justify="right"),
        Column("count", "n", 4, justify="right"),
        Column("label", "what", 0, flex=2, max_width=40),
    )

    class OpenRequested(Message):
        """The dispatcher asked for an incident's detail."""

        def __init__(self, incident_id: int) -> None:
            super().__init__()
            self.incident_id = incident_id

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.incidents: dict[int, IncidentView] = {}
        self._flash = True
        self._offered: int | None = None
        self.order_by(lambda key: queue_order(self.incidents[int(key)]) if int(key) in self.incidents else (9,))
        self.border_title = "Alerts"

    # --- what the app tells it -----------------------------------------------------------------

    def show(self, incident: IncidentView) -> None:
        held = self.incidents.get(incident.id)
        self.incidents[incident.id] = incident
        urgent = held is None or held.state != incident.state or held.overdue != incident.overdue
        self.stage(str(incident.id), held, urgent)

    def item(self, key: str) -> IncidentView | None:
        return self.incidents.get(int(key))

    def rank(self, item: IncidentView) -> tuple[Any, ...]:
        return queue_order(item)

    def flushed(self) -> None:
        self._title()

    def withdraw(self, incident_id: int) -> None:
        self.incidents.pop(incident_id, None)
        self.unstage(str(incident_id))
        self.drop(str(incident_id))
        self._title()

    def flash(self, on: bool) -> None:
        """Flip the marker of every unacknowledged incident (and only those cells)."""
        self._flash = on
        for incident in self.incidents.values():
            if incident.state == NEW and self.has(str(incident.id)):  # else its whole row is on its way
                self.put(str(incident.id), {"state": self._state_cell(incident)}, reorder=False)

    def tick(self, now: datetime) -> None:
        """Ages move on; rewritten only where the text changes."""
        for incident in self.incidents.values():
            if self.has(str(incident.id)):
                self.put(str(incident.id), {"age": Cell(fmt.age(incident.opened_at, now), justify="right")},
                         reorder=False)

    @property
    def selected_id(self) -> int | None:
        key = self.selected_key
        return int(key) if key is not None else None

    def offer_selection(self, incident_id: int) -> None:
        """A new incident takes the cursor, unless the cursor is on another unacknowledged one: what the
        dispatcher may be about to acknowledge is never moved from under their hands."""
        selected = self.incidents.get(self.selected_id) if self.selected_id is not None else None
        if selected is None or selected.state != NEW or selected.id == incident_id:
            self._offered = incident_id
            self.call_later(self._take_offer)  # after the coalesced sort has put it in its place

    def _take_offer(self) -> None:
        if self._offered is not None:
            self.select(str(self._offered))
            self._offered = None

    # --- how a row looks -----------------------------------------------------------------------

    def _state_cell(self, i: IncidentView) -> Cell:
        if i.state == NEW:
            return Cell("▲ NEW" if self._flash else "  NEW", FLASH_ON if self._flash else FLASH_OFF)
        return Cell("  ACK", "bold yellow")

    def row(self, i: IncidentView, now: datetime) -> dict[str, Cell]:
        tone = "bold red" if i.state == NEW else "yellow"
        return {
            "id": Cell(str(i.id), justify="right"),
            "state": self._state_cell(i),
            "unit": Cell(i.unit or ("(wired input)" if i.category == "alert" else i.category.replace("_", " ")), tone),
            "alias": Cell(i.alias or "", tone),
            "where": Cell(fmt.where(i.channel, i.gateway)),
            "position": Cell(fmt.position(i.lat, i.lon)),
            "age": Cell(fmt.age(i.opened_at, now), justify="right"),
            "count": Cell(str(i.alert_count), "bold" if i.alert_count > 1 else "", "right"),
            # Past its time limit: said in words, since the marker already flashes for every new incident.
            "label": Cell(("OVERDUE: " if i.overdue else "") + (i.label or ""), "bold red" if i.overdue else ""),
        }

    def _title(self) -> None:
        new = sum(1 for i in self.incidents.values() if i.state == NEW)
        late = sum(1 for i in self.incidents.values() if i.overdue)
        self.border_title = (f"Alerts: {len(self.incidents)} open" + (f", {new} NEW" if new else "")
                             + (f", {late} OVERDUE" if late else ""))
        self.set_class(new > 0, "-unacknowledged")

    def action_open(self) -> None:
        if self.selected_id is not None:
            self.post_message(self.OpenRequested(self.selected_id))
