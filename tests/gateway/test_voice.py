"""The voice wire format (gateway/voice.py): frames, Opus packets, sequence tracking, the codec through
PyAV's libopus, and the lease and floor bodies. Garbage gives VoiceError and nothing else; what is
encoded parses back exactly; DTMF survives the codec well enough for this project's DTMF decoder."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.audio.dtmf import DtmfDecoder, dtmf_tones
from drivers.audio.source import Resampler
from gateway.events import Decoded, Kind
from gateway.voice import (
    FRAME_SAMPLES,
    HEADER_BYTES,
    MAGIC,
    NO_FLAGS,
    RATE,
    Flag,
    FloorAnswer,
    FloorRequest,
    FramePacker,
    ListenLease,
    OpusDecoder,
    OpusEncoder,
    PatchCommand,
    RemoteMonitor,
    StreamTracker,
    Talker,
    VoiceError,
    VoiceFrame,
    VoiceState,
    check_opus,
    opus_samples,
    parse_frame,
    parse_voice_topic,
    seq_delta,
    voice_topic,
)

u32 = st.integers(0, 2**32 - 1)
units = st.sampled_from([None, "mdc:1234", "fleetsync:100-1001", "aprs:BG5ABC-9", "dmr:" + "9" * 60])


def tone(freq: float, seconds: float, rate: int = RATE, level: float = 0.3) -> np.ndarray:
    return (level * np.sin(2 * np.pi * freq * np.arange(round(seconds * rate)) / rate)).astype(np.float32)


@pytest.fixture(scope="module")
def packets() -> list[bytes]:
    """Real Opus packets of a second of speech-band tones, from the encoder."""
    enc = OpusEncoder()
    x = tone(440, 1.0) + tone(1200, 1.0, level=0.1)
    return [enc.encode(x[i:i + FRAME_SAMPLES]) for i in range(0, len(x), FRAME_SAMPLES)]


# --- frames ----------------------------------------------------------------------------------------


def test_a_frame_on_the_wire_has_the_drawn_header(packets: list[bytes]) -> None:
    frame = VoiceFrame(stream=0x01020304, seq=5, timestamp=4800, opus=packets[0], flags=Flag.START, unit="mdc:1234")
    data = frame.encode()
    assert data[:2] == MAGIC and data[2] == 1 and data[3] == 0x01 and data[4] == len("mdc:1234")
    assert data[5:9] == bytes([1, 2, 3, 4]) and int.from_bytes(data[9:13], "big") == 5
    assert int.from_bytes(data[13:17], "big") == 4800 and HEADER_BYTES == 17
    assert data[17:25] == b"mdc:1234" and data[25:] == packets[0]
    assert parse_frame(data) == frame and frame.start and not frame.end and frame.samples == FRAME_SAMPLES


@settings(max_examples=300)
@given(stream=u32, seq=u32, timestamp=u32, unit=units,
       flags=st.sampled_from([NO_FLAGS, Flag.START, Flag.END, Flag.START | Flag.END]), which=st.integers(0, 49))
def test_frames_round_trip_exactly(packets: list[bytes], stream: int, seq: int, timestamp: int, flags: Flag,
                                   unit: str | None, which: int) -> None:
    frame = VoiceFrame(stream, seq, timestamp, packets[which], flags, unit)
    assert parse_frame(frame.encode()) == frame


@settings(max_examples=1000)
@given(st.binary(max_size=200))
def test_garbage_is_refused_with_voice_error_only(data: bytes) -> None:
    try:
        parse_frame(data)
    except VoiceError:
        pass


@settings(max_examples=1000)
@given(head=st.binary(min_size=HEADER_BYTES - 2, max_size=HEADER_BYTES - 2), tail=st.binary(max_size=120))
def test_a_good_magic_in_front_of_garbage_is_still_refused_with_voice_error_only(head: bytes, tail: bytes) -> None:
    data = MAGIC + bytes([1, head[1] & 0x03, head[2] % 20]) + head[3:] + tail
    try:
        frame = parse_frame(data)
    except VoiceError:
        return
    assert frame.encode() == data  # what is taken is exactly what was sent


@settings(max_examples=300)
@given(st.integers(0, 49), st.data())
def test_one_flipped_byte_is_refused_or_read_as_a_frame_that_encodes_to_it(packets: list[bytes], which: int,
                                                                          data: st.DataObject) -> None:
    wire = bytearray(VoiceFrame(7, 8, 9, packets[which], Flag.START, "mdc:1234").encode())
    at = data.draw(st.integers(0, len(wire) - 1))
    wire[at] ^= data.draw(st.integers(1, 255))
    try:
        frame = parse_frame(bytes(wire))
    except VoiceError:
        return
    assert frame.encode() == bytes(wire)


@pytest.mark.parametrize(("data", "why"), [
    (b"", "not a voice frame: 0 bytes"),
    (b'{"console": "desk-1"}' + b" " * 10, "not a voice frame: starts 7b 22"),
    (MAGIC + bytes([2, 0, 0]) + bytes(12) + b"\x78", "version 2"),
    (MAGIC + bytes([1, 0x80, 0]) + bytes(12) + b"\x78", "reserved bits"),
    (MAGIC + bytes([1, 0, 65]) + bytes(12) + b"\x78", "unit of 65 bytes"),
    (MAGIC + bytes([1, 0, 8]) + bytes(12) + b"mdc:1234", "cut short"),
    (MAGIC + bytes([1, 0, 4]) + bytes(12) + b"x y!\x78", "voice frame unit"),
    (MAGIC + bytes([1, 0, 0]) + bytes(12) + b"\x7c", "stereo"),
    (MAGIC + bytes([1, 0, 0]) + bytes(12) + b"\x79\x01", "code 1"),
    (MAGIC + bytes([1, 0, 0]) + bytes(12) + b"\x03", "not Opus"),
    (MAGIC + bytes([1, 0, 0]) + bytes(12) + bytes([0x80]), "2.5 ms"),
    (MAGIC + bytes([1, 0, 0]) + bytes(12) + bytes([0x78]) + bytes(1600), "over"),
])
def test_bad_frames_are_refused_with_the_reason_and_their_bytes(data: bytes, why: str) -> None:
    with pytest.raises(VoiceError) as err:
        parse_frame(data)
    assert why in str(err.value)
    if data:
        assert data[:4].hex(" ") in str(err.value) or "unit" in str(err.value)


def test_encoding_refuses_what_parsing_would(packets: list[bytes]) -> None:
    with pytest.raises(VoiceError, match="seq"):
        VoiceFrame(1, 2**32, 0, packets[0]).encode()
    with pytest.raises(VoiceError, match="unit"):
        VoiceFrame(1, 2, 0, packets[0], unit="no unit").encode()
    with pytest.raises(VoiceError, match="not Opus"):
        VoiceFrame(1, 2, 0, b"").encode()


# --- Opus packets (RFC 6716 section 3) --------------------------------------------------------------


def test_opus_packet_framing_by_the_rfc() -> None:
    assert opus_samples(bytes([0x78]) + bytes(40)) == 960  # code 0: one 20 ms SILK WB frame
    assert opus_samples(bytes([0x78])) == 960  # a frame of 0 bytes: lost or DTX, concealed
    assert opus_samples(bytes([0x79]) + bytes(40)) == 1920  # code 1: two equal frames
    assert opus_samples(bytes([0x7A, 10]) + bytes(30)) == 1920  # code 2: 10 bytes then 20
    assert opus_samples(bytes([0x7A, 252, 1]) + bytes(256)) == 1920  # a two-byte length: 4 * 1 + 252
    assert opus_samples(bytes([0x7B, 0x03]) + bytes(30)) == 2880  # code 3, CBR, three frames
    assert opus_samples(bytes([0x7B, 0x83, 5, 6]) + bytes(20)) == 2880  # code 3, VBR
    assert opus_samples(bytes([0x7B, 0x42, 255, 1]) + bytes(255 + 20)) == 1920  # padding 254 + 1
    assert opus_samples(bytes([0x83, 0x08]) + bytes(16)) == 960  # code 3: eight 2.5 ms CELT frames
    for bad in (b"", bytes([0x7B]), bytes([0x7B, 0x00]), bytes([0x7A, 50]) + bytes(10), bytes([0x7B, 0x43, 255]),
                bytes([0x7B, 0x07]) + bytes(10), bytes([0x7B, 0x82, 200]) + bytes(10), bytes([0x78]) + bytes(1276)):
        with pytest.raises(VoiceError, match="Opus"):
            opus_samples(bad)


def test_a_voice_frame_carries_20_to_60_ms() -> None:
    assert check_opus(bytes([0x78]) + bytes(40)) == 960
    with pytest.raises(VoiceError, match="10 ms"):
        check_opus(bytes([0x70]) + bytes(40))  # SILK WB 10 ms
    with pytest.raises(VoiceError, match="120 ms"):
        check_opus(bytes([0x1B, 0x02]) + bytes(40))  # code 3, two 60 ms SILK frames: valid Opus, too long here


@settings(max_examples=2000)
@given(st.binary(max_size=300))
def test_opus_framing_checks_never_raise_anything_else(packet: bytes) -> None:
    try:
        n = opus_samples(packet)
    except VoiceError:
        return
    assert 120 <= n <= 5760


# --- sequence numbers ---------------------------------------------------------------------------------


def test_sequence_numbers_wrap_around() -> None:
    assert seq_delta(0, 2**32 - 1) == 1 and seq_delta(2**32 - 1, 0) == -1
    assert seq_delta(5, 5) == 0 and seq_delta(2**31 - 1, 0) == 2**31 - 1 and seq_delta(2**31, 0) == -(2**31)


def _frame(seq: int, *, stream: int = 1, ts: int | None = None, flags: Flag = NO_FLAGS) -> VoiceFrame:
    return VoiceFrame(stream, seq % 2**32, (seq * FRAME_SAMPLES if ts is None else ts) % 2**32, bytes([0x78]), flags)


def test_a_tracker_takes_a_stream_across_the_wrap_and_refuses_what_is_out_of_range() -> None:
    t = StreamTracker()
    base = 2**32 - 3
    assert [t.check(_frame(base + i)) for i in (0, 1, 3, 2, 4, 5)] == [None] * 6  # 2**32-3 .. 2, one reordered
    assert t.newest == 2
    assert "duplicate" in (t.check(_frame(base + 4)) or "")
    assert "ahead" in (t.check(_frame(base + 5 + 5000)) or "")  # a forged jump far ahead
    assert "behind" in (t.check(_frame(base - 100)) or "")  # far too late to play
    assert "timestamp" in (t.check(_frame(base + 6, ts=12345)) or "")
    assert t.check(_frame(base + 7)) is None  # a lost frame (base+6) leaves a hole, no error


def test_a_tracker_of_a_granted_stream_refuses_every_other_stream() -> None:
    t = StreamTracker(0xABCD, adopt=False)
    assert "not the current stream" in (t.check(_frame(1, stream=0x1234, flags=Flag.START)) or "")
    assert t.check(_frame(1, stream=0xABCD, flags=Flag.START)) is None
    free = StreamTracker()
    assert free.check(_frame(1, stream=5)) is None
    assert "not the current stream" in (free.check(_frame(9, stream=6)) or "")
    assert free.check(_frame(900, stream=6, flags=Flag.START)) is None  # a new talk spurt of a new source


def test_a_new_talk_spurt_may_jump_in_time() -> None:
    t = StreamTracker()
    assert t.check(_frame(1)) is None
    assert t.check(_frame(2, ts=10 * RATE, flags=Flag.START)) is None  # 10 s of silence not sent
    assert t.check(_frame(3, ts=10 * RATE + FRAME_SAMPLES)) is None


# --- the codec ---------------------------------------------------------------------------------------


def test_a_tone_comes_through_the_codec_at_its_frequency() -> None:
    packer, dec = FramePacker(), OpusDecoder()
    x = tone(1000, 1.0)
    frames = packer.feed(x[:5000]) + packer.feed(x[5000:])
    last = packer.end()
    assert last is not None and last.end and frames[0].start and len(frames) + 1 == 51
    assert [seq_delta(f.seq, frames[0].seq) for f in frames] == list(range(50))
    y = np.concatenate([dec.decode(parse_frame(f.encode()).opus) for f in frames])
    assert y.dtype == np.float32 and len(y) == 50 * FRAME_SAMPLES
    spectrum = np.abs(np.fft.rfft(y[4800:]))
    assert abs(np.argmax(spectrum) * RATE / len(y[4800:]) - 1000) < 5
    assert 0.15 < np.sqrt(np.mean(y[4800:] ** 2)) < 0.3  # about the level sent (0.21 RMS)


def test_a_lost_frame_is_concealed_with_a_frame_of_audio(packets: list[bytes]) -> None:
    dec = OpusDecoder()
    for p in packets[:10]:
        dec.decode(p)
    hidden = dec.conceal()
    assert len(hidden) == FRAME_SAMPLES and np.abs(hidden).max() > 0.05  # the tone goes on, fading
    assert len(dec.decode(packets[11])) == FRAME_SAMPLES


@settings(max_examples=300, deadline=None)  # a codec opened per example; the machine may be busy
@given(st.binary(min_size=1, max_size=200))
def test_the_decoder_refuses_garbage_with_voice_error_only(packet: bytes) -> None:
    dec = OpusDecoder()
    try:
        out = dec.decode(bytes([packet[0] & ~0x04 & 0xFF]) + packet[1:])
    except VoiceError:
        return
    assert out.dtype == np.float32 and np.all(np.abs(out) <= 1.0)


def test_dtmf_survives_the_codec_for_this_projects_decoder() -> None:
    x = dtmf_tones("*911*1234#", RATE, lead_s=0.2, tail_s=1.2)
    packer, dec = FramePacker(), OpusDecoder()
    frames = packer.feed(x)
    y = np.concatenate([dec.decode(f.opus) for f in frames])
    resampler = Resampler(RATE, 8000)
    decoder = DtmfDecoder(rate=8000)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    out = decoder.feed(resampler.feed(y), start) + decoder.flush(start)
    digits = [o.detail["digits"] for o in out if isinstance(o, Decoded) and o.kind == Kind.STATUS]
    assert digits == ["*911*1234#"]


def test_an_encoder_refuses_a_frame_of_the_wrong_length() -> None:
    with pytest.raises(VoiceError, match="960 samples"):
        OpusEncoder().encode(np.zeros(480, np.float32))
    with pytest.raises(VoiceError, match="bitrate"):
        OpusEncoder(bitrate=1000)


# --- topics and bodies -------------------------------------------------------------------------------


def test_voice_topics() -> None:
    t = voice_topic("pttbridge/v1", "xixing-1", "patrol-1", "floor/answer")
    assert t == "pttbridge/v1/gw/xixing-1/voice/patrol-1/floor/answer"
    assert parse_voice_topic("pttbridge/v1", t) == ("xixing-1", "patrol-1", "floor/answer")
    assert parse_voice_topic("pttbridge/v1", "pttbridge/v1/gw/x/voice/y/other") is None
    assert parse_voice_topic("pttbridge/v1", "pttbridge/v1/gw/x/event/alert") is None
    with pytest.raises(ValueError, match="no voice topic"):
        voice_topic("p", "g", "c", "nope")


def test_bodies_round_trip() -> None:
    lease = ListenLease("desk-1", "alice", 10.0)
    assert ListenLease.from_json(lease.to_json()) == lease
    req = FloorRequest("desk-1", "alice", "r-1", "request", True)
    assert FloorRequest.from_json(req.to_json()) == req
    assert FloorRequest.from_json(b'{"console":"d","operator":"o","request":"r"}').action == "request"
    ans = FloorAnswer("r-1", "desk-1", "alice", "granted", None, 0xFFFFFFFF, 300)
    assert FloorAnswer.from_json(ans.to_json()) == ans
    state = VoiceState("patrol-1", True, "mdc:1234", -20.5, Talker("desk-1", "alice", datetime(2026, 1, 1, tzinfo=UTC)),
                       True, True, 2, {"unit": "mdc:1234", "until": "2026-01-01T00:00:30Z"}, "p1")
    assert VoiceState.from_json(state.to_json()) == state
    mon = RemoteMonitor("r-2", "mdc:1234", "patrol-1", "alice", 20.0)
    assert RemoteMonitor.from_json(mon.to_json()) == mon
    asked = RemoteMonitor("r-3", "mdc:1234", "patrol-1", "alice", 20.0, case=17)
    assert RemoteMonitor.from_json(asked.to_json()) == asked
    patch = PatchCommand("r-3", "aid", "alice", "connect", ("patrol-4", "patrol-5"))
    assert PatchCommand.from_json(patch.to_json()) == patch


@pytest.mark.parametrize(("cls", "payload", "why"), [
    (ListenLease, b"not json", "not JSON"),
    (ListenLease, b"[1]", "expected a JSON object"),
    (ListenLease, b'{"console":"a b","operator":"o","lease_s":5}', "listen.console"),
    (ListenLease, b'{"console":"d","operator":"o","lease_s":600}', "listen.lease_s"),
    (ListenLease, b'{"console":"d","operator":"\\u001b[2J","lease_s":5}', "listen.operator"),
    (FloorRequest, b'{"console":"d","operator":"o","request":"r","action":"grab"}', "floor.action"),
    (FloorRequest, b'{"console":"d","operator":"o","request":"r","override":"yes"}', "floor.override"),
    (FloorRequest, b'{"console":"d","operator":"o"}', "floor.request"),
    (RemoteMonitor, b'{"request":"r","unit":"1234","channel":"c","operator":"o"}', "remote_monitor.unit"),
    (RemoteMonitor, b'{"request":"r","unit":"mdc:1","channel":"c","operator":"o","duration_s":1e9}', "duration_s"),
    (RemoteMonitor, b'{"request":"r","unit":"mdc:1","channel":"c","operator":"o","case":true}', "remote_monitor.case"),
    (RemoteMonitor, b'{"request":"r","unit":"mdc:1","channel":"c","operator":"o","case":"7"}', "remote_monitor.case"),
    (RemoteMonitor, b'{"request":"r","unit":"mdc:1","channel":"c","operator":"o","case":0}', "remote_monitor.case"),
    (FloorAnswer, b'{"console":"d","operator":"o","result":"maybe"}', "result"),
    (PatchCommand, b'{"request":"r","name":"p","operator":"o","channels":["a"]}', "patch.channels"),
    (PatchCommand, b'{"request":"r","name":"p","operator":"o","channels":["a","a"]}', "patch.channels"),
    (PatchCommand, b'{"request":"r","name":"p q","operator":"o","channels":["a","b"]}', "patch.name"),
    (PatchCommand, b'{"request":"r","name":"p","operator":"o","action":"merge"}', "patch.action"),
])
def test_bad_bodies_are_refused_with_the_field(cls: type[Any], payload: bytes, why: str) -> None:
    with pytest.raises(VoiceError, match=why.replace(".", r"\.").replace("[", r"\[")):
        cls.from_json(payload)


scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
json_values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(
    st.sampled_from(["console", "operator", "since", "unit", "until"]), scalars, max_size=4)
body_keys = st.sampled_from(["console", "operator", "lease_s", "request", "action", "override", "unit", "channel",
                             "name", "channels",
                             "duration_s", "result", "stream", "ready_ms", "talker", "busy", "level_dbfs",
                             "listeners", "monitor", "patch", "reason"])


@settings(max_examples=500)
@given(st.dictionaries(body_keys, json_values, max_size=10).map(lambda d: json.dumps(d).encode())
       | st.binary(max_size=64))
def test_garbage_bodies_give_voice_error_only(payload: bytes) -> None:
    for cls in (ListenLease, FloorRequest, FloorAnswer, VoiceState, RemoteMonitor, PatchCommand):
        try:
            cls.from_json(payload)
        except VoiceError:
            pass
