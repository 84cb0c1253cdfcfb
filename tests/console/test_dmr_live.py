"""DMR end to end, every part real: a repeater's outbound channel as a receiver's discriminator hears it,
played into a PulseAudio sink -> the gateway's ``dmr`` decoder -> Mosquitto -> the bridge: the unit's
LRRP location report puts it on the map, its emergency call opens an incident at that position with the
cameras that see it, and the console shows it with the transmission it came in, whose clip the bridge
keeps. Here the capture starts while the repeater is already transmitting (PulseAudio delivers its
first block a second or two after the stream opens, measured), so the transmission is found by the
decoder's bursts: by its level, 4FSK heard from the first frame is the noise floor."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import soundfile
from rig import CountingApp, run, until
from support import Mosquitto, PulseNullSink, site_config, wait_until

from bridge.service import Bridge
from config.schema import load_config
from console.screens.incident_detail import IncidentDetailScreen
from drivers.audio.dmr import encoder, layer2, location, modem
from drivers.audio.dmr.decoder import DmrDecoder, events_in
from gateway.runner import Gateway

RATE = 48000
UNIT = 2345678
LAT, LON = 30.2095, 120.2107
M_LAT, M_LON = 1 / 111_320, 1 / 96_190  # degrees per metre here


def site(tmp_path: Path, broker: str, device: str) -> Path:
    cfg = site_config(tmp_path, broker, f"sqlite:///{tmp_path / 'bridge.sqlite'}")
    south = LAT - 60 * M_LAT
    cfg.write_text(cfg.read_text() + f"""
[bridge.cameras]
window_s = 300
near_m = 200
best = 3

[[cameras]]
id = "cam-north"
name = "Xixi Rd south, looking north"
lat = {south}
lon = {LON}
heading_deg = 0
fov_deg = 60
range_m = 150

[[cameras]]
id = "cam-away"
name = "Xixi Rd south, looking away"
lat = {south}
lon = {LON}
heading_deg = 180
fov_deg = 60
range_m = 150

[[channels]]
name = "dmr-rpt"
record = {{}}

[[channels.drivers]]
type = "audio"
device = "{device}"
rate = {RATE}
decoders = ["dmr"]
options = {{ dmr = {{ color_codes = [1], slots = [2] }} }}
""")
    return cfg


def test_a_dmr_emergency_becomes_an_incident_with_the_units_position_and_cameras(
    tmp_path: Path, mosquitto: Mosquitto, pulse_radio: PulseNullSink
) -> None:
    config = load_config(site(tmp_path, mosquitto.url, pulse_radio.device))
    bridge = Bridge(config)
    bridge.start()
    gateway = Gateway(config)
    gateway.start()
    console = CountingApp(config, "alice")
    # The officer's radio reports where it is (LRRP over the data channel), then keys an emergency call;
    # slot 1 carries another talkgroup's call, which the channel's slot filter leaves out.
    bursts = encoder.lrrp_packet(location.build_lrrp(LAT, LON), source=UNIT, slot=2, color_code=1)
    bursts += encoder.voice_call(layer2.group_call(UNIT, 9, emergency=True), slot=2, superframes=4, color_code=1)
    bursts += encoder.voice_call(layer2.group_call(3100200, 77), slot=1, superframes=4, color_code=1)
    symbols = encoder.repeater_stream(bursts, lead_slots=10, tail_slots=10)
    audio = modem.to_audio(modem.through_receiver(modem.frequency(symbols), 25, np.random.default_rng(1)))

    async def scenario() -> None:
        async with console.run_test(size=(120, 36)) as pilot:
            await until(pilot, lambda: bool(console.broker) and console.database == "ok", "console ready")
            pulse_radio.play(audio, RATE)
            await until(pilot, lambda: console.dispatch.queue.texts(), "the alert in the console", 30)
            [row] = console.dispatch.queue.texts()
            assert row["unit"] == f"dmr:{UNIT}"
            store = bridge.store
            assert store is not None
            # The gateway publishes an alert ahead of what waits in its outbox, so the location report
            # decoded with it may reach the bridge just after: the incident takes the position then.
            await until(pilot, lambda: [i.lat is not None for i in store.open_incidents()] == [True],
                        "the incident at the unit's position")
            [incident] = store.open_incidents()
            detail = store.incident_detail(incident.id)
            assert detail is not None and detail.correlation is not None
            assert incident.lat is not None and incident.lon is not None
            assert abs(incident.lat - LAT) < 1e-4 and abs(incident.lon - LON) < 1e-4  # from the LRRP report
            assert {c.camera_id for c in detail.correlation.cameras} == {"cam-north"}
            console.open_detail(incident.id)
            await until(pilot, lambda: isinstance(console.screen, IncidentDetailScreen), "the incident detail")
            first_view = console.screen
            assert isinstance(first_view, IncidentDetailScreen)
            await until(pilot, lambda: any(r["name"] == "Xixi Rd south, looking north"
                                           for r in first_view.cameras.texts()),
                        "the camera on screen")
            # Slot 1's call was not published: only the officer's unit is known to the bridge.
            assert [u.unit for u in store.units()] == [f"dmr:{UNIT}"]

            # The emergency names the transmission it came in; the bridge keeps that transmission's clip.
            await until(pilot, lambda: bridge.counts["clips"] == 1, "the transmission's clip stored", 20)
            detail = store.incident_detail(incident.id)
            assert detail is not None
            [alert] = detail.alerts
            [call] = detail.calls
            assert alert.detail["call"] == call.event_id
            assert call.unit == f"dmr:{UNIT}" and call.codec == "flac" and call.sha256 is not None
            assert call.duration_s is not None and call.duration_s >= 4 * 0.36  # the whole emergency call
            stored = store.clip(call.event_id)
            assert stored is not None and hashlib.sha256(stored[1]).hexdigest() == call.sha256
            # The clip is the officer's transmission: decoded as the channel decodes, it holds the unit's
            # location report and its emergency call.
            clip, rate = soundfile.read(io.BytesIO(stored[1]), dtype="float32")
            again = DmrDecoder(rate, color_codes=1, slots=2)
            found = events_in(again.feed(clip, datetime.now(UTC)) + again.flush(datetime.now(UTC)))
            assert [(str(e.kind), e.unit) for e in found] == [(k, f"dmr:{UNIT}") for k in ("beacon", "alert", "ptt")]
            # The dispatcher, back in the incident, sees the transmission the emergency came in.
            await pilot.press("escape")
            await until(pilot, lambda: not isinstance(console.screen, IncidentDetailScreen), "back to dispatch")
            console.open_detail(incident.id)
            await until(pilot, lambda: isinstance(console.screen, IncidentDetailScreen), "the incident detail")
            second_view = console.screen
            assert isinstance(second_view, IncidentDetailScreen)
            sha256 = call.sha256
            assert sha256 is not None
            await until(pilot, lambda: any(f"transmission (flac sha256 {sha256[:12]})" in r["what"]
                                           for r in second_view.alerts.texts()), "the transmission on screen")

    try:
        wait_until(lambda: bridge.connected and gateway.publisher.connected, 10, "bridge and gateway connected")
        wait_until(lambda: all(d.snapshot()["state"] in ("open", "up") for _, d in gateway.drivers), 10,
                   "the sound device to open")
        run(scenario())
    finally:
        gateway.stop()
        bridge.stop()
