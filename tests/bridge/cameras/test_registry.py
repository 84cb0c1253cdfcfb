"""The camera registry: configured cameras applied and withdrawn, CSV in and out, the CLI, and bad rows
refused with their line and column."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.cameras.registry import CameraRegistry, RegistryError, parse_csv
from bridge.store import Store
from config.schema import CameraConfig

ROOT = Path(__file__).parents[3]

CSV = """id,name,lat,lon,heading_deg,fov_deg,range_m,kind,unit,stream_url,snapshot_url,credentials_env,presets
xixi-wenyi-ne,Xixi Rd / Wenyi Rd NE,30.2095,120.2107,225,90,150,fixed,,rtsp://10.1.2.3/s1,http://10.1.2.3/snap.jpg,CAM_AUTH,
dome-3,Dome 3,30.2101,120.2088,,60,300,ptz,,,,,home:0;crossing:135
car-7-360,Patrol car 7,30.2,120.2,,360,60,vehicle,gps:car-7,,,,
"""


@pytest.fixture
def registry(database_url: str) -> CameraRegistry:
    store = Store.open(database_url)
    return CameraRegistry(store.engine)


def camera(id: str, **kw: object) -> CameraConfig:
    return CameraConfig.model_validate({"id": id, "lat": 30.21, "lon": 120.21, "fov_deg": 360, **kw})


def test_configured_cameras_are_applied_and_withdrawn_while_imported_ones_stay(registry: CameraRegistry) -> None:
    registry.import_csv(CSV)
    assert registry.sync_config([camera("a", heading_deg=90), camera("b")]) == (2, 0)
    assert registry.sync_config([camera("a", heading_deg=180)]) == (1, 1)  # b left the file; a turned
    cams = {c.id: (c, origin) for c, origin in registry.all()}
    assert sorted(cams) == ["a", "car-7-360", "dome-3", "xixi-wenyi-ne"]
    assert cams["a"][0].heading_deg == 180 and cams["a"][1] == "config"
    assert cams["dome-3"][1] == "csv" and cams["dome-3"][0].presets == {"home": 0.0, "crossing": 135.0}
    assert registry.remove("dome-3") and not registry.remove("dome-3")


def test_csv_export_reads_back_the_same(registry: CameraRegistry) -> None:
    registry.import_csv(CSV)
    exported = registry.export_csv()
    assert exported.splitlines()[0] == CSV.splitlines()[0]
    assert sorted(parse_csv(exported), key=lambda c: c.id) == sorted(parse_csv(CSV), key=lambda c: c.id)
    cams = {c.id: c for c in parse_csv(exported)}
    assert cams["car-7-360"].kind == "vehicle" and cams["car-7-360"].unit == "gps:car-7"
    assert cams["xixi-wenyi-ne"].credentials_env == "CAM_AUTH"  # the variable's name; no secret in the file


HEADER = CSV.splitlines()[0]


@pytest.mark.parametrize(("row", "why"), [
    ("c1,,91,120,,,,,,,,,", "line 2: lat: Input should be less than or equal to 90"),
    ("c1,,30,120,400,,,,,,,,", "line 2: heading_deg: Input should be less than or equal to 360"),
    ("c1,,30,120,,0,,,,,,,", "line 2: fov_deg: Input should be greater than 0"),
    ("c1,,30,120,,90,,fixed,,,,,", "line 2: heading_deg: a fixed camera looks one way"),
    ("c1,,30,120,10,90,,fixed,,,,,home:5", "line 2: presets: only a PTZ camera has presets"),
    ("c1,,30,120,,,,drone,,,,,", "line 2: kind: Input should be 'fixed', 'ptz' or 'vehicle'"),
    ("c1,,30,120,,,,vehicle,,,,,", "line 2: unit: a vehicle camera follows a unit's beacons"),
    ("has space,,30,120,,,,,,,,,", "line 2: id: String should match pattern"),
    ("c1,,thirty,120,,,,,,,,,", "line 2: lat: Input should be a valid number"),
    ("c1,,30,120,,,,,,,,,home=5", "line 2: presets: expected name:heading;name:heading"),
])
def test_a_bad_row_is_refused_with_its_line_and_column(row: str, why: str) -> None:
    with pytest.raises(RegistryError, match=f"^district.csv: {why}".replace("(", r"\(").replace(")", r"\)")):
        parse_csv(f"{HEADER}\n{row}\n", "district.csv")


def test_a_bad_header_or_a_repeated_id_is_refused() -> None:
    with pytest.raises(RegistryError, match=r"missing column.*lat"):
        parse_csv("id,lon\nc1,120\n")
    with pytest.raises(RegistryError, match=r"unknown column.*zoom"):
        parse_csv("id,lat,lon,zoom\nc1,30,120,2\n")
    with pytest.raises(RegistryError, match="line 3: id: 'c1' appears twice"):
        parse_csv("id,lat,lon,fov_deg\nc1,30,120,360\nc1,30,121,360\n")


@settings(max_examples=200)
@given(st.text(max_size=400))
def test_garbage_csv_is_a_registry_error_or_cameras(text: str) -> None:
    try:
        cams = parse_csv(text)
    except RegistryError:
        return
    assert all(isinstance(c, CameraConfig) for c in cams)


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "pttbridge.py"), *args], input=stdin, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)


def test_the_cli_lists_imports_exports_and_removes(tmp_path: Path) -> None:
    cfg = tmp_path / "center.toml"
    cfg.write_text(f'data_dir = "{tmp_path}"\n[[cameras]]\nid = "lobby"\nname = "Lobby"\nlat = 30.2\nlon = 120.2\n'
                   'heading_deg = 10\nfov_deg = 40\n')
    (tmp_path / "district.csv").write_text(CSV)
    out = run("cameras", "-c", str(cfg), "import", str(tmp_path / "district.csv"))
    assert out.returncode == 0 and "imported 3 cameras" in out.stderr, out.stderr
    listing = run("cameras", "-c", str(cfg), "list")
    lines = listing.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["car-7-360", "dome-3", "lobby", "xixi-wenyi-ne"]
    assert "10 deg +-20" in lines[2] and "[config] Lobby" in lines[2] and "with gps:car-7" in lines[0]
    exported = run("cameras", "-c", str(cfg), "export").stdout
    assert exported.count("\n") == 5 and "lobby,Lobby,30.2,120.2,10,40,150,fixed" in exported
    assert run("cameras", "-c", str(cfg), "remove", "dome-3").returncode == 0
    missing = run("cameras", "-c", str(cfg), "remove", "dome-3")
    assert missing.returncode != 0 and "no camera 'dome-3'" in missing.stderr
    (tmp_path / "bad.csv").write_text(f"{HEADER}\nc9,,30,200,,,,,,,,,\n")
    bad = run("cameras", "-c", str(cfg), "import", str(tmp_path / "bad.csv"))
    assert bad.returncode != 0 and "bad.csv: line 2: lon: Input should be less than or equal to 180" in bad.stderr
