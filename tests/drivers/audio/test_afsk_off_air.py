"""APRS as a technician meets it, through ``pttbridge decode``: a recording of 45 varied packets where
every frame Dire Wolf's atest hears is an event, and the real off-air recordings, each heard at least as
well as atest hears it (with its best options). What the satellites send that AX.25 does not allow (the
source ``AO27 T``) is decoded as Dire Wolf decodes it, and the event says what was irregular."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import wave
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from real_material import real_path
from support import afsk_audio

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
RATE = 44100

needs_direwolf = pytest.mark.skipif(
    shutil.which("gen_packets") is None or shutil.which("atest") is None,
    reason="Dire Wolf is not installed (apt-get install direwolf)",
)


def decode(wav: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """``pttbridge decode -d afsk1200``: the events as JSON (what a gateway publishes), the rejections."""
    out = subprocess.run([sys.executable, "-m", "pttbridge", "-q", "decode", "-d", "afsk1200", str(wav)],
                         capture_output=True, env=ENV, cwd=ROOT, timeout=120, check=True)
    events = [json.loads(line) for line in out.stdout.decode().splitlines()]
    return events, [line for line in out.stderr.decode().splitlines() if line.startswith("rejected:")]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def atest_frames(wav: Path, *options: str) -> list[str]:
    """The frames atest prints, as monitor lines (``[0] SRC>DST:info``, ``[0.3]`` for a digipeater)."""
    out = subprocess.run(["atest", *options, str(wav)], capture_output=True, timeout=120, check=True)
    lines = (_ANSI.sub("", line) for line in out.stdout.decode("utf-8", "replace").splitlines())
    return [m.group(1) for line in lines if (m := re.match(r"^\[[\d.]+\] (.*\S)\s*$", line))]


def comparable(line: str) -> str:
    """Monitor lines of atest and ours alike: atest prints a byte that is no UTF-8 as it is (read here
    with U+FFFD in its place), pttbridge shows it as Latin-1."""
    return "".join(c if ord(c) < 0x80 else "\ufffd" for c in line).rstrip()


# --- 45 varied packets ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def varied_recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("gen_packets") is None:
        pytest.skip("Dire Wolf is not installed (apt-get install direwolf)")
    folder = tmp_path_factory.mktemp("varied")
    packets = (DATA / "aprs" / "varied-45.txt").read_bytes().splitlines()
    wav = folder / "varied-45.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(afsk_audio(packets, folder, RATE))
    return wav


@needs_direwolf
@pytest.mark.direwolf
def test_every_frame_atest_hears_in_a_varied_recording_is_an_event(varied_recording: Path) -> None:
    packets = (DATA / "aprs" / "varied-45.txt").read_text().splitlines()
    heard = atest_frames(varied_recording)
    assert len(packets) == 45
    assert Counter(map(comparable, heard)) == Counter(map(comparable, packets))  # a clean recording
    events, rejected = decode(varied_recording)
    ours = Counter(comparable(e["detail"]["raw"]) for e in events)
    assert not Counter(map(comparable, heard)) - ours, "frames atest hears that pttbridge did not publish"
    assert len(events) == 45 and rejected == []
    by_raw = {e["detail"]["raw"]: e for e in events}

    def event(prefix: str) -> dict[str, Any]:
        return next(e for raw, e in by_raw.items() if raw.startswith(prefix))

    assert [e["unit"] for e in events if e["kind"] == "alert"] == ["aprs:BG5ABC-7"]  # the Mic-E emergency
    incident = event("BG5DSP>APDW16:;INCIDENT7")
    assert (incident["kind"], incident["unit"], incident["detail"]["sender"]) == ("beacon", "aprs:INCIDENT7", "BG5DSP")
    assert event("BG5DSP>APDW16:;INCIDENT6")["detail"]["killed"] is True
    assert event("BG5DSP>APDW16:;CP ALPHA")["unit"] == "aprs:CP_ALPHA"
    assert event("BG5ABC-9>APDW16:)AID #2")["unit"] == "aprs:AID__2"
    weather = [e for e in events if e["detail"].get("type") == "weather"]
    assert [e["detail"]["format"] for e in weather] == [
        "positionless", "ultimeter_packet", "ultimeter_logging", "peet_bros_u2", "peet_bros_u2"]
    assert event("BG5WX>")["kind"] == "beacon" and event("BG5WX>")["detail"]["weather"]["temperature"] == 25.0
    types = Counter(e["detail"]["type"] for e in events if e["kind"] == "status")
    assert types["telemetry"] == 1 and types["query"] == 2 and types["test"] == 1 and types["dx_spot"] == 1
    assert {"telemetry_parameters", "telemetry_units", "telemetry_equations", "telemetry_bits"} <= set(types)
    relayed = event("BG5GW>APDW16,WIDE2-1:}")
    assert (relayed["kind"], relayed["unit"], relayed["detail"]["third_party"]["sender"]) == (
        "beacon", "aprs:BG5ABC-1", "BG5GW")
    assert types["unknown"] == 1  # the station identification "N0CALL>ID:N0CALL/R" only
    assert event("N0CALL>ID:")["detail"]["error"].startswith("type_not_supported")


# --- real recordings -----------------------------------------------------------------------------

# (file, copied into tests/data): the satellite recordings are Unlicense; the other two are GPL-3.0
# and are read from the collection of real material (the test skips where it is not).
RECORDINGS = [
    ("satrec_ao27_48k.wav", True),
    ("satrec_swiatowid-ax25_48k.wav", True),
    ("microaprs_ISSpkt_44k.wav", False),
    ("microaprs_ttwr_rtlfm_22k.wav", False),
]


def recording(name: str, copied: bool) -> tuple[Path, dict[str, Any]]:
    """The WAV and atest's decodes of it (peers.json: per option set, the frames it printed)."""
    if copied:
        wav, peers = DATA / "afsk1200" / name, DATA / "afsk1200" / "peers.json"
    else:
        wav, peers = real_path("afsk1200", name), real_path("afsk1200", "peers.json")
    return wav, json.loads(peers.read_text())["files"][name]["atest"]


@pytest.mark.parametrize(("name", "copied"), RECORDINGS, ids=[n for n, _ in RECORDINGS])
def test_a_real_recording_is_heard_at_least_as_well_as_atest(name: str, copied: bool) -> None:
    wav, peer = recording(name, copied)
    best = max(peer.values(), key=lambda run: len(run["frames"]))["frames"]
    assert best, f"atest hears nothing in {name}: nothing to compare"
    events, rejected = decode(wav)
    ours = Counter(comparable(e["detail"]["raw"]) for e in events)
    theirs = Counter(comparable(f) for f in best)
    assert not theirs - ours, f"atest heard {theirs - ours} that pttbridge did not publish"
    assert rejected == []


def test_the_iss_frame_the_recording_is_known_for() -> None:
    # micro-aprs' README: its decoder prints this frame for ISSpkt.wav (the Berkeley EE123 lab file).
    truth = json.loads(real_path("afsk1200", "truth.json").read_text())["microaprs_ISSpkt_44k.wav"]
    events, _ = decode(real_path("afsk1200", "microaprs_ISSpkt_44k.wav"))
    assert [e["detail"]["raw"] for e in events] == truth["expected_frames"]
    assert (events[0]["kind"], events[0]["unit"], events[0]["detail"]["text"]) == (
        "status", "aprs:RS0ISS", "ARISS - International Space Station")


def test_ao27_frames_with_a_space_in_the_source_are_events_that_say_so() -> None:
    events, rejected = decode(DATA / "afsk1200" / "satrec_ao27_48k.wav")
    assert rejected == []
    assert [e["unit"] for e in events] == ["aprs:AO27_T"] * 3
    for e in events:
        assert e["detail"]["raw"].startswith("AO27 T>N4USI:")  # the callsign as sent, as atest prints it
        assert e["detail"]["irregular"] == [
            "source 'AO27 T': a space inside (AX.25 callsigns are upper-case letters and digits)"]
        # AO-27's telemetry is binary, no APRS: a status with its bytes and the reason.
        assert (e["kind"], e["detail"]["type"]) == ("status", "unknown")
        assert e["detail"]["error"].startswith("type_not_supported")
