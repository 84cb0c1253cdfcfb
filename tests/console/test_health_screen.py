"""The gateway health screen: ``g`` shows the running gateway's driver (open, its counters), the serial
ports it can see, and its outbox, live from its retained state; the gateway stopping turns it OFFLINE.
Drawing an audio gateway's payload shows each radio input's level as a bar, and clipping in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rig import CountingApp, Site, run, screenshot, until

from bridge.views import GatewayView
from console.link import GatewayReports
from console.screens.health import GatewayHealthScreen, Shown, draw, level_bar, merge

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)

AUDIO_STATE = {
    "online": True, "gateway": "hill", "time": "2026-05-01T11:59:58+00:00",
    "outbox": {"pending": 3, "next_seq": 90, "oldest_seq": 1, "clips_pending": 1},
    "rejected": 2,
    "radios": {
        "audio": {"state": "open", "since": "2026-05-01T11:00:00+00:00", "last_error": None, "reconnects": 0,
                  "device": "pulse",
                  "radios": {"patrol-1": {"input": 1, "decoders": ["mdc1200"], "decoded": 41, "rejected": 0,
                                          "level": {"rms_dbfs": -30.0, "peak_dbfs": -12.0, "clipped": 0}},
                             "fire": {"input": 2, "decoders": ["fleetsync"], "decoded": 7, "rejected": 1,
                                      "level": {"rms_dbfs": -0.5, "peak_dbfs": 0.0, "clipped": 12}}}},
        "radio-2": {"state": "down", "since": "2026-05-01T11:58:00+00:00", "reconnects": 4,
                    "last_error": "cannot open /dev/ttyUSB1: no such file", "port": "/dev/ttyUSB1",
                    "protocol": "kenwood-nmea", "bytes_in": 0, "decoded": 0, "rejected": 0},
    },
    "transmitters": {"patrol-1": {"output": "pulse", "ptt": "vox", "keyed": False, "sent": 3, "failed": 1}},
    "ports": [{"device": "/dev/ttyUSB0", "description": "FT232R USB UART", "hwid": "USB VID:PID=0403:6001"}],
    "audio_devices": "the PortAudio library is missing (libportaudio.so.2); install it with: apt-get install "
                     "libportaudio2",
}


def test_level_bars_fill_with_the_level() -> None:
    assert level_bar(-60.0).plain == "▕" + " " * 16 + "▏"
    assert level_bar(0.0).plain == "▕" + "█" * 16 + "▏"
    assert level_bar(-30.0).plain == "▕" + "█" * 8 + " " * 8 + "▏"
    assert level_bar(None).plain == level_bar(-90.0).plain  # no level yet: an empty bar


def test_an_audio_gateway_is_drawn_with_levels_clipping_errors_and_devices() -> None:
    reports = GatewayReports()
    reports.note("hill", AUDIO_STATE, NOW - timedelta(seconds=2))
    stored = {"depot": GatewayView("depot", False, {"online": False, "gateway": "depot", "reason": "lost"}, 0, 0, 0,
                                   NOW - timedelta(hours=1))}
    shown = merge(reports.all(), stored)
    assert [g.name for g in shown] == ["depot", "hill"] and [g.live for g in shown] == [False, True]
    screen = GatewayHealthScreen(reports, lambda: stored)
    screen.drawn = draw(shown, NOW)
    text = screen.text()
    assert "depot ✗ OFFLINE (lost)" in text and "(database)" in text
    assert "hill ● online since" in text and "reported 2s ago" in text and "outbox 3 pending, 1 clips" in text
    assert "cannot open /dev/ttyUSB1: no such file" in text and "4 reconn" in text
    [patrol] = [line for line in text.splitlines() if "patrol-1" in line and "dBFS" in line]
    assert "▕████████        ▏" in patrol and "-30.0 dBFS pk -12.0" in patrol and "mdc1200 41 dec" in patrol
    [fire] = [line for line in text.splitlines() if "fire" in line and "dBFS" in line]
    assert "CLIP 12" in fire and "fleetsync 7 dec 1 rej" in fire
    assert "tx patrol-1  keyed no · sent 3 · failed 1" in text
    assert "/dev/ttyUSB0 (FT232R USB UART)" in text and "PortAudio library is missing" in text


def test_a_gateway_that_was_offline_keeps_its_since_until_it_comes_back() -> None:
    reports = GatewayReports()
    first = reports.note("gw", {"online": False}, NOW)
    assert reports.note("gw", {"online": False}, NOW + timedelta(minutes=1)).since == first.since
    assert reports.note("gw", {"online": True}, NOW + timedelta(minutes=2)).since == NOW + timedelta(minutes=2)


def test_nothing_reported_yet_says_so() -> None:
    assert "No gateway has reported yet" in str(draw([], NOW))
    assert isinstance(merge({}, {}), list) and not merge({}, {})
    assert Shown("x", True, {}, None, None, True).live


@pytest.mark.timeout(60)
def test_g_shows_the_running_gateway_live_and_its_going_offline(site: Site, tmp_path: Path) -> None:
    app = CountingApp(site.config, "tech")

    async def scenario() -> None:
        async with app.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: bool(app.broker) and app.database == "ok", "console ready")
            await pilot.press("g")
            assert isinstance(app.screen, GatewayHealthScreen)
            screen = app.screen
            await until(pilot, lambda: "gw1 ● online" in screen.text() and "open" in screen.text(),
                        "gw1 online with its driver open")
            text = screen.text()
            assert "serial ports" in text and "audio devices" in text and "outbox 0 pending" in text
            # The radio speaks: the driver's counters move on the screen with the next state payload.
            site.radio.write(b"$GPGGA,garbage*00\r\n")
            driver = site.gateway.drivers[0][1]
            await until(pilot, lambda: driver.snapshot()["bytes_in"] > 0, "the gateway to read the bytes")
            await until(pilot, lambda: f"in {driver.snapshot()['bytes_in']} B" in screen.text(),
                        "the driver's byte counter to move on the screen")
            screenshot(app, tmp_path, "console-health")

            site.gateway.stop()  # a clean stop publishes the offline state
            await until(pilot, lambda: "gw1 ✗ OFFLINE" in screen.text(), "gw1 offline")
            await pilot.press("escape")
            assert not isinstance(app.screen, GatewayHealthScreen)

    run(scenario())
