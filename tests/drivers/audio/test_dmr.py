"""The DMR decoder and encoder: the codes of annex B against the public decoders' tables, voice calls,
emergencies, CSBKs, data packets with LRRP and LIP at each rate of the audio driver, both slots, BS- and
MS-sourced, colour-code and slot filters, refusals with their reasons, noise through an FM receiver,
any split of the stream, garbage, and no DMR out of speech or analogue signalling (nor the reverse)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from support import feed_split

from drivers import registry
from drivers.audio import mdc1200
from drivers.audio.dmr import encoder, fec, layer2, location, modem
from drivers.audio.dmr.decoder import DmrDecoder
from drivers.audio.dmr.layer2 import DataType
from drivers.base import Output, Rejected
from gateway.events import Decoded, Kind

T0 = datetime(2026, 11, 26, 19, 30, tzinfo=UTC)


def only_decoded(outputs: list[Output]) -> list[Decoded]:
    assert not [o for o in outputs if isinstance(o, Rejected)]
    return [o for o in outputs if isinstance(o, Decoded)]


def decode(x: np.ndarray, rate: int = 48000, **options: object) -> list[Output]:
    d = DmrDecoder(rate, **options)  # type: ignore[arg-type]
    return d.feed(x.astype(np.float32), T0) + d.flush(T0 + timedelta(seconds=x.size / rate))


def events(x: np.ndarray, rate: int = 48000, **options: object) -> list[Decoded]:
    return [o for o in decode(x, rate, **options) if isinstance(o, Decoded)]


def summary(out: list[Decoded]) -> list[tuple[str, str | None, object, object]]:
    return [(str(e.kind), e.unit, e.detail.get("target_id"), e.detail.get("slot")) for e in out]


def repeater(bursts: list[encoder.Burst], rate: int = 48000) -> np.ndarray:
    return modem.modulate(encoder.repeater_stream(bursts), rate=rate, lead_s=0.1, tail_s=0.1)


# ------------------------------------------------------------------------------------------ codes


def test_golay_and_qr_words_are_those_of_the_public_decoders() -> None:
    # MMDVMHost Golay2087.cpp ENCODING_TABLE_2087[1], [3], [128], [255] (parity as data[1], data[2] >> 4)
    for value, entry in ((1, 0xB08E), (3, 0x501D), (128, 0xA03D), (255, 0xD0D6)):
        assert fec.value_of(fec.golay2087_encode(value)[8:]) == ((entry & 0xFF) << 4 | entry >> 12)
    # MMDVMHost QR1676.cpp ENCODING_TABLE_1676[1], [64], [127]: the whole 16-bit word
    for value, entry in ((1, 0x0273), (64, 0x804F), (127, 0xFE5B)):
        assert fec.value_of(fec.qr1676_encode(value)) == entry


@given(st.integers(0, 255), st.sets(st.integers(0, 19), max_size=3))
def test_golay_corrects_three_errors_and_refuses_more(value: int, flips: set[int]) -> None:
    soft = (1.0 - 2.0 * fec.golay2087_encode(value)).astype(np.float64)
    soft[list(flips)] *= -1
    assert fec.golay2087_decode(soft) == (value, len(flips))


@given(st.integers(0, 127), arrays(np.float64, 16, elements=st.floats(-2.0, 2.0)))
def test_qr_decode_is_soft_maximum_likelihood_within_two_errors(value: int, noise: np.ndarray) -> None:
    """The decoder rejects a word with no codeword within 2 bits before its soft search: the answer must
    still be that of the search over all 128 codewords, kept when it is within 2 bits."""
    soft = 1.0 - 2.0 * fec.qr1676_encode(value) + noise
    words = [1.0 - 2.0 * fec.qr1676_encode(v) for v in range(128)]
    best = int(np.argmax([w @ soft for w in words]))
    errors = int(np.count_nonzero((soft < 0) != (words[best] < 0)))
    assert fec.qr1676_decode(soft) == ((best, errors) if errors <= 2 else None)


@given(arrays(np.float64, st.tuples(st.integers(1, 3), st.integers(0, 30)),
              elements=st.one_of(st.floats(-4.0, 4.0), st.sampled_from([-2.0, 0.0, 2.0, np.nan, np.inf, -np.inf]))))
@example(np.array([[-5e-324, 5e-324, -0.0, -1e-323]]))  # a subnormal whose soft bit halves to -0.0 (found by it)
def test_hard_bits_of_symbols_are_those_of_their_soft_bits(levels: np.ndarray) -> None:
    assert np.array_equal(layer2.symbols_to_bits(levels), fec.hard(layer2.symbols_to_soft(levels)))


@given(st.binary(min_size=12, max_size=12), st.sets(st.integers(0, 195), max_size=2))
def test_bptc_corrects_scattered_errors(info: bytes, flips: set[int]) -> None:
    soft = (1.0 - 2.0 * fec.bptc196_encode(info)).astype(np.float64)
    soft[list(flips)] *= -1
    assert fec.bptc196_decode(soft)[0] == info


def test_bptc_refuses_what_it_cannot_correct() -> None:
    soft = (1.0 - 2.0 * fec.bptc196_encode(bytes(range(12)))).astype(np.float64)
    # Heavy damage: rows that no single-error correction repairs.
    soft[np.random.default_rng(1).choice(196, 40, replace=False)] *= -1
    with pytest.raises(fec.FecError, match="uncorrectable"):
        fec.bptc196_decode(soft)


@given(st.binary(min_size=9, max_size=9))
def test_full_lc_reed_solomon_and_masks(lc: bytes) -> None:
    block = fec.full_lc_encode(lc, fec.MASK_VOICE_LC_HEADER)
    assert fec.full_lc_check(block, fec.MASK_VOICE_LC_HEADER)
    assert not fec.full_lc_check(block, fec.MASK_TERMINATOR_LC)  # the mask says which burst it is
    assert fec.rs129_parity(bytes(9)) == bytes(3)


@given(st.binary(min_size=9, max_size=9), st.integers(0, 127))
def test_embedded_lc_round_trip_with_one_error(lc: bytes, flip: int) -> None:
    bits = fec.embedded_lc_encode(lc)
    bits[flip] ^= 1
    assert fec.embedded_lc_decode(bits)[0] == lc


def test_embedded_lc_checksum_is_checked() -> None:
    """Rows and parity all right, the checksum of another LC: refused, not guessed."""
    lc = layer2.group_call(1234, 5).to_bytes()
    m = np.zeros(128, np.uint8)
    m[fec._EMB_LC_POS] = fec.bytes_to_bits(lc)
    m[fec._EMB_CS_POS] = fec.bits_of((fec.checksum5(lc) + 1) % 31, 5)
    grid = m.reshape(8, 16)
    for r in range(7):
        grid[r] = fec.hamming_encode(grid[r, :11], fec.H16_11)
    grid[7] = grid[:7].sum(axis=0) & 1
    with pytest.raises(fec.FecError, match="checksum"):
        fec.embedded_lc_decode(grid.ravel()[fec.EMBEDDED_ORDER])


@given(st.binary(min_size=18, max_size=18))
@settings(max_examples=30)
def test_trellis_round_trip_in_noise(data: bytes) -> None:
    # Noise of every size short of a decision boundary (symbols are 2 apart): the soft decoder must give
    # back the data, whatever the data. Unbounded noise would make a test that fails by chance.
    symbols = fec.trellis_encode(data)
    noise = np.random.default_rng(len(data) + data[0]).normal(0, 0.5, symbols.size).clip(-0.95, 0.95)
    assert fec.trellis_decode(symbols + noise)[0] == data


def test_trellis_tables_are_those_of_the_public_decoders() -> None:
    # MMDVMHost DMRTrellis.cpp INTERLEAVE_TABLE (first and third groups) and ENCODE_TABLE rows 0 and 7
    assert fec.TRELLIS_INTERLEAVE[:6].tolist() == [0, 1, 8, 9, 16, 17]
    assert fec.TRELLIS_INTERLEAVE[50:54].tolist() == [4, 5, 12, 13]
    assert fec.TRELLIS_ENCODE[0] == (0, 8, 4, 12, 2, 10, 6, 14) and fec.TRELLIS_ENCODE[7] == (6, 14, 0, 8, 4, 12, 2, 10)


def test_crcs() -> None:
    csbk = layer2.preamble_csbk(123, 456, 3).to_bytes()
    assert fec.ccitt_ok(csbk, fec.MASK_CSBK) and not fec.ccitt_ok(csbk, fec.MASK_DATA_HEADER)
    blocks, pad = layer2.packet_blocks(b"hello, world", DataType.RATE_12_DATA)
    assembly = layer2.PacketAssembly(layer2.DataHeader(2, 4, 1, 2, len(blocks), pad=pad), DataType.RATE_12_DATA,
                                     blocks)
    assert assembly.payload() == b"hello, world"
    assembly.blocks[0] = b"j" + assembly.blocks[0][1:]
    with pytest.raises(fec.FecError, match="CRC-32"):
        assembly.payload()


# --------------------------------------------------------------------------------- voice calls


@pytest.mark.parametrize("rate", DmrDecoder.rates)
def test_voice_calls_on_both_slots_of_a_repeater_at_each_rate(rate: int) -> None:
    bursts = encoder.voice_call(layer2.group_call(2345678, 9), slot=1, color_code=3, superframes=1)
    bursts += encoder.voice_call(layer2.private_call(3120001, 3120999), slot=2, color_code=3, superframes=1)
    out = events(repeater(bursts, rate), rate)
    assert sorted(summary(out), key=str) == sorted([("ptt", "dmr:2345678", 9, 1), ("ptt", "dmr:3120001", 3120999, 2)],
                                                   key=str)
    group = next(e for e in out if e.unit == "dmr:2345678")
    assert group.detail["call_type"] == "group" and group.detail["color_code"] == 3
    assert group.detail["via"] == "voice_lc_header" and group.detail["emergency"] is False
    assert next(e for e in out if e.unit == "dmr:3120001").detail["call_type"] == "private"
    assert abs((group.time - T0).total_seconds() - group.detail["offset_s"]) < 0.002


def test_an_emergency_call_is_an_alert_then_its_ptt() -> None:
    out = events(repeater(encoder.voice_call(layer2.group_call(1001, 99, emergency=True), slot=2)))
    assert summary(out) == [("alert", "dmr:1001", 99, 2), ("ptt", "dmr:1001", 99, 2)]
    assert out[0].detail["service_options"] & 0x80


def test_late_entry_finds_the_caller_in_the_embedded_lc() -> None:
    """Tuned in after the header: the superframes' embedded LC still names the caller."""
    bursts = encoder.voice_call(layer2.group_call(777, 5), slot=1, headers=0, superframes=2)[:-1]  # no terminator
    out = events(repeater(bursts))
    assert summary(out) == [("ptt", "dmr:777", 5, 1)]
    assert out[0].detail["via"] == "embedded_lc"


def test_a_radio_on_direct_mode_ms_sourced_bursts() -> None:
    """A radio's own bursts (MS sync, 60 ms apart, carrier off between, noise there) carry no slot."""
    bursts = encoder.voice_call(layer2.private_call(4242, 4343, emergency=True), ms=True, superframes=2)
    symbols, on = encoder.mobile_bursts(bursts)
    freq = modem.frequency(symbols)
    carrier = np.repeat(on, modem.BASE_RATE // modem.SYMBOL_RATE)[: freq.size]
    x = modem.to_audio(modem.through_receiver(freq, 25, np.random.default_rng(4), carrier=carrier))
    out = events(x)
    assert summary(out) == [("alert", "dmr:4242", 4343, None), ("ptt", "dmr:4242", 4343, None)]
    assert out[1].detail["sync"] == "ms_data"


def test_gps_info_in_the_embedded_lc_is_a_beacon_of_the_caller() -> None:
    lc = layer2.group_call(5150, 10)
    bursts = encoder.voice_call(lc, superframes=2, embedded=[lc.to_bytes(), layer2.gps_info_lc(30.2095, 120.2107)])
    out = events(repeater(bursts))
    [beacon] = [e for e in out if e.kind == Kind.BEACON]
    assert beacon.unit == "dmr:5150" and beacon.position is not None
    assert abs(beacon.position.lat - 30.2095) < 1e-4 and abs(beacon.position.lon - 120.2107) < 1e-4


# ----------------------------------------------------------------------------------- data


@pytest.mark.parametrize("rate", [DataType.RATE_12_DATA, DataType.RATE_34_DATA, DataType.RATE_1_DATA])
@pytest.mark.parametrize("confirmed", [False, True])
def test_lrrp_location_in_data_blocks(rate: DataType, confirmed: bool) -> None:
    when = datetime(2026, 11, 26, 19, 29, 58, tzinfo=UTC)
    report = location.build_lrrp(30.2095, 120.2107, when=when, heading_deg=270)
    out = events(repeater(encoder.lrrp_packet(report, source=2300001, slot=2, rate=rate, confirmed=confirmed)))
    [beacon] = out
    assert beacon.kind == Kind.BEACON and beacon.unit == "dmr:2300001" and beacon.position is not None
    assert (round(beacon.position.lat, 5), round(beacon.position.lon, 5)) == (30.2095, 120.2107)
    assert beacon.position.fix_time == when and beacon.position.course_deg == 270
    assert beacon.position.source == "dmr-lrrp" and beacon.detail["lrrp"] == "triggered_location_data"
    assert beacon.detail["data"] == ("confirmed" if confirmed else "unconfirmed") and beacon.detail["slot"] == 2


def test_lip_emergency_is_an_alert_with_the_position() -> None:
    lip = location.build_lip_short(-33.8688, 151.2093, reason=location.LIP_REASON_EMERGENCY, speed_kmh=20,
                                   direction_deg=90)
    out = events(repeater(encoder.lip_packet(lip, source=1234, rate=DataType.RATE_34_DATA)))
    assert [(str(e.kind), e.unit) for e in out] == [("alert", "dmr:1234"), ("beacon", "dmr:1234")]
    pos = out[0].position
    assert pos is not None and abs(pos.lat + 33.8688) < 1e-4 and abs(pos.lon - 151.2093) < 1e-4
    assert pos.course_deg == 90 and pos.speed_mps is not None and abs(pos.speed_mps - 20 / 3.6) < 0.01


def test_text_message_and_csbk_are_status() -> None:
    text = "unit 7 at the gate".encode("utf-16-be")
    ip = location.build_udp_ip(text, src_ip="12.0.0.7", dst_ip="12.0.0.8", src_port=location.PORT_TEXT,
                               dst_port=location.PORT_TEXT)
    bursts = encoder.data_packet(ip, source=7, target=8)
    bursts.append(encoder.csbk_burst(layer2.Csbk(0x24, 0x10, bytes((0, 0, 0, 0, 8, 0, 0, 7)))))
    out = events(repeater(bursts))
    assert [(e.detail["name"], e.unit) for e in out] == [("text", "dmr:7"), ("radio_check", "dmr:7")]
    assert out[0].detail["text"] == "unit 7 at the gate" and out[1].detail["target_id"] == 8


def test_a_packet_whose_block_is_damaged_is_refused_not_guessed() -> None:
    report = location.build_lrrp(30.2, 120.2)
    bursts = encoder.lrrp_packet(report, source=99, rate=DataType.RATE_1_DATA)  # rate 1: no FEC to repair it
    last = bursts[-1].symbols.copy()
    last[10] = -last[10]
    bursts[-1] = encoder.Burst(1, last)
    out = decode(repeater(bursts))
    assert not [o for o in out if isinstance(o, Decoded)]
    [refused] = [o for o in out if isinstance(o, Rejected)]
    assert "CRC-32 fails" in refused.reason and refused.protocol == "dmr"


def test_an_lc_whose_reed_solomon_fails_is_refused_with_its_reason() -> None:
    lc = layer2.group_call(1234, 5).to_bytes()
    bad = fec.full_lc_encode(lc, fec.MASK_VOICE_LC_HEADER)
    bad = bad[:11] + bytes([bad[11] ^ 0x5A])  # a wrong parity octet: BPTC is fine, RS is not
    burst = encoder.data_burst(1, DataType.VOICE_LC_HEADER, fec.bptc196_encode(bad))
    out = decode(repeater([burst]))
    assert [type(o).__name__ for o in out] == ["Rejected"]
    assert "Reed-Solomon" in out[0].reason  # type: ignore[union-attr]


# --------------------------------------------------------------------------------- options


def test_colour_code_and_slot_filters() -> None:
    bursts = encoder.voice_call(layer2.group_call(11, 1), slot=1, color_code=1)
    bursts += encoder.voice_call(layer2.group_call(22, 2), slot=2, color_code=7)
    x = repeater(bursts)
    assert {e.unit for e in events(x)} == {"dmr:11", "dmr:22"}
    assert {e.unit for e in events(x, color_codes=7)} == {"dmr:22"}
    assert {e.unit for e in events(x, slots=[1])} == {"dmr:11"}
    assert {e.unit for e in events(-x, invert=True)} == {"dmr:11", "dmr:22"}
    assert events(-x) == []  # inverted audio is no DMR unless said so (a data sync inverted is a voice sync)


def heard(x: np.ndarray, rate: int = 48000, cuts: list[int] | None = None,
          **options: object) -> list[tuple[float, float]]:
    """Where the decoder says it heard DMR, in seconds from the start, fed in blocks cut at ``cuts``."""
    d = DmrDecoder(rate, **options)  # type: ignore[arg-type]
    out = []
    for a, b in itertools.pairwise([0, *sorted(set(cuts or [])), x.size]):
        d.feed(x[a:b].astype(np.float32), T0 + timedelta(seconds=a / rate))
        out += d.heard()
    d.flush(T0 + timedelta(seconds=x.size / rate))
    out += d.heard()
    assert d.heard() == []  # told once
    return [((h.start - T0).total_seconds(), (h.end - T0).total_seconds()) for h in out]


def test_the_bursts_it_hears_span_the_transmission_of_its_slots_and_colour_codes() -> None:
    """What the call recorder takes as the transmission: every burst of the channel's traffic."""
    bursts = encoder.voice_call(layer2.group_call(1001, 99, emergency=True), slot=2, superframes=3)
    symbols = encoder.repeater_stream(bursts, lead_slots=0, tail_slots=0)
    x = modem.modulate(symbols, lead_s=0.5, tail_s=0.5)
    slot2 = heard(x, slots=2)
    first_burst = 0.5 + 2 * layer2.CACH_SYMBOLS / modem.SYMBOL_RATE + layer2.SLOT_SYMBOLS / modem.SYMBOL_RATE
    assert slot2[0][0] == pytest.approx(first_burst - layer2.CACH_SYMBOLS / modem.SYMBOL_RATE, abs=0.001)
    assert len(slot2) == len(bursts)  # headers, 3 superframes and the terminator: each burst once
    assert all(b - a == pytest.approx(layer2.BURST_SYMBOLS / modem.SYMBOL_RATE, abs=0.001) for a, b in slot2)
    assert all(b2 - b1 == pytest.approx(0.06, abs=0.001) for (b1, _), (b2, _) in itertools.pairwise(slot2))
    both = heard(x)  # the repeater's idle bursts on slot 1 are its transmission too
    assert len(both) == len(symbols) // layer2.SLOT_SYMBOLS
    assert heard(x, color_codes=5) == []  # another system's transmission
    rng = np.random.default_rng(5)
    assert heard(modem.to_audio(modem.through_receiver(np.zeros(48000 * 5), -5, rng))) == []


def test_registry_and_options() -> None:
    d = registry.create_audio_decoder("dmr", None, {"color_codes": [1, 2], "slots": 2})
    assert isinstance(d, DmrDecoder) and d.rate == 48000 and d.color_codes == {1, 2} and d.slots == {2}
    with pytest.raises(ValueError, match="color_codes"):
        registry.create_audio_decoder("dmr", None, {"color_codes": 16})
    with pytest.raises(ValueError, match="slots"):
        registry.create_audio_decoder("dmr", None, {"slots": [3]})
    with pytest.raises(ValueError, match="takes no option"):
        registry.create_audio_decoder("dmr", None, {"colour": 1})


# ------------------------------------------------------------------------------ robustness


def test_noise_through_an_fm_receiver() -> None:
    rng = np.random.default_rng(18)
    sent = [(int(s), int(t)) for s, t in rng.integers(1, 16_000_000, (6, 2))]
    bursts = [b for i, (s, t) in enumerate(sent) for b in encoder.voice_call(layer2.group_call(s, t), slot=1 + i % 2)]
    freq = modem.frequency(encoder.repeater_stream(bursts))
    x = modem.to_audio(modem.through_receiver(freq, 10, rng))  # C/N 10 dB in 12.5 kHz
    got = {(int(e.detail["source_id"]), int(e.detail["target_id"])) for e in events(x) if e.kind == Kind.PTT}
    assert got == set(sent)  # bench/dmr_bench.py sweeps C/N with 40 calls a row


_SPLIT = repeater(encoder.voice_call(layer2.group_call(31, 32, emergency=True), slot=2, superframes=1)
                  + encoder.lrrp_packet(location.build_lrrp(1.0, 2.0), source=33, slot=1), 16000)
_SPLIT_WHOLE = only_decoded(decode(_SPLIT, 16000))


@given(st.lists(st.integers(0, _SPLIT.size), max_size=12))
@settings(max_examples=25, deadline=None)
def test_any_split_of_the_stream_gives_the_same_events(cuts: list[int]) -> None:
    assert len(_SPLIT_WHOLE) == 3
    got = only_decoded(feed_split(DmrDecoder(16000), _SPLIT.astype(np.float32), cuts, T0))
    # A block's start at 16 kHz is a whole number of microseconds only by rounding (datetime's grain), so
    # an event's time may move by that rounding; everything else must be the same.
    assert [dataclasses.replace(e, time=T0) for e in got] == [dataclasses.replace(e, time=T0) for e in _SPLIT_WHOLE]
    assert all(abs((a.time - b.time).total_seconds()) <= 2e-6 for a, b in zip(got, _SPLIT_WHOLE, strict=True))


_SPLIT_HEARD = heard(_SPLIT, 16000)


@given(st.lists(st.integers(0, _SPLIT.size), max_size=12))
@settings(max_examples=15, deadline=None)
def test_any_split_of_the_stream_hears_the_same_bursts(cuts: list[int]) -> None:
    assert len(_SPLIT_HEARD) > 20
    np.testing.assert_allclose(heard(_SPLIT, 16000, cuts), _SPLIT_HEARD, atol=2e-6)  # datetimes: microseconds


@given(arrays(np.float32, st.integers(0, 4000), elements=st.floats(width=32)))
@settings(max_examples=40, deadline=None)
def test_garbage_audio_never_raises_nor_decodes(x: np.ndarray) -> None:
    assert [o for o in decode(x, 8000) if isinstance(o, Decoded)] == []


@given(st.binary(max_size=80))
def test_location_parsers_refuse_garbage_with_a_reason(data: bytes) -> None:
    for parse in (location.parse_udp_ip, location.parse_lip, location.parse_lrrp):
        try:
            parse(data)
        except location.LocationError as exc:
            assert str(exc).strip(), f"{parse.__name__} refused {data.hex()} without saying why"


def test_no_dmr_from_noise_or_mdc1200_and_no_mdc1200_from_dmr() -> None:
    rng = np.random.default_rng(5)
    noise = modem.to_audio(modem.through_receiver(np.zeros(48000 * 5), -5, rng))
    mdc = np.concatenate([mdc1200.encode(mdc1200.emergency(0x1200 + i), rate=48000, lead_s=0.1) for i in range(5)])
    assert events(noise) == [] and events(mdc) == []
    dmr = repeater(encoder.voice_call(layer2.group_call(1, 2), superframes=3))
    d = mdc1200.Mdc1200Decoder(48000)
    assert [o for o in d.feed(dmr, T0) + d.flush(T0) if isinstance(o, Decoded)] == []
