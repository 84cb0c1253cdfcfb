"""FleetSync I / II audio: codes against the public bit-exact vectors, every message type through the
encoder and the decoder at 1200 and 2400 baud and every supported rate, white noise down to the
stated SNR, mistuned transmitters, any split of the audio, and noise and garbage that decode nothing."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers import registry
from drivers.audio import fleetsync as fs
from drivers.audio.fleetsync import FleetSyncDecoder, FleetSyncMessage, GpsFix
from drivers.base import Output
from gateway.events import Decoded, Event, Kind, decode_event, encode_event

START = datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)
VECTORS = json.loads((Path(__file__).parents[2] / "data" / "fleetsync" / "vectors.json").read_text())
RATES = (8000, 22050, 44100, 48000)
FIX = GpsFix(30.2095, 120.2107, speed_kph=12.5, course_deg=270.0, time=(19, 29, 58), date=(2026, 11, 26))

# Every message type, and what the decoder must make of it: kind, unit, name, and details to check.
PATROL: list[tuple[FleetSyncMessage, Kind, str | None, str, dict[str, object]]] = [
    (fs.ani(100, 1001), Kind.PTT, "fleetsync:100-1001", "ani", {"eot": False}),
    (fs.ani(100, 1001, eot=True), Kind.PTT, "fleetsync:100-1001", "ani", {"eot": True}),
    (fs.status_message(107, 1772, 23), Kind.STATUS, "fleetsync:107-1772", "status", {"status": 23}),
    (fs.status_message(107, 1772, 99), Kind.ALERT, "fleetsync:107-1772", "status", {"status": 99}),
    (fs.emergency(120, 2000), Kind.ALERT, "fleetsync:120-2000", "emergency", {"lone_worker": False}),
    (fs.emergency(120, 2000, lone_worker=True), Kind.ALERT, "fleetsync:120-2000", "lone_worker_emergency", {}),
    (fs.paging(100, 1001, 354, 5094), Kind.STATUS, "fleetsync:100-1001", "paging", {"to_fleet": 354, "to_unit": 5094}),
    (fs.emergency_ack(120, 2000), Kind.STATUS, None, "acknowledge", {"to_fleet": 120, "to_unit": 2000}),
    (fs.gps_report(100, 1001, FIX), Kind.BEACON, "fleetsync:100-1001", "gps", {"blocks": 8}),
    (FleetSyncMessage(0x12, 0x08, 200, 3000), Kind.STATUS, "fleetsync:200-3000", "unknown", {"cmd": 0x08, "sub": 0x12}),
]


def decode(samples: np.ndarray, rate: int, blocks: Sequence[int] | None = None, **options: object) -> list[Output]:
    decoder = FleetSyncDecoder(rate, **options)  # type: ignore[arg-type]
    out: list[Output] = []
    sizes = list(blocks) if blocks else [samples.size or 1]
    pos = k = 0
    while pos < samples.size:
        n = sizes[k % len(sizes)]
        out += decoder.feed(samples[pos : pos + n], START + timedelta(seconds=pos / rate))
        pos, k = pos + n, k + 1
    return out + decoder.flush(START + timedelta(seconds=samples.size / rate))


def events(out: list[Output]) -> list[Decoded]:
    assert all(isinstance(o, Decoded) for o in out)
    return [o for o in out if isinstance(o, Decoded)]


def with_noise(x: np.ndarray, rate: int, snr_db: float, seed: int) -> np.ndarray:
    """White noise at ``snr_db`` below the burst (amplitude 0.5) in a 4 kHz band, whatever the rate."""
    noise_var = 0.5**2 / 2 / 10 ** (snr_db / 10) * (rate / 2) / 4000
    return (x + np.random.default_rng(seed).normal(0, np.sqrt(noise_var), x.size)).astype(np.float32)


# --- codes against the public vectors ----------------------------------------------------------------


def test_crc15_agrees_with_sdrtrunk_syndrome_table() -> None:
    table = [int(v, 16) for v in VECTORS["crc15_syndromes"]["values"]]
    for bit, expected in enumerate(table):
        assert fs.crc15(1 << (47 - bit)) ^ VECTORS["crc15_syndromes"]["initial_fill"] == expected
    assert fs.crc15(0) == 1  # the initial fill


def test_blocks_carry_crc_and_even_parity() -> None:
    word = fs.block_word(bytes.fromhex("fe80010020 00".replace(" ", "")))
    assert bin(word).count("1") % 2 == 0
    assert fs.block_ok(word)
    for bit in range(64):  # any single error is caught
        assert not fs.block_ok(word ^ (1 << bit))


def test_bch_tables_are_kaufmans_and_correct_every_single_error() -> None:
    vec = VECTORS["bch_15_7"]
    assert [f"{c:04X}" for c in fs.BCH_CHECKS] == vec["parity_checks"]
    syndromes = [int(s, 16) for s in vec["single_error_syndromes_bit14_down"]]
    assert [fs._syndrome(1 << (14 - i)) for i in range(15)] == syndromes
    for nibble in range(16):
        bits = np.array(fs.fs2_encode_block(int("0123456789abcdef", 16)), np.uint8)
        assert fs.fs2_decode_block(bits) == 0x0123456789ABCDEF
        one = bits.copy()
        one[nibble * 16 + 3] ^= 1  # one error in each code word is repaired
        assert fs.fs2_decode_block(one) == 0x0123456789ABCDEF


def test_burst_starts_with_the_published_sync_window() -> None:
    bits = fs.message_bits(fs.ani(100, 1001))
    window = int("".join(map(str, bits[24 - 16 : 24 + 16])), 2)
    assert f"{window:08X}" == VECTORS["sync"]["window"]
    # fleet 100 -> 1, unit 1001 -> 2 (the +99 / +999 offsets), ANI type 0x80, no flags set (0xFE).
    assert fs.data_blocks(fs.ani(100, 1001)) == [bytes.fromhex("fe8001002000")]


# --- round trips -------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize(("version", "baud"), [(1, 1200), (1, 2400), (2, 1200), (2, 2400)])
def test_every_message_type_round_trips(rate: int, version: int, baud: int) -> None:
    audio = fs.encode([m for m, *_ in PATROL], rate, version, baud=baud)
    found = events(decode(audio, rate))
    assert [(e.kind, e.unit, e.detail["name"]) for e in found] == [(k, u, n) for _, k, u, n, _ in PATROL]
    for event, (message, _, _, _, expected) in zip(found, PATROL, strict=True):
        d = event.detail
        assert (d["protocol"], d["version"], d["baud"]) == ("fleetsync", version, baud)
        assert (d["fleet"], d["unit_id"], d["cmd"]) == (message.fleet, message.unit, message.byte1 & 0xFE)
        assert d["raw"] == "".join(f"{fs.block_word(b):016x}" for b in fs.data_blocks(message))
        assert {k: d[k] for k in expected} == expected
        # Plain arithmetic: pytest.approx (8.4.2 here) finds no datetime within a timedelta tolerance.
        assert abs(event.time - (START + timedelta(seconds=d["offset_s"]))) <= timedelta(milliseconds=1)
    beacon = found[8]
    assert beacon.position is not None
    assert (beacon.position.lat, beacon.position.lon) == pytest.approx((30.2095, 120.2107), abs=3e-4)
    assert beacon.position.course_deg == 270.0
    assert beacon.position.speed_mps == pytest.approx(12.5 / 3.6, abs=0.01)
    assert beacon.detail["gps_time"] == [19, 29, 58]
    assert beacon.detail["gps_date"] == [2026, 11, 26]


def test_options_change_hemisphere_and_emergency_statuses() -> None:
    audio = fs.encode([fs.gps_report(100, 1001, FIX), fs.status_message(100, 1001, 23)], 22050)
    found = events(decode(audio, 22050, gps_hemisphere="SW", emergency_status=[23]))
    assert found[0].position is not None and found[0].position.lat < 0 and found[0].position.lon < 0
    assert found[1].kind is Kind.ALERT
    with pytest.raises(ValueError, match="gps_hemisphere"):
        FleetSyncDecoder(22050, gps_hemisphere="up")
    with pytest.raises(ValueError, match="not 12345"):
        FleetSyncDecoder(12345)
    assert isinstance(registry.create_audio_decoder("fleetsync", 8000), FleetSyncDecoder)


def test_encoder_refuses_what_the_air_format_cannot_carry() -> None:
    with pytest.raises(ValueError, match="fleet must be"):
        fs.ani(99, 1001)
    with pytest.raises(ValueError, match="unit must be"):
        fs.ani(100, 5095)
    with pytest.raises(ValueError, match="status must be"):
        fs.status_message(100, 1001, 9)
    with pytest.raises(ValueError, match="version"):
        fs.encode(fs.ani(100, 1001), 8000, 3)
    with pytest.raises(ValueError, match="baud"):
        fs.encode(fs.ani(100, 1001), 8000, baud=4800)


# --- weak and mistuned signals -----------------------------------------------------------------------

UNITS = [fs.ani(100 + k, 1001 + 7 * k) for k in range(20)]
UNIT_IDS = [f"fleetsync:{100 + k:03d}-{1001 + 7 * k:04d}" for k in range(20)]


@pytest.mark.parametrize(
    ("version", "baud", "snr_db"),
    # The reliable limits (SNR in a 4 kHz band, at 8000 Hz): at least 19 of 20 bursts at these, in order,
    # and never a unit that was not sent (bench/signalling_bench.py counts 100 bursts a row).
    [(1, 1200, 3.0), (2, 1200, 3.0), (1, 2400, 12.0), (2, 2400, 9.0)],
)
def test_white_noise_down_to_the_reliable_snr(version: int, baud: int, snr_db: float) -> None:
    rate = 8000
    audio = with_noise(fs.encode(UNITS, rate, version, baud=baud, gap_s=0.15), rate, snr_db, seed=baud + version)
    found = [e.unit for e in events(decode(audio, rate))]
    assert found == [u for u in UNIT_IDS if u in found] and len(found) >= 19


@pytest.mark.parametrize("rate", [8000, 22050])
@pytest.mark.parametrize(
    ("version", "baud", "snr_db"),
    # What a coherent demodulator should reach: FleetSync I (no FEC) at 3 dB, Eb/N0 about 8 dB, and
    # FleetSync II (BCH) at 2400 baud at 6 dB, the same Eb/N0. Seeds fixed; at least 19 of 20 bursts.
    [(1, 1200, 3.0), (2, 2400, 6.0)],
)
def test_coherent_sensitivity(rate: int, version: int, baud: int, snr_db: float) -> None:
    audio = with_noise(fs.encode(UNITS, rate, version, baud=baud, gap_s=0.15), rate, snr_db, seed=baud + version)
    units = [e.unit for e in events(decode(audio, rate))]
    assert set(units) <= set(UNIT_IDS)  # never a wrong unit
    assert len(units) == len(set(units)) >= 19


@pytest.mark.parametrize(("freq_error", "baud_error"), [(0.02, 0.01), (-0.02, -0.01), (0.02, -0.01), (-0.02, 0.01)])
@pytest.mark.parametrize(("version", "baud"), [(1, 1200), (2, 2400)])
def test_mistuned_tones_and_clock(freq_error: float, baud_error: float, version: int, baud: int) -> None:
    rate = 22050
    messages = [fs.gps_report(100, 1001, FIX), *UNITS[:4]]  # the 8-block GPS report is the longest
    audio = fs.encode(messages, rate, version, baud=baud, freq_error=freq_error, baud_error=baud_error)
    found = events(decode(with_noise(audio, rate, 15, seed=3), rate))
    assert [e.unit for e in found] == ["fleetsync:100-1001", *UNIT_IDS[:4]]
    assert found[0].kind is Kind.BEACON


# --- any split ---------------------------------------------------------------------------------------


def summary(out: list[Output]) -> list[tuple[object, ...]]:
    return [(e.detail["raw"], e.kind, e.detail["offset_s"], e.detail["demodulator"]) for e in events(out)]


@pytest.fixture(scope="module")
def mixed_audio() -> np.ndarray:
    rate = 8000
    parts = [
        fs.encode(PATROL[0][0], rate, 1, baud=1200),
        fs.encode([PATROL[3][0], PATROL[6][0]], rate, 2, baud=2400),
        fs.encode(PATROL[8][0], rate, 1, baud=2400),
    ]
    return with_noise(np.concatenate(parts), rate, 12, seed=5)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sizes=st.lists(st.integers(1, 3000), min_size=1, max_size=40),
    gather=st.booleans(),
)
def test_any_split_gives_the_same_messages(
    mixed_audio: np.ndarray, monkeypatch: pytest.MonkeyPatch, sizes: list[int], gather: bool
) -> None:
    whole = decode(mixed_audio, 8000)
    assert [e.detail["name"] for e in events(whole)] == ["ani", "status", "paging", "gps"]
    with monkeypatch.context() as m:
        if not gather:  # demodulate every block as it comes, so the splits reach every stage
            m.setattr(fs, "CHUNK_SECONDS", 0)
        assert summary(decode(mixed_audio, 8000, sizes)) == summary(whole)


# --- nothing from noise and garbage ------------------------------------------------------------------


def test_noise_and_tones_decode_nothing() -> None:
    rng = np.random.default_rng(11)
    rate = 8000
    t = np.arange(rate * 2) / rate
    audio = np.concatenate(
        [
            rng.normal(0, 0.3, rate * 60),  # a minute of white noise
            np.clip(rng.normal(0, 3, rate * 5), -1, 1),  # clipped noise
            0.5 * np.sin(2 * np.pi * 1200 * t),  # steady tones, and the two dotting patterns
            0.5 * np.sin(2 * np.pi * 1800 * t),
            fs.encode(FleetSyncMessage(0, 0, None, None), rate)[:400],  # a burst cut in its sync
            rng.uniform(-1, 1, rate),
        ]
    ).astype(np.float32)
    assert decode(audio, rate) == []


def test_garbage_never_raises() -> None:
    decoder = FleetSyncDecoder(8000)
    blocks = [np.zeros(0), np.full(500, np.nan), np.array([np.inf, -np.inf, 1e30, -1e30]), np.full(3000, 1.0)]
    out: list[Output] = []
    for k, block in enumerate(blocks * 3):
        out += decoder.feed(block.astype(np.float32), START + timedelta(seconds=k))
    out += decoder.flush(START)
    audio = fs.encode(fs.ani(100, 1001), 8000)  # and it still decodes afterwards
    out += decoder.feed(audio, START) + decoder.flush(START)
    assert [o.unit for o in events(out)] == ["fleetsync:100-1001"]


# --- found by bench/fuzz -------------------------------------------------------------------------


@pytest.mark.parametrize("heading", [3601, 4094, 6810, 8191])
def test_a_gps_heading_past_360_degrees_is_no_course(heading: int) -> None:
    # 13 bits of tenths reach 819.1 degrees; a course_deg past 360 made Event.stamp refuse the beacon.
    blocks = [bytearray(b) for b in fs.data_blocks(fs.gps_report(100, 1001, FIX))]
    fs._put(blocks[5], 12, 13, heading)
    fix = fs._read_gps([bytes(b) for b in blocks], "NE")
    assert fix is not None and fix.course_deg is None and fix.lat == pytest.approx(FIX.lat, abs=1e-4)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(min_size=6, max_size=6), min_size=1, max_size=9), st.sampled_from(["NE", "NW", "SE", "SW"]))
def test_any_blocks_that_pass_the_crc_give_an_event_the_wire_takes(blocks: list[bytes], hemisphere: str) -> None:
    decoder = FleetSyncDecoder(8000, gps_hemisphere=hemisphere)
    words = tuple(fs.block_word(b) for b in blocks)
    decoded = decoder._event(fs._Message(0.0, 960.0, 1200, 1, words, "A"), START)
    event = Event.stamp(decoded, seq=1, gateway="gw", channel="ch")
    assert decode_event(encode_event(event)) == event
