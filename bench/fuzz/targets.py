"""One fuzz target per parser: bytes in, the parser's contract asserted.

A target is a function that imports its parser (inside, so that atheris instruments it: see
``bench.fuzz.run_one``) and returns a :class:`Harness`: the callable libFuzzer drives and the seed
inputs, taken from the test vectors in ``tests/data`` and the shipped example files. Targets with
more than one entry point use the first input byte to choose one ("mode").

The contract of every target: only the documented error type escapes; every event a decoder
emits survives the event wire (encode, decode, equal); a streaming decoder finds a good frame that
follows garbage; round trips hold where there is an encoder.
"""

from __future__ import annotations

import json
import random
import re
import struct
import tempfile
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
NOW = datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Harness:
    run: Callable[[bytes], None]
    seeds: list[bytes]


@dataclass(frozen=True)
class Target:
    make: Callable[[], Harness]
    what: str
    max_len: int = 4096


# --- helpers -------------------------------------------------------------------------------------


def _lines(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(path)]


def _nmea_sentence(body: str) -> bytes:
    cs = 0
    for ch in body.encode():
        cs ^= ch
    return f"${body}*{cs:02X}\r\n".encode()


def _in_order(wanted: Sequence[object], got: Sequence[object]) -> bool:
    """Every one of ``wanted`` appears in ``got``, in order (garbage may add more)."""
    it = iter(got)
    return all(any(g == w for g in it) for w in wanted)


def _outputs_ok(outputs: Iterable[object], protocol: str, known: Sequence[object] = ()) -> list[Any]:
    """Decoders return Decoded or Rejected, never raise; every Decoded survives the event wire
    (``known``: events already checked, skipped for speed)."""
    from drivers.base import Rejected
    from gateway.events import Decoded, Event, decode_event, encode_event

    decoded = []
    for item in outputs:
        if isinstance(item, Rejected):
            assert item.protocol == protocol and item.reason, item
            continue
        assert isinstance(item, Decoded), item
        if item in known:
            decoded.append(item)
            continue
        event = Event.stamp(item, seq=1, gateway="fuzz", channel="fuzz")
        back = decode_event(encode_event(event))
        assert back == event, (event, back)
        decoded.append(item)
    return decoded


class Mutator:
    """Structured mutation of a JSON-like value, driven by the fuzzer's bytes: replace, delete or add
    at a random path. Reaches deeper into a schema than flipping bytes of its text would."""

    def __init__(self, data: bytes) -> None:
        import atheris

        self.fdp = atheris.FuzzedDataProvider(data)

    def value(self, depth: int = 0) -> Any:
        fdp = self.fdp
        choice = fdp.ConsumeIntInRange(0, 9 if depth < 3 else 7)
        if choice == 0:
            return None
        if choice == 1:
            return fdp.ConsumeBool()
        if choice == 2:
            return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 9))
        if choice == 3:
            return fdp.ConsumeRegularFloat()
        if choice == 4:
            return fdp.PickValueInList([0, -1, 1, 255, 256, 65535, 2**31, 2**63, -(2**63), 1e308, 0.5])
        if choice == 5:
            return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 40))
        if choice == 6:
            return fdp.PickValueInList(["", " ", "0", "-1", "A", "AA 55", "../", "/", "\x00", "1e999", "nan",
                                        "x" * 300])
        if choice == 7:
            return fdp.ConsumeFloat()
        if choice == 8:
            return [self.value(depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
        return {fdp.ConsumeUnicodeNoSurrogates(8): self.value(depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))}

    def mutate(self, doc: Any, rounds: int = 4) -> Any:
        fdp = self.fdp
        for _ in range(fdp.ConsumeIntInRange(1, rounds)):
            if fdp.remaining_bytes() == 0:
                break
            doc = self._at(doc)
        return doc

    def _at(self, node: Any) -> Any:
        fdp = self.fdp
        descend = fdp.ConsumeIntInRange(0, 3) > 0
        if isinstance(node, dict) and node:
            key = fdp.PickValueInList(sorted(node, key=str))
            if descend:
                return {**node, key: self._at(node[key])}
            action = fdp.ConsumeIntInRange(0, 2)
            if action == 0:
                return {k: v for k, v in node.items() if k != key}
            if action == 1:
                return {**node, fdp.ConsumeUnicodeNoSurrogates(10): self.value()}
            return {**node, key: self.value()}
        if isinstance(node, list) and node:
            i = fdp.ConsumeIntInRange(0, len(node) - 1)
            if descend:
                return [*node[:i], self._at(node[i]), *node[i + 1 :]]
            action = fdp.ConsumeIntInRange(0, 2)
            if action == 0:
                return node[:i] + node[i + 1 :]
            if action == 1:
                return [*node, node[i]]
            return [*node[:i], self.value(), *node[i + 1 :]]
        return self.value()


def _seed_mutations(mode: int, count: int = 8) -> list[bytes]:
    rng = random.Random(mode)
    return [bytes([mode]) + rng.randbytes(rng.randrange(4, 64)) for _ in range(count)]


# --- serial protocols ----------------------------------------------------------------------------


def nmea() -> Harness:
    from drivers.nmea import NmeaDecoder

    good = _nmea_sentence("PKLSH,4954.1474,N,11923.6044,W,122434,A,100,1001,")

    def decode(data: bytes) -> list[Any]:
        dec = NmeaDecoder(unit="gps:fuzz")
        out = dec.feed(data, NOW)
        out += dec.break_line(NOW)
        return out + dec.tick(NOW + timedelta(hours=1))

    clean = _outputs_ok(decode(good), "nmea")
    assert clean

    def run(data: bytes) -> None:
        got = _outputs_ok(decode(data + b"\r\n" + good), "nmea", clean)
        assert _in_order(clean, got), "the good sentence after the garbage was lost"

    seeds = [line + b"\r\n" for f in sorted((DATA / "nmea").glob("*.log")) for line in _lines(f)[:40]]
    return Harness(run, seeds)


def kenwood() -> Harness:
    from drivers.kenwood import KenwoodDecoder

    good = b"\x02I110010012001002\x03" + _nmea_sentence("PKNSH,4954.1450,N,11923.6043,W,114400,A,U00002,")
    # The documented limit (tests/drivers/test_kenwood.py): a text frame that loses its ETX swallows
    # what follows up to the next STX, line ends included; the resync check leaves that case out.
    open_text = re.compile(rb"\x02g?[FG][^\x02\x03]*\Z")

    def decode(data: bytes) -> list[Any]:
        dec = KenwoodDecoder()
        return dec.feed(data, NOW) + dec.tick(NOW + timedelta(hours=1))

    clean = _outputs_ok(decode(good), "kenwood")
    assert len(clean) == 2

    def run(data: bytes) -> None:
        got = _outputs_ok(decode(data + b"\r\n" + good), "kenwood", clean)
        if not open_text.search(data):
            assert _in_order(clean, got), "the good frame after the garbage was lost"

    seeds = [json.loads(line)["raw"].encode("latin-1") for line in _lines(DATA / "kenwood" / "kenwood.jsonl")]
    seeds = [s if s.startswith(b"\x02") else s + b"\r\n" for s in seeds]
    return Harness(run, seeds)


def _aprs_infos() -> list[tuple[str, bytes]]:
    """(destination, info) of every APRS test packet (TNC2 lines from the aprs-fap suite)."""
    out = []
    for case in _jsonl(DATA / "aprs" / "aprs-fap.jsonl"):
        packet = case.get("packet")
        if not isinstance(packet, str):
            continue
        header, _, info = packet.encode("latin-1", "replace").partition(b":")
        dest = header.split(b">")[-1].split(b",")[0].decode("latin-1")
        out.append((dest, info))
    return out


def kiss() -> Harness:
    from drivers.ax25 import encode_ui
    from drivers.kiss import CMD_DATA, MAX_FRAME, KissAprsDecoder, KissFrame, KissFramer, kiss_encode

    good = kiss_encode(encode_ui("BG5ABC-9", "APDW16", b"!3012.57N/12012.64E>090/010/A=000100 patrol 1", ["WIDE1-1"]))

    def decode(data: bytes) -> list[Any]:
        return KissAprsDecoder().feed(data, NOW)

    clean = _outputs_ok(decode(good), "kiss")
    assert clean

    def run(data: bytes) -> None:
        if data[:1] == b"\x00":  # mode 0: the framer's round trip of any payload on any port
            # MAX_FRAME bounds the bytes on the wire, escapes included: half of it always fits (an AX.25
            # frame is at most about 330 bytes).
            port, payload = (data[1] & 15, data[2 : 2 + MAX_FRAME // 2 - 2]) if len(data) > 1 else (0, b"")
            frames = KissFramer().feed(kiss_encode(payload, port))
            assert frames == [KissFrame(port, CMD_DATA, payload)], (payload, frames)
            return
        got = _outputs_ok(decode(data + good), "kiss", clean)
        assert _in_order(clean, got), "the good frame after the garbage was lost"

    seeds = [b"\x00\x00" + info for _, info in _aprs_infos()[:50]]
    for dest, info in _aprs_infos():
        try:
            seeds.append(kiss_encode(encode_ui("N0CALL-1", dest, info[:256])))
        except ValueError:
            pass
    return Harness(run, seeds)


def ax25() -> Harness:
    from drivers.ax25 import Ax25Error, encode_ui, parse_frame

    def run(data: bytes) -> None:
        try:
            frame = parse_frame(data)
        except Ax25Error:
            return
        again = encode_ui(frame.source, frame.destination, frame.info, frame.digipeaters, pid=frame.pid,
                          control=frame.control)
        back = parse_frame(again)
        # The C and H bits a frame carries are not all kept (encode_ui writes its own command bits).
        assert (back.source, back.destination, back.info, back.pid, back.control) == (
            frame.source, frame.destination, frame.info, frame.pid, frame.control), (frame, back)
        assert [d.address for d in back.digipeaters] == [d.address for d in frame.digipeaters]
        frame.tnc2()

    seeds = []
    for dest, info in _aprs_infos():
        try:
            seeds.append(encode_ui("N0CALL-1", dest, info[:256], ["WIDE1-1*", "WIDE2-1"]))
        except ValueError:
            pass
    return Harness(run, seeds)


def aprs() -> Harness:
    from drivers import aprs
    from drivers.ax25 import encode_ui
    from drivers.kiss import frame_to_output

    destinations = ["APRS", "APDW16", "S32U6T", "301RU7", "T2TQ5U", "BEACON-15", "SPPQ4X", "4ZTPQS"]

    def run(data: bytes) -> None:
        if not data:
            return
        mode, dest, info = data[0] % 3, destinations[data[0] // 3 % len(destinations)], data[1:]
        if mode == 0:  # a TNC2 monitor line
            try:
                aprs.parse_tnc2(data[1:])
            except aprs.AprsError:
                pass
            return
        try:
            aprs.parse(info, source="N0CALL-9", destination=dest, now=NOW, accept_broken_mice=mode == 2)
        except aprs.AprsError:
            pass
        if len(info) <= 256:  # the whole path: AX.25 -> APRS -> event
            _outputs_ok([frame_to_output(encode_ui("N0CALL-9", dest, info), NOW, "kiss")], "kiss")

    seeds = []
    for dest, info in _aprs_infos():
        k = destinations.index(dest) if dest in destinations else 0
        seeds.append(bytes([k * 3 + 1]) + info)
    return Harness(run, seeds)


# --- frame specs ---------------------------------------------------------------------------------


def _modbus_crc(data: bytes) -> bytes:
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


def _pb8(box: int, zone: int, event: int) -> bytes:
    body = bytes([5]) + box.to_bytes(2, "big") + bytes([zone, event, 0])
    return b"\xaa\x55" + body + _modbus_crc(body)


def _ap16(code: str, zone: int, partition: int) -> bytes:
    body = f"{code},{zone:04d},{partition}".encode() + b"\x03"
    bcc = 0
    for b in body:
        bcc ^= b
    return b"\x02" + body + bytes([bcc]) + b"\r\n"


def _bare(box: int, event: int, value: int) -> bytes:
    body = bytes([box, event]) + value.to_bytes(2, "big", signed=True)
    return body + bytes([(-sum(body)) & 0xFF])


# The test suite's own specs of no vendor's: a line protocol and start-less fixed frames.
LINES_SPEC: dict[str, Any] = tomllib.loads((DATA / "framespecs" / "lines.toml").read_text())
BARE_SPEC: dict[str, Any] = tomllib.loads((DATA / "framespecs" / "bare.toml").read_text())


def framespec() -> Harness:
    from drivers.framespec import FrameSpecDecoder, FrameSpecError, load_spec

    specs = {p.stem: tomllib.loads(p.read_text()) for p in sorted((ROOT / "config" / "framespecs").glob("*.toml"))}
    boxes: list[tuple[dict[str, Any], bytes, bytes]] = [  # spec, what ends garbage, a good frame
        (specs["anvil-pb8"], b"", _pb8(0x0102, 3, 1)),
        (specs["keystone-ap16"], b"", _ap16("P", 12, 3)),
        (LINES_SPEC, b"\r\n", b"P,12\r\n"),
        (BARE_SPEC, b"", _bare(1, 2, -5)),
    ]
    sample = b"".join(frame for _, _, frame in boxes)
    clean = [_outputs_ok(FrameSpecDecoder(**spec).feed(frame, NOW), "framespec") for spec, _, frame in boxes]
    assert all(clean)
    examples = [*specs.values(), LINES_SPEC, BARE_SPEC]

    def try_spec(raw: Any, stream: bytes) -> None:
        if not isinstance(raw, dict):
            return
        try:
            load_spec(raw)
        except FrameSpecError:
            return
        dec = FrameSpecDecoder(**raw)
        _outputs_ok(dec.feed(stream, NOW) + dec.tick(NOW + timedelta(hours=1)), "framespec")

    def run(data: bytes) -> None:
        if len(data) < 2:
            return
        mode = data[0] % 3
        if mode == 0:  # a spec file
            try:
                raw = tomllib.loads(data[1:].decode("utf-8"))
            except (UnicodeDecodeError, tomllib.TOMLDecodeError):
                return
            try_spec(raw, sample)
        elif mode == 1:  # an example spec, mutated
            m = Mutator(data[1:])
            raw = m.mutate(examples[data[1] % len(examples)])
            try_spec(raw, sample + m.fdp.ConsumeBytes(64))
        else:  # frames: garbage, then a good frame
            i = data[1] % len(boxes)
            spec, sep, frame = boxes[i]
            dec = FrameSpecDecoder(**spec)
            out = dec.feed(data[2:], NOW) + dec.feed(sep + frame, NOW)
            got = _outputs_ok(out + dec.tick(NOW + timedelta(hours=1)), "framespec", clean[i])  # then a pause
            # A fixed-length frame without a start marker resynchronises by sliding: garbage can end
            # in a false frame that eats the head of the good one (the documented cost of such boxes).
            if spec is not BARE_SPEC:
                assert _in_order(clean[i], got), "the good frame after the garbage was lost"

    seeds = [b"\x00" + p.read_bytes() for p in sorted((ROOT / "config" / "framespecs").glob("*.toml"))]
    seeds += _seed_mutations(1) + [bytes([2, i]) + frame * 2 for i, (_, _, frame) in enumerate(boxes)]
    return Harness(run, seeds)


# --- the event wire, camera payloads ---------------------------------------------------------------


def events() -> Harness:
    from gateway.events import Decoded, Event, EventError, Kind, Position, decode_event, encode_event

    sample = json.loads(encode_event(Event.stamp(
        Decoded(Kind.ALERT, NOW, "mdc:1234", Position(30.2095, 120.2107, 3.0, 1.5, 90.0, NOW, source="nmea"),
                {"protocol": "mdc1200", "op": 0, "nested": {"a": [1, 2.5, None]}}),
        seq=4711, gateway="xixing-1", channel="patrol-1")))

    def run(data: bytes) -> None:
        if not data:
            return
        payload = data[1:] if data[0] % 2 == 0 else json.dumps(Mutator(data[1:]).mutate(sample)).encode()
        try:
            event = decode_event(payload)
        except EventError:
            return
        assert decode_event(encode_event(event)) == event

    seeds = [b"\x00" + json.dumps(sample).encode(), *_seed_mutations(1)]
    return Harness(run, seeds)


def cameras() -> Harness:
    from bridge.cameras.feeds import (
        FeedError,
        parse_frigate,
        parse_frigate_snapshot,
        parse_frigate_update,
        parse_generic,
    )

    frigate = [json.loads(p.read_text()) for p in sorted((DATA / "frigate").glob("*.json"))]
    names = {e[part]["camera"] for e in frigate for part in ("before", "after") if isinstance(e.get(part), dict)}
    names |= {e["camera"] for e in frigate if isinstance(e.get("camera"), str)}  # tracked-object updates
    mapping = {name: f"cam-{name}" for name in names}
    generic = {"label": "person", "score": 0.91, "time": "2026-11-26T19:30:01Z", "lat": 30.2, "lon": 120.2,
               "zones": ["crossing"], "snapshot_url": "http://cam/snap.jpg", "id": "e-1"}

    def run(data: bytes) -> None:
        if not data:
            return
        mode = data[0] % 4
        if mode == 0:
            payload = data[1:]
        elif mode == 1:
            payload = json.dumps(Mutator(data[1:]).mutate(generic)).encode()
        else:
            payload = json.dumps(Mutator(data[1:]).mutate(frigate[data[0] // 4 % len(frigate)])).encode()
        try:
            if mode in (0, 1):
                parse_generic("cam-1", payload, now=NOW)
            if mode in (0, 2, 3):
                parse_frigate(payload, cameras=mapping, frigate_url="http://frigate:5000")
        except FeedError:
            pass
        try:
            if mode in (0, 2, 3):
                parse_frigate_update(payload, cameras=mapping)
            if mode == 0:
                parse_frigate_snapshot("front_door", "person", payload, cameras=mapping)
        except FeedError:
            pass

    seeds = [b"\x00" + json.dumps(generic).encode()]
    seeds += [b"\x00" + p.read_bytes() for p in sorted((DATA / "frigate").glob("*.json"))]
    seeds += _seed_mutations(1) + _seed_mutations(2) + _seed_mutations(3)
    return Harness(run, seeds)


# --- configuration, CSV imports ------------------------------------------------------------------


def config() -> Harness:
    from config.schema import ConfigError, load_config, parse_config

    base = Path(tempfile.mkdtemp(prefix="fuzz-config-"))
    (base / "framespecs").mkdir()
    for p in (ROOT / "config" / "framespecs").glob("*.toml"):
        (base / "framespecs" / p.name).write_bytes(p.read_bytes())
    path = base / "site.toml"
    examples = [tomllib.loads(p.read_text()) for p in (ROOT / "config").glob("*.toml")]

    def run(data: bytes) -> None:
        if not data:
            return
        try:
            if data[0] % 2 == 0:  # the file, through the loader
                path.write_bytes(data[1:])
                load_config(path)
            else:
                raw = Mutator(data[1:]).mutate(examples[data[0] // 2 % len(examples)], rounds=6)
                if isinstance(raw, dict):
                    parse_config(raw, "site.toml", base)
        except ConfigError:
            pass

    seeds = [b"\x00" + p.read_bytes() for p in (ROOT / "config").glob("*.toml")] + _seed_mutations(1)
    return Harness(run, seeds)


CHIRP_SAMPLE = (
    "Location,Name,Frequency,Duplex,Offset,Tone,rToneFreq,cToneFreq,DtcsCode,DtcsPolarity,RxDtcsCode,"
    "CrossMode,Mode,TStep,Skip,Power,Comment,URCALL,RPT1CALL,RPT2CALL,DVCODE\r\n"
    "0,PATROL 1,146.520000,,0.000000,TSQL,88.5,100.0,023,NN,023,Tone->Tone,NFM,5.00,,5.0W,city patrol,,,,\r\n"
    "1,RPT2,145.290000,-,0.600000,DTCS,88.5,88.5,047,NN,047,Tone->Tone,FM,5.00,,5.0W,,,,,\r\n"
    "2,Fire,453.100000,split,458.100000,Tone,127.3,88.5,023,NN,023,Tone->Tone,FM,12.50,S,1.0W,,,,,\r\n"
)


def chirp() -> Harness:
    from bridge.chirp import ChirpError, parse_chirp, to_chirp

    def run(data: bytes) -> None:
        try:
            channels = parse_chirp(data.decode("utf-8", "replace"))
        except ChirpError:
            return
        # An export fills in what CHIRP needs (mode, step, power); after that, export and import agree.
        again = parse_chirp(to_chirp(channels))
        assert [(c["name"], c["rx_mhz"], c.get("tx_mhz")) for c in again] == [
            (c["name"], c["rx_mhz"], c.get("tx_mhz")) for c in channels], (channels, again)
        assert parse_chirp(to_chirp(again)) == again

    return Harness(run, [CHIRP_SAMPLE.encode(), CHIRP_SAMPLE.replace("\r\n", "\n").encode()])


CAMERA_CSV = (
    "id,name,lat,lon,heading_deg,fov_deg,range_m,kind,unit,stream_url,snapshot_url,credentials_env,presets\n"
    "xixi-wenyi-ne,Xixi Rd / Wenyi Rd NE,30.2095,120.2107,225,90,150,fixed,,rtsp://10.1.2.3/s1,"
    "http://10.1.2.3/snap.jpg,CAM_AUTH,\n"
    "dome-3,Dome 3,30.2101,120.2088,,60,300,ptz,,,,,home:0;crossing:135\n"
    "car-7-360,Patrol car 7,30.2,120.2,,360,60,vehicle,gps:car-7,,,,\n"
)


def camera_csv() -> Harness:
    from bridge.cameras.registry import RegistryError, parse_csv

    def run(data: bytes) -> None:
        try:
            parse_csv(data.decode("utf-8", "replace"))
        except RegistryError:
            pass

    return Harness(run, [CAMERA_CSV.encode()])


# --- the bridge's network inputs -----------------------------------------------------------------


def bridge() -> Harness:
    """``bridge/cmd`` bodies and gateway state bodies, through the bridge's core and a store
    (SQLite in a scratch directory): a refused body is counted and logged, nothing escapes."""
    import logging

    from bridge.actions import Inbound
    from bridge.core import Batch, BridgeCore
    from bridge.store import Store
    from config.schema import parse_config
    from gateway.events import Decoded, Event, Kind

    logging.disable(logging.WARNING)
    base = Path(tempfile.mkdtemp(prefix="fuzz-bridge-"))
    store = Store.open(f"sqlite:///{base / 'bridge.sqlite'}")
    b = BridgeCore.open(parse_config({"data_dir": str(base)}), store, clock=lambda: datetime.now(UTC))
    alerts = [Event.stamp(Decoded(Kind.ALERT, NOW, f"mdc:{1000 + i}", None, {"protocol": "mdc1200"}),
                          seq=i + 1, gateway="gw1", channel="patrol-1") for i in range(3)]
    store.ingest(alerts)
    commands = [
        {"action": "ack", "incident": 1, "operator": "op", "note": "on it"},
        {"action": "resolve", "incident": 2, "operator": "op", "resolution": "done"},
        {"action": "note", "incident": 1, "operator": "op", "note": "n"},
        {"action": "assign", "incident": 3, "operator": "op", "unit": "mdc:1001"},
        {"action": "alias", "unit": "mdc:1000", "alias": "Car 7", "operator": "op"},
        {"action": "plan", "gateway": "gw1", "operator": "op",
         "channels": [{"name": "patrol-1", "rx_mhz": 146.52, "drivers": [{"type": "audio", "device": "pulse",
                                                                           "decoders": ["mdc1200"]}]}]},
    ]
    state = {"gateway": "gw1", "online": True, "outbox": {"next_seq": 10, "pending": 2, "oldest_seq": 8},
             "channels": {"patrol-1": {"ok": True}}}

    def run(data: bytes) -> None:
        if not data:
            return
        mode = data[0] % 4
        if mode < 2:
            payload = data[1:]
        elif mode == 2:
            payload = json.dumps(Mutator(data[1:]).mutate(commands[data[0] // 4 % len(commands)])).encode()
        else:
            payload = json.dumps(Mutator(data[1:]).mutate(state)).encode()
        if mode % 2 == 0:
            b.command(Inbound("pttbridge/bridge/cmd", payload, 0, 1, 0), Batch([]))
        else:
            b.gateway_state("gw1", Inbound("pttbridge/gw/gw1/state", payload, 0, 1, 0), 0.0)

    seeds = [b"\x00" + json.dumps(c).encode() for c in commands] + [b"\x01" + json.dumps(state).encode()]
    seeds += _seed_mutations(2) + _seed_mutations(3)
    return Harness(run, seeds)


def dispatch() -> Harness:
    """``cmd/dispatch`` and ``cmd/radio_check`` bodies as the gateway reads them (a request, or BadRequest
    naming the field), and heard APRS message details through the messaging that settles our messages."""
    from drivers.aprs_messaging import Messenger
    from gateway.dispatch import BadRequest, parse_request
    from gateway.events import json_object

    bodies = [
        {"request": "0193a9b8-0000-7000-8000-000000000001", "case": 1234, "unit": "fleetsync:100-1001",
         "channel": "patrol-1", "paths": ["kenwood_message", "announcement"], "text": "CASE 1234 STALL",
         "speech": {"text": "案件一二三四", "language": "cmn"}, "operator": "alice", "repeat_if_busy": 3},
        {"request": "r2", "case": 7, "unit": "mdc:1234", "channel": "patrol-7", "operator": "bob"},
    ]
    heard = {"type": "message", "addressee": "BG5ZZZ-10", "text": "ACCEPTED", "message_id": "5", "ack": "1",
             "rej": None, "reply_ack": "1"}

    def run(data: bytes) -> None:
        if not data:
            return
        mode = data[0] % 3
        if mode == 2:
            messenger = Messenger("BG5ZZZ-10")
            message_id, _ = messenger.send("BG5ABC-9", "CASE 7", 0.0)
            detail = Mutator(data[1:]).mutate(heard)
            if isinstance(detail, dict):
                out = messenger.heard("BG5ABC-9", detail)
                assert all(o.message_id == message_id for o in out.outcomes)
            return
        if mode == 0:
            try:
                body = json_object(data[1:])
            except ValueError:
                return
        else:
            body = Mutator(data[1:]).mutate(bodies[data[0] // 3 % len(bodies)])
            if not isinstance(body, dict):
                return
        command = "dispatch" if data[0] & 0x80 else "radio_check"
        try:
            req = parse_request(command, body)
        except BadRequest:
            return
        assert req.command == command and 0 <= req.repeat_if_busy <= 20

    seeds = [b"\x00" + json.dumps(b).encode() for b in bodies] + _seed_mutations(1) + _seed_mutations(2)
    return Harness(run, seeds)


# --- the audio decoders' bit-level parts ---------------------------------------------------------


def voice() -> Harness:
    """Voice frames (raw bytes, and a good frame's bytes flipped), the stream tracker fed what parses, and
    the lease, floor and command bodies: only VoiceError escapes; what parses encodes back to its bytes."""
    from gateway.voice import (
        Flag,
        FloorAnswer,
        FloorRequest,
        ListenLease,
        PatchCommand,
        RemoteMonitor,
        StreamTracker,
        VoiceError,
        VoiceFrame,
        VoiceState,
        parse_frame,
    )

    good = VoiceFrame(0xDEADBEEF, 2**32 - 2, 123456, bytes([0x78]) + bytes(range(40)), Flag.START, "mdc:1234")
    bodies = [ListenLease, FloorRequest, FloorAnswer, VoiceState, RemoteMonitor, PatchCommand]
    sample = {"console": "desk-1", "operator": "alice", "lease_s": 10, "request": "r1", "action": "request",
              "override": False, "unit": "mdc:1234", "channel": "patrol-1", "duration_s": 30, "name": "aid",
              "channels": ["a", "b"], "result": "granted", "stream": 5, "ready_ms": 300, "busy": True,
              "talker": {"console": "desk-1", "operator": "alice", "since": "2026-01-01T00:00:00Z"}}

    def run(data: bytes) -> None:
        if not data:
            return
        mode, rest = data[0] % 3, data[1:]
        if mode == 2:
            payload = json.dumps(Mutator(rest).mutate(sample)).encode()
            for cls in bodies:
                try:
                    cls.from_json(payload)  # type: ignore[attr-defined]
                except VoiceError:
                    pass
            return
        if mode == 1:
            wire = bytearray(good.encode())
            for i, b in enumerate(rest[:8]):
                wire[(b * 7 + i) % len(wire)] ^= rest[-1 - i] or 1
            rest = bytes(wire)
        tracker = StreamTracker()
        for chunk in (rest, rest[: len(rest) // 2]):
            try:
                frame = parse_frame(chunk)
            except VoiceError:
                continue
            assert frame.encode() == chunk
            tracker.check(frame)

    seeds = [b"\x00" + good.encode(), b"\x01\x05\x09", b"\x02" + bytes(16), *_seed_mutations(0)]
    return Harness(run, seeds)


def _soft(data: bytes, n: int) -> Any:
    import numpy as np

    raw = (data * (n // max(1, len(data)) + 1))[:n] if data else bytes(n)
    return np.frombuffer(raw, np.uint8).astype(np.float64)


def mdc1200() -> Harness:
    import numpy as np

    from drivers.audio.mdc1200 import CODEWORD_BITS, Mdc1200Packet, codeword, crc_ok, decode_codeword

    def run(data: bytes) -> None:
        if len(data) < 5:
            return
        if data[0] % 2 == 0:  # any 112 soft bits: a 7-byte block and a count, never an exception
            block, corrected = decode_codeword(_soft(data[1:], CODEWORD_BITS) / 255.0)
            assert len(block) == 7 and 0 <= corrected <= CODEWORD_BITS
            if crc_ok(block):
                Mdc1200Packet(block[0], block[1], block[2] << 8 | block[3])
            return
        # encode -> decode: the four bytes come back, with up to two flipped bits repaired
        payload = data[1:5]
        bits = codeword(payload).astype(np.float64)
        for k in data[5:7]:
            bits[k % CODEWORD_BITS] = 1.0 - bits[k % CODEWORD_BITS]
        block, _ = decode_codeword(bits)
        assert block[:4] == payload and crc_ok(block), (payload.hex(), block.hex())

    rows = [line.split(b",")[0] for line in _lines(DATA / "mdc1200" / "packets.csv") if not line.startswith(b"#")]
    seeds = [b"\x01" + bytes.fromhex(r.decode()[:8]) for r in rows if len(r) >= 8]
    seeds += [b"\x00" + codeword(bytes.fromhex(r.decode()[:8])).tobytes() for r in rows if len(r) >= 8]
    return Harness(run, seeds)


def fleetsync() -> Harness:
    import numpy as np

    from drivers.audio import fleetsync as fs

    decoder = fs.FleetSyncDecoder(8000)

    def event(words: Sequence[int]) -> Any:
        return decoder._event(fs._Message(0.0, 960.0, 1200, 1, tuple(words), "A"), NOW)

    def run(data: bytes) -> None:
        if len(data) < 2:
            return
        mode, rest = data[0] % 5, data[1:]
        if mode == 0:
            got = fs.fs1_decode_soft(_soft(rest, 64) - 127.5, chase=data[0] & 0x80 == 0)
            assert got is None or fs.block_ok(got[0])
        elif mode == 1:
            got = fs.fs2_decode_soft(_soft(rest, 256) - 127.5, chase=data[0] & 0x80 == 0)
            assert got is None or fs.block_ok(got[0])
        elif mode == 2:
            fs.fs2_decode_block((_soft(rest, 256) > 127).astype(np.uint8))
        elif mode == 3:  # any blocks that pass the CRC, as the decoder would hand them on
            blocks = [rest[i : i + 6].ljust(6, b"\0") for i in range(0, min(len(rest), 60), 6)]
            _outputs_ok([event([fs.block_word(b) for b in blocks])], "fleetsync")
        else:  # a message -> bits -> blocks -> event: the ids come back
            m = fs.FleetSyncMessage(rest[0], rest[1] if len(rest) > 1 else 0, 100 + rest[0] % 255,
                                    1000 + (int.from_bytes(rest[:2].ljust(2, b"\0"), "big") % 4095))
            version = 1 + data[0] // 5 % 2
            bits = np.array(fs.message_bits(m, version=version), np.uint8)[24 + 16 :]
            size = 64 if version == 1 else 256
            words = []
            for i in range(0, bits.size, size):
                chunk = bits[i : i + size]
                words.append(fs._bits_to_int(chunk) if version == 1 else fs.fs2_decode_block(chunk))
            assert all(w is not None and fs.block_ok(w) for w in words), words
            d = event([w for w in words if w is not None])
            assert d.detail["fleet"] == m.fleet and d.detail["unit_id"] == m.unit, (m, d.detail)

    vectors = json.loads((DATA / "fleetsync" / "vectors.json").read_text())
    seeds = [bytes([k]) + struct.pack(">HH", 1234, 5678) for k in range(5)]
    seeds += [b"\x03" + bytes.fromhex(str(v))[:6] for v in _hex_values(vectors)][:50]
    return Harness(run, seeds)


def _hex_values(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for v in node.values():
            yield from _hex_values(v)
    elif isinstance(node, list):
        for v in node:
            yield from _hex_values(v)
    elif isinstance(node, str) and len(node) >= 12 and re.fullmatch(r"[0-9A-Fa-f]+", node):
        yield node


TARGETS: dict[str, Target] = {
    "nmea": Target(nmea, "NMEA 0183 stream (drivers/nmea.py)"),
    "kenwood": Target(kenwood, "Kenwood FleetSync/NXDN data port (drivers/kenwood.py)"),
    "kiss": Target(kiss, "KISS stream -> AX.25 -> APRS (drivers/kiss.py)"),
    "ax25": Target(ax25, "AX.25 UI frames (drivers/ax25.py)", 400),
    "aprs": Target(aprs, "APRS information fields, TNC2 lines (drivers/aprs/)", 400),
    "framespec": Target(framespec, "frame spec files and frames decoded by a spec (drivers/framespec.py)"),
    "events": Target(events, "event JSON (gateway/events.py decode_event)"),
    "cameras": Target(cameras, "generic and Frigate camera payloads, Frigate's updates and snapshots "
                               "(bridge/cameras/feeds.py)"),
    "config": Target(config, "configuration TOML and tables (config/schema.py load_config, parse_config)"),
    "chirp": Target(chirp, "CHIRP CSV import (bridge/chirp.py)"),
    "camera_csv": Target(camera_csv, "camera CSV import (bridge/cameras/registry.py)"),
    "bridge": Target(bridge, "bridge/cmd bodies and gateway state bodies (bridge/service.py + store)"),
    "dispatch": Target(dispatch, "cmd/dispatch and cmd/radio_check bodies, heard APRS acks (gateway/dispatch.py, "
                                 "drivers/aprs_messaging.py)"),
    "voice": Target(voice, "live voice frames, the stream tracker, lease/floor/command bodies (gateway/voice.py)"),
    "mdc1200": Target(mdc1200, "MDC-1200 codewords from bits (drivers/audio/mdc1200.py)", 256),
    "fleetsync": Target(fleetsync, "FleetSync blocks from bits, messages (drivers/audio/fleetsync.py)", 512),
}
