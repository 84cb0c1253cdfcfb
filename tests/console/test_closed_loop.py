"""The whole loop, every part real: an MDC-1200 emergency played into a sound device -> the gateway hears it
-> Mosquitto -> the bridge opens an incident -> a dispatcher acknowledges it in the console -> the bridge
asks the gateway that heard it -> the gateway keys PTT (RTS of a serial device server, or a coil of a
Modbus I/O module, each a real process watched from the other side) and transmits the MDC-1200
emergency acknowledgement into another sound device, where our decoder hears it -> the result is in the
incident's history, on screen."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from rig import CountingApp, run, until
from support import DeviceServer, Mosquitto, PulseNullSink, ptt_keyed_by, wait_until

from bridge.service import Bridge
from config.schema import parse_config
from console.screens.incident_detail import IncidentDetailScreen
from drivers.audio import mdc1200
from gateway.runner import Gateway

UNIT_ID = 0x1234
RATE = 48000


@pytest.mark.parametrize("ptt", ["serial", "modbus"])
def test_a_dispatchers_acknowledgement_reaches_the_officers_radio(
    ptt: str, tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink, device_server: DeviceServer
) -> None:
    io_drivers, keying, io_module = ptt_keyed_by(ptt, tmp_path, device_server)
    drivers = [{"type": "audio", "device": pulse_radio.device, "rate": RATE, "decoders": ["mdc1200"]}, *io_drivers]
    config = parse_config({
        "gateway": {"name": "gw-loop", "outbox": str(tmp_path / "outbox.sqlite"), "state_interval_s": 1},
        "mqtt": {"url": mosquitto.url},
        "bridge": {"database_url": f"sqlite:///{tmp_path / 'bridge.sqlite'}", "reannounce_s": 600},
        "channels": [{
            "name": "patrol-7",
            "drivers": drivers,
            "record": {},
            "transmit": {"device": pulse_radio.device, "rate": RATE, "lead_in_ms": 250, "tail_ms": 100,
                         "ptt": keying},
        }],
    })
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()
    on_air = pulse_radio.record_tx()
    console = CountingApp(config, "alice")

    async def scenario() -> None:
        async with console.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: bool(console.broker) and console.database == "ok", "console ready")
            # The officer presses the emergency button: the radio sends its MDC-1200 emergency burst.
            pulse_radio.play(mdc1200.encode(mdc1200.emergency(UNIT_ID), rate=RATE, lead_s=0.3, tail_s=0.5), RATE)
            await until(pilot, lambda: console.dispatch.queue.texts(), "the alert in the console", 20)
            [row] = console.dispatch.queue.texts()
            assert row["unit"] == "mdc:1234"
            assert device_server.rts() == []  # nothing keyed yet (the port is not even open)

            await pilot.press("a")  # the dispatcher acknowledges
            [incident] = bridge.store.open_incidents()  # type: ignore[union-attr]

            def answered() -> list[str]:
                detail = bridge.store.incident_detail(incident.id)  # type: ignore[union-attr]
                return [h.note or "" for h in detail.history if h.action == "radio_ack"] if detail else []

            await until(pilot, lambda: len(answered()) == 2, "the gateway's report", 20)
            requested, result = answered()
            assert requested == "requested from gw-loop/patrol-7"
            assert result.startswith("sent by gw-loop/patrol-7")

            # The console shows it in the incident's history.
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(console.screen, IncidentDetailScreen), "the incident detail")
            screen = console.screen
            assert isinstance(screen, IncidentDetailScreen)
            await until(pilot, lambda: any(r["action"] == "radio ack" and r["note"].startswith("sent")
                                           for r in screen.history.texts()), "the radio ack on screen")
            # The emergency came in a recorded transmission, shown once its end is stored (its call event
            # comes when it ends, which may be after the acknowledgement's report): the screen follows.
            await until(pilot, lambda: "transmission" in screen.alerts.texts()[0]["what"],
                        "the transmission the alert came in, on screen")

    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected, 10, "bridge and gateway connected")
        wait_until(lambda: all(d.snapshot()["state"] in ("open", "up") for _, d in gateway.drivers), 10,
                   "the sound device (and the I/O module) to open")
        run(scenario())
        # PTT: keyed once and released, seen from the other side (the device server, the I/O module).
        if io_module is None:
            assert device_server.rts() == ["RTS 0", "RTS 1", "RTS 0"]
        else:
            io_module.expect("write co 4 0")
            assert [line for line in io_module.seen if line.startswith("write")] == ["write co 4 1", "write co 4 0"]
            assert device_server.rts() == []
        # What went on the air: our decoder hears the emergency acknowledgement for that unit (once the
        # sink's monitor has given back all that was played).
        def on_the_air() -> list[tuple[object, object]]:
            decoder = mdc1200.Mdc1200Decoder(RATE)
            out = decoder.feed(on_air.samples(), datetime.now(UTC)) + decoder.flush(datetime.now(UTC))
            return [(d.unit, d.detail["name"]) for d in out]  # type: ignore[union-attr]

        wait_until(lambda: on_the_air() != [], 5, "the acknowledgement on the air")
        assert on_the_air() == [("mdc:1234", "emergency_ack")]
    finally:
        on_air.stop()
        gateway.stop()
        bridge.stop()
        if io_module is not None:
            io_module.stop()
