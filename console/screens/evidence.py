"""The evidence of an incident, looked at: each camera snapshot drawn in the terminal (half blocks), with
where it came from, when, and its SHA-256; left/right go through them. Bytes are read in a worker."""

from __future__ import annotations

from typing import ClassVar

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from bridge.cameras.correlation import CameraStore, EvidenceView
from console.data import StoreHandle
from console.format import plain
from console.picture import PictureError, half_blocks
from console.widgets.footer import ConsoleFooter


class _Loaded(Message):
    def __init__(self, evidence_id: int, data: bytes | None, error: str | None) -> None:
        super().__init__()
        self.evidence_id, self.data, self.error = evidence_id, data, error


class EvidenceScreen(Screen[None]):
    DEFAULT_CSS = """
    EvidenceScreen #caption {
        height: auto;
        padding: 0 1;
        text-style: bold;
    }
    EvidenceScreen #picture {
        height: 1fr;
        content-align: center middle;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("left", "step(-1)", "Previous"),
        Binding("right", "step(1)", "Next"),
    ]

    def __init__(self, store: StoreHandle, snapshots: list[EvidenceView], start: int = 0) -> None:
        super().__init__()
        self.store, self.snapshots, self.index = store, snapshots, start
        self.caption = Static(id="caption")
        self.picture = Static(id="picture")
        self._data: dict[int, bytes] = {}
        self.drawn: list[Text] = []  # the picture on screen, line by line

    def compose(self) -> ComposeResult:
        yield self.caption
        yield self.picture
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.show()

    def on_resize(self) -> None:
        self.show()

    def show(self) -> None:
        if not self.snapshots:
            self.caption.update("No snapshots of this incident yet.")
            return
        e = self.snapshots[self.index]
        self.caption.update(plain(f"{self.index + 1}/{len(self.snapshots)}  {e.camera_id}  {e.time:%H:%M:%S}  "
                                  f"{e.size} bytes  sha256 {e.sha256}  from {e.source}"))
        data = self._data.get(e.id)
        if data is None:
            self.picture.update(Text("loading ...", style="dim"))
            self.load(e.id)
            return
        try:
            lines = half_blocks(data, max(1, self.picture.size.width), max(1, self.picture.size.height))
        except PictureError as exc:
            self.picture.update(Text(str(exc), style="bold red"))
            return
        self.drawn = lines
        self.picture.update(Group(*lines))

    @work(thread=True, exclusive=True, group="evidence")
    def load(self, evidence_id: int) -> None:
        try:
            got = CameraStore(self.store.get().engine).evidence_data(evidence_id)
        except Exception as exc:  # noqa: BLE001 - the database away: say so on the screen, never end the console
            self.post_message(_Loaded(evidence_id, None, str(exc)))
            return
        self.post_message(_Loaded(evidence_id, got[1] if got else None, None if got else "no longer stored"))

    def on__loaded(self, message: _Loaded) -> None:
        if message.data is None:
            self.picture.update(Text(f"cannot show it: {message.error}", style="bold red"))
            return
        self._data[message.evidence_id] = message.data
        self.show()

    def action_step(self, by: int) -> None:
        if self.snapshots:
            self.index = (self.index + by) % len(self.snapshots)
            self.show()

    def action_back(self) -> None:
        self.dismiss()
