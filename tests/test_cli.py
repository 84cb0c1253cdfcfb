"""The command line as a technician or a new user meets it: help, decode-serial, and `pttbridge up`."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import SocatLink

from drivers.nmea import checksum

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pttbridge", *args], input=stdin, capture_output=True,
                          env=ENV, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("command", [[], ["up"], ["gateway"], ["decode-serial"]])
def test_help_explains(command: list[str]) -> None:
    out = run(*command, "--help")
    assert out.returncode == 0
    assert b"usage: pttbridge" in out.stdout and len(out.stdout) > 300


def test_decode_serial_prints_events_and_names_rejects() -> None:
    capture = b"\x02I11001001\x03garbage\r\n$PKLSH,3012.5700,N,12012.6420,E,193001,A,100,1002,*00\r\n\x02I01001001\x03"
    out = run("-q", "decode-serial", "-p", "kenwood", "-", stdin=capture)
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(e["kind"], e["unit"], e["detail"].get("transmission")) for e in events] == [
        ("ptt", "fleetsync:100-1001", "begin"),
        ("ptt", "fleetsync:100-1001", "end"),
    ]
    assert out.stderr.count(b"rejected:") == 2  # the garbage line, and the sentence with a bad checksum
    assert b"checksum" in out.stderr and b"2 events, 2 rejected" in out.stderr


def test_decode_serial_reads_a_live_port(tmp_path: Path, socat_link: SocatLink) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "pttbridge", "-q", "decode-serial", "-p", "nmea", "-o",
                             'unit="gps:car-7"', str(socat_link.radio)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV, cwd=ROOT)
    try:
        assert proc.stderr is not None and b"reading" in proc.stderr.readline()
        body = "GPRMC,193001.00,A,3012.5700,N,12012.6420,E,14.2,90.0,261126,,,A"
        socat_link.write(f"${body}*{checksum(body):02X}\r\n".encode())
        assert proc.stdout is not None
        assert select.select([proc.stdout], [], [], 10)[0], "no event within 10 s"
        event = json.loads(proc.stdout.readline())
        assert event["unit"] == "gps:car-7" and round(event["position"]["lat"], 4) == 30.2095
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_unknown_protocol_is_a_clear_error() -> None:
    out = run("decode-serial", "-p", "morse", "-")
    assert out.returncode != 0 and b"unknown protocol 'morse'" in out.stderr and b"known: " in out.stderr


def test_config_error_names_key(tmp_path: Path) -> None:
    bad = tmp_path / "gw.toml"
    bad.write_text('[gateway]\nname = "has space"\n')
    out = run("gateway", "-c", str(bad))
    assert out.returncode != 0 and f"{bad}: gateway.name: expected".encode() in out.stderr


def test_up_as_a_new_user_runs_it(tmp_path: Path) -> None:
    """Started in a terminal: the demo's emergency shows up within seconds, Ctrl+C stops it cleanly."""
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pttbridge", "up", "--speed", "8"], stdin=slave, stdout=slave,
                            stderr=slave, env={**ENV, "PTTBRIDGE_DATA": str(tmp_path)}, cwd=ROOT,
                            start_new_session=True)
    os.close(slave)
    screen = b""
    try:
        deadline = time.monotonic() + 45
        while b"ALERT" not in screen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                screen += os.read(master, 65536)
        assert b"embedded" in screen
        assert b"ALERT" in screen, screen.decode(errors="replace")[-2000:]
        alert = next(line for line in screen.splitlines() if b"ALERT" in line)
        assert b"fleetsync:100-1002" in alert or b"aprs:BG5ABC-9" in alert
        assert b" at 30.2" in alert  # with its position
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C in the terminal does
        assert proc.wait(20) == 0
        while select.select([master], [], [], 0.2)[0]:
            try:
                screen += os.read(master, 65536)
            except OSError:
                break
        assert b"stopping" in screen and b"Traceback" not in screen
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)
    assert list(tmp_path.glob("outbox-*.sqlite"))  # its state went to the data folder it was given
