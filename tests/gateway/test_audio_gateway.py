"""Audio radios in the gateway: a recording (replayed in real time as a sound card would deliver it)
through the audio driver, the DTMF and 5-tone decoders and the channel's rules, to a real Mosquitto."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support import Listener, Mosquitto, PulseNullSink, read_recording, recording, wait_until

from config.schema import parse_config
from gateway.runner import Gateway


@pytest.mark.parametrize("decode_workers", [0, 2])
def test_dtmf_emergency_and_5tone_id_from_audio_reach_the_broker(
    tmp_path: Path, mosquitto: Mosquitto, decode_workers: int
) -> None:
    """The same with the decoders in the driver's thread and in worker processes (``decode_workers``)."""
    wav = recording(tmp_path / "patrol-2.wav")
    listener = Listener(mosquitto.url, "pttbridge/v1/gw/+/event/#")
    config = parse_config({
        "gateway": {"name": "gw-audio", "outbox": str(tmp_path / "outbox.sqlite"), "decode_workers": decode_workers},
        "mqtt": {"url": mosquitto.url},
        "channels": [{
            "name": "patrol-2",
            "drivers": [{"type": "audio", "device": f"wav:{wav}", "rate": 16000, "decoders": ["dtmf", "selcall"],
                         "options": {"selcall": {"standard": "ZVEI1"}}}],
            "rules": [{"match": {"digits": r"\*911\*(\d{4})#"}, "kind": "alert", "unit": "dtmf:{1}",
                       "label": "DTMF emergency code"}],
        }],
    })
    gateway = Gateway(config)
    gateway.start()
    peaks: list[float] = []

    def heard_two() -> bool:  # and meanwhile, what the technician's level meter shows
        level = gateway.drivers[0][1].snapshot()["radios"]["patrol-2/audio"]["level"]
        peaks.append(level["peak_dbfs"] if level else -120.0)
        return len(listener.events()) >= 2

    try:
        wait_until(heard_two, 20, "two events from the recording")
        events = listener.events()
        assert [(e["kind"], e["unit"]) for e in events] == [("alert", "dtmf:1234"), ("ptt", "zvei1:12345")]
        assert events[0]["detail"]["rule"] == "DTMF emergency code"
        assert events[0]["detail"]["digits"] == "*911*1234#"
        wait_until(lambda: gateway.drivers[0][1].snapshot()["state"] == "ended", 10, "the recording to end")
        radio = gateway.drivers[0][1].snapshot()["radios"]["patrol-2/audio"]
        assert radio["decoded"] == 2 and radio["rejected"] == 0
        workers = gateway.health().get("decode_workers", [])
        assert [w["starts"] for w in workers] == [1, 0][:decode_workers]  # one radio: one of two workers started
        assert -12 < max(peaks) < -3  # two tones at 0.2 each: about -8 dBFS peak
    finally:
        gateway.stop()
        listener.close()


def test_live_audio_from_a_sound_device_is_decoded_and_published(
    tmp_path: Path, mosquitto: Mosquitto, pulse_null_sink: PulseNullSink
) -> None:
    """The live path for real: audio played into a PulseAudio null sink, captured from its monitor through
    PortAudio by the running gateway, decoded, published to Mosquitto."""
    samples, rate = read_recording(recording(tmp_path / "radio.wav"))
    listener = Listener(mosquitto.url, "pttbridge/v1/gw/+/event/#")
    config = parse_config({
        "gateway": {"name": "gw-live", "outbox": str(tmp_path / "outbox.sqlite")},
        "mqtt": {"url": mosquitto.url},
        "channels": [{
            "name": "patrol-3",
            "drivers": [{"type": "audio", "device": pulse_null_sink.device, "rate": 48000,
                         "decoders": ["dtmf", "selcall"], "options": {"selcall": {"standard": "ZVEI1"}}}],
            "rules": [{"match": {"digits": r"\*911\*(\d{4})#"}, "kind": "alert", "unit": "dtmf:{1}"}],
        }],
    })
    gateway = Gateway(config)
    gateway.start()
    try:
        wait_until(lambda: gateway.drivers[0][1].snapshot()["state"] == "open", 10, "the device to open")
        pulse_null_sink.play(samples, rate)
        wait_until(lambda: len(listener.events()) >= 2, 20, "the two events heard live")
        assert [(e["kind"], e["unit"]) for e in listener.events()] == [("alert", "dtmf:1234"), ("ptt", "zvei1:12345")]
    finally:
        gateway.stop()
        listener.close()


@pytest.mark.parametrize("radios", [8, 9])
def test_decode_workers_auto_gives_a_gateway_of_many_radios_a_worker_per_core(
    tmp_path: Path, mosquitto: Mosquitto, radios: int
) -> None:
    """Left at its default (auto), decode_workers keeps up to 8 radios' decoders in the drivers' threads and
    gives more radios a worker process per core, each started by the audio of the radios dealt to it."""
    wavs = [recording(tmp_path / f"patrol-{i}.wav") for i in range(radios)]  # a sound card each
    config = parse_config({
        "gateway": {"name": "gw-many", "outbox": str(tmp_path / "outbox.sqlite")},
        "mqtt": {"url": mosquitto.url},
        "channels": [{"name": f"patrol-{i}", "drivers": [{"type": "audio", "device": f"wav:{wav}", "rate": 16000,
                                                         "decoders": ["dtmf"]}]} for i, wav in enumerate(wavs)],
    })
    gateway = Gateway(config)
    gateway.start()
    try:
        expected = 0 if radios <= 8 else min(os.cpu_count() or 1, radios)
        assert len(gateway.health().get("decode_workers", [])) == expected
        wait_until(lambda: all(w["starts"] == 1 for w in gateway.health().get("decode_workers", [])), 20,
                   "every worker started by its radios' audio")
        wait_until(lambda: all(d.snapshot()["state"] == "ended" for _, d in gateway.drivers), 20, "the recordings")
        assert [d.snapshot()["radios"][f"patrol-{i}/audio"]["decoded"] for i, (_, d) in enumerate(gateway.drivers)] \
            == [1] * radios  # the DTMF emergency code of each recording
    finally:
        gateway.stop()
