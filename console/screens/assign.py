"""Send a unit to an incident: the nearest units the bridge suggests are offered first, any unit may
be typed. The choice goes into the incident's history under the operator's name, and the bridge tells
the unit's radio through the gateway that heard it last (its answers come back into the history)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from bridge.views import IncidentView
from console.format import metres, plain


class AssignScreen(ModalScreen[str | None]):
    """Dismissed with the unit sent, or None when cancelled."""

    DEFAULT_CSS = """
    AssignScreen {
        align: center middle;
        background: $background 70%;
    }
    AssignScreen > Vertical {
        width: 70;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    AssignScreen Label.title {
        text-style: bold;
        margin-bottom: 1;
    }
    AssignScreen OptionList {
        height: auto;
        max-height: 8;
        margin-bottom: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, incident: IncidentView) -> None:
        super().__init__()
        self.incident = incident

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Send a unit to case #{self.incident.id} (its radio is told)", classes="title")
            if self.incident.suggested:
                yield OptionList(*(Option(plain(f"{u.get('alias') or u.get('unit')}  {u.get('unit')}, "
                                                f"{metres(u.get('distance_m'))} away"), id=str(u.get("unit")))
                                   for u in self.incident.suggested))
            yield Input(value=self.incident.assigned_unit or "",
                        placeholder="the unit sent, e.g. mdc:1234 (enter sends, escape cancels)", max_length=64)

    def on_mount(self) -> None:
        self.query_one(OptionList if self.incident.suggested else Input).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
