"""Transmission recording end to end: a recording of two transmissions through the gateway's audio driver,
to a real Mosquitto, into the bridge: call events with the unit identified in them, FLAC clips stored
with their hash, and the alert naming the transmission it came in."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile
from support import Listener, Mosquitto, wait_until

from bridge.service import Bridge
from bridge.store import ClipError, Store
from config.schema import parse_config
from drivers.audio.dmr import encoder, layer2, modem
from drivers.audio.dtmf import dtmf_tones
from gateway.events import Event, Kind, uuid7
from gateway.runner import Gateway

RATE = 16000


def voice(seconds: float) -> np.ndarray:
    t = np.arange(round(seconds * RATE)) / RATE
    buzz = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 15))
    return (0.08 * buzz * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t))).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), np.float32)


def write_wav(path: Path, x: np.ndarray) -> Path:
    soundfile.write(path, x, RATE, subtype="PCM_16")
    return path


def test_transmissions_become_calls_with_their_unit_and_clip(tmp_path: Path, mosquitto: Mosquitto) -> None:
    # An officer keys up, sends the emergency code *911*1234#, and speaks; later someone speaks without ID.
    emergency = dtmf_tones("*911*1234#", RATE, level=0.2)
    first = np.concatenate([emergency, voice(2.0)])
    x = np.concatenate([silence(0.5), first, silence(2.0), voice(1.5), silence(1.5)])
    wav = write_wav(tmp_path / "channel.wav", x)
    config = parse_config({
        "gateway": {"name": "gw-rec", "outbox": str(tmp_path / "outbox.sqlite")},
        "mqtt": {"url": mosquitto.url},
        "bridge": {"database_url": f"sqlite:///{tmp_path / 'bridge.sqlite'}"},
        "channels": [{
            "name": "patrol-5",
            "drivers": [{"type": "audio", "device": f"wav:{wav}", "rate": RATE, "decoders": ["dtmf"]}],
            "rules": [{"match": {"digits": r"\*911\*(\d{4})#"}, "kind": "alert", "unit": "dtmf:{1}"}],
            "record": {"hang_ms": 800},
        }],
    })
    listener = Listener(mosquitto.url, "pttbridge/v1/gw/#")
    bridge = Bridge(config)
    bridge.start()
    wait_until(lambda: bridge.connected, 10, "the bridge to connect")
    gateway = Gateway(config)
    gateway.start()
    try:
        wait_until(lambda: len([e for e in listener.events() if e["kind"] == "call"]) == 2, 20, "two calls")
        events = listener.events()
        alert = next(e for e in events if e["kind"] == "alert")
        calls = [e for e in events if e["kind"] == "call"]
        # The alert names the transmission it came in; the call carries the unit identified in it.
        assert alert["unit"] == "dtmf:1234" and alert["detail"]["call"] == calls[0]["id"]
        assert calls[0]["unit"] == "dtmf:1234" and calls[1]["unit"] is None
        assert abs(calls[0]["detail"]["duration_s"] - len(first) / RATE) < 0.05
        assert abs(calls[1]["detail"]["duration_s"] - 1.5) < 0.05
        assert "call" not in calls[1]["detail"]

        # The clips: on gw/{gateway}/audio/{event id}, FLAC, with the hash their events name.
        wait_until(lambda: len([t for t, _, _ in listener.messages if "/audio/" in t]) == 2, 10, "two clips")
        for call in calls:
            (clip,) = [p for t, p, _ in listener.messages if t.endswith(f"/audio/{call['id']}")]
            audio = call["detail"]["audio"]
            assert hashlib.sha256(clip).hexdigest() == audio["sha256"] and len(clip) == audio["bytes"]
            samples, rate = soundfile.read(io.BytesIO(clip))
            assert rate == audio["rate"] == 8000
            assert abs(len(samples) / rate - audio["clip_s"]) < 0.01
            assert audio["clip_s"] >= call["detail"]["duration_s"] + 0.3  # with the pre-roll

        # The bridge keeps each clip with its hash, and shows the transmission with the incident.
        store = bridge.store
        assert store is not None
        wait_until(lambda: bridge.counts["clips"] == 2, 10, "the bridge to store both clips")
        (incident,) = store.open_incidents()
        detail = store.incident_detail(incident.id)
        assert detail is not None
        assert [(c.event_id, c.unit, c.codec, c.sha256) for c in detail.calls] == [
            (calls[0]["id"], "dtmf:1234", "flac", calls[0]["detail"]["audio"]["sha256"])]
        stored = store.clip(calls[0]["id"])
        assert stored is not None and hashlib.sha256(stored[1]).hexdigest() == calls[0]["detail"]["audio"]["sha256"]
    finally:
        gateway.stop()
        bridge.stop()
        listener.close()


def test_a_clip_that_is_not_audio_or_not_its_events_is_refused(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'b.sqlite'}")
    try:
        clip = io.BytesIO()
        soundfile.write(clip, voice(0.5), RATE, format="FLAC")
        call = store.add_clip("gw1", "0193a9b8-0000-7000-8000-000000000001", clip.getvalue())
        assert call.codec == "flac" and call.sha256 == hashlib.sha256(clip.getvalue()).hexdigest()
        again = store.add_clip("gw1", "0193a9b8-0000-7000-8000-000000000001", clip.getvalue())  # a redelivery
        assert again.sha256 == call.sha256
        for bad, why in [(b"RIFF....WAVE", "not FLAC or Ogg"), (b"fLaC" + bytes(9 << 20), "exceeds")]:
            try:
                store.add_clip("gw1", "0193a9b8-0000-7000-8000-000000000002", bad)
            except ClipError as exc:
                assert why in str(exc)
            else:
                raise AssertionError(f"{why}: accepted")
        # A clip whose call event names another hash (altered on the way) is refused.
        now = datetime.now(UTC)
        event = Event(id=uuid7(now), seq=1, gateway="gw1", channel="patrol-5", kind=Kind.CALL, time=now,
                      detail={"duration_s": 0.5, "audio": {"codec": "flac", "sha256": "00" * 32}})
        store.ingest([event])
        with pytest.raises(ClipError, match="is not the"):
            store.add_clip("gw1", event.id, clip.getvalue())
        with pytest.raises(ClipError, match="not gw2"):
            store.add_clip("gw2", event.id, clip.getvalue())
        assert store.clip(event.id) is None
    finally:
        store.close()


def test_a_dmr_call_is_recorded_where_the_decoder_hears_it_and_all_its_events_name_it(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    """4FSK at a steady level has no pauses for the noise floor to fall in: by level alone the floor rises
    to it within seconds and the transmission ends there. The decoder's bursts keep it going, so a
    position the caller sends at the end of a long call names the same transmission as its emergency."""
    unit, lat, lon = 2345678, 30.2095, 120.2107
    lc = layer2.group_call(unit, 9, emergency=True)
    bursts = encoder.voice_call(lc, slot=1, superframes=14, embedded=[lc.to_bytes()] * 13 + [
        layer2.gps_info_lc(lat, lon)])
    dmr = modem.to_audio(modem.frequency(encoder.repeater_stream(bursts), rate=RATE))
    hiss = np.random.default_rng(7).normal(0, 10 ** (-35 / 20), round(1.0 * RATE) + dmr.size + 2 * RATE)
    x = (hiss + np.concatenate([silence(1.0), dmr, silence(2.0)])).astype(np.float32)  # a receiver's hiss around it
    wav = write_wav(tmp_path / "dmr.wav", x)
    config = parse_config({
        "gateway": {"name": "gw-dmr", "outbox": str(tmp_path / "outbox.sqlite")},
        "mqtt": {"url": mosquitto.url},
        "channels": [{
            "name": "dmr-rpt",
            "drivers": [{"type": "audio", "device": f"wav:{wav}", "rate": RATE, "decoders": ["dmr"]}],
            "record": {},
        }],
    })
    listener = Listener(mosquitto.url, "pttbridge/v1/gw/#")
    gateway = Gateway(config)
    gateway.start()
    try:
        wait_until(lambda: all(d.snapshot()["state"] == "ended" for _, d in gateway.drivers), 20, "the recording")
        wait_until(lambda: len(listener.events()) == sum(gateway.appended.values()), 10, "every event published")
        events = listener.events()
        [call] = [e for e in events if e["kind"] == "call"]
        decoded = [(e["kind"], e["unit"], e["detail"].get("call")) for e in events if e["kind"] != "call"]
        assert decoded == [(k, f"dmr:{unit}", call["id"]) for k in ("alert", "ptt", "beacon")]
        assert call["unit"] == f"dmr:{unit}"
        assert abs(call["detail"]["duration_s"] - dmr.size / RATE) < 0.1  # the whole transmission, not a part
    finally:
        gateway.stop()
        listener.close()
