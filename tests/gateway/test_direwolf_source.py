"""A Dire Wolf soft TNC as a gateway's source over KISS TCP (a pyserial socket:// URL), going away and
coming back like a TNC that is restarted."""

from __future__ import annotations

import socket
from pathlib import Path

from support import DireWolf, Listener, Mosquitto, afsk_audio, wait_until

from config.schema import parse_config
from gateway.runner import Gateway

PACKETS = [
    b"BG5ABC-9>APDW16,WIDE1-1:!3012.57N/12012.64E>090/010/A=000100 patrol 1",
    b"BG5ABC-7>301RU7,WIDE1-1,WIDE2-1:`0(\\lNv>/",  # Mic-E emergency
]


def test_direwolf_tnc_feeds_the_gateway_and_is_reconnected(tmp_path: Path, mosquitto: Mosquitto) -> None:
    tnc = DireWolf(tmp_path)
    audio = afsk_audio(PACKETS, tmp_path)
    tnc.start()
    listener = Listener(mosquitto.url, "pttbridge/v1/gw/+/event/#")
    config = parse_config({
        "gateway": {"name": "aprs-gw", "outbox": str(tmp_path / "outbox.sqlite")},
        "mqtt": {"url": mosquitto.url},
        "channels": [{"name": "aprs", "drivers": [{"port": tnc.url, "protocol": "kiss"}]}],
    })
    gateway = Gateway(config)
    gateway.start()
    driver = gateway.drivers[0][1]
    try:
        wait_until(lambda: driver.snapshot()["state"] == "open", 10, "the KISS TCP connection")
        tnc.play(audio)
        wait_until(lambda: len(listener.events()) >= 2, 15, "two APRS events")
        # The alert may be handed to the broker ahead of the beacon; its seq keeps the radio's order.
        events = sorted(listener.events(), key=lambda e: e["seq"])
        assert [(e["kind"], e["unit"]) for e in events] == [
            ("beacon", "aprs:BG5ABC-9"), ("alert", "aprs:BG5ABC-7")]
        assert events[1]["detail"]["mic_e_message"] == "emergency"

        tnc.stop()  # the TNC goes away: the driver notices the closed connection and keeps retrying
        wait_until(lambda: driver.snapshot()["state"] == "down", 10, "the driver to see the TNC gone")
        tnc.start()  # back on the same port
        wait_until(lambda: driver.snapshot()["state"] == "open", 15, "the driver to reconnect")
        tnc.play(audio)
        wait_until(lambda: len(listener.events()) >= 4, 15, "the events after reconnecting")
        assert sorted(e["seq"] for e in listener.events()) == [1, 2, 3, 4]
    finally:
        gateway.stop()
        tnc.stop()
        listener.close()


def test_a_tnc_whose_port_was_taken_meanwhile_listens_on_another(tmp_path: Path) -> None:
    """The port picked for Dire Wolf is free when picked; a server that takes it before Dire Wolf binds it
    must not be mistaken for the TNC (Dire Wolf runs on without KISS then)."""
    tnc = DireWolf(tmp_path)
    picked = tnc.port
    with socket.socket() as other:
        other.bind(("127.0.0.1", picked))
        other.listen()
        tnc.start()
        try:
            assert tnc.port != picked
            assert f"KISS TCP client application 0 on port {tnc.port}" in \
                (tmp_path / f"direwolf-{tnc.port}.log").read_text(errors="replace")
        finally:
            tnc.stop()
