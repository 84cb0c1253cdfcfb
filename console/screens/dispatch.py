"""The dispatcher's main screen: the alert queue above, the units below, the keys in the footer.

The screen is layout and keys only: a key for an incident posts an :class:`IncidentAction`, which the app
carries out (it owns the operator and the link to the bridge), the same as from the detail screen.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen

from console.messages import IncidentAction
from console.widgets.alert_queue import AlertQueue
from console.widgets.footer import ConsoleFooter
from console.widgets.status_header import StatusHeader
from console.widgets.units_table import UnitsTable
from console.widgets.voice_panel import VoicePanel


class DispatchScreen(Screen[None]):
    DEFAULT_CSS = """
    DispatchScreen {
        layout: vertical;
    }
    DispatchScreen AlertQueue {
        height: 1fr;
        min-height: 6;
    }
    DispatchScreen UnitsTable {
        height: 1fr;
        min-height: 6;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("a", "acknowledge", "Ack"),
        Binding("r", "resolve", "Resolve"),
        Binding("n", "note", "Note"),
        Binding("s", "assign", "Send unit", show=False),
        Binding("o", "app.open_case", "Open case", show=False),
        Binding("i", "focus_alerts", "Alerts"),
        Binding("u", "focus_units", "Units"),
        Binding("h", "app.open_history", "History"),
        Binding("m", "app.open_map", "Map"),
        # Off the footer, which an 80-column terminal fills already; ctrl+p lists it with its key.
        Binding("t", "app.open_plans", "Channel plans", show=False),
        # For technicians: listed in the command palette (ctrl+p), the footer has no room at 80 columns.
        Binding("g", "app.open_health", "Gateways", show=False),
        # For supervisors: how the cases went (the figures of `pttbridge report`, drawn).
        Binding("v", "app.open_report", "Report", show=False),
        # Live voice (README "Live voice"): off the footer too, in ctrl+p with their keys.
        Binding("c", "focus_voice", "Voice panel (channels)", show=False),
        Binding("l", "app.voice_listen", "Listen to the channel", show=False),
        Binding("k", "app.voice_talk", "Talk (press again to stop)", show=False),
        Binding("K", "app.voice_override", "Talk over radio traffic (emergency)", show=False),
        Binding("M", "app.remote_monitor", "Remote monitor (MDC-1200)", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.header = StatusHeader()
        self.queue = AlertQueue(id="alerts")
        self.units = UnitsTable(id="units")
        self.voice = VoicePanel(id="voice")

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.queue
        yield self.voice
        yield self.units
        # Its keys fill 80 columns; the palette's ctrl+p is shown on every other screen.
        yield ConsoleFooter(show_command_palette=False)

    def on_mount(self) -> None:
        self.queue.focus()

    def _act(self, action: str) -> None:
        selected = self.queue.selected_id
        if selected is None:
            self.notify("No incident is selected.", severity="warning", timeout=3)
            return
        self.post_message(IncidentAction(action, selected))

    def action_acknowledge(self) -> None:
        self._act("ack")

    def action_resolve(self) -> None:
        self._act("resolve")

    def action_note(self) -> None:
        self._act("note")

    def action_assign(self) -> None:
        self._act("assign")

    def action_focus_alerts(self) -> None:
        self.queue.focus()

    def action_focus_units(self) -> None:
        self.units.focus()

    def action_focus_voice(self) -> None:
        self.voice.focus()
