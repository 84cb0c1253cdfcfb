"""Resolve an incident: how did it end? Handled, or a false alarm (the two resolutions the bridge knows)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label

from bridge.views import IncidentView
from console.format import shown


class ResolveScreen(ModalScreen[str | None]):
    """Dismissed with ``handled``, ``false_alarm``, or None when cancelled."""

    DEFAULT_CSS = """
    ResolveScreen {
        align: center middle;
        background: $background 70%;
    }
    ResolveScreen > Vertical {
        width: 60;
        max-width: 100%;
        height: auto;
        border: thick $warning;
        background: $surface;
        padding: 1 2;
    }
    ResolveScreen Label.title {
        text-style: bold;
        margin-bottom: 1;
    }
    ResolveScreen Horizontal {
        height: auto;
        margin-top: 1;
    }
    ResolveScreen Button {
        margin-right: 2;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "choose('handled')", "Handled"),
        Binding("f", "choose('false_alarm')", "False alarm"),
        Binding("escape", "choose(None)", "Cancel"),
    ]

    def __init__(self, incident: IncidentView) -> None:
        super().__init__()
        self.incident = incident

    def compose(self) -> ComposeResult:
        i = self.incident
        who = i.unit or "(wired input)"
        with Vertical():
            yield Label(f"Resolve incident #{i.id}", classes="title")
            yield Label(shown(f"{who}{f' ({i.alias})' if i.alias else ''} on {i.channel}@{i.gateway}"), markup=False)
            yield Label("How did it end?")
            with Horizontal():
                yield Button("Handled (h)", id="handled", variant="success")
                yield Button("False alarm (f)", id="false_alarm", variant="warning")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, resolution: str | None) -> None:
        self.dismiss(resolution)
