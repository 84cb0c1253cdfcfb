"""The demo's case as a new user sees it: ``pttbridge up --headless`` run as a program on its embedded
broker, the case told one line a step from the camera's detection to the verdict, the case stored as any
case is, the announcement in the file the demo names, the camera's snapshot on the demo's HTTP server.
And the stand-in dispatcher's rules on their own (sans-I/O)."""

from __future__ import annotations

import io
import os
import re
import select
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from bridge.views import IncidentView, PartView, PayloadError
from launcher.story import CaseNarrator, SnapshotServer

ROOT = Path(__file__).parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
STEPS = ("opened", "suggested", "dispatched", "accepted", "arrived", "handled", "verified")


def read_lines_until(proc: subprocess.Popen[bytes], done: str, timeout: float) -> list[str]:
    assert proc.stdout is not None
    lines: list[str] = []
    buffer = b""
    deadline = time.monotonic() + timeout
    while not any(done in line for line in lines) and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.5)[0]:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            lines += [line.decode(errors="replace") for line in complete]
    return lines


def test_up_headless_tells_the_case_from_the_cameras_detection_to_its_verdict(tmp_path: Path) -> None:
    with (tmp_path / "stderr.log").open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "pttbridge", "up", "--headless", "--speed", "4"],
                                stdout=subprocess.PIPE, stderr=log, env={**ENV, "PTTBRIDGE_DATA": str(tmp_path)},
                                cwd=ROOT, start_new_session=True)
        try:
            lines = read_lines_until(proc, "verified", 50)
            told = [line for line in lines if line.startswith("case ")]
            assert [line.split()[2].rstrip(":") for line in told] == list(STEPS), "\n".join(lines[-40:])
            summary = next(line for line in lines if line.startswith("pttbridge up:"))
            # the camera's snapshot, as the bridge fetched it, from the demo's own HTTP server
            server = re.search(r"demo snapshots on (http://127\.0\.0\.1:\d+/)", summary)
            assert server is not None, summary
            with urllib.request.urlopen(server[1] + "car-7-360.jpg", timeout=5) as response:
                assert response.headers["Content-Type"] == "image/jpeg"
                picture = response.read()
            assert picture == (ROOT / "config" / "demo" / "stall.jpg").read_bytes()
            with Image.open(io.BytesIO(picture)) as img:
                assert img.format == "JPEG" and img.width >= 100
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    assert "Traceback" not in (tmp_path / "stderr.log").read_text(errors="replace")

    case_id = int(told[0].split()[1])
    assert "street_stall seen by camera car-7-360" in told[0]
    assert "urban-management to accept within 5 min" in told[0]
    assert told[1].startswith(f"case {case_id} suggested: fleetsync:100-1004 (")  # the nearest: at his post
    wav = tmp_path / "patrol-1-transmitted.wav"
    assert "fleetsync:100-1004 told through patrol-1 by announcement (sent)" in told[2] and str(wav) in told[2]
    assert all("fleetsync:100-1004 (urban-management)" in line for line in told[3:6])
    assert told[6] == f"case {case_id} verified: valid (handled, by {os.environ.get('USER') or 'dispatcher'})"

    # Stored as any case is, where `pttbridge report` and the console read it.
    with sqlite3.connect(tmp_path / "bridge.sqlite") as db:
        case = db.execute("SELECT category, source, camera, state, resolution, verdict, assigned_unit FROM incidents "
                          "WHERE id = ?", (case_id,)).fetchone()
        part = db.execute("SELECT department, state, unit, dispatch_channel, dispatch_result, dispatched_at, "
                          "accepted_at, arrived_at, handled_at, accept_due FROM case_parts WHERE case_id = ?",
                          (case_id,)).fetchall()
        answers = db.execute("SELECT outcome FROM case_answers WHERE case_id = ? ORDER BY id", (case_id,)).fetchall()
        evidence = db.execute("SELECT kind, camera_id, size FROM evidence WHERE incident_id = ?", (case_id,)).fetchall()
    assert case == ("street_stall", "camera", "car-7-360", "resolved", "handled", "valid", "fleetsync:100-1004")
    [(department, state, unit, channel, result, dispatched, accepted, arrived, handled, accept_due)] = part
    assert (department, state, unit, channel, result) == (
        "urban-management", "handled", "fleetsync:100-1004", "patrol-1", "sent")
    assert dispatched < accepted < arrived < handled < accept_due
    assert answers == [("applied",)] * 3
    assert evidence == [("snapshot", "car-7-360", len(picture))]

    # The announcement went on the air, in the file the demo named: a few seconds of speech.
    with wave.open(str(wav)) as w:
        rate, samples = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32768.0
    assert 3.0 < samples.size / rate < 20.0
    blocks = samples[: samples.size // 160 * 160].reshape(-1, 160)
    voiced_s = np.count_nonzero(np.sqrt(np.mean(blocks**2, axis=1)) > 0.01) * 160 / rate
    assert voiced_s > 2.0


# --- the stand-in dispatcher's rules --------------------------------------------------------------------

T0 = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)


def part(state: str, **times: datetime) -> PartView:
    return PartView(id=1, department="urban-management", role="single", state=state, unit="fleetsync:100-1004",
                    opened_at=T0, accept_due=T0 + timedelta(minutes=5), **times)  # type: ignore[arg-type]


def case(*parts: PartView, source: str = "camera", state: str = "acknowledged", **extra: object) -> IncidentView:
    return IncidentView(
        id=7, state=state, resolution=None, unit=None, alias=None, gateway="", channel="", label="street_stall",
        opened_at=T0, acknowledged_at=None, acknowledged_by=None, resolved_at=None, resolved_by=None,
        first_event_id="", last_event_id="", last_alert_at=T0, alert_count=1, lat=30.2067, lon=120.2144,
        position_time=T0, updated_at=T0, category="street_stall", source=source, camera="car-7-360", parts=parts,
        **extra)  # type: ignore[arg-type]


def test_a_part_that_jumps_to_handled_is_told_step_by_step_and_resolved_once() -> None:
    narrator = CaseNarrator("demo", dispatch_after_s=3, announcements={})
    assert narrator.incident(case(part("new"), suggested=({"unit": "fleetsync:100-1004", "distance_m": 15.3},)),
                             now=100.0)[1] == "case 7 suggested: fleetsync:100-1004 (15.3 m)"
    assert narrator.due(102.9) == []
    assert narrator.due(103.0) == [{"action": "assign", "incident": 7, "unit": "fleetsync:100-1004",
                                    "operator": "demo"}]
    assert narrator.due(104.0) == []  # sent once
    later = {"dispatched_at": T0, "accepted_at": T0 + timedelta(seconds=5), "arrived_at": T0 + timedelta(seconds=9),
             "handled_at": T0 + timedelta(seconds=20)}
    lines = narrator.incident(case(part("handled", **later)), now=110.0)
    assert lines == ["case 7 accepted: fleetsync:100-1004 (urban-management) 5 s after dispatch",
                     "case 7 arrived: fleetsync:100-1004 (urban-management) 9 s after dispatch",
                     "case 7 handled: fleetsync:100-1004 (urban-management) 20 s after dispatch"]
    assert narrator.incident(case(part("handled", **later)), now=111.0) == []
    [resolve] = narrator.due(111.0)
    assert (resolve["action"], resolve["verdict"], resolve["resolution"]) == ("resolve", "valid", "handled")
    assert narrator.due(112.0) == []


def test_radio_emergencies_are_left_to_the_dispatcher() -> None:
    narrator = CaseNarrator("demo", dispatch_after_s=0, announcements={})
    assert narrator.incident(case(source="radio", suggested=({"unit": "mdc:2001", "distance_m": 1.0},)), 0) == []
    assert narrator.due(1.0) == []


def test_a_dispatch_report_is_told_once_with_its_announcement_file(tmp_path: Path) -> None:
    narrator = CaseNarrator("demo", dispatch_after_s=0, announcements={"patrol-1": tmp_path / "tx.wav"})
    narrator.incident(case(part("dispatched")), 0)
    report = {"protocol": "tx", "command": "dispatch", "case": 7, "unit": "fleetsync:100-1004", "channel": "patrol-1",
              "path": "announcement", "result": "sent", "audio_s": 6.04}
    assert narrator.report({**report, "case": 8}) == []  # not a case it follows
    assert narrator.report({**report, "result": "busy"}) == []  # not told yet
    assert narrator.report({**report, "audio_s": "long"}) == [  # a field of the wrong type leaves it out
        "case 7 dispatched: fleetsync:100-1004 told through patrol-1 by announcement (sent)"]
    assert narrator.report(report) == []


def test_the_snapshot_server_serves_its_pictures_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 10)
    server = SnapshotServer({"cam.png": tmp_path / "a.png"})
    server.start()
    try:
        with urllib.request.urlopen(server.url("cam.png"), timeout=5) as response:
            assert response.headers["Content-Type"] == "image/png" and response.read().startswith(b"\x89PNG")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(server.url("../a.png"), timeout=5)
        assert refused.value.code == 404
    finally:
        server.stop()


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                max_size=6), max_leaves=20)
STATES = st.sampled_from(["new", "dispatched", "accepted", "arrived", "handled", "closed", "resolved", "?"])
A_PART = st.fixed_dictionaries({"state": STATES, "department": st.text(max_size=8)},
                               optional={"unit": JSON, "accepted_at": JSON, "dispatched_at": JSON})


@given(body=st.dictionaries(st.sampled_from(["id", "source", "suggested", "state", "category", "camera",
                                             "position", "opened_at", "verdict"]), JSON | STATES, max_size=6),
       parts=st.lists(A_PART, max_size=3),
       detail=st.dictionaries(st.sampled_from(["protocol", "command", "case", "unit", "channel", "path", "result",
                                               "audio_s"]), JSON, max_size=8))
def test_whatever_comes_on_the_broker_is_a_line_a_refusal_or_nothing(
    body: dict[str, object], parts: list[dict[str, object]], detail: dict[str, object]
) -> None:
    """A case as the bridge sends it with any of its fields changed to any JSON: read and told, or refused
    with the field named (PayloadError), never an exception out of the narrator."""
    narrator = CaseNarrator("demo", dispatch_after_s=0, announcements={"patrol-1": Path("tx.wav")})
    valid = case(part("dispatched", dispatched_at=T0), suggested=({"unit": "fleetsync:100-1004", "distance_m": 1},))
    narrator.incident(valid, 0)
    base = valid.to_json()
    base["parts"] = [{**base["parts"][0], **p} for p in parts] or base["parts"]
    try:
        view = IncidentView.from_json({**base, **body})
    except PayloadError:
        view = None  # the shell logs it and goes on
    lines = (narrator.incident(view, 1.0) if view is not None else []) + narrator.report(detail)
    assert all(isinstance(line, str) and "\n" not in line for line in lines)
    narrator.due(2.0)
