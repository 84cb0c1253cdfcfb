"""The command line as a technician or a new user meets it: help, decode-serial, and `pttbridge up`."""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import SocatLink, end_process, recording

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


def test_decode_serial_times_what_the_end_of_a_file_completes_by_its_last_input(tmp_path: Path) -> None:
    # An RMC-only receiver's last fix waits for a GGA of its second; the end of the file reports it, and
    # the file's writer left out the last line end. Its time is when its bytes were read, not the end of time.
    body = "GPRMC,193001.00,A,3012.5700,N,12012.6420,E,14.2,90.0,261126,,,A"
    capture = tmp_path / "rmc-only.nmea"
    capture.write_bytes(f"${body}*{checksum(body):02X}".encode())
    before = datetime.now(UTC) - timedelta(milliseconds=1)  # event times are to the millisecond
    out = run("-q", "decode-serial", "-p", "nmea", str(capture))
    after = datetime.now(UTC)
    [event] = [json.loads(line) for line in out.stdout.splitlines()]
    assert before <= datetime.fromisoformat(event["time"]) <= after, event["time"]
    assert event["position"]["fix_time"] == "2026-11-26T19:30:01.000Z"
    assert b"1 events, 0 rejected" in out.stderr


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
        proc.send_signal(signal.SIGINT)  # Ctrl+C, as its user stops it
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:  # once in a full suite on a loaded machine: not what this test is about
            end_process(proc)


def test_unknown_protocol_is_a_clear_error() -> None:
    out = run("decode-serial", "-p", "morse", "-")
    assert out.returncode != 0 and b"unknown protocol 'morse'" in out.stderr and b"known: " in out.stderr


def test_config_error_names_key(tmp_path: Path) -> None:
    bad = tmp_path / "gw.toml"
    bad.write_text('[gateway]\nname = "has space"\n')
    out = run("gateway", "-c", str(bad))
    assert out.returncode != 0 and f"{bad}: gateway.name: expected".encode() in out.stderr


def read_until(master: int, needle: bytes, timeout: float) -> bytes:
    screen = b""
    deadline = time.monotonic() + timeout
    while needle not in screen and time.monotonic() < deadline:
        if select.select([master], [], [], 0.5)[0]:
            try:
                screen += os.read(master, 65536)
            except OSError:  # the program closed the terminal
                break
    return screen


def start_in_terminal(args: list[str], data: Path) -> tuple[subprocess.Popen[bytes], int]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # an 80x24 terminal
    proc = subprocess.Popen([sys.executable, "-m", "pttbridge", *args], stdin=slave, stdout=slave, stderr=slave,
                            env={**ENV, "PTTBRIDGE_DATA": str(data), "TERM": "xterm-256color"}, cwd=ROOT,
                            start_new_session=True)
    os.close(slave)
    return proc, master


def test_up_as_a_new_user_runs_it(tmp_path: Path) -> None:
    """In a terminal: the console comes up, the demo's emergency is on screen within seconds, a key
    acknowledges it, and Ctrl+C stops everything cleanly."""
    proc, master = start_in_terminal(["up", "--speed", "8", "--operator", "alice"], tmp_path)
    try:
        screen = read_until(master, b"EMERGENCY", 60)
        assert b"EMERGENCY" in screen, screen.decode(errors="replace")[-3000:]
        assert b"NEW" in screen and b"operator alice" in screen
        os.write(master, b"a")  # acknowledge the newest
        screen = read_until(master, b"ACK", 15)
        assert b"ACK" in screen
        os.write(master, b"\x03")  # Ctrl+C, as the terminal sends it to a full-screen program
        assert proc.wait(30) == 0
        screen = read_until(master, b"stopping", 5)
        assert b"Traceback" not in screen
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)
    # Its state went to the data folder it was given, and the acknowledgement is in the database.
    assert list(tmp_path.glob("outbox-*.sqlite"))
    with sqlite3.connect(tmp_path / "bridge.sqlite") as db:
        acked = db.execute("SELECT COUNT(*) FROM incidents WHERE state = 'acknowledged'").fetchone()[0]
    assert acked == 1


def test_up_headless_prints_events(tmp_path: Path) -> None:
    proc, master = start_in_terminal(["up", "--headless", "--speed", "8"], tmp_path)
    try:
        screen = read_until(master, b"ALERT", 60)
        assert b"embedded" in screen
        alert = next((line for line in screen.splitlines() if b"ALERT" in line), b"")
        assert any(u in alert for u in (b"fleetsync:100-1002", b"aprs:BG5ABC-9", b"dtmf:1007")), screen[-2000:]
        assert b" at 30.2" in alert or b"dtmf:1007" in alert  # with its position, where the radio sends one
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl+C in the terminal does to a line-mode program
        assert proc.wait(30) == 0
        assert b"Traceback" not in read_until(master, b"never", 1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)


def test_decode_prints_audio_events_timed_by_their_offset(tmp_path: Path) -> None:
    wav = recording(tmp_path / "patrol-2.wav")
    out = run("decode", "--decoders", "dtmf,selcall", "-o", "selcall.standard=ZVEI1", str(wav))
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(e["kind"], e["detail"]["digits"]) for e in events] == [("status", "*911*1234#"), ("ptt", "12345")]
    assert events[1]["unit"] == "zvei1:12345" and events[0]["channel"] == "patrol-2"
    # The DTMF starts 0.5 s into the recording, the 5-tone ID after it, and the times say so.
    assert events[0]["time"].startswith("1970-01-01T00:00:00.5") and 0.49 < events[0]["detail"]["offset_s"] < 0.6
    assert events[1]["detail"]["offset_s"] > 2.0
    assert b"2 events, 0 rejected" in out.stderr


def test_decode_runs_every_audio_decoder_by_default(tmp_path: Path) -> None:
    """An MDC-1200 PTT ID and a FleetSync ANI in one recording: both heard without naming a decoder."""
    import numpy as np
    import soundfile

    from drivers.audio import fleetsync, mdc1200

    x = np.concatenate([mdc1200.encode(mdc1200.ptt_id(0x1234), rate=22050, lead_s=0.2, tail_s=0.2),
                        fleetsync.encode(fleetsync.ani(100, 1001), rate=22050)])
    soundfile.write(tmp_path / "mix.wav", x, 22050)
    out = run("decode", str(tmp_path / "mix.wav"))
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(e["kind"], e["unit"]) for e in events] == [("ptt", "mdc:1234"), ("ptt", "fleetsync:100-1001")]


def test_decode_names_an_unknown_decoder_and_a_missing_file(tmp_path: Path) -> None:
    out = run("decode", "--decoders", "morse", str(tmp_path / "x.wav"))
    assert out.returncode != 0 and b"unknown protocol 'morse'" in out.stderr
    out = run("decode", str(tmp_path / "missing.wav"))
    assert out.returncode != 0 and b"missing.wav" in out.stderr


def test_a_metrics_address_in_use_is_one_line_naming_the_key(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = tmp_path / "center.toml"
        cfg.write_text(f'data_dir = "{tmp_path}"\n[mqtt]\nurl = "mqtt://127.0.0.1:1"\n'
                       f'[bridge]\nmetrics = "127.0.0.1:{port}"\n')
        out = run("bridge", "-c", str(cfg))
    assert out.returncode == 1
    assert out.stderr.decode().splitlines()[-1] == (
        f"{cfg}: bridge.metrics: cannot listen on 127.0.0.1:{port}: Address already in use")
    assert b"Traceback" not in out.stderr


def test_chirp_import_prints_configuration_tables_and_says_what_it_adjusted(tmp_path: Path) -> None:
    import tomllib

    from bridge.chirp import read_chirp
    from config.schema import parse_config

    csv = ("Location,Name,Frequency,Duplex,Offset,Tone,rToneFreq,cToneFreq,DtcsCode,DtcsPolarity,Mode,TStep,Skip,"
           "Power,Comment\n"
           "15,SEA 15,156.750000,off,0.000000,,88.5,88.5,023,NN,FM,25.00,,1W,\"Receive only, \"\"EPIRB\"\" \"\n"
           "18,SEA 18,156.900000,-,0.000000,Tone,100.0,88.5,023,NN,FM,25.00,,,Commercial \\ \x7f\n"
           "18,SEA 18,157.000000,,0.000000,Cross,88.5,88.5,023,RN,FM,25.00,,25W,\n")
    f = tmp_path / "marine.csv"
    f.write_text(csv)
    out = run("chirp", "import", str(f))
    assert out.returncode == 0, out.stderr
    tables = tomllib.loads(out.stdout.decode())
    assert tables["channels"] == read_chirp(csv).channels  # the import, exactly, as configuration tables
    parse_config(tables)  # a valid configuration as it stands
    assert out.stderr.decode().splitlines() == [
        f"{f}: lines 2-3, column Name: spelled as a plan name (one MQTT topic level: 'RPT 2' is RPT-2); the radio's "
        "name kept",
        f"{f}: line 3, column Location: 18 is also line 4's, which CHIRP keeps there; this channel moves to "
        "location 19",
        f"{f}: line 3, column Duplex: '-' to the receive frequency (Offset 0.000000): simplex",
        f"{f}: line 3, column Power: empty (CHIRP refuses that since 2023); exported as CHIRP's default, 50W",
        f"{f}: line 4, column Name: a second channel named 'SEA 18'; named 'SEA-18-2' in the plan, the radio's name "
        "kept",
        "3 channels, 5 adjustments noted",
    ]
    bad = run("chirp", "import", "-", stdin=b"Location,Name,Frequency\n1,A,abc\n")
    assert bad.returncode != 0 and bad.stderr.decode().strip() == (
        "-: line 2, column Frequency: expected MHz, e.g. 146.520000, got 'abc'")


def test_chirp_export_writes_a_configuration_s_channels_for_chirp(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text('[[channels]]\nname = "marine-16"\nrx_mhz = 156.8\nreceive_only = true\nlocation = 16\n'
                    '[[channels]]\nname = "patrol-1"\nrx_mhz = 146.52\ntone_mode = "Tone"\ntx_ctcss_hz = 100.0\n'
                    '[[channels]]\nname = "io-box"\n')
    out = run("chirp", "export", "-c", str(site))
    assert out.returncode == 0, out.stderr
    rows = out.stdout.decode().splitlines()
    assert rows[1].split(",")[:6] == ["16", "marine-16", "156.800000", "off", "0.000000", ""]
    assert rows[2].split(",")[:7] == ["17", "patrol-1", "146.520000", "", "0.000000", "Tone", "100.0"]
    assert [r.split(",")[15] for r in rows[1:]] == ["50W", "50W"]  # CHIRP's default power, where none is given
    assert out.stderr.decode().splitlines() == ["channel io-box: no rx_mhz, so no radio memory; left out"]
