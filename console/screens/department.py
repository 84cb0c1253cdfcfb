"""Add a department to an open case: its part gets its own state and clock from now. The departments the
site's configuration declares are offered, those the case has already left out."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from bridge.views import IncidentView
from config.schema import DepartmentConfig
from console.format import plain


class DepartmentScreen(ModalScreen[str | None]):
    """Dismissed with the department's name, or None when cancelled."""

    DEFAULT_CSS = """
    DepartmentScreen {
        align: center middle;
        background: $background 70%;
    }
    DepartmentScreen > Vertical {
        width: 60;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    DepartmentScreen Label.title {
        text-style: bold;
        margin-bottom: 1;
    }
    DepartmentScreen OptionList {
        height: auto;
        max-height: 10;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, incident: IncidentView, departments: list[DepartmentConfig]) -> None:
        super().__init__()
        self.incident = incident
        has = {p.department for p in incident.parts}
        self.offered = [d for d in departments if d.name not in has]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Add a department to case #{self.incident.id}", classes="title")
            if self.offered:
                yield OptionList(*(Option(plain(d.label or d.name), id=d.name) for d in self.offered))
            else:
                yield Label("Every department of this site has a part in it already (escape goes back).")

    def on_mount(self) -> None:
        if self.offered:
            self.query_one(OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
