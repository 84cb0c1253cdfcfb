"""The case loop over the radio network, every part real, on SQLite and PostgreSQL: a dispatcher opens a
case by hand in a headless console and sends units; the bridge dispatches to their radios through the
gateway that heard them last; the gateway keys PTT (a serial device server's RTS, watched from the other
side) and transmits into a PulseAudio sink, where this project's decoders read the FleetSync text and the
MDC-1200 call alert, and the Mandarin announcement is measured; then the radios answer, played into the
receive sink as they would come off the air (a FleetSync status, an MDC-1200 status, a DTMF code after a
FleetSync ANI), and the case's parts move to accepted, arrived and handled, on screen and in the database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rig import CountingApp, run, type_text, until
from support import DeviceServer, Mosquitto, PulseNullSink, wait_until
from textual.pilot import Pilot

from bridge.service import Bridge
from bridge.views import IncidentView
from config.schema import parse_config
from console.screens.assign import AssignScreen
from console.screens.incident_detail import IncidentDetailScreen
from console.screens.open_case import OpenCaseScreen
from drivers.audio import fleetsync, mdc1200
from drivers.audio.fleetsync import FleetSyncDecoder
from drivers.audio.mdc1200 import Mdc1200Decoder
from gateway.events import Decoded
from gateway.runner import Gateway

RATE = 48000
DTMF = {"*": (941, 1209), "2": (697, 1336), "3": (697, 1477)}


def dtmf(digits: str) -> np.ndarray:
    """DTMF as a radio's keypad sends it: 100 ms tones, 80 ms apart."""
    t = np.arange(int(0.1 * RATE)) / RATE
    parts = []
    for d in digits:
        lo, hi = DTMF[d]
        parts += [0.25 * (np.sin(2 * np.pi * lo * t) + np.sin(2 * np.pi * hi * t)), np.zeros(int(0.08 * RATE))]
    return np.concatenate(parts)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE))


def voiced_s(x: np.ndarray) -> float:
    """How long speech energy (over -40 dBFS, in 20 ms frames) lasts, first to last voiced frame."""
    n = RATE // 50
    frames = x[: x.size // n * n].reshape(-1, n).astype(np.float64)
    on = np.flatnonzero(np.sqrt(np.mean(frames**2, axis=1)) > 0.01)
    return float((on[-1] - on[0] + 1) * 0.02) if on.size else 0.0


def site(tmp_path: Path, broker: Mosquitto, database_url: str, pulse: PulseNullSink,
         device_server: DeviceServer) -> dict[str, Any]:
    return {
        "gateway": {"name": "gw-case", "outbox": str(tmp_path / "outbox.sqlite"), "state_interval_s": 1},
        "mqtt": {"url": broker.url},
        "bridge": {"database_url": database_url, "reannounce_s": 600, "cameras": {"evidence": False}},
        "channels": [{
            "name": "patrol-7",
            "drivers": [{"type": "audio", "device": pulse.device, "rate": RATE,
                         "decoders": ["fleetsync", "mdc1200", "dtmf"],
                         # A DTMF code is complete before its transmission ends: it names it (detail.call).
                         "options": {"dtmf": {"interdigit_s": 0.5}}}],
            "record": {"hang_ms": 1200},
            "transmit": {"device": pulse.device, "rate": RATE, "lead_in_ms": 250, "tail_ms": 100, "timeout_s": 40,
                         "ptt": {"method": "serial", "port": device_server.url, "line": "rts"}},
            "dispatch": {"fleetsync_id": "100-1000", "mdc_id": "0001"},
        }],
        "departments": [{"name": "urban-management", "units": ["fleetsync:100-*"]},
                        {"name": "police", "units": ["mdc:*"]}],
        "case_kinds": {"street_stall": {"flow": "lead", "departments": ["urban-management", "police"],
                                        "name": "占道经营", "duty": "City Appearance Regulations art. 12",
                                        "accept_s": 300, "arrive_s": 900, "resolve_s": 3600, "language": "cmn"}},
        "answers": {"fleetsync_status": {"10": "accepted", "12": "handled"}, "mdc_status": {"2": "arrived"},
                    "dtmf": {"*23*": "handled"}},
        "cameras": [{"id": "dome-3", "name": "Wenyi Rd / Gudun Rd", "lat": 30.28, "lon": 120.11, "fov_deg": 360}],
    }


# Real time on the air: the dispatches and the radios' answers played through PulseAudio, with lead-ins,
# tails and a spoken announcement.
@pytest.mark.timeout(300)
def test_a_case_dispatched_to_radios_and_answered_from_them(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer, database_url: str
) -> None:
    config = parse_config(site(tmp_path, mosquitto, database_url, pulse_radio, device_server))
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()
    on_air = pulse_radio.record_tx()
    console = CountingApp(config, "alice")
    store = bridge.store
    assert store is not None

    def case() -> IncidentView | None:
        return next((i for i in store.open_incidents() if i.category == "street_stall"), None)

    def states() -> list[tuple[str, str, str | None]]:
        c = case()
        return [(p.department, p.state, p.unit) for p in c.parts] if c is not None else []

    def history(action: str) -> list[str]:
        c = case()
        detail = store.incident_detail(c.id) if c is not None else None
        return [h.note or "" for h in detail.history if h.action == action] if detail is not None else []

    async def answer(pilot: Pilot[None], sound: np.ndarray, done: Callable[[], bool], what: str) -> None:
        """The officer answers from his radio; on a machine too busy to capture it whole, he presses again
        (as an officer whose radio showed no acknowledgement does), up to three times."""
        for _ in range(3):
            pulse_radio.play(sound, RATE)
            try:
                await until(pilot, done, what, 20)
                return
            except AssertionError:
                continue
        raise AssertionError(f"{what}: not applied after three tries")

    async def scenario() -> None:
        async with console.run_test(size=(140, 44)) as pilot:
            await until(pilot, lambda: bool(console.broker) and console.database == "ok", "console ready")
            # Both officers' radios are heard: a FleetSync ANI, an MDC-1200 PTT ID.
            await answer(pilot, np.concatenate([fleetsync.encode(fleetsync.ani(100, 1001), rate=RATE), silence(1.5),
                                                mdc1200.encode(mdc1200.ptt_id(0x2001), rate=RATE, lead_s=0.2,
                                                               tail_s=0.3)]),
                         lambda: all((u := store.unit(n)) is not None and u.last_gateway == "gw-case"
                                     for n in ("fleetsync:100-1001", "mdc:2001")), "both units heard")

            # The dispatcher opens a case by hand at a camera (o: kind, place, note).
            await pilot.press("o")
            await until(pilot, lambda: isinstance(console.screen, OpenCaseScreen), "the open-case dialog")
            await pilot.press("enter")  # the only kind: street stall
            await type_text(pilot, "dome-3")
            await pilot.press("enter")
            await type_text(pilot, "two carts")
            await pilot.press("enter")
            await until(pilot, lambda: case() is not None and bool(console.dispatch.queue.texts()), "the case", 10)
            opened = case()
            assert opened is not None
            assert states() == [("urban-management", "new", None), ("police", "new", None)]
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(console.screen, IncidentDetailScreen), "the case's detail")
            detail = console.screen
            assert isinstance(detail, IncidentDetailScreen)
            assert [r["department"] for r in detail.parts.texts()] == ["urban-management (lead)", "police (assist)"]

            # Sent: urban management's officer, a FleetSync radio. The text goes out over the air.
            await pilot.press("s")
            await until(pilot, lambda: isinstance(console.screen, AssignScreen), "the send dialog")
            await type_text(pilot, "fleetsync:100-1001")
            await pilot.press("enter")
            await until(pilot, lambda: any(n.startswith("sent (fleetsync_message) on gw-case/patrol-7")
                                           for n in history("dispatch")), "the gateway's report", 30)
            # He accepts from his radio: FleetSync status 10.
            await answer(pilot, fleetsync.encode(fleetsync.status_message(100, 1001, 10), rate=RATE),
                         lambda: states()[0] == ("urban-management", "accepted", "fleetsync:100-1001"), "accepted")
            await until(pilot, lambda: detail.parts.texts()[0]["state"] == "accepted", "accepted on screen")

            # Sent too: a police officer with an MDC-1200 radio: paged, then the case spoken in Mandarin.
            await pilot.press("s")
            await until(pilot, lambda: isinstance(console.screen, AssignScreen), "the send dialog")
            await type_text(pilot, "mdc:2001")
            await pilot.press("enter")
            await until(pilot, lambda: any(n.startswith("sent (announcement)") for n in history("dispatch")),
                        "the announcement's report", 60)
            # He reports arrival: MDC-1200 status 2 (acceptance implied).
            await answer(pilot, mdc1200.encode(mdc1200.status(0x2001, 2), rate=RATE, lead_s=0.2, tail_s=0.3),
                         lambda: states()[1] == ("police", "arrived", "mdc:2001"), "arrived")

            # The stall is cleared: the FleetSync officer keys up (his ANI) and sends *23* on the keypad.
            await answer(pilot, np.concatenate([fleetsync.encode(fleetsync.ani(100, 1001), rate=RATE), silence(0.2),
                                                dtmf("*23*"), silence(0.2)]), lambda: states()[0][1] == "handled",
                         "handled")
            await until(pilot, lambda: detail.parts.texts()[0]["state"] == "handled", "handled on screen")
            await until(pilot, lambda: sum(r["action"] == "answer" for r in detail.history.texts()) == 3,
                        "the answers in the history on screen")

    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected, 10, "bridge and gateway connected")
        wait_until(lambda: all(d.snapshot()["state"] in ("open", "up") for _, d in gateway.drivers), 10,
                   "the sound device to open")
        run(scenario())
        heard = on_air.samples()
    finally:
        on_air.stop()
        gateway.stop()
        bridge.stop()

    c = case()
    assert c is not None
    # Applied once each (an answer pressed again on a busy machine changed nothing, and says so).
    answers = [n for n in history("answer") if not n.endswith(" already")]
    assert answers == [
        "fleetsync:100-1001 sent fleetsync status 10 (accepted) on gw-case/patrol-7: urban-management's part accepted",
        "mdc:2001 sent mdc1200 status 2 (arrived) on gw-case/patrol-7: police's part arrived (accepted implied)",
        "fleetsync:100-1001 sent dtmf *23* (handled) on gw-case/patrol-7: urban-management's part handled (arrived "
        "implied)"]
    um, police = c.parts
    assert um.accepted_at is not None
    assert um.handled_at is not None
    assert um.accepted_at <= um.handled_at
    assert um.arrived_at == um.handled_at  # "handled" from the spot implies arrival, said in the history
    assert police.accepted_at == police.arrived_at is not None
    # On the air, read by this project's decoders: the text for the FleetSync unit, the page for the MDC
    # unit, then the announcement; PTT keyed and released for each.
    now = datetime.now(UTC)
    fs = FleetSyncDecoder(RATE)
    texts = [d for d in fs.feed(heard, now) + fs.flush(now) if isinstance(d, Decoded) and d.detail["name"] == "message"]
    assert [(d.detail["text"], d.detail["to_fleet"], d.detail["to_unit"]) for d in texts] == [
        (f"CASE {c.id} STREET STALL @DOME-3 5MIN", 100, 1001)]
    mdc = Mdc1200Decoder(RATE)
    [page] = [d for d in mdc.feed(heard, now) + mdc.flush(now) if isinstance(d, Decoded)]
    assert (page.detail["name"], page.detail["target_id"]) == ("call_alert", "2001")
    spoken = heard[round((page.detail["offset_s"] + 0.4) * RATE):]
    assert voiced_s(spoken) > 3.0  # "案件N，占道经营，地点：Wenyi Rd / Gudun Rd。请在5分钟内接警。"
    rts = device_server.rts()
    assert [r for i, r in enumerate(rts) if i == 0 or r != rts[i - 1]] == ["RTS 0"] + ["RTS 1", "RTS 0"] * 3
    report = history("dispatch")
    assert report[0].startswith(f"to fleetsync:100-1001 through gw-case/patrol-7 (heard there last): CASE {c.id}")
