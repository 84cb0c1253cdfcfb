"""Open a case by hand: of one of the site's case kinds, at a place (a unit's last position, a camera, or
coordinates), with a note. The bridge refuses a place it cannot find, and the console says why."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

from config.schema import CaseKindConfig
from console.format import plain
from gateway.events import is_name, is_unit

_COORDINATES = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*[, ]\s*(-?\d+(?:\.\d+)?)\s*$")


@dataclass(frozen=True, slots=True)
class NewCase:
    """What the dispatcher asked for: the command's fields (kind, note, and the place)."""

    kind: str
    place: dict[str, Any]  # {"unit": ...} | {"camera": ...} | {"lat": ..., "lon": ...}
    note: str | None


def read_place(text: str) -> dict[str, Any] | None:
    """``30.2095, 120.2107``, a unit identity (``mdc:1234``) or a camera's id (``dome-3``); None if it is
    none of them."""
    m = _COORDINATES.match(text)
    if m is not None:
        lat, lon = float(m[1]), float(m[2])
        if math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180:
            return {"lat": lat, "lon": lon}
        return None
    text = text.strip()
    if ":" in text:
        return {"unit": text} if is_unit(text) else None
    return {"camera": text} if is_name(text) else None


def _who(rule: CaseKindConfig) -> str:
    if rule.transfer is not None:
        return f"to {rule.transfer.name}"
    return ", ".join(rule.departments) or "-"


class OpenCaseScreen(ModalScreen[NewCase | None]):
    """Dismissed with the case to open, or None when cancelled."""

    DEFAULT_CSS = """
    OpenCaseScreen {
        align: center middle;
        background: $background 70%;
    }
    OpenCaseScreen > Vertical {
        width: 76;
        max-width: 100%;
        height: auto;
        border: thick $primary;
        background: $surface;
        padding: 1 2;
    }
    OpenCaseScreen Label.title {
        text-style: bold;
        margin-bottom: 1;
    }
    OpenCaseScreen OptionList {
        height: auto;
        max-height: 8;
        margin-bottom: 1;
    }
    OpenCaseScreen Label.problem {
        color: $error;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, kinds: dict[str, CaseKindConfig], place: str = "") -> None:
        super().__init__()
        self.kinds = kinds
        self.place = place
        self.kind: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Open a case", classes="title")
            if not self.kinds:
                yield Label("This site's configuration has no case kinds ([case_kinds]); escape goes back.")
                return
            yield OptionList(*(Option(plain(f"{kind.replace('_', ' ')}  ({rule.flow}: {_who(rule)})"), id=kind)
                               for kind, rule in sorted(self.kinds.items())), id="kind")
            yield Input(value=self.place, placeholder="where: a unit (mdc:1234), a camera id, or lat, lon",
                        id="place")
            yield Input(placeholder="a note (enter opens the case, escape cancels)", max_length=4000, id="note")
            yield Label("", classes="problem", id="problem")

    def on_mount(self) -> None:
        if self.kinds:
            self.query_one("#kind", OptionList).focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.kind = event.option.id
        self.query_one("#place", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        problem = self.query_one("#problem", Label)
        kind_list = self.query_one("#kind", OptionList)
        kind = self.kind
        if kind is None and kind_list.highlighted is not None:
            kind = kind_list.get_option_at_index(kind_list.highlighted).id
        if kind is None:
            problem.update("Choose the case's kind first.")
            kind_list.focus()
            return
        place = read_place(self.query_one("#place", Input).value)
        if place is None:
            problem.update("Where? A unit (mdc:1234), a camera id (dome-3), or lat, lon (30.2095, 120.2107).")
            self.query_one("#place", Input).focus()
            return
        if event.input.id == "place":
            self.query_one("#note", Input).focus()
            return
        note = self.query_one("#note", Input).value.strip() or None
        self.dismiss(NewCase(kind, place, note))

    def action_cancel(self) -> None:
        self.dismiss(None)
