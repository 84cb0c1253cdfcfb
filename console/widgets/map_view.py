"""The map: units, cameras with their fields of view, open incidents and a GeoJSON overlay, drawn in the
terminal with braille dots on a local projection (the arithmetic is :mod:`console.mapgeo`).

    layers     overlay outlines (grey) and camera wedges (cyan) in braille, cached until the view or they
               change; incidents (red), units (marker and label, fading with the age of the fix), the
               scale bar and the north arrow in text over them
    drawing    the whole frame is composed once per change into Strips (Textual's Line API), so that a
               thousand units moving cost one composition per refresh, not one per event
    keys       the screen's (pan, zoom, follow, centre); the widget takes the mouse: drag to pan (the
               place under the pointer stays under it), wheel to zoom around the pointer, click on a
               unit or an incident marker to select it
    vehicles   a vehicle camera (kind ``vehicle``) is drawn where its unit last said it is, so it moves
               with the unit's live states; until the unit has a position it stays where it is registered
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget

from bridge.cameras.geometry import Camera
from bridge.views import IncidentView, UnitView
from console import mapgeo
from console.clock import clock_of
from console.format import shown
from console.mapgeo import BrailleCanvas, Line, Projection

NEW = "new"
UNIT_MARK = "●"
INCIDENT_MARK = "▲"
CAMERA_MARK = "◘"

# Style names rather than Style objects in the cell grid: parsed once, merged per run.
STYLES = {
    "base": "",  # the widget's own colours
    "overlay": "grey50",
    "camera": "cyan",
    "camera_mark": "bold cyan",
    "fresh": "bold bright_green",
    "fresh_label": "bright_green",
    "recent": "green4",
    "recent_label": "green4",
    "old": "grey42",
    "old_label": "grey42",
    "new_on": "bold bright_white on red",
    "new_off": "bold red",
    "ack": "bold red",
    "incident_label": "red",
    # The selected incident: its label reversed, its marker on red (a new one still flashes).
    "new_on_selected": "bold bright_white on red",
    "new_off_selected": "bold red reverse",
    "ack_selected": "bold bright_white on red",
    "selected": "reverse",
    "chrome": "bold",
    "chrome_dim": "grey62",
}


def fix_age_s(unit: UnitView, now: datetime) -> float | None:
    """How old the unit's position is: its receiver's fix time, else when it was last heard."""
    p = unit.position
    when = (p.fix_time if p is not None else None) or unit.last_heard
    if when is None:
        return None
    if when.tzinfo is None:  # the store keeps UTC
        when = when.replace(tzinfo=UTC)
    return max(0.0, (now - when).total_seconds())


class MapView(Widget, can_focus=True):
    ALLOW_SELECT = False  # a drag pans the map; it must not also select its text

    DEFAULT_CSS = """
    MapView {
        width: 1fr;
        height: 1fr;
        background: $surface;
    }
    """

    class ViewChanged(Message):
        """The centre, the zoom or following changed (the screen's status line shows them)."""

    class Picked(Message):
        """A click selected a unit (``unit``) or an incident (``incident``)."""

        def __init__(self, unit: str | None = None, incident: int | None = None) -> None:
            super().__init__()
            self.unit = unit
            self.incident = incident

    def __init__(self, lat: float = 0.0, lon: float = 0.0, m_per_col: float = 10.0, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.lat, self.lon = lat, lon
        self.m_per_col = mapgeo.zoom_steps(m_per_col, 0)
        self.following = False
        self._selected: tuple[int | None, str | None] = (None, None)  # (incident, unit) drawn highlighted
        self.flash_on = True
        self.units: dict[str, UnitView] = {}
        self.incidents: dict[int, IncidentView] = {}
        self.cameras: list[Camera] = []  # as registered
        self.shown_cameras: list[Camera] = []  # as drawn: vehicle cameras where their units are
        self._camera_units: dict[str, UnitView] = {}  # vehicle camera id -> the unit's view it was moved to
        self.overlay: list[Line] = []
        self._followed: tuple[float, float] | None = None  # where the followed incident was last seen
        self._bands: dict[str, str] = {}
        self._layers_version = 0
        self._background: tuple[object, list[list[str]], list[list[str]]] | None = None
        self._strips: list[Strip] | None = None
        self._strips_size = Size(0, 0)
        self._rich_styles: dict[str, Style] = {}
        self._drag: tuple[int, int] | None = None
        self._dragged = False  # the pointer moved while down: a pan, not a click

    # --- what the screen feeds in --------------------------------------------------------------

    def projection(self) -> Projection:
        return Projection(self.lat, self.lon, self.m_per_col, self.size.width, self.size.height)

    def sync(self, units: Mapping[str, UnitView], incidents: Mapping[int, IncidentView], now: datetime) -> bool:
        """Take the console's units and incidents; redraws (and returns True) only when something the map
        shows changed. Held views are compared by identity: the console's state replaces a view that
        changes, so this is one dict lookup per unit."""
        changed = len(units) != len(self.units) or any(self.units.get(k) is not v for k, v in units.items())
        if changed:
            self.units = dict(units)
            self._move_vehicle_cameras()
        if len(incidents) != len(self.incidents) or any(self.incidents.get(k) is not v for k, v in incidents.items()):
            self.incidents = dict(incidents)
            changed = True
            self._follow()
        if self._age_bands(now):
            changed = True
        if changed:
            self._redraw()
        return changed

    def set_cameras(self, cameras: Iterable[Camera]) -> None:
        self.cameras = list(cameras)
        self._camera_units = {}
        self.shown_cameras = list(self.cameras)
        self._move_vehicle_cameras()
        self._layers_version += 1
        self._redraw()

    def _move_vehicle_cameras(self) -> bool:
        """Put each vehicle camera where its unit is; True if one moved (its wedge is drawn again).
        A few cameras against a dict of units: cheap enough for every sync."""
        moved = False
        for n, cam in enumerate(self.cameras):
            if cam.kind != "vehicle" or cam.unit is None:
                continue
            unit = self.units.get(cam.unit)
            if unit is None or unit.position is None or self._camera_units.get(cam.id) is unit:
                continue
            self._camera_units[cam.id] = unit
            p = unit.position
            shown = self.shown_cameras[n]
            if (shown.lat, shown.lon) != (p.lat, p.lon):
                try:
                    self.shown_cameras[n] = cam.moved(p.lat, p.lon, p.course_deg)
                except ValueError:  # a position no camera can have: drawn where it was
                    continue
                moved = True
        if moved:
            self._layers_version += 1
        return moved

    def set_overlay(self, lines: Sequence[Line]) -> None:
        self.overlay = list(lines)
        self._layers_version += 1
        self._redraw()

    def set_flash(self, on: bool) -> None:
        self.flash_on = on
        if any(i.state == NEW for i in self.incidents.values()):
            self._redraw()

    def _age_bands(self, now: datetime) -> bool:
        bands = {k: mapgeo.age_band(fix_age_s(u, now)) for k, u in self.units.items() if u.position is not None}
        if bands == self._bands:
            return False
        self._bands = bands
        return True

    # --- moving the view -----------------------------------------------------------------------

    def centre_on(self, lat: float, lon: float) -> None:
        self.lat, self.lon = max(-89.9, min(89.9, lat)), (lon + 540.0) % 360.0 - 180.0
        self._view_changed()

    def pan(self, cols: float, rows: float) -> None:
        """Move the view this many cells east (cols > 0) and south (rows > 0). A dispatcher who moves the
        map by hand has stopped following."""
        p = self.projection().moved(cols, rows)
        self.following = False
        self.centre_on(p.lat, p.lon)

    def zoom(self, steps: int) -> None:
        """Zoom in (steps > 0) or out by sqrt 2 a step."""
        zoomed = mapgeo.zoom_steps(self.m_per_col, steps)
        if zoomed != self.m_per_col:
            self.m_per_col = zoomed
            self._view_changed()

    def follow(self, on: bool) -> bool:
        """Follow the selected incident; returns whether it is followed (it needs a position)."""
        self.following = on
        self._followed = None
        if on and self.incident_position(self.selected_incident) is None:
            self.following = False
        self._follow()
        self._view_changed()
        return self.following

    def incident_position(self, incident_id: int | None) -> tuple[float, float] | None:
        i = self.incidents.get(incident_id) if incident_id is not None else None
        return (i.lat, i.lon) if i is not None and i.lat is not None and i.lon is not None else None

    def unit_position(self, unit: str | None) -> tuple[float, float] | None:
        u = self.units.get(unit) if unit is not None else None
        return (u.position.lat, u.position.lon) if u is not None and u.position is not None else None

    def _follow(self) -> None:
        if not self.following:
            return
        where = self.incident_position(self.selected_incident)
        if where is not None and where != self._followed:
            self._followed = where
            self.centre_on(*where)

    def _view_changed(self) -> None:
        self._redraw()
        self.post_message(self.ViewChanged())

    # --- the mouse -----------------------------------------------------------------------------

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if event.button != 1:
            return
        self._drag = (event.x, event.y)
        self._dragged = False
        self.capture_mouse()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._drag is None or not event.button:
            return
        dx, dy = event.x - self._drag[0], event.y - self._drag[1]
        if dx or dy:
            self._drag = (event.x, event.y)
            self._dragged = True
            self.pan(-dx, -dy)  # the map moves with the pointer

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._drag is None:
            return
        clicked = not self._dragged and (event.x, event.y) == self._drag
        self._drag = None
        self.release_mouse()
        if clicked:
            self.pick(event.x, event.y)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.zoom_at(1, event.x, event.y)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.zoom_at(-1, event.x, event.y)

    def zoom_at(self, steps: int, col: int, row: int) -> None:
        """Zoom keeping the place under cell (col, row) under it, as map applications do; while
        following, around the centre, which is the incident followed."""
        if self.following:
            self.zoom(steps)
            return
        before = self.projection()
        x, y = (col + 0.5) * mapgeo.DOTS_X, (row + 0.5) * mapgeo.DOTS_Y  # the middle of the cell
        lat, lon = before.to_latlon(x, y)
        zoomed = mapgeo.zoom_steps(self.m_per_col, steps)
        if zoomed == self.m_per_col:
            return
        self.m_per_col = zoomed
        after_x, after_y = self.projection().to_dots(lat, lon)
        p = self.projection().moved((after_x - x) / mapgeo.DOTS_X, (after_y - y) / mapgeo.DOTS_Y)
        self.centre_on(p.lat, p.lon)

    def pick(self, col: int, row: int) -> None:
        """Select the incident or unit whose marker is at cell (col, row) or beside it in that row (a
        marker is one cell: a hand may miss it by one); the nearest wins, an incident over a unit, as
        incidents' markers are drawn over units'."""
        proj = self.projection()
        near: list[tuple[int, int, str | None, int | None]] = []  # (columns away, rank, unit, incident)
        for i in self.incidents.values():
            cell = proj.to_cell(i.lat, i.lon) if i.lat is not None and i.lon is not None else None
            if cell is not None and cell[1] == row and abs(cell[0] - col) <= 1:
                near.append((abs(cell[0] - col), 0, None, i.id))
        for key, u in self.units.items():
            p = u.position
            cell = proj.to_cell(p.lat, p.lon) if p is not None else None
            if cell is not None and cell[1] == row and abs(cell[0] - col) <= 1:
                near.append((abs(cell[0] - col), 1, key, None))
        if not near:
            return
        best = min(near, key=lambda n: n[:2])
        _, _, unit, incident = best
        if incident is not None:
            self.selected_incident = incident
            if self.following:
                self.follow(True)
        else:
            self.selected_unit = unit
        self._redraw()
        self.post_message(self.Picked(unit=unit, incident=incident))

    # --- drawing -------------------------------------------------------------------------------

    @property
    def selected_incident(self) -> int | None:
        return self._selected[0]

    @selected_incident.setter
    def selected_incident(self, incident: int | None) -> None:
        if incident != self._selected[0]:
            self._selected = (incident, self._selected[1])
            self._redraw()

    @property
    def selected_unit(self) -> str | None:
        return self._selected[1]

    @selected_unit.setter
    def selected_unit(self, unit: str | None) -> None:
        if unit != self._selected[1]:
            self._selected = (self._selected[0], unit)
            self._redraw()

    def _redraw(self) -> None:
        self._strips = None
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._redraw()

    def render_line(self, y: int) -> Strip:
        if self._strips is None or self._strips_size != self.size:
            self._strips = self._compose_frame()
            self._strips_size = self.size
        return self._strips[y] if 0 <= y < len(self._strips) else Strip.blank(self.size.width)

    def text_lines(self) -> list[str]:
        """What the map shows, as plain text rows (for tests and screen readers)."""
        self._strips = self._compose_frame()
        self._strips_size = self.size
        return [strip.text for strip in self._strips]

    def _style(self, name: str) -> Style:
        style = self._rich_styles.get(name)
        if style is None:
            style = self._rich_styles[name] = self.rich_style + Style.parse(STYLES.get(name, name))
        return style

    def _layers(self, proj: Projection) -> tuple[list[list[str]], list[list[str]]]:
        """The braille layers (overlay, camera wedges) as character and style rows; cached per view."""
        key = (proj, self._layers_version)
        if self._background is not None and self._background[0] == key:
            _, chars, styles = self._background
            return [row[:] for row in chars], [row[:] for row in styles]
        w, h = proj.width, proj.height
        roads, wedges = BrailleCanvas(w, h), BrailleCanvas(w, h)
        for line in self.overlay:
            roads.polyline([proj.to_dots(lat, lon) for lat, lon in line])
        for cam in self.shown_cameras:
            ox, oy = proj.to_dots(cam.lat, cam.lon)
            outline = mapgeo.sector_outline(cam.heading_deg, cam.fov_deg, cam.range_m)
            # A wedge a few dots wide is drawn, so a camera at any zoom shows which way it looks.
            wedges.polyline([(ox + e / proj.dot_m, oy - n / proj.dot_m) for e, n in outline])
        chars = [[" "] * w for _ in range(h)]
        styles = [[""] * w for _ in range(h)]
        for row in range(h):
            for col in range(w):
                bits = wedges.bits(col, row)
                if bits:
                    chars[row][col] = chr(mapgeo.BRAILLE_BASE + (bits | roads.bits(col, row)))
                    styles[row][col] = "camera"
                elif roads.bits(col, row):
                    chars[row][col] = roads.char(col, row)
                    styles[row][col] = "overlay"
        self._background = (key, chars, styles)
        return [row[:] for row in chars], [row[:] for row in styles]

    def _compose_frame(self) -> list[Strip]:
        proj = self.projection()
        w, h = proj.width, proj.height
        if w <= 0 or h <= 0:
            return []
        chars, styles = self._layers(proj)

        def put(col: int, row: int, text: str, style: str) -> None:
            for n, ch in enumerate(text):
                if 0 <= col + n < w and 0 <= row < h:
                    chars[row][col + n] = ch
                    styles[row][col + n] = style

        for cam in self.shown_cameras:
            cell = proj.to_cell(cam.lat, cam.lon)
            if cell is not None:
                put(*cell, CAMERA_MARK, "camera_mark")
        marks: list[tuple[int, int, str, str]] = []
        now = clock_of(self).now()
        # Labels first, markers over them: a crowded corner shows every unit's marker, some labels.
        for key, u in self.units.items():
            p = u.position
            cell = proj.to_cell(p.lat, p.lon) if p is not None else None
            if p is None or cell is None:
                continue
            band = self._bands.get(key) or mapgeo.age_band(fix_age_s(u, now))
            put(cell[0] + 1, cell[1], shown(u.alias or u.unit), f"{band}_label")  # names from the network
            mark = mapgeo.arrow(p.course_deg) or UNIT_MARK
            marks.append((cell[0], cell[1], mark, "selected" if key == self.selected_unit else band))
        # The selected incident last, so that its label and marker are drawn over any other's.
        for i in sorted(self.incidents.values(), key=lambda i: i.id == self.selected_incident):
            cell = proj.to_cell(i.lat, i.lon) if i.lat is not None and i.lon is not None else None
            if cell is None:
                continue
            selected = i.id == self.selected_incident
            # Left of the marker: the unit's own label is on its right, as the unit sits where the alert is.
            put(cell[0] - len(f"#{i.id}"), cell[1], f"#{i.id}", "selected" if selected else "incident_label")
            style = ("new_on" if self.flash_on else "new_off") if i.state == NEW else "ack"
            marks.append((cell[0], cell[1], INCIDENT_MARK, f"{style}_selected" if selected else style))
        for col, row, mark, style in marks:
            put(col, row, mark, style)
        self._chrome(proj, put)
        return [self._strip(chars[row], styles[row], w) for row in range(h)]

    def _chrome(self, proj: Projection, put: Callable[[int, int, str, str], None]) -> None:
        """The north arrow (top right) and the scale bar (bottom left)."""
        w, h = proj.width, proj.height
        if w >= 4 and h >= 3:
            put(w - 2, 0, "N", "chrome")
            put(w - 2, 1, "↑", "chrome")
        bar = mapgeo.scale_bar(self.m_per_col, max(2, min(40, w // 3)))
        if bar is not None and h >= 2:
            put(1, h - 1, "├" + "─" * max(0, bar.cells - 2) + "┤", "chrome")
            put(bar.cells + 2, h - 1, bar.label, "chrome")

    def _strip(self, chars: list[str], styles: list[str], width: int) -> Strip:
        segments: list[Segment] = []
        start = 0
        for n in range(1, width + 1):
            if n == width or styles[n] != styles[start]:
                segments.append(Segment("".join(chars[start:n]), self._style(styles[start] or "base")))
                start = n
        return Strip(segments, width)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._rich_styles.clear()  # the theme changed: the base colours with it
        self._redraw()

