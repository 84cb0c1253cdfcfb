"""Live input levels: a gateway hearing a radio publishes the levels every second (its full state only
every state_interval_s), and the console's copy of the gateway's state takes them in."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import soundfile
from support import Listener, Mosquitto, wait_until

from config.schema import parse_config
from console.link import GatewayReports
from gateway.runner import Gateway


def test_levels_go_out_every_second_and_land_in_the_consoles_copy(tmp_path: Path, mosquitto: Mosquitto) -> None:
    rate = 16000
    t = np.arange(8 * rate) / rate
    soundfile.write(tmp_path / "rx.wav", (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), rate)
    config = parse_config({
        "gateway": {"name": "gw-lv", "outbox": str(tmp_path / "outbox.sqlite"), "state_interval_s": 60},
        "mqtt": {"url": mosquitto.url},
        "channels": [{"name": "patrol-4", "drivers": [
            {"type": "audio", "device": f"wav:{tmp_path / 'rx.wav'}", "rate": rate, "decoders": ["dtmf"]}]}],
    })
    listener = Listener(mosquitto.url, "pttbridge/v1/gw/gw-lv/#", persistent=False)
    gateway = Gateway(config)
    gateway.start()
    try:
        driver = "audio:wav:" + str(tmp_path / "rx.wav")

        def states() -> list[dict[str, Any]]:  # the online ones that show the driver (the first may not yet)
            got = [json.loads(p) for topic, p, _ in listener.messages if topic.endswith("/state")]
            return [s for s in got if s.get("online") is True and driver in (s.get("radios") or {})]

        wait_until(lambda: len([m for m in listener.messages if m[0].endswith("/levels")]) >= 3, 10, "three levels")
        wait_until(states, 10, "a state showing the audio driver")
        levels = [json.loads(p) for topic, p, _ in listener.messages if topic.endswith("/levels")]
        # Three levels in a few seconds, with state_interval_s = 60: the levels have their own topic.
        level = levels[-1]["radios"][driver]["patrol-4/audio"]
        assert abs(level["rms_dbfs"] - (-9.0)) < 1.0  # a 0.5 sine: -9 dBFS RMS
        assert abs(level["peak_dbfs"] - (-6.0)) < 0.5

        reports = GatewayReports()
        reports.note("gw-lv", states()[0])
        before = reports.version
        reports.levels("gw-lv", levels[-1]["radios"])
        assert reports.version == before + 1
        drv = reports.all()["gw-lv"].state["radios"][driver]
        assert drv["radios"]["patrol-4/audio"]["level"] == level
        reports.levels("nobody", levels[-1]["radios"])  # a gateway not seen yet: nothing to patch
        assert "nobody" not in reports.all()
    finally:
        gateway.stop()
        listener.close()
