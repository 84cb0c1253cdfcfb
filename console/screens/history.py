"""History and search: past incidents, calls and events from the bridge's database, filtered, a page at a
time (bridge/history.py: keyset pages, newest first, never the whole table).

    filters    what (incidents, calls, every event or one kind), unit, gateway, channel (exact, or globs
               like ``mdc:*``), since and until (``19:30``, ``2026-11-26 19:30``, ``-2h``, ``yesterday``:
               the console's local time), and free text; checked as they are typed (a bad time says so
               under its box), and the search runs a moment after the typing stops
    results    PageDown past the last row (or ``m``) reads the next page in a worker; enter opens an
               incident's detail or plays a call (an alert plays the transmission it came in); ``p`` plays
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any, ClassVar

from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.validation import ValidationResult, Validator
from textual.widgets import DataTable, Input, Select

from bridge.history import CallEntry, Cursor, Filters, History, Page, Scope
from bridge.views import IncidentView
from console import format as fmt
from console.clock import clock_of
from console.data import StoreHandle, describe_error
from console.format import Cell
from console.screens.incident_detail import IncidentDetailScreen
from console.widgets.fitted_table import Column, FittedTable
from console.widgets.footer import ConsoleFooter
from console.widgets.player import ClipPlayer
from console.widgets.status_header import StatusHeader
from gateway.events import Event, Kind

PAGE = 50
SEARCH_DELAY_S = 0.3  # after the last key typed: one query per pause in typing, not one per key

RESULT_COLUMNS = (
    Column("time", "time", 12),
    Column("what", "what", 9),
    Column("unit", "unit", 14, flex=2, max_width=26),
    Column("where", "where", 12, flex=1, max_width=24),
    Column("detail", "detail", 0, flex=4),
)

#: The "what" choices: (label, (scope, event kind)).
WHAT: tuple[tuple[str, tuple[Scope, str | None]], ...] = (
    ("Incidents", ("incidents", None)),
    ("Calls", ("calls", None)),
    ("All events", ("events", None)),
    ("Alerts", ("events", str(Kind.ALERT))),
    ("Beacons", ("events", str(Kind.BEACON))),
    ("PTT IDs", ("events", str(Kind.PTT))),
    ("Status", ("events", str(Kind.STATUS))),
    ("Gateway I/O", ("events", str(Kind.IO))),
)

_RELATIVE = re.compile(r"^-?\s*(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(text: str, now: datetime) -> datetime | None:
    """A time as a dispatcher types it, in the console's local time; None when empty.

    ``-2h`` / ``30m`` / ``1d`` ago, ``19:30`` today, ``2026-11-26`` (midnight), ``2026-11-26 19:30``,
    ``today``, ``yesterday``; ISO with an offset is taken as given. Raises ValueError saying what works.
    """
    text = text.strip().lower()
    if not text:
        return None
    now = now.astimezone()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if text in ("today", "yesterday"):
        return (midnight - timedelta(days=1 if text == "yesterday" else 0)).astimezone(UTC)
    m = _RELATIVE.match(text)
    if m:
        return (now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])).astimezone(UTC)
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", text):
            t = time.fromisoformat(text.zfill(len(text) + (text.index(":") == 1)))
            return datetime.combine(now.date(), t, tzinfo=now.tzinfo).astimezone(UTC)
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}([ t]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?([+-]\d{2}:?\d{2}|z)?", text):
            parsed = datetime.fromisoformat(text.upper().replace(" ", "T"))
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=now.tzinfo)).astimezone(UTC)
    except ValueError:
        pass
    raise ValueError("not a time: try 19:30, 2026-11-26 19:30, -2h or yesterday")


class TimeValidator(Validator):
    def __init__(self, now: Callable[[], datetime]) -> None:
        super().__init__()
        self.now = now

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_when(value, self.now())
        except ValueError as exc:
            return self.failure(str(exc), value)
        return self.success()


def _summary(d: Mapping[str, Any]) -> str:
    """An event's detail in a few words: the rule or decoded meaning, with what carried it."""
    protocol = str(d.get("protocol") or "")
    for key in ("rule", "label", "meaning", "text", "digits", "frame", "state"):
        value = d.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
            return f"{protocol} {value}".strip()
    return protocol


def _call_text(duration_s: float | None, codec: str | None, sha256: str | None) -> str:
    length = f"{duration_s:.1f} s" if duration_s is not None else "? s"
    return f"{length} · {codec} sha256 {sha256[:12]}" if codec and sha256 else f"{length} · audio pending"


@dataclass(frozen=True, slots=True)
class Shown:
    """A result row: what it is, and what enter and ``p`` do with it."""

    key: str
    incident: IncidentView | None = None
    call_id: str | None = None  # the transmission to play (a call, or the one an alert came in)
    title: str = ""


class HistoryScreen(Screen[None]):
    DEFAULT_CSS = """
    HistoryScreen #filters {
        grid-size: 4 2;
        grid-columns: 1fr 1fr 1fr 1fr;
        grid-rows: 3;
        height: 6;
    }
    HistoryScreen #filters Input, HistoryScreen #filters Select {
        width: 1fr;
    }
    HistoryScreen #filters Input {
        border-title-color: $text-muted;
        border-subtitle-color: $error;
        border-subtitle-style: bold;
    }
    HistoryScreen #text {
        column-span: 2;
    }
    HistoryScreen FittedTable {
        height: 1fr;
        min-height: 4;
        border: round $primary 60%;
        border-title-style: bold;
    }
    HistoryScreen FittedTable:focus {
        border: round $primary;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("m", "more", "More"),
        Binding("p", "play", "Play"),
        Binding("slash", "focus_filters", "Filters"),
    ]

    class PageLoaded(Message):
        """A page read by the worker (``error``: why not), for the search it was read for."""

        def __init__(self, generation: int, page: Page[Any] | None, first: bool, error: str | None = None) -> None:
            super().__init__()
            self.generation, self.page, self.first, self.error = generation, page, first, error

    def __init__(self, store: StoreHandle, *, device: str | None = None) -> None:
        super().__init__()
        self.store = store
        self.header = StatusHeader()
        self.what = Select([(label, n) for n, (label, _) in enumerate(WHAT)], value=0, allow_blank=False, id="what")
        valid_time = TimeValidator(lambda: clock_of(self).now())
        self.inputs = {
            "unit": Input(placeholder="mdc:1234, mdc:*", id="unit"),
            "gateway": Input(placeholder="gw1, gw*", id="gateway"),
            "channel": Input(placeholder="patrol-1, patrol-*", id="channel"),
            "since": Input(placeholder="19:30, -2h, 2026-11-26", id="since", validators=[valid_time]),
            "until": Input(placeholder="now", id="until", validators=[valid_time]),
            "text": Input(placeholder="label, detail text, notes", id="text"),
        }
        self.results = FittedTable(RESULT_COLUMNS, id="results")
        self.player = ClipPlayer(device=device)
        self.shown: dict[str, Shown] = {}
        self._history: History | None = None
        self._filters: Filters | None = None
        self._next: Cursor | None = None
        self._generation = 0
        self._loading = False
        self._search_timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield self.header
        with Grid(id="filters"):
            yield self.what
            for name in ("unit", "gateway", "channel", "since", "until", "text"):
                yield self.inputs[name]
        yield self.results
        yield self.player
        yield ConsoleFooter()

    def on_mount(self) -> None:
        for name, box in self.inputs.items():
            box.border_title = name
        self.what.border_title = "what"
        self.results.border_title = "History"
        self.results.focus()
        self.search()

    # --- filters ---------------------------------------------------------------------------------

    def filters(self) -> Filters | None:
        """What the boxes say, or None while one of them is not valid (it says why)."""
        values = {name: box.value.strip() or None for name, box in self.inputs.items()}
        try:
            now = clock_of(self).now()
            since = parse_when(values["since"] or "", now)
            until = parse_when(values["until"] or "", now)
        except ValueError:
            return None
        if since is not None and until is not None and until <= since:
            self.inputs["until"].border_subtitle = "not after since"
            return None
        index = self.what.value if isinstance(self.what.value, int) else 0
        scope, kind = WHAT[index][1]
        return Filters(scope=scope, kind=kind, unit=values["unit"], gateway=values["gateway"],
                       channel=values["channel"], since=since, until=until, text=values["text"])

    def on_input_changed(self, message: Input.Changed) -> None:
        box = message.input
        result = message.validation_result
        box.border_subtitle = "" if result is None or result.is_valid else result.failure_descriptions[0]
        if box.id == "since":
            self.inputs["until"].border_subtitle = ""
            self.inputs["until"].validate(self.inputs["until"].value)
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_DELAY_S, self.search)

    def on_input_submitted(self, message: Input.Submitted) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self.search()
        self.results.focus()

    def on_select_changed(self, message: Select.Changed) -> None:
        self.search()

    def search(self) -> None:
        """Start again from the newest row with what the filters say now."""
        filters = self.filters()
        if filters is None:
            self.results.border_title = "History: fix the filter marked in red"
            return
        self._generation += 1
        self._filters, self._next = filters, None
        self._loading = True
        self.results.border_title = "History: searching…"
        self._read(self._generation, filters, None, True)

    def action_more(self) -> None:
        if self._next is not None and self._filters is not None and not self._loading:
            self._loading = True
            self.results.border_title = f"{self._title()}: reading more…"
            self._read(self._generation, self._filters, self._next, False)

    # --- the database ----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="history")
    def _read(self, generation: int, filters: Filters, after: Cursor | None, first: bool) -> None:
        """One page (blocking: a worker thread)."""
        try:
            if self._history is None:
                self._history = History(self.store.get().engine)
            page = self._history.page(filters, after, PAGE)
        except Exception as exc:  # noqa: BLE001 - the database away or not there yet: the screen says so, the console lives on
            self.post_message(self.PageLoaded(generation, None, first, describe_error(exc)))
            return
        self.post_message(self.PageLoaded(generation, page, first))

    async def on_history_screen_page_loaded(self, message: PageLoaded) -> None:
        if message.generation != self._generation:
            return  # the filters changed meanwhile: a newer search is on its way
        self._loading = False
        if message.page is None:
            self.results.border_title = f"History unavailable: database {message.error}"
            return
        if message.first:
            await self._new_table()
        now = clock_of(self).now()
        for row in message.page.rows:
            self._put(row, now)
        self._next = message.page.next_cursor
        more = " · more: PageDown" if self._next is not None else ""
        self.results.border_title = f"{self._title()}: {self.results.row_count} shown{more}"

    async def _new_table(self) -> None:
        """A new search starts on a new table: dropping rows one by one would cost O(rows) each."""
        if not self.results.row_count:
            return  # nothing to clear (and the first table keeps the focus it was given on mount)
        had_focus = self.focused is self.results
        await self.results.remove()
        self.shown.clear()
        self.results = FittedTable(RESULT_COLUMNS, id="results")
        await self.mount(self.results, before=self.player)
        if had_focus:
            self.results.focus()

    def _title(self) -> str:
        f = self._filters
        if f is None:
            return "History"
        return next(label for label, (scope, kind) in WHAT if scope == f.scope and kind == f.kind)

    def _put(self, row: IncidentView | CallEntry | Event, now: datetime) -> None:
        if isinstance(row, IncidentView):
            state = row.state if row.state != "resolved" else f"resolved {(row.resolution or '').replace('_', ' ')}"
            shown = Shown(f"i:{row.id}", incident=row)
            cells = (row.opened_at, "incident", row.unit or "(wired input)", fmt.where(row.channel, row.gateway),
                     f"#{row.id} {state} · {row.label or row.category}")
        elif isinstance(row, CallEntry):
            e, c = row.event, row.call
            shown = Shown(f"c:{e.id}", call_id=e.id, title=f"{e.unit or 'unidentified'} {e.channel}@{e.gateway} "
                                                           f"{fmt.local_time(e.time, now, compact=True)}")
            cells = (e.time, "call", e.unit or "-", fmt.where(e.channel, e.gateway),
                     _call_text(c.duration_s, c.codec, c.sha256))
        else:
            e = row
            title = f"{e.unit or 'unidentified'} {e.channel}@{e.gateway} {fmt.local_time(e.time, now, compact=True)}"
            text = _summary(e.detail)
            call_id: str | None = None
            if e.kind == Kind.CALL:
                duration = e.detail.get("duration_s")
                text = _call_text(float(duration) if isinstance(duration, int | float) else None, None, None)
                call_id = e.id
            elif e.kind == Kind.ALERT and e.detail.get("call"):
                call_id = str(e.detail["call"])  # the transmission the alert came in
                text += " · in a transmission (p plays)"
            shown = Shown(f"e:{e.id}", call_id=call_id, title=title)
            cells = (e.time, str(e.kind), e.unit or "-", fmt.where(e.channel, e.gateway), text)
        at, what, unit, where, detail = cells
        self.shown[shown.key] = shown
        self.results.put(shown.key, {
            "time": Cell(fmt.local_time(at, now, compact=True)),
            "what": Cell(what, "bold red" if what in ("incident", "alert") else ""),
            "unit": Cell(unit),
            "where": Cell(where),
            "detail": Cell(detail),
        }, reorder=False)

    # --- keys ------------------------------------------------------------------------------------

    def on_data_table_row_highlighted(self, message: DataTable.RowHighlighted) -> None:
        # Reaching the last row reads the next page: PageDown through the history never hits a wall.
        table = self.results
        if message.data_table is table and table.row_count and message.cursor_row >= table.row_count - 1:
            self.action_more()

    def on_key(self, event: events.Key) -> None:
        # PageDown on the last row already moves nothing, so no row is highlighted anew: read on here.
        table = self.results
        if event.key == "pagedown" and self.focused is table and table.cursor_row >= table.row_count - 1:
            self.action_more()

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        if message.data_table is not self.results:
            return
        shown = self.shown.get(str(message.row_key.value))
        if shown is None:
            return
        if shown.incident is not None:
            self._open(shown.incident)
        elif shown.call_id is not None:
            self._play(shown)
        else:
            self.notify("Nothing to open or play on this row.", timeout=3)

    def _open(self, incident: IncidentView) -> None:
        state = getattr(self.app, "state", None)
        gateways = getattr(state, "gateways", {})
        self.app.push_screen(IncidentDetailScreen(incident, self.store, gateways.get(incident.gateway)))

    def action_play(self) -> None:
        shown = self.shown.get(self.results.selected_key or "")
        if shown is None or shown.call_id is None:
            self.notify("Select a call (or an alert that came in one) to play.", timeout=3)
            return
        self._play(shown)

    def _play(self, shown: Shown) -> None:
        call_id = shown.call_id
        assert call_id is not None
        store = self.store
        self.player.play(call_id, shown.title, lambda: store.get().clip(call_id))

    def action_focus_filters(self) -> None:
        self.inputs["unit"].focus()

    def action_back(self) -> None:
        self.dismiss()

