"""The map screen (``m`` on the dispatch screen): the map full-screen, a one-line legend and status, the
keys in the footer; escape returns. The mouse drags the map, its wheel zooms around the pointer, and a
click on a unit or an incident selects it (``c`` then centres on it, ``f`` follows the incident).

Units and incidents are the console's own (:class:`~console.state.ConsoleState`, kept live by the app):
the screen looks at them a few times a second and the map redraws only when something it shows changed,
so a burst of a hundred events costs one frame. Cameras come from the bridge's registry and the overlay
from its file, both read in worker threads; a vehicle camera is then drawn where its unit's live states
put it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Static

from bridge.cameras.geometry import Camera
from bridge.cameras.registry import CameraRegistry, to_camera
from config.schema import ConsoleConfig
from console import mapgeo
from console.clock import clock_of
from console.data import StoreHandle, describe_error
from console.mapgeo import GeoJsonError, Line
from console.state import ConsoleState
from console.widgets.footer import ConsoleFooter
from console.widgets.map_view import CAMERA_MARK, STYLES, MapView

SYNC_S = 0.2  # how often the map looks at the console's state: at most five frames a second under load
FLASH_S = 0.5  # as the alert queue's marker


class CamerasLoaded(Message):
    def __init__(self, cameras: list[Camera]) -> None:
        super().__init__()
        self.cameras = cameras


class OverlayLoaded(Message):
    def __init__(self, lines: list[Line]) -> None:
        super().__init__()
        self.lines = lines


class MapFailed(Message):
    """Cameras or the overlay could not be read: ``what`` is which, ``reason`` a few words."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__()
        self.what = what
        self.reason = reason


class MapScreen(Screen[None]):
    DEFAULT_CSS = """
    MapScreen {
        layout: vertical;
    }
    MapScreen #map-status {
        height: 1;
        background: $panel;
        color: $text;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("left,h", "pan(-1, 0)", "Pan", key_display="←↑↓→"),
        Binding("right,l", "pan(1, 0)", "Pan", show=False),
        Binding("up,k", "pan(0, -1)", "Pan", show=False),
        Binding("down,j", "pan(0, 1)", "Pan", show=False),
        Binding("plus,equals_sign", "zoom(1)", "Zoom in", key_display="+"),
        Binding("minus", "zoom(-1)", "Zoom out", key_display="-"),
        Binding("f", "follow", "Follow"),
        Binding("c", "centre", "Centre"),
    ]

    def __init__(self, state: ConsoleState, store: StoreHandle, settings: ConsoleConfig, *,
                 incident: int | None = None, unit: str | None = None) -> None:
        super().__init__()
        self.state = state
        self.store = store
        self.settings = settings
        centre = settings.map_center
        self.map = MapView(*(centre or (0.0, 0.0)), m_per_col=settings.map_zoom_m, id="map")
        self.map.selected_incident = incident
        self.map.selected_unit = unit
        self._centred = centre is not None  # else the first thing known with a place centres the map
        self._unit_picked = False  # the last thing clicked was a unit: ``c`` centres on it, not the incident
        self.status = Static(id="map-status")
        self.cameras_note = "cameras …"
        self.overlay_note = "" if settings.map_overlay is None else "overlay …"

    def compose(self) -> ComposeResult:
        yield self.map
        yield self.status
        yield ConsoleFooter()

    def on_mount(self) -> None:
        self.map.focus()
        self._sync()
        self.load_cameras()
        if self.settings.map_overlay is not None:
            self.load_overlay(self.settings.map_overlay)
        self.set_interval(SYNC_S, self._sync)
        if self.settings.flash:
            self.set_interval(FLASH_S, lambda: self.map.set_flash(not self.map.flash_on))
        self._show_status()

    # --- the console's state -------------------------------------------------------------------

    def _sync(self) -> None:
        self.map.sync(self.state.units, self.state.incidents, clock_of(self).now())
        if self.map.selected_incident not in self.state.incidents:
            # The selected incident was resolved: the next one the queue would show is selected instead.
            ordered = [i for i in self.state.ordered() if i.lat is not None]
            self.map.selected_incident = ordered[0].id if ordered else None
            if self.map.following and not self.map.follow(True):
                self._show_status()
        if not self._centred:
            self._centre_on_something()

    def _centre_on_something(self) -> None:
        where = (self.map.incident_position(self.map.selected_incident)
                 or self.map.unit_position(self.map.selected_unit))
        if where is None:
            placed = [(u.position.lat, u.position.lon) for u in self.state.units.values() if u.position]
            placed += [(c.lat, c.lon) for c in self.map.cameras]
            if not placed and self.map.overlay:
                south, west, north, east = mapgeo.bounds(self.map.overlay) or (0.0, 0.0, 0.0, 0.0)
                placed = [(south, west), (north, east)]
            if placed:
                where = (sum(p[0] for p in placed) / len(placed), sum(p[1] for p in placed) / len(placed))
        if where is not None:
            self._centred = True
            self.map.centre_on(*where)

    # --- workers -------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="map-cameras")
    def load_cameras(self) -> None:
        """The registry's cameras (blocking: a worker thread)."""
        try:
            rows = CameraRegistry(self.store.get().engine).all()
            cameras = [to_camera(c) for c, _origin in rows]
        except Exception as exc:  # noqa: BLE001 - the database away, or a bridge that never created it: the map lives on
            self.post_message(MapFailed("cameras", describe_error(exc)))
            return
        self.post_message(CamerasLoaded(cameras))

    @work(thread=True, exclusive=True, group="map-overlay")
    def load_overlay(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            self.post_message(MapFailed("overlay", f"{path}: cannot read: {exc.strerror or exc}"))
            return
        try:
            lines = mapgeo.parse_geojson(data, str(path))
        except GeoJsonError as exc:
            self.post_message(MapFailed("overlay", str(exc)))
            return
        self.post_message(OverlayLoaded(lines))

    def on_cameras_loaded(self, message: CamerasLoaded) -> None:
        self.map.set_cameras(message.cameras)
        self.cameras_note = f"{len(message.cameras)} cameras"
        if not self._centred:
            self._centre_on_something()
        self._show_status()

    def on_overlay_loaded(self, message: OverlayLoaded) -> None:
        self.map.set_overlay(message.lines)
        self.overlay_note = ""  # drawn: the map shows it
        if not self._centred:
            self._centre_on_something()
        self._show_status()

    def on_map_failed(self, message: MapFailed) -> None:
        if message.what == "overlay":
            self.overlay_note = "overlay failed"
            self.notify(message.reason, title="Map overlay not drawn", severity="error", timeout=8)
        else:
            self.cameras_note = f"cameras: {message.reason}"
        self._show_status()

    # --- keys ----------------------------------------------------------------------------------

    def action_pan(self, east: int, south: int) -> None:
        # A quarter of the view a key press: a few presses cross it, none loses the place.
        size = self.map.size
        self.map.pan(east * max(1, size.width // 4), south * max(1, size.height // 4))

    def action_zoom(self, steps: int) -> None:
        self.map.zoom(steps)

    def action_follow(self) -> None:
        if self.map.following:
            self.map.follow(False)
        elif self.map.selected_incident is None:
            self.notify("No open incident with a position to follow.", severity="warning", timeout=3)
        elif not self.map.follow(True):
            self.notify(f"Incident #{self.map.selected_incident} has no position.", severity="warning", timeout=3)

    def action_centre(self) -> None:
        incident = self.map.incident_position(self.map.selected_incident)
        unit = self.map.unit_position(self.map.selected_unit)
        where = (unit or incident) if self._unit_picked else (incident or unit)
        if where is None:
            self.notify("No selected incident or unit with a position.", severity="warning", timeout=3)
            return
        self.map.centre_on(*where)

    def on_map_view_view_changed(self, message: MapView.ViewChanged) -> None:
        self._show_status()

    def on_map_view_picked(self, message: MapView.Picked) -> None:
        self._unit_picked = message.unit is not None
        if message.incident is not None:
            self.notify(f"Incident #{message.incident} selected: f follows it, c centres on it.", timeout=3)
        elif message.unit is not None:
            u = self.map.units.get(message.unit)
            name = f"{u.alias} ({u.unit})" if u is not None and u.alias else message.unit
            self.notify(f"{name} selected: c centres on it.", timeout=3)
        self._show_status()

    def _show_status(self) -> None:
        m = self.map
        zoom = mapgeo.distance_label(round(m.m_per_col, 2)).replace(" ", "")
        follow = f"following #{m.selected_incident}" if m.following else ""
        parts = [f"{zoom}/col", f"{m.lat:.5f},{m.lon:.5f}", follow, f"{len(m.units)} units", self.cameras_note,
                 self.overlay_note]
        # The legend in the map's own colours (rich styles: Textual markup does not know them all).
        legend: list[tuple[str, str] | str] = ["  "]
        for mark, style, words in (("●", "fresh", "<2m "), ("●", "recent", "<15m "), ("●", "old", "older "),
                                   ("▲", "ack", "incident "), (CAMERA_MARK, "camera_mark", "camera")):
            legend += [(mark, STYLES[style]), words]
        self.status.update(Text.assemble(" · ".join(p for p in parts if p), *legend))
