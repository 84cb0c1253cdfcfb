"""Resolve an incident: how did it end? Handled, or a false alarm (the two resolutions the bridge knows).
A case a camera found is verified on the way: a valid case, or a false detection, and why (the valid-case
rate of the cameras is counted from these)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from bridge.views import IncidentView
from console.format import shown


@dataclass(frozen=True, slots=True)
class Resolution:
    """How it ended: ``handled`` or ``false_alarm``; for a camera's case its verdict and the reason."""

    resolution: str
    verdict: str | None = None  # valid | false_detection
    reason: str | None = None


class ResolveScreen(ModalScreen[Resolution | None]):
    """Dismissed with the :class:`Resolution`, or None when cancelled."""

    DEFAULT_CSS = """
    ResolveScreen {
        align: center middle;
        background: $background 70%;
    }
    ResolveScreen > Vertical {
        width: 64;
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
        Binding("v", "choose('valid')", "Valid case", show=False),
        Binding("escape", "choose(None)", "Cancel"),
    ]

    def __init__(self, incident: IncidentView) -> None:
        super().__init__()
        self.incident = incident
        #: A camera found it: the dispatcher says whether it was a real case, and why.
        self.verifying = incident.source == "camera"
        self._chosen: str | None = None

    def compose(self) -> ComposeResult:
        i = self.incident
        with Vertical():
            yield Label(f"Resolve incident #{i.id}", classes="title")
            if self.verifying:
                yield Label(shown(f"{i.category.replace('_', ' ')} seen by camera {i.camera or i.channel}"),
                            markup=False)
                yield Label("Was it a real case?")
                with Horizontal():
                    yield Button("Valid case (v)", id="valid", variant="success")
                    yield Button("False detection (f)", id="false_detection", variant="warning")
                    yield Button("Cancel (esc)", id="cancel")
                reason = Input(placeholder="why (enter resolves; e.g. stall packed up on arrival)", max_length=4000,
                               id="reason")
                reason.display = False
                yield reason
                return
            who = i.unit or "(wired input)"
            yield Label(shown(f"{who}{f' ({i.alias})' if i.alias else ''} on {i.channel}@{i.gateway}"), markup=False)
            yield Label("How did it end?")
            with Horizontal():
                yield Button("Handled (h)", id="handled", variant="success")
                yield Button("False alarm (f)", id="false_alarm", variant="warning")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_choose(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        if choice is None:
            self.dismiss(None)
        elif not self.verifying:
            if choice in ("handled", "false_alarm"):
                self.dismiss(Resolution(choice))
        else:
            # A camera's case: f is a false detection, h or v a valid case; then the reason is asked.
            self._chosen = {"false_alarm": "false_detection", "handled": "valid"}.get(choice, choice)
            reason = self.query_one("#reason", Input)
            reason.display = True
            reason.border_title = "valid case: why" if self._chosen == "valid" else "false detection: why"
            reason.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        verdict = self._chosen or "valid"
        self.dismiss(Resolution("handled" if verdict == "valid" else "false_alarm", verdict,
                                event.value.strip() or None))
