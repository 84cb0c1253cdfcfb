"""Sign in: the dispatcher types their name, which goes with every command and into the history."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

from bridge.commands import operator_problem
from console.format import plain

MAX_NAME = 64  # what the bridge accepts as an operator name


class LoginScreen(ModalScreen[str]):
    DEFAULT_CSS = """
    LoginScreen {
        align: center middle;
        background: $background 80%;
    }
    LoginScreen > Vertical {
        width: 50;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    LoginScreen Label.title {
        text-style: bold;
        margin-bottom: 1;
    }
    LoginScreen Label.hint {
        color: $text-muted;
        margin-top: 1;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "app.quit", "Quit")]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("pttbridge dispatch: sign in", classes="title")
            yield Label("Your name, as it goes into every incident's history:")
            yield Input(placeholder="e.g. alice", max_length=MAX_NAME, id="operator")
            yield Label("enter signs in · escape quits", classes="hint", id="hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        if not name:
            self.query_one("#hint", Label).update("A name is needed: every change is made by a named operator.")
            return
        problem = operator_problem(name)  # the bridge's own rule: it would refuse every command otherwise
        if problem is not None:
            self.query_one("#hint", Label).update(plain(f"Not a name the bridge takes: {problem}"))
            return
        self.dismiss(name)
