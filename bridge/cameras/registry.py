"""The camera registry: the cameras the bridge knows, kept in its database and managed three ways.

    [[cameras]] in the configuration   applied at every bridge start (origin "config"): added, changed,
                                       and removed again when they leave the file
    CSV import/export                  ``pttbridge cameras import cameras.csv`` (origin "csv"), ``export``
    the CLI                            ``pttbridge cameras list | remove ID``

Every camera is validated by the configuration's own schema (:class:`config.schema.CameraConfig`), so a
CSV row with a bad value is refused with its line and column named, like a bad configuration key.

CSV columns (a header row; empty cells mean "none" or the default)::

    id,name,lat,lon,heading_deg,fov_deg,range_m,kind,unit,stream_url,snapshot_url,credentials_env,presets
    xixi-wenyi-ne,Xixi Rd / Wenyi Rd NE,30.2095,120.2107,225,90,150,fixed,,rtsp://...,http://...,CAM_AUTH,
    dome-3,Dome 3,30.2101,120.2088,,60,300,ptz,,,,,home:0;crossing:135

``presets`` is ``name:heading;name:heading``. Secrets never sit in the registry: ``credentials_env``
names the environment variable that holds them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import sessionmaker

from bridge.cameras.geometry import Camera
from bridge.models import CameraRow
from config.schema import CameraConfig

COLUMNS = ("id", "name", "lat", "lon", "heading_deg", "fov_deg", "range_m", "kind", "unit", "stream_url",
           "snapshot_url", "credentials_env", "presets")


class RegistryError(ValueError):
    """A camera that cannot be registered; the message names the row and the column."""


def _row_values(c: CameraConfig, origin: str) -> dict[str, Any]:
    return {**c.model_dump(), "presets": dict(c.presets) or None, "origin": origin, "updated_at": datetime.now(UTC)}


def to_camera(c: CameraConfig) -> Camera:
    """The registry's camera as the geometry sees it. A PTZ camera without a heading can be turned to
    look anywhere, and a vehicle's camera is all-round: both count as 360-degree cameras."""
    all_round = c.heading_deg is None or c.kind == "vehicle"
    return Camera(id=c.id, name=c.name, lat=c.lat, lon=c.lon, heading_deg=None if all_round else c.heading_deg,
                  fov_deg=360.0 if all_round else c.fov_deg, range_m=c.range_m, kind=c.kind, unit=c.unit,
                  stream_url=c.stream_url, snapshot_url=c.snapshot_url, credentials_env=c.credentials_env,
                  presets=tuple(c.presets.items()))


def camera_of(row: CameraRow) -> CameraConfig:
    return CameraConfig(id=row.id, name=row.name, lat=row.lat, lon=row.lon, heading_deg=row.heading_deg,
                        fov_deg=row.fov_deg, range_m=row.range_m, kind=row.kind,
                        unit=row.unit, stream_url=row.stream_url, snapshot_url=row.snapshot_url,
                        credentials_env=row.credentials_env, presets=row.presets or {})


class CameraRegistry:
    def __init__(self, engine: Engine) -> None:
        self._session = sessionmaker(engine, expire_on_commit=False)

    def all(self) -> list[tuple[CameraConfig, str]]:
        """Every camera with where it came from (config | csv | cli), by id."""
        with self._session() as s:
            return [(camera_of(r), r.origin) for r in s.scalars(select(CameraRow).order_by(CameraRow.id))]

    def get(self, camera_id: str) -> CameraConfig | None:
        with self._session() as s:
            row = s.get(CameraRow, camera_id)
            return camera_of(row) if row is not None else None

    def put(self, cameras: Iterable[CameraConfig], origin: str) -> int:
        """Add or replace cameras; returns how many."""
        n = 0
        with self._session.begin() as s:
            for c in cameras:
                row = s.get(CameraRow, c.id)
                values = _row_values(c, origin)
                if row is None:
                    s.add(CameraRow(**values))
                else:
                    for key, value in values.items():
                        setattr(row, key, value)
                n += 1
        return n

    def remove(self, camera_id: str) -> bool:
        with self._session.begin() as s:
            return bool(getattr(s.execute(delete(CameraRow).where(CameraRow.id == camera_id)), "rowcount", 0))

    def sync_config(self, cameras: Sequence[CameraConfig]) -> tuple[int, int]:
        """The configured cameras as the file says: (put, removed). Cameras from CSV or the CLI stay."""
        self.put(cameras, "config")
        keep = {c.id for c in cameras}
        with self._session.begin() as s:
            gone = [r.id for r in s.scalars(select(CameraRow).where(CameraRow.origin == "config"))
                    if r.id not in keep]
            if gone:
                s.execute(delete(CameraRow).where(CameraRow.id.in_(gone)))
        return len(cameras), len(gone)

    # --- CSV -----------------------------------------------------------------------------------

    def import_csv(self, text: str, source: str = "<csv>") -> int:
        """All rows or none: a bad row raises RegistryError naming the line and the column."""
        cameras = parse_csv(text, source)
        return self.put(cameras, "csv")

    def export_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for c, _origin in self.all():
            values = c.model_dump()
            values["presets"] = ";".join(f"{k}:{v:.10g}" for k, v in c.presets.items())
            writer.writerow(["" if values[k] is None else (f"{values[k]:.10g}" if isinstance(values[k], float)
                                                             else values[k]) for k in COLUMNS])
        return out.getvalue()


def parse_csv(text: str, source: str = "<csv>") -> list[CameraConfig]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        return _parse(reader, source)
    except csv.Error as exc:
        raise RegistryError(f"{source}: line {reader.line_num}: not CSV: {exc}") from None


def _parse(reader: csv.DictReader[str], source: str) -> list[CameraConfig]:
    missing = {"id", "lat", "lon"} - set(reader.fieldnames or ())
    if missing:
        raise RegistryError(f"{source}: line 1: missing column(s) {', '.join(sorted(missing))}")
    unknown = set(reader.fieldnames or ()) - set(COLUMNS)
    if unknown:
        raise RegistryError(f"{source}: line 1: unknown column(s) {', '.join(sorted(unknown))}; "
                            f"columns are {','.join(COLUMNS)}")
    cameras, seen = [], set()
    for row in reader:
        line = reader.line_num
        values: dict[str, Any] = {k: v.strip() for k, v in row.items() if k is not None and v is not None and v.strip()}
        if "presets" in values:
            try:
                values["presets"] = {k.strip(): float(v) for k, v in (p.split(":", 1) for p in values["presets"]
                                                                      .split(";") if p.strip())}
            except ValueError:
                raise RegistryError(f"{source}: line {line}: presets: expected name:heading;name:heading, "
                                    f"got {row['presets']!r}") from None
        try:
            camera = CameraConfig.model_validate(values)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            if not where:  # a check across fields: its message names the field itself
                raise RegistryError(f"{source}: line {line}: {err['msg'].removeprefix('Value error, ')}") from None
            # A value error says what is wrong in its own words, and its input may be a secret (a URL with a
            # password): only other errors quote what they got.
            got = "" if err["type"] == "value_error" else f" (got {err.get('input')!r})"
            raise RegistryError(f"{source}: line {line}: {where}: {err['msg'].removeprefix('Value error, ')}{got}") \
                from None
        if camera.id in seen:
            raise RegistryError(f"{source}: line {line}: id: {camera.id!r} appears twice")
        seen.add(camera.id)
        cameras.append(camera)
    return cameras
