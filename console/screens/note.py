"""Add a note to an incident: a line of text that goes into its history under the operator's name."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

MAX_NOTE = 4000  # what the bridge accepts


class NoteScreen(ModalScreen[str | None]):
    """Dismissed with the note, or None when cancelled."""

    DEFAULT_CSS = """
    NoteScreen {
        align: center middle;
        background: $background 70%;
    }
    NoteScreen > Vertical {
        width: 70;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    NoteScreen Label.title {
        text-style: bold;
        margin-bottom: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, incident_id: int) -> None:
        super().__init__()
        self.incident_id = incident_id

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Note on incident #{self.incident_id}", classes="title")
            yield Input(placeholder="what happened, who was sent ... (enter saves, escape cancels)",
                        max_length=MAX_NOTE)

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        self.dismiss(text or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
