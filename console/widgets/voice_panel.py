"""The voice panel: every channel whose voice state the console heard, the listened ones first, with
whether it is listened to (by the dispatcher, or by itself for an emergency), busy with radio traffic,
which unit is talking, the level of what is played, who holds the floor and whether the radio is keyed.

The panel reads :meth:`VoiceLink.snapshot` when the link's ``version`` moved (polled five times a second),
so a burst of frames and states is one repaint; rows are written in place. Hidden while no gateway
has voice (nothing to show).
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from console.format import shown
from console.voice import ChannelView

COLUMNS = (("channel", "channel@gw", 22), ("listen", "listen", 18), ("busy", "busy", 6),
           ("talking", "talking", 18), ("level", "level", 12), ("floor", "floor", 22), ("ptt", "PTT", 5))
BAR_DB = (-60.0, 0.0)  # the level bar spans this


def level_cell(level: float | None) -> Text:
    if level is None:
        return Text("")
    lo, hi = BAR_DB
    filled = round(5 * min(max((level - lo) / (hi - lo), 0.0), 1.0))
    return Text(f"{'▮' * filled}{'▯' * (5 - filled)} {level:4.0f}", style="green" if level > -50 else "dim")


def cells(view: ChannelView, now: float) -> dict[str, Text]:
    state = view.state
    listen = Text("")
    if view.listening:
        listen = Text(f"● {view.auto}" if view.auto else "● on", style="bold red" if view.auto else "bold green")
    busy = Text("BUSY", style="bold yellow") if state is not None and state.busy else Text("idle", style="dim")
    floor_text, floor_style = view.floor_holder() or "", ""
    if view.floor is not None and view.floor.phase == "asking":
        floor_text, floor_style = "asking…", "yellow"
    elif view.floor is not None and view.floor.phase == "talking":
        floor_text, floor_style = "YOU ARE TALKING", "bold reverse red"
    elif floor_text:
        floor_style = "bold"
    if state is not None and not state.transmit:
        floor_text, floor_style = floor_text or "receive only", floor_style or "dim"
    ptt = Text("TX", style="bold red") if state is not None and state.keyed else Text("")
    talking = view.talking_unit(now)
    return {
        "channel": Text(shown(f"{view.channel}@{view.gateway}")),
        "listen": listen,
        "busy": busy,
        "talking": Text(shown(talking or ""), style="bold"),
        "level": level_cell(view.level_dbfs if view.listening else state.level_dbfs if state else None),
        "floor": Text(shown(floor_text), style=floor_style),
        "ptt": ptt,
    }


class VoicePanel(DataTable[Text]):
    DEFAULT_CSS = """
    VoicePanel {
        height: auto;
        max-height: 8;
        border: round $primary 60%;
        border-title-color: $text;
        border-title-style: bold;
        display: none;
    }
    VoicePanel.-shown {
        display: block;
    }
    VoicePanel:focus {
        border: round $primary;
    }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.border_title = "Voice"
        self.views: dict[str, ChannelView] = {}
        self._keys: list[str] = []

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    @staticmethod
    def row_key(view: ChannelView) -> str:
        return f"{view.gateway}/{view.channel}"

    def show(self, views: list[ChannelView], now: float) -> None:
        keys = [self.row_key(v) for v in views]
        self.views = dict(zip(keys, views, strict=True))
        if keys != self._keys:
            selected = self.selected
            self.clear()
            for key, view in zip(keys, views, strict=True):
                row = cells(view, now)
                self.add_row(*(row[c] for c, _, _ in COLUMNS), key=key)
            self._keys = keys
            if selected is not None and self.row_key(selected) in keys:
                self.move_cursor(row=keys.index(self.row_key(selected)))
        else:
            for key, view in zip(keys, views, strict=True):
                for column, value in cells(view, now).items():
                    self.update_cell(key, column, value)
        listened = sum(v.listening for v in views)
        talking = next((v for v in views if v.floor is not None and v.floor.phase == "talking"), None)
        self.border_title = f"Voice: listening to {listened}" + (
            f" | TALKING on {shown(talking.channel)}" if talking is not None else "")
        self.set_class(bool(views), "-shown")

    @property
    def selected(self) -> ChannelView | None:
        if not self._keys or not 0 <= self.cursor_row < len(self._keys):
            return None
        return self.views.get(self._keys[self.cursor_row])
