"""Gateway health for technicians (``g``): per gateway whether it is online and since when, each driver's
state and last error, the audio input levels as bars, decode counters, the outbox, the transmitters, and
the serial ports and audio devices the gateway can see.

What is shown is the gateway's own retained ``gw/{name}/state`` payload (see ``gateway/publisher.py``
``_send_state``): live from MQTT when this console has received one, else the last one the bridge stored
in the database. Nothing here is computed by the console; it only draws what the gateway reported, as
plain text with what is not printable escaped (:func:`console.format.plain`): a gateway's names and errors
are never markup and never reach the terminal raw.

    gw1  ● online since 09:14:02 · reported 3s ago · outbox 0 pending, next seq 412 · rejected 0
      driver     state   since     counters                    last error
      radio-1    open    09:14:02  in 18204 B, 37 dec, 0 rej   -
      audio      open    09:14:03  2 radios
        patrol-1 in 1  ▕██████▍         ▏ -31.2 dBFS pk -12.0   mdc1200 41 dec
        fire     in 2  ▕████████████████▏  -0.4 dBFS pk   0.0 CLIP 12
      tx emergency-1   keyed no · sent 3 · failed 0 (serial-rts)
      ports          /dev/ttyUSB0 (FT232R), /dev/ttyS0
      audio devices  0 pulse (32 in / 32 out), 1 default (32 in / 32 out)
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from bridge.views import GatewayView
from console import format as fmt
from console.clock import clock_of
from console.format import plain, shown
from console.link import GatewayReport, GatewayReports
from console.widgets.footer import ConsoleFooter
from console.widgets.status_header import StatusHeader
from gateway.events import EventError, parse_time

POLL_S = 0.25  # how often the screen looks for new payloads (cheap: a counter)
REPAINT_S = 1.0  # ages ("reported 3s ago") move on even without news
FLOOR_DBFS = -60.0  # the left end of a level bar: quieter than this is silence on a radio input
BAR = 16  # level bar width in cells
EIGHTHS = " ▏▎▍▌▋▊▉"


@dataclass(frozen=True, slots=True)
class Shown:
    """One gateway as the screen draws it: a live report or the database's last stored payload."""

    name: str
    online: bool
    state: Mapping[str, Any]
    reported_at: datetime | None
    since: datetime | None
    live: bool


def merge(live: Mapping[str, GatewayReport], stored: Mapping[str, GatewayView]) -> list[Shown]:
    """Every gateway known, by name: what MQTT said wins over what the database held at start."""
    out = []
    for name in sorted(set(live) | set(stored)):
        report = live.get(name)
        if report is not None:
            out.append(Shown(name, report.online, report.state, report.received_at, report.since, True))
        else:
            view = stored[name]
            out.append(Shown(name, view.online, view.state or {}, view.updated_at, None, False))
    return out


# --- drawing (pure: payload in, Rich renderables out) ------------------------------------------


def level_bar(dbfs: float | None, width: int = BAR) -> Text:
    """``▕█████▍   ▏``: the level from :data:`FLOOR_DBFS` to 0 dBFS in eighths of a cell."""
    level = max(0.0, min(1.0, ((dbfs if dbfs is not None else FLOOR_DBFS) - FLOOR_DBFS) / -FLOOR_DBFS))
    eighths = round(level * width * 8)
    full, part = divmod(eighths, 8)
    body = "█" * full + (EIGHTHS[part] if part and full < width else "")
    style = "red" if dbfs is not None and dbfs > -6 else "yellow" if dbfs is not None and dbfs > -20 else "green"
    out = Text("▕", style="dim")
    out.append(body.ljust(width), style=style)
    out.append("▏", style="dim")
    return out


def _num(value: object, spec: str = ".1f") -> str:
    return format(value, spec) if isinstance(value, int | float) and not isinstance(value, bool) else "?"


def _time(value: object) -> datetime | None:
    try:
        return parse_time(value, "since")  # UTC; a time past what a datetime holds in UTC is no time
    except EventError:
        return None


def _state_text(state: object) -> Text:
    styles = {"open": "green", "down": "bold red", "starting": "yellow", "stopped": "dim"}
    word = str(state) if state is not None else "?"
    return plain(word, style=styles.get(word, "yellow"))


def _counters(d: Mapping[str, Any]) -> str:
    parts = []
    if "bytes_in" in d:
        parts.append(f"in {d['bytes_in']} B")
    for key, short in (("decoded", "dec"), ("rejected", "rej"), ("reconnects", "reconn")):
        if isinstance(d.get(key), int) and (key != "reconnects" or d[key]):
            parts.append(f"{d[key]} {short}")
    radios = d.get("radios")
    if isinstance(radios, dict):
        parts.append(f"{len(radios)} radio{'s' if len(radios) != 1 else ''}")
    return ", ".join(parts) or "-"


def _radio_row(name: str, r: Mapping[str, Any]) -> list[RenderableType]:
    level = r.get("level") if isinstance(r.get("level"), dict) else None
    rms = level.get("rms_dbfs") if level else None
    peak = level.get("peak_dbfs") if level else None
    clipped = level.get("clipped") if level else None
    reading = Text(f"{_num(rms):>6} dBFS pk {_num(peak):>5}" if level else "no level yet", style="" if level else "dim")
    if isinstance(clipped, int) and clipped > 0:
        reading.append(f" CLIP {clipped}", style="bold white on red")
    decoders = r.get("decoders")
    names = ",".join(str(x) for x in decoders) if isinstance(decoders, list) else ""
    rejected = f" {r['rejected']} rej" if r.get("rejected") else ""
    counts = f"{names or 'no decoder'} {r.get('decoded', 0)} dec{rejected}"
    return [plain(f"  {name}"), plain(f"in {r.get('input', '?')}"),
            level_bar(rms if isinstance(rms, int | float) else None), reading, plain(counts, style="dim")]


def _devices(state: Mapping[str, Any]) -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    ports = state.get("ports")
    if isinstance(ports, list):
        text = ", ".join(f"{p.get('device')}" + (f" ({p['description']})" if p.get("description") not in (None, "",
                         "n/a") else "") for p in ports if isinstance(p, dict))
        t.add_row("serial ports", plain(text) if text else Text("none", style="dim"))
    elif ports is not None:
        t.add_row("serial ports", plain(str(ports), style="yellow"))
    audio = state.get("audio_devices")
    if isinstance(audio, list):
        text = ", ".join(f"{a.get('index')} {a.get('name')} ({a.get('inputs', 0)} in / {a.get('outputs', 0)} out)"
                         for a in audio if isinstance(a, dict))
        t.add_row("audio devices", plain(text) if text else Text("none", style="dim"))
    elif audio is not None:
        t.add_row("audio devices", plain(str(audio), style="yellow"))
    return t


def draw_gateway(g: Shown, now: datetime) -> RenderableType:
    """One gateway: its headline, drivers (with audio levels), transmitters and devices."""
    s = g.state
    parts: list[RenderableType] = [_headline(g, now)]
    radios = s.get("radios")
    if isinstance(radios, dict) and radios:
        parts += _drivers(radios, now)
    elif g.online:
        parts.append(Text("  no drivers reported", style="dim"))
    transmitters = s.get("transmitters")
    if isinstance(transmitters, dict):
        parts += [_transmitter_line(name, tx) for name, tx in sorted(transmitters.items()) if isinstance(tx, dict)]
    devices = _devices(s)
    if devices.row_count:
        parts.append(devices)
    return Group(*parts)


def _headline(g: Shown, now: datetime) -> Text:
    """Online or not since when, when it last reported, its outbox and what it rejected."""
    s = g.state
    head = Text()
    head.append(f"{shown(g.name)} ", style="bold")
    if g.online:
        head.append("● online", style="bold green")
    else:
        head.append("✗ OFFLINE", style="bold white on red")
    if g.since is not None:
        head.append(f" since {fmt.local_time(g.since, now)}")
    if not g.online and s.get("reason"):
        head.append(f" ({shown(s['reason'])})", style="yellow")
    head.append(f" · reported {fmt.age(g.reported_at, now)} ago" + ("" if g.live else " (database)"), style="dim")
    outbox = s.get("outbox")
    if isinstance(outbox, dict):
        pending = outbox.get("pending")
        head.append(" · outbox ")
        head.append(f"{shown(pending)} pending", style="bold yellow" if isinstance(pending, int) and pending else "")
        if outbox.get("clips_pending"):
            head.append(f", {shown(outbox['clips_pending'])} clips")
        head.append(f", next seq {shown(outbox.get('next_seq', '?'))}")
    if isinstance(s.get("rejected"), int):
        head.append(f" · rejected {s['rejected']}")
    return head


def _drivers(radios: Mapping[str, Any], now: datetime) -> list[RenderableType]:
    """The drivers' table, then the audio radios' levels if any driver hears audio."""
    drivers = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False, header_style="bold",
                    expand=False)
    for name, kw in (("  driver", {"no_wrap": True}), ("state", {"no_wrap": True}), ("since", {"no_wrap": True}),
                     ("counters", {"overflow": "fold"}), ("last error", {"overflow": "fold"})):
        drivers.add_column(name, **kw)
    levels: list[list[RenderableType]] = []
    for name, d in sorted(radios.items()):
        if not isinstance(d, dict):
            continue
        error = d.get("last_error")
        drivers.add_row(plain(f"  {name}"), _state_text(d.get("state")),
                        plain(fmt.local_time(_time(d.get("since")), now)), plain(_counters(d)),
                        plain(str(error), style="red") if error else Text("-", style="dim"))
        radios_of = d.get("radios")
        for radio, r in sorted(radios_of.items() if isinstance(radios_of, dict) else ()):
            if isinstance(r, dict):
                levels.append(_radio_row(radio, r))
    if not levels:
        return [drivers]
    table = Table.grid(padding=(0, 1))
    for _ in range(5):
        table.add_column(no_wrap=True)
    for row in levels:
        table.add_row(*row)
    return [drivers, table]


def _transmitter_line(name: str, tx: Mapping[str, Any]) -> Text:
    keyed = tx.get("keyed")
    line = Text(f"  tx {shown(name)}  ")
    line.append("KEYED" if keyed else "keyed no", style="bold white on red" if keyed else "")
    failed = tx.get("failed", 0)
    line.append(f" · sent {shown(tx.get('sent', 0))} · ")
    line.append(f"failed {shown(failed)}", style="bold red" if failed else "")
    line.append(shown(f" ({tx.get('output', '?')}, ptt {tx.get('ptt', '?')})"), style="dim")
    return line


def draw(gateways: list[Shown], now: datetime) -> RenderableType:
    if not gateways:
        return Text("No gateway has reported yet: a gateway publishes gw/{name}/state when it connects.",
                    style="dim")
    blocks: list[RenderableType] = []
    for i, g in enumerate(gateways):
        if i:
            blocks.append(Text(""))
        blocks.append(draw_gateway(g, now))
    return Group(*blocks)


class GatewayHealthScreen(Screen[None]):
    DEFAULT_CSS = """
    GatewayHealthScreen {
        layout: vertical;
    }
    GatewayHealthScreen VerticalScroll {
        height: 1fr;
        border: round $primary;
        border-title-style: bold;
        padding: 0 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, reports: GatewayReports, stored: Callable[[], Mapping[str, GatewayView]]) -> None:
        super().__init__()
        self.reports = reports
        self.stored = stored
        self.header = StatusHeader()
        self.body = Static(id="health")
        self._painted_version = -1
        self._painted_at = 0.0
        self.drawn: RenderableType = ""

    def compose(self) -> ComposeResult:
        yield self.header
        scroll = VerticalScroll(self.body)
        scroll.border_title = "Gateway health"
        yield scroll
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.repaint()
        self.set_interval(POLL_S, self._poll)

    def shown(self) -> list[Shown]:
        return merge(self.reports.all(), self.stored())

    def _poll(self) -> None:
        if self.reports.version != self._painted_version or time.monotonic() - self._painted_at >= REPAINT_S:
            self.repaint()

    def repaint(self) -> None:
        self._painted_version = self.reports.version
        self._painted_at = time.monotonic()
        gateways = self.shown()
        online = sum(1 for g in gateways if g.online)
        self.query_one(VerticalScroll).border_title = f"Gateway health: {online} of {len(gateways)} online"
        self.drawn = draw(gateways, clock_of(self).now())
        self.body.update(self.drawn)

    def text(self, width: int = 160) -> str:
        """What the screen shows, as plain text (for tests and for a technician's bug report)."""
        console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
        console.print(self.drawn)
        return console.export_text()
