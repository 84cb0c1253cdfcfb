"""Fault injection: with traffic flowing from three gateways, break one part at a time, bring it back as
an operator (or systemd) would, and check that every event is stored exactly once, in each gateway's
order, with nothing else poking the system back to health. Each test is one row of the table.
"""

from __future__ import annotations

import glob
import os
import sqlite3
import subprocess
import time
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from harness import Process, Row, Site, record, restart_postgres
from support import PulseNullSink, wait_until

from drivers.audio.dtmf import dtmf_tones

#: How long "broker unreachable for minutes" lasts: about a minute in CI, so that the suite stays short;
#: PTTBRIDGE_FAULTS_OUTAGE_S=300 for the real thing.
OUTAGE_S = float(os.environ.get("PTTBRIDGE_FAULTS_OUTAGE_S", "60"))
CLOCK_SKEW = "+5h"


def check(row: Row) -> None:
    assert not row.problems(), f"{row.fault}: {', '.join(row.problems())}\n{row.diagnosis}"
    assert row.alerts > 0 and row.sent > 0


@pytest.mark.timeout(180)
def test_broker_restart(site: Site) -> None:
    def inject() -> tuple[float, float]:
        began = time.time()
        site.broker.stop()
        site.broker.start()
        return began, time.time()

    check(record(site.measure("broker restart", inject)))


@pytest.mark.timeout(OUTAGE_S + 240)
def test_broker_unreachable_for_minutes(site: Site) -> None:
    def inject() -> tuple[float, float]:
        began = time.time()
        site.broker.stop()
        time.sleep(OUTAGE_S)  # the fault: the broker away this long while traffic goes on
        site.broker.start()
        return began, time.time()

    check(record(site.measure("broker unreachable", inject, note=f"{OUTAGE_S:.0f} s")))


@pytest.mark.timeout(180)
def test_gateway_sigkill(site: Site) -> None:
    gw = site.gateways["gw2"]

    def inject() -> tuple[float, float]:
        opened = gw.text().count("opened")
        # What the radio says while no gateway reads its port is lost on the wire, as on a real serial
        # line: it is not counted as sent. Bytes a killed process had taken from the port but not yet
        # decoded die with it too, so the radio falls quiet until the gateway has decoded what it sent;
        # everything decoded must arrive (published, in flight or waiting in the outbox).
        with site.traffic.paused(site.radio("gw2")):
            site.wait_decoded(site.radio("gw2"))
            began = time.time()
            gw.kill()
            time.sleep(2)  # the fault: no gateway for two seconds
            gw.start()
            wait_until(lambda: gw.text().count("opened") > opened, 30, "gw2 to open its radio again")
        return began, time.time()

    check(record(site.measure("gateway SIGKILL", inject, affected=("gw2",))))


@pytest.mark.timeout(180)
def test_bridge_sigkill(site: Site) -> None:
    def inject() -> tuple[float, float]:
        began = time.time()
        site.bridge.kill()
        time.sleep(3)  # the fault: no bridge for three seconds while traffic goes on
        connected = site.bridge.text().count("connected to")
        site.bridge.start()
        wait_until(lambda: site.bridge.text().count("connected to") > connected, 30, "the bridge to connect again")
        return began, time.time()

    check(record(site.measure("bridge SIGKILL", inject)))


@pytest.mark.timeout(180)
def test_postgresql_stopped_and_restarted(site: Site) -> None:
    check(record(site.measure("PostgreSQL stopped and restarted", lambda: restart_postgres(site.postgres, 10.0),
                              note="down 10 s")))


@pytest.mark.timeout(180)
def test_database_read_only(site: Site) -> None:
    """As when the database fails over to a standby, or an administrator switches it read-only: every
    session the bridge opens refuses to write until the database is made writable again."""
    name = site.engine.url.database

    def inject() -> tuple[float, float]:
        began = time.time()
        site.admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        site.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' "
                   "AND pid <> pg_backend_pid()")
        wait_until(lambda: "database cannot store" in site.bridge.text()[-20000:], 30, "the bridge to notice")
        time.sleep(8)  # the fault: the database read-only this long while traffic goes on
        site.admin(f'ALTER DATABASE "{name}" SET default_transaction_read_only = off')
        return began, time.time()

    check(record(site.measure("database read-only", inject, note="PostgreSQL, 8 s")))


@pytest.mark.timeout(180)
def test_outbox_disk_full(site: Site) -> None:
    """The outbox of gw3 lives on a 16 MB filesystem of its own, filled to the last byte for a while."""
    if site.outbox_dir is None:
        reason = "a full disk needs a small filesystem of its own (tmpfs: the suite must run as root, as CI does)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    fs = site.outbox_dir
    gw = site.gateways["gw3"]

    def inject() -> tuple[float, float]:
        began = time.time()
        # SQLite writes its log from the start again after a checkpoint, into blocks the disk already gave
        # it: a full disk is found only once the log must grow, which a quiet gateway may not need for
        # minutes. A reader's open snapshot (as a backup tool's would) keeps the log from being restarted,
        # so the next writes must grow it. Opened before the disk is full: a reader needs its shared memory.
        reader = sqlite3.connect(f"file:{site.outboxes['gw3']}?mode=ro", uri=True, isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM events").fetchone()
        fd = os.open(fs / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            try:
                while True:
                    os.write(fd, b"\0" * 4096)
            except OSError:
                pass  # ENOSPC: full to the last block
            finally:
                os.close(fd)
            deadline = time.monotonic() + 60
            while "cannot be written" not in gw.text():
                assert time.monotonic() < deadline, "gw3 never found its outbox full"
                site.traffic.burst(site.radio("gw3"), 100)
                time.sleep(1)  # a burst a second: traffic to grow the log, not a flood
            reader.close()  # the snapshot has done its part: the fault is the full disk alone
            time.sleep(6)  # the fault: the disk full this long
        finally:
            reader.close()
            (fs / "filler").unlink()  # the operator frees space; nothing else is done
        return began, time.time()

    check(record(site.measure("outbox disk full", inject, affected=("gw3",), note="6 s")))
    assert "writable again" in gw.text()


@pytest.mark.timeout(180)
def test_serial_device_unplugged(site: Site) -> None:
    radio, gw = site.radio("gw1"), site.gateways["gw1"]

    def inject() -> tuple[float, float]:
        opened = gw.text().count("opened")
        # A radio whose cable is pulled sends nothing anyone could count; written before, it must arrive.
        with site.traffic.paused(radio):
            site.wait_decoded(radio)
            began = time.time()
            radio.link.unplug()
            # socat killed cannot remove its links: gone, as udev removes a USB adapter's (a dangling link
            # would lead the gateway to whatever pty the kernel hands out next under that number).
            for end in (radio.link.radio, radio.link.feed):
                end.unlink(missing_ok=True)
            time.sleep(5)  # the fault: the cable out for five seconds
            radio.link.plug()
            wait_until(lambda: gw.text().count("opened") > opened, 60, "gw1 to open its radio again")
        return began, time.time()

    check(record(site.measure("serial device unplugged", inject, affected=("gw1",), note="5 s")))


@pytest.mark.timeout(180)
def test_gateway_clock_wrong_by_hours(site: Site) -> None:
    """gw2 runs with its clock 5 hours ahead (libfaketime): its events are stored with the times it
    gave them, its alerts still open incidents timed by the bridge, and the bridge says the clock is off."""
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketimeMT.so.1"))
    if not found:
        if os.environ.get("CI"):
            pytest.fail("libfaketime is not installed (apt-get install faketime)")
        pytest.skip("libfaketime is not installed (apt-get install faketime)")
    radio, gw = site.radio("gw2"), site.gateways["gw2"]

    def restart(env: dict[str, str]) -> None:
        opened = gw.text().count("opened")
        with site.traffic.paused(radio):
            site.wait_decoded(radio)
            gw.stop()
            gw.start(env=env)
            wait_until(lambda: gw.text().count("opened") > opened, 30, "gw2 to open its radio")

    # The library preloaded into the gateway itself (the faketime command would stand between the
    # test and the process it stops).
    restart({"LD_PRELOAD": found[-1], "FAKETIME": CLOCK_SKEW, "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
    try:
        started = time.time()
        row = site.measure("gateway clock wrong by hours", lambda: (started, started), note=CLOCK_SKEW)
    finally:
        restart({})
    check(record(row))
    wait_until(lambda: "gateway gw2: its clock is" in site.bridge.text(), 10, "the bridge to say gw2's clock is off")
    with site.engine.connect() as conn:
        times = conn.execute(sa.text("SELECT MIN(time), MAX(time) FROM events WHERE gateway = 'gw2' "
                                     "AND received_at >= :t"), {"t": datetime.fromtimestamp(started, UTC)}).one()
        opened = conn.execute(sa.text("SELECT MAX(opened_at), COUNT(*) FROM incidents WHERE gateway = 'gw2' "
                                      "AND opened_at >= :t"), {"t": datetime.fromtimestamp(started, UTC)}).one()
    hours = (times[1].replace(tzinfo=UTC).timestamp() - started) / 3600
    assert 4.9 < hours < 5.2  # the gateway's own times, as it sent them
    assert opened[1] > 0  # its alerts opened incidents
    # Incidents are timed by the bridge's clock when the gateway's is in the future: their deadlines
    # (and escalation) would otherwise pass hours late.
    assert opened[0].replace(tzinfo=UTC).timestamp() <= time.time() + 60


@pytest.mark.timeout(240)
def test_audio_device_lost(site: Site) -> None:
    """A fourth gateway listens to a radio's audio (a PulseAudio null sink's monitor) for DTMF emergency
    codes; the sound server goes away for 5 s and comes back. Bursts are played whole or not at all (a
    radio heard by no device is heard by nobody): two before, three after the device is back; each one
    played must be stored once."""
    try:
        import sounddevice  # noqa: F401 - PortAudio itself must load

        sink = PulseNullSink(site.workdir / "audio")
        sink.start()
    except (RuntimeError, OSError, ImportError, AssertionError) as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PulseAudio/PortAudio unavailable: {exc}")
        pytest.skip(f"PulseAudio/PortAudio unavailable: {exc}")
    cfg = site.workdir / "gwa.toml"
    cfg.write_text(f"""
data_dir = "{site.workdir / 'gwa'}"
[gateway]
name = "gwa"
outbox = "{site.workdir / 'gwa' / 'outbox.sqlite'}"
state_interval_s = 1
[mqtt]
url = "{site.broker.url}"
[[channels]]
name = "patrol-audio"
[[channels.drivers]]
type = "audio"
device = "{sink.device}"
rate = 16000
decoders = ["dtmf"]
[[channels.rules]]
match = {{ digits = '\\*911\\*(\\d{{4}})#' }}
kind = "alert"
unit = "dtmf:{{1}}"
label = "DTMF emergency code"
""")
    gw = Process(["gateway", "-c", str(cfg)], site.workdir / "gwa.log", env=sink.env)
    gw.start()
    played: list[tuple[int, float]] = []  # (code, when its last tone ended)

    def burst() -> None:
        n = len(played) + 1
        # Each burst ends in twice the decoder's 1 s inter-digit timeout of silence: one sequence, ended by
        # the burst itself. A generous playback buffer: on a loaded machine pacat's default 20 ms
        # underruns, and a tone broken by silence is two digits, or none.
        samples = dtmf_tones(f"*911*{n:04d}#", 16000, tone_s=0.1, pause_s=0.1, tail_s=2.0)
        subprocess.run(["pacat", "--playback", f"--device={sink.sink}", "--rate=16000", "--channels=1",
                        "--format=float32le", "--latency-msec=200"], input=samples.astype("<f4").tobytes(),
                       env={**os.environ, **sink.env}, capture_output=True, timeout=30)
        played.append((n, time.time() - 2.0))

    try:
        wait_until(lambda: "capturing" in gw.text(), 30, "gwa to open the sound device")
        reopened: list[float] = []

        def inject() -> tuple[float, float]:
            # Bursts played whole or not at all: none while the sound server is away.
            for _ in range(2):
                burst()
            opened = gw.text().count("capturing device")
            began = time.time()
            sink.stop()
            time.sleep(5)  # the fault: the sound server away for five seconds
            sink.start()
            back = time.time()
            wait_until(lambda: gw.text().count("capturing device") > opened, 60, "gwa to capture again")
            reopened.append(time.time() - back)
            for _ in range(3):
                burst()
            return began, back

        row = site.measure("audio device lost", inject, after_s=2, note="PulseAudio away 5 s")
        alerts = {f"dtmf:{n:04d}": t for n, t in played}

        def audio_rows() -> list[tuple[str, float]]:
            with site.engine.connect() as conn:
                found = conn.execute(sa.text("SELECT unit, received_at FROM events WHERE gateway = 'gwa' "
                                             "AND kind = 'alert'")).all()
            return [(u, r.replace(tzinfo=UTC).timestamp()) for u, r in found if u in alerts]

        try:
            wait_until(lambda: {u for u, _ in audio_rows()} >= set(alerts), 60, "every burst played to be stored")
        except AssertionError:
            pass  # counted as lost
        stored = audio_rows()
        delays = [r - alerts[u] for u, r in stored]
        units = [u for u, _ in stored]
        combined = Row(row.fault, row.sent + len(alerts), row.stored + len(set(units)),
                       row.duplicates + len(units) - len(set(units)), row.lost + len(set(alerts) - set(units)),
                       row.out_of_order, row.alerts + len(set(units)), max([row.worst_alert_delay_s, *delays]),
                       max(row.recovered_in_s, *reopened), row.note)
        if combined.lost:
            combined.diagnosis = row.diagnosis + (f"\nplayed {sorted(alerts)}, stored {sorted(units)}; decoded: "
                                  + ", ".join(line.rsplit(" ", 2)[-2] for line in gw.text().splitlines()
                                              if "patrol-audio alert" in line))
        check(record(combined))
        assert "retrying every" in gw.text()  # the gateway said why it lost the device
    finally:
        gw.stop()
        sink.stop()
