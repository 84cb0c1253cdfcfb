"""One incident in full: its fields, every alert that joined it (with positions and the transmission it
came in), the cameras that see it with what they detected (and whom they recognised), and its history
(who did what, when, and what the radio was told). Read from the database in a worker; read again
whenever the bridge announces a change to it, so the history on screen is the bridge's, not this
console's guess."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Static

from bridge.cameras.correlation import DetectionView
from bridge.views import CallView, IncidentDetail, IncidentView, PartView
from console import format as fmt
from console.clock import clock_of
from console.data import StoreHandle, describe_error
from console.format import Cell, plain, shown
from console.messages import DetailLoaded, IncidentAction
from console.screens.evidence import EvidenceScreen
from console.state import NEW, RESOLVED
from console.widgets.fitted_table import Column, FittedTable
from console.widgets.footer import ConsoleFooter
from console.widgets.player import ClipPlayer
from console.widgets.status_header import StatusHeader
from gateway.events import Event

ALERT_COLUMNS = (
    Column("time", "time", 12),
    Column("unit", "unit", 19, flex=2, max_width=26),
    Column("position", "position", 23),
    Column("motion", "moving", 13),
    Column("what", "what", 0, flex=3),
)

CAMERA_COLUMNS = (
    Column("what", "what", 9),
    Column("name", "which", 18, flex=2, max_width=32),
    Column("detail", "detail", 20, flex=5),
)

PART_COLUMNS = (
    Column("department", "department", 14, flex=2, max_width=24),
    Column("state", "state", 11),
    Column("unit", "unit", 14, flex=2, max_width=24),
    Column("accept", "accept", 12, flex=1, max_width=22),
    Column("arrive", "arrive", 12, flex=1, max_width=22),
    Column("resolve", "handled", 12, flex=1, max_width=22),
    Column("radio", "radio", 8, flex=1, max_width=18),
)

#: History lines of what went to and came from radios and outside systems: shown in bold like operators' own.
TOLD = ("acknowledged", "resolved", "radio_ack", "dispatch", "answer", "radio_check", "transfer", "verified",
        "department")

HISTORY_COLUMNS = (
    Column("time", "time", 12),
    Column("actor", "who", 12, flex=1, max_width=24),
    Column("action", "did", 14),
    Column("note", "note", 20, flex=4),
)

TIMELINE_COLUMNS = (
    Column("time", "time", 12),
    Column("who", "who", 14, flex=1, max_width=26),
    Column("what", "what", 14),
    Column("detail", "detail", 20, flex=4),
)


def _motion(e: Event) -> str:
    p = e.position
    if p is None or p.speed_mps is None:
        return "-"
    course = f" {p.course_deg:.0f}°" if p.course_deg is not None else ""
    return f"{p.speed_mps:.1f} m/s{course}"


def _what(e: Event) -> str:
    d = e.detail
    for key in ("rule", "meaning", "text", "frame"):
        if isinstance(d.get(key), str) and d[key]:
            return f"{d.get('protocol', '')} {d[key]}".strip()
    return str(d.get("protocol", ""))


def _call(c: CallView | None) -> str:
    """The transmission an alert came in: how long, and whether its audio is here (with its hash)."""
    if c is None:
        return ""
    length = f"{c.duration_s:.1f} s" if c.duration_s is not None else "?"
    clip = f"{c.codec} sha256 {c.sha256[:12]}" if c.codec and c.sha256 else "audio pending"
    return f" · in a {length} transmission ({clip})"


def timeline(detail: IncidentDetail, now: datetime) -> list[tuple[str, tuple[float, int], dict[str, Cell]]]:
    """The incident's story in one list, oldest first: its history (opened, acknowledged, assigned,
    escalated, evidence, radio acks, notes), its alerts with their positions, and the transmissions they
    came in, as ``(row key, order, cells)``. An alert in the history is shown once, as its event (which has
    the position)."""
    alert_ids = {e.id for e in detail.alerts}
    rows: list[tuple[str, tuple[float, int], dict[str, Cell]]] = []
    for n, h in enumerate(detail.history):
        if h.action == "alert" and h.event_id in alert_ids:
            continue
        rows.append((f"h:{n}", (h.at.timestamp(), 2), {
            "time": Cell(fmt.local_time(h.at, now, compact=True)),
            "who": Cell(h.actor, "bold" if h.actor != "bridge" else "dim"),
            "what": Cell(h.action.replace("_", " "), "bold red" if h.action in ("opened", "escalated") else
                         "bold" if h.action in TOLD else ""),
            "detail": Cell((h.note or "").replace("_", " ")),
        }))
    for e in detail.alerts:
        p = e.position
        where = f"{p.lat:.6f},{p.lon:.6f} {_motion(e)}" if p else "no position"
        rows.append((f"a:{e.id}", (e.time.timestamp(), 1), {
            "time": Cell(fmt.local_time(e.time, now, compact=True)),
            "who": Cell(e.unit or "(wired input)"),
            "what": Cell("alert", "bold red"),
            "detail": Cell(f"{where} · {_what(e)} on {e.channel}@{e.gateway}"),
        }))
    for c in detail.calls:
        rows.append((f"c:{c.event_id}", (c.time.timestamp(), 0), {
            "time": Cell(fmt.local_time(c.time, now, compact=True)),
            "who": Cell(c.unit or "-"),
            "what": Cell("transmission"),
            "detail": Cell(f"on {c.channel}" + _call(c).replace(" · in a", ",")),
        }))
    rows.sort(key=lambda row: (row[1], row[0]))
    return rows


def _scored(text: str, score: float | None) -> str:
    return f"{text} ({score:.2f})" if score is not None else text


def detection_detail(d: DetectionView, relevance: float, now: datetime) -> str:
    """What a camera saw, most telling first: who or which vehicle it recognised (names, the plate, with
    the recogniser's confidence), then how sure the detector was, how it moved, and the rest."""
    parts = [fmt.local_time(d.time, now, compact=True)]
    if d.sub_label:
        parts.append(_scored(d.sub_label, d.sub_label_score))
    if d.plate:
        parts.append(_scored(f"plate {d.plate}", d.plate_score))
    if d.face and d.face != d.sub_label:  # a face Frigate recognised below its own threshold, say
        parts.append(_scored(f"face {d.face}", d.face_score))
    if d.score is not None:
        parts.append(f"score {d.score:.2f}")
    if d.category:
        parts.append(d.category.replace("_", " "))
    speed = d.avg_speed_kmh if d.avg_speed_kmh is not None else d.speed_kmh
    if speed is not None:
        way = f" heading {d.direction_deg:.0f}° in the picture" if d.direction_deg is not None else ""
        parts.append(f"{speed:.0f} km/h{way}")
    if d.stationary:
        parts.append("standing still")
    if d.end_time is not None:
        parts.append(f"gone {fmt.local_time(d.end_time, now, compact=True)}")
    if d.zones:
        parts.append("in " + ", ".join(d.zones))
    parts += [f"{model} {value[0]}" for model, value in d.classifications.items()
              if isinstance(value, list) and value]
    if d.description:
        parts.append(f'"{d.description}"')
    if d.box is not None:
        parts.append("box {},{}-{},{}".format(*d.box))
    return ", ".join([*parts, f"relevance {relevance:.2f}"])


def fields(i: IncidentView, gateway_online: bool | None, now: datetime) -> Table:
    """The incident's fields as a two-pair grid. Every value is plain text (:func:`console.format.plain`):
    a grid's str cells would be read as markup, and most of these came from the network."""
    grid = Table.grid(padding=(0, 1), expand=True)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
    if i.state == NEW:
        state = Text.assemble((" NEW: not acknowledged ", "bold white on red"))
    elif i.state == RESOLVED:
        state = plain(f"resolved: {(i.resolution or '').replace('_', ' ')}", style="bold green")
    else:
        state = Text("acknowledged", style="bold yellow")
    online = {True: " (online)", False: " (OFFLINE)", None: ""}[gateway_online]
    position = "-"
    if i.lat is not None and i.lon is not None:
        # The alert's own position, or the unit's last known one: how old it is matters as much.
        position = f"{i.lat:.5f},{i.lon:.5f}"
        if i.position_time is not None:
            position += f" ({fmt.age(i.position_time, now)} old)"

    def by(who: str | None, at: datetime | None) -> str:
        return f"{who} at {fmt.local_time(at, now)}" if who else "-"

    grid.add_row("state", state, "alerts", plain(f"{i.alert_count}, last {fmt.local_time(i.last_alert_at, now)}"))
    grid.add_row("unit", plain(i.unit or "(wired input)", style="bold"), "alias", plain(i.alias or "-"))
    grid.add_row("where", plain(f"{i.channel}@{i.gateway}{online}"), "what", plain(i.label or "-"))
    grid.add_row("opened", plain(f"{fmt.local_time(i.opened_at, now)} ({fmt.age(i.opened_at, now)} ago)"),
                 "position", plain(position))
    grid.add_row("ack'd", plain(by(i.acknowledged_by, i.acknowledged_at)), "resolved",
                 plain(by(i.resolved_by, i.resolved_at)))
    late = {"ack": "OVERDUE: not acknowledged in time", "resolve": "OVERDUE: not resolved in time"}
    parts_late = [p.department for p in i.parts if p.escalated and p.open]
    limits: Text = Text(late[i.escalated], style="bold red") if i.escalated in late else \
        Text(f"OVERDUE: {', '.join(parts_late)}", style="bold red") if parts_late else plain(_limits(i))
    grid.add_row("sent", plain(i.assigned_unit or "-", style="bold" if i.assigned_unit else ""), "limits", limits)
    flow = f" ({i.flow})" if i.flow else " (no case kind configured)"
    found = {"camera": f"camera {i.camera}", "dispatcher": "opened by hand", "needs_help": "a unit asked for help",
             "lone_worker": "a unit fell silent", "wired": "a wired input"}.get(i.source, "radio")
    grid.add_row("kind", plain(i.category.replace("_", " ") + flow), "found by",
                 plain(found + (f", of case #{i.linked_case}" if i.linked_case else "")))
    if i.duty or i.verdict:
        verdict = (i.verdict or "").replace("_", " ") + (f": {i.verdict_reason}" if i.verdict_reason else "")
        grid.add_row("duty", plain(i.duty or "-"), "verdict", plain(verdict or "-",
                                                                    style="bold" if i.verdict else ""))
    return grid


def _limits(i: IncidentView) -> str:
    """The parts' limits in a few words: ``accept 5m, arrive 15m, handle 1h`` (the first part's)."""
    if not i.parts:
        return i.category.replace("_", " ")
    p = i.parts[0]
    said = [f"{name} {fmt.span((due - p.opened_at).total_seconds())}"
            for name, due in (("accept", p.accept_due), ("arrive", p.arrive_due), ("handle", p.resolve_due)) if due]
    return ", ".join(said) or "no limits"


def part_row(p: PartView, now: datetime) -> dict[str, Cell]:
    """A department's part: its state, the unit sent, its three clocks, and what the radio was told."""
    late = p.escalated is not None and p.open

    def clock(done: datetime | None, due: datetime | None) -> Cell:
        text = fmt.part_clock(p.opened_at, done, due, now)
        return Cell(text, "bold red" if text.startswith(("OVERDUE", "LATE")) else "")

    return {
        "department": Cell(f"{p.department}" + (f" ({p.role})" if p.role not in ("single", "joint") else ""),
                           "bold red" if late else "bold"),
        "state": Cell(p.state, "dim" if p.state == "closed" else "bold green" if not p.open
                      else "bold yellow" if p.state != "new" else ""),
        "unit": Cell(p.unit or "-"),
        "accept": clock(p.accepted_at, p.accept_due),
        "arrive": clock(p.arrived_at, p.arrive_due),
        "resolve": clock(p.handled_at or p.transferred_at, p.resolve_due),
        "radio": Cell((p.dispatch_result or "-").replace("_", " ")),
    }


class IncidentDetailScreen(Screen[None]):
    DEFAULT_CSS = """
    IncidentDetailScreen #fields {
        height: auto;
        border: round $error;
        border-title-style: bold;
        padding: 0 1;
    }
    IncidentDetailScreen #fields.-acknowledged {
        border: round $warning;
    }
    IncidentDetailScreen #fields.-resolved {
        border: round $success;
    }
    IncidentDetailScreen FittedTable {
        height: 1fr;
        min-height: 4;
        border: round $primary 60%;
        border-title-style: bold;
    }
    IncidentDetailScreen #parts {
        height: auto;
        max-height: 7;
        min-height: 3;
    }
    IncidentDetailScreen FittedTable:focus {
        border: round $primary;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("a", "act('ack')", "Ack"),
        Binding("r", "act('resolve')", "Resolve"),
        Binding("n", "act('note')", "Note"),
        Binding("s", "act('assign')", "Send unit"),
        Binding("d", "act('department')", "Add dept"),
        Binding("p", "play", "Play"),
        Binding("v", "view_evidence", "Snapshots"),
        Binding("l", "toggle_timeline", "Timeline"),
    ]

    def __init__(self, incident: IncidentView, store: StoreHandle, gateway_online: bool | None = None) -> None:
        super().__init__()
        self.incident = incident
        self.incident_id = incident.id
        self.store = store
        self.gateway_online = gateway_online
        self.detail: IncidentDetail | None = None
        self.header = StatusHeader()
        self.fields = Static(id="fields")
        self.parts = FittedTable(PART_COLUMNS, id="parts")
        self.alerts = FittedTable(ALERT_COLUMNS, id="alert-events")
        self.cameras = FittedTable(CAMERA_COLUMNS, id="cameras")
        self.history = FittedTable(HISTORY_COLUMNS, id="history")
        # In the history's place, by `l`: everything that happened, merged by time.
        self.timeline = FittedTable(TIMELINE_COLUMNS, id="timeline")
        self._timeline_order: dict[str, tuple[float, int]] = {}
        self.timeline.order_by(lambda key: (self._timeline_order.get(key, (0.0, 0)), key))
        self.player = ClipPlayer()

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.fields
        yield self.parts
        yield self.alerts
        yield self.cameras
        yield self.history
        yield self.timeline
        yield self.player
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.parts.border_title = "Departments"
        self.alerts.border_title = "Alerts"
        self.cameras.border_title = "Cameras"
        self.history.border_title = "History"
        self.timeline.border_title = "Timeline"
        self.timeline.display = False
        self.show_incident(self.incident)
        self.history.focus()
        self.load()
        self.set_interval(1.0, lambda: self.show_parts(self.incident, clock_of(self).now()))  # the clocks run

    def show_incident(self, incident: IncidentView, gateway_online: bool | None = None) -> None:
        """The incident as the bridge last announced it (the fields; history follows from the database)."""
        self.incident = incident
        if gateway_online is not None:
            self.gateway_online = gateway_online
        self.fields.border_title = f"Incident #{incident.id}"
        self.fields.set_class(incident.state == "acknowledged", "-acknowledged")
        self.fields.set_class(incident.state == RESOLVED, "-resolved")
        now = clock_of(self).now()
        self.fields.update(fields(incident, self.gateway_online, now))
        self.show_parts(incident, now)

    def show_parts(self, incident: IncidentView, now: datetime) -> None:
        """Each department's part with its clocks (they run: the screen's tick shows them again)."""
        self.parts.display = bool(incident.parts)
        for p in incident.parts:
            self.parts.put(str(p.id), part_row(p, now), reorder=False)
        done = sum(1 for p in incident.parts if not p.open)
        self.parts.border_title = f"Departments: {len(incident.parts)}, {done} done"

    @work(thread=True, exclusive=True, group="detail")
    def load(self) -> None:
        """Read the incident's history and alerts from the database (blocking: a worker thread)."""
        try:
            detail = self.store.incident_detail(self.incident_id)
        except Exception as exc:  # noqa: BLE001 - the database away or not there yet: say so, keep the fields and the console
            self.post_message(DetailLoaded(self.incident_id, None, describe_error(exc)))
            return
        self.post_message(DetailLoaded(self.incident_id, detail))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        message.stop()
        if message.detail is None:
            why = f"database {message.error}" if message.error else "not in the database"
            self.history.border_title = f"History unavailable: {why}"
            return
        self.detail = message.detail
        if message.detail.incident.updated_at >= self.incident.updated_at:
            self.show_incident(message.detail.incident)
        now = clock_of(self).now()
        calls = {c.event_id: c for c in message.detail.calls}
        for e in message.detail.alerts:
            p = e.position
            self.alerts.put(e.id, {
                "time": Cell(fmt.local_time(e.time, now, compact=True)),
                "unit": Cell(e.unit or "-"),
                "position": Cell(f"{p.lat:.6f},{p.lon:.6f}" if p else "-"),
                "motion": Cell(_motion(e)),
                "what": Cell(_what(e) + _call(calls.get(str(e.detail.get("call"))))),
            }, reorder=False)
        self.alerts.border_title = f"Alerts: {len(message.detail.alerts)}"
        self._show_cameras(message.detail, now)
        for n, h in enumerate(message.detail.history):
            style = "bold" if h.actor != "bridge" else "dim"
            self.history.put(str(n), {
                "time": Cell(fmt.local_time(h.at, now, compact=True)),
                "actor": Cell(h.actor, style),
                "action": Cell(h.action.replace("_", " "), "bold red" if h.action == "escalated" else
                               "bold" if h.action in TOLD else ""),
                "note": Cell((h.note or "").replace("_", " ")),
            }, reorder=False)
        self.history.border_title = f"History: {len(message.detail.history)} entries"
        if self.history.row_count:
            self.history.move_cursor(row=self.history.row_count - 1)  # the newest, at the bottom
        rows = timeline(message.detail, now)
        for key, order, cells in rows:
            self._timeline_order[key] = order
            self.timeline.put(key, cells)
        self.timeline.border_title = f"Timeline: {len(rows)} entries (l: history)"

    def _show_cameras(self, detail: IncidentDetail, now: datetime) -> None:
        """Who can see the place, what the cameras saw there, the evidence kept, and whom to send."""
        c = detail.correlation
        rows: list[tuple[str, str, str, str]] = []  # key, what, which, detail
        for u in detail.incident.suggested:
            rows.append((f"u:{u.get('unit')}", "send", str(u.get("alias") or u.get("unit")),
                         f"{u.get('unit')}, {fmt.metres(u.get('distance_m'))} away"))
        if c is not None:
            for cam in c.cameras:
                rows.append((f"c:{cam.camera_id}", "camera", cam.name,
                             f"{cam.distance_m:.0f} m, {cam.off_axis_deg:.0f}° off axis, score {cam.score:.2f}"
                             + (f" · {cam.stream_url}" if cam.stream_url else "")))
            for d, relevance in c.detections:
                rows.append((f"d:{d.id}", "detected", f"{d.label} ({d.camera})", detection_detail(d, relevance, now)))
            for e in c.evidence:
                rows.append((f"e:{e.id}", e.kind, e.camera_id,
                             f"{fmt.local_time(e.time, now, compact=True)}, {e.size} bytes, sha256 {e.sha256[:16]}"))
        for key, what, which, text in rows:
            self.cameras.put(key, {"what": Cell(what, "bold" if what == "send" else ""), "name": Cell(which),
                                   "detail": Cell(text)}, reorder=False)
        counts = (len(c.cameras), len(c.detections), len(c.evidence)) if c is not None else (0, 0, 0)
        self.cameras.border_title = "Cameras: {}, detections: {}, evidence: {}".format(*counts)

    def action_view_evidence(self) -> None:
        """The camera snapshots of this incident, drawn in the terminal (from the selected one, if any)."""
        c = self.detail.correlation if self.detail is not None else None
        snapshots = [e for e in (c.evidence if c is not None else []) if e.kind == "snapshot"]
        if not snapshots:
            self.notify("No camera snapshots for this incident yet.", timeout=3)
            return
        key = self.cameras.selected_key
        start = next((i for i, e in enumerate(snapshots) if key == f"e:{e.id}"), 0)
        self.app.push_screen(EvidenceScreen(self.store, snapshots, start))

    def action_toggle_timeline(self) -> None:
        """Show the timeline in the history's place, or the history again (``l``)."""
        showing = not self.timeline.display
        self.timeline.display = showing
        self.history.display = not showing
        (self.timeline if showing else self.history).focus()

    def action_back(self) -> None:
        self.dismiss()

    def action_play(self) -> None:
        """Play the transmission the selected alert came in (else the newest alert's that has one)."""
        detail = self.detail
        alerts = detail.alerts if detail is not None else []
        with_call = [e for e in alerts if e.detail.get("call")]
        chosen = next((e for e in with_call if e.id == self.alerts.selected_key), None)
        chosen = chosen or (with_call[-1] if with_call else None)
        if detail is None or chosen is None:
            self.notify("No transmission is recorded for these alerts.", timeout=3)
            return
        call_id = str(chosen.detail["call"])
        call = next((c for c in detail.calls if c.event_id == call_id), None)
        when = fmt.local_time(call.time if call else chosen.time, clock_of(self).now(), compact=True)
        store = self.store
        self.player.play(call_id, shown(f"{chosen.unit or 'unidentified'} {chosen.channel}@{chosen.gateway} {when}"),
                         lambda: store.get().clip(call_id))

    def action_act(self, action: str) -> None:
        self.post_message(IncidentAction(action, self.incident_id))
