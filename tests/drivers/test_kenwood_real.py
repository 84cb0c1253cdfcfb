"""Kenwood data ports as real radios write them: every sample of the real-world set, decided from its source.

The set holds 33 lines and frames that public code quotes from real radios' serial output (pynmea2,
ksync, radiolog, kenwood-gps-converter, go-nmea, OH2LAK's NEXEDGE tracker, a Django MQTT command), and
the one complete burst of a real NX radio. Each sample has a decision below: what a radio sent is
decoded into the events its source says it means; what is damaged (a checksum that does not verify, a
frame without its ETX, an unknown layout) is refused with the reason and its bytes. The MIT-licensed
samples are copied in ``tests/data/kenwood/real_samples_mit.json``; the GPL-3.0 and unlicensed ones are
read from the shared real-world folder (see ``real_material``) and their tests skip when it is absent.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from real_material import real_dir, real_path

from drivers.base import Output, Rejected
from drivers.kenwood import KenwoodDecoder, Reply
from gateway.events import Decoded, Event, Kind, decode_event, encode_event

DATA = Path(__file__).resolve().parents[1] / "data" / "kenwood"
MIT_SAMPLES = DATA / "real_samples_mit.json"
VECTORS = DATA / "kenwood.jsonl"
NOW = datetime(2023, 2, 13, 13, 0, tzinfo=UTC)  # the day of pynmea2's samples; time-only fixes take it
COPYABLE = ("pynmea2", "robow", "gonmea")  # MIT; the others are GPL-3.0 or have no licence


@dataclass(frozen=True)
class Want:
    """One expected event: its kind and unit, and the position and detail fields that must match."""

    kind: Kind
    unit: str | None
    lat: float | None = None
    lon: float | None = None
    fix_time: str | None = None  # ISO, UTC
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    verdict: str  # "accepted" | "refused" | "reply" (the radio's answer to a host command: no event)
    why: str  # from the source
    events: tuple[Want, ...] = ()
    refused: tuple[str, ...] = ()  # the reasons given, in order (a part of each)
    reply_ok: bool | None = None
    framed: bool = False  # quoted without its STX and ETX: fed with them


U2 = "nxdn:U00002"
LAT_KELOWNA, LON_KELOWNA = 49.90241666666667, -119.393405
LAT_KELOWNA_FS, LON_KELOWNA_FS = 49.902456666666666, -119.39340666666666
LAT_LINZ, LON_LINZ = 48.1550666666, 14.159268333333
LAT_AHMEDABAD, LON_AHMEDABAD = 23 + 1.2967 / 60, 72 + 28.2519 / 60
NX_1205 = "nxdn:U00001205"

#: Every sample, by (source, its place among that source's samples).
DECISIONS: dict[tuple[str, int], Decision] = {
    # pynmea2's tests: a real radio's sentences (Kelowna, 2023-02-13), every value asserted there.
    ("pynmea2", 0): Decision(
        "accepted",
        "pynmea2 asserts unit U00002, status 207, the position and the time",
        (Want(Kind.BEACON, U2, LAT_KELOWNA, LON_KELOWNA, "2023-02-13T11:44:00Z", {"sender_status": "207"}),),
    ),
    ("pynmea2", 1): Decision(
        "accepted",
        "pynmea2 asserts unit U00002, the position, time 11:44:00, status A",
        (Want(Kind.BEACON, U2, LAT_KELOWNA, LON_KELOWNA, "2023-02-13T11:44:00Z", {"valid": True}),),
    ),
    ("pynmea2", 2): Decision(
        "accepted",
        "pynmea2 asserts fleet 100, unit 1001, the position and the time",
        (
            Want(
                Kind.BEACON,
                "fleetsync:100-1001",
                LAT_KELOWNA_FS,
                LON_KELOWNA_FS,
                "2023-02-13T12:24:34Z",
                {"sender_status": "80"},
            ),
        ),
    ),
    ("pynmea2", 3): Decision(
        "accepted",
        "pynmea2 asserts fleet 100, unit 1001, the position, time 12:24:34, status A",
        (Want(Kind.BEACON, "fleetsync:100-1001", LAT_KELOWNA_FS, LON_KELOWNA_FS, "2023-02-13T12:24:34Z"),),
    ),
    # erinn/ksync's tests (a library written against real FleetSync radios).
    ("ksync", 0): Decision("reply", "STX 0 ETX: the radio acknowledged the host's command", reply_ok=True),
    ("ksync", 1): Decision(
        "accepted",
        "ksync reads D + fleet + device as an identification: fleet 200, device 1814",
        (Want(Kind.PTT, "fleetsync:200-1814", detail={"frame": "identification"}),),
    ),
    ("ksync", 2): Decision(
        "accepted",
        "a caller ID, I0 = end of transmission, fleet 200 device 1814 repeated",
        (Want(Kind.PTT, "fleetsync:200-1814", detail={"frame": "caller_id", "transmission": "end"}),),
    ),
    ("ksync", 3): Decision(
        "accepted",
        "ksync asserts fleet 100, device 1202, the position, status V (a stale or dead-GPS fix: kept, not valid)",
        (
            Want(
                Kind.BEACON,
                "fleetsync:100-1202",
                38.85555,
                -94.7990283333,
                "2023-02-13T01:22:12Z",
                {"valid": False, "status": "V"},
            ),
        ),
    ),
    ("ksync", 4): Decision(
        "refused", "ksync's malformed case: a frame that never ends", refused=("frame without its ETX",)
    ),
    ("ksync", 5): Decision(
        "refused",
        "ksync's unknown message: F is a text, whose id must be digits",
        refused=("unexpected b'O' in an id",),
    ),
    # ncssar/radiolog's comments: lines seen in log files, and its frame examples.
    ("radiolog", 0): Decision(
        "refused",
        "the checksum does not verify (and the longitude is empty: radiolog marks it INVALID)",
        refused=("bad checksum: stated 7A, computed 7B",),
    ),
    ("radiolog", 1): Decision(
        "refused",
        "ksync quotes the same line with its right checksum 24; this copy's 23 does not verify",
        refused=("bad checksum: stated 23, computed 24",),
    ),
    ("radiolog", 2): Decision(
        "refused", "an illustrative example whose checksum does not verify", refused=("bad checksum: stated 4C",)
    ),
    ("radiolog", 3): Decision(
        "accepted",
        "I1: begin of transmission, fleet 100 device 4002, repeated",
        (Want(Kind.PTT, "fleetsync:100-4002", detail={"transmission": "begin"}),),
    ),
    ("radiolog", 4): Decision(
        "accepted",
        "gI1: an NXDN caller ID at the begin of transmission, unit U03001",
        (Want(Kind.PTT, "nxdn:U03001", detail={"protocol": "nxdn", "transmission": "begin"}),),
    ),
    ("radiolog", 5): Decision("reply", "STX 1 ETX: the target radio did not respond", reply_ok=False),
    # robo-w/kenwood-gps-converter's tests: NX radios' $PKNDS in STX frames (dPMR-style 9-digit ids).
    ("robow", 0): Decision(
        "accepted",
        "its stream test: one position of unit 004332199 (status 0028) at 2018-06-02 07:45:05; "
        "the frame ends with sequence number 42",
        (Want(Kind.BEACON, "nxdn:004332199", LAT_LINZ, LON_LINZ, "2018-06-02T07:45:05Z", {"sender_status": "28"}),),
    ),
    ("robow", 1): Decision(
        "accepted",
        "the same sentence after 5 bytes that belong to no sentence: the sentence is read, the bytes refused",
        (Want(Kind.BEACON, "nxdn:004332199", LAT_LINZ, LON_LINZ, "2018-06-02T07:45:05Z", {"sender_status": "28"}),),
        refused=("bytes outside any sentence",),
    ),
    ("robow", 2): Decision(
        "refused",
        "its stream test's sentences were edited (same place, new times): the checksum does not verify",
        refused=("bad checksum: stated 05, computed 0B",),
    ),
    ("robow", 3): Decision("refused", "edited, as above", refused=("bad checksum: stated 07, computed 09",)),
    ("robow", 4): Decision("refused", "edited, as above", refused=("bad checksum: stated 08, computed 06",)),
    ("robow", 5): Decision(
        "refused", "an NXDN unit's line with edited values", refused=("bad checksum: stated 06, computed 08",)
    ),
    # OH2LAK's "Kenwood NEXEDGE radio tracker" (2017): its examples of serial data.
    ("oh2lak", 0): Decision(
        "accepted",
        "FleetSync position of fleet 100 unit 1103",
        (Want(Kind.BEACON, "fleetsync:100-1103", 61 + 0.5898 / 60, 25 + 27.6523 / 60, "2023-02-13T11:15:00Z"),),
    ),
    ("oh2lak", 1): Decision(
        "accepted",
        "NXDN position of unit U00103",
        (Want(Kind.BEACON, "nxdn:U00103", 61 + 0.5899 / 60, 25 + 27.6527 / 60, "2023-02-13T10:39:00Z"),),
    ),
    ("oh2lak", 2): Decision(
        "accepted",
        "its status message: sender 101, destination 999, status 02 (columns counted from the STX)",
        (Want(Kind.STATUS, "nxdn:000000101", detail={"frame": "status", "to": "000000999", "status": "2"}),),
        framed=True,
    ),
    # A Django MQTT command's samples: one complete burst of a real NX radio, then a status frame.
    ("django", 0): Decision(
        "accepted",
        "$PKNID names the unit of the GPS data received (unit U00001205): it keyed up and identified itself",
        (Want(Kind.PTT, NX_1205, detail={"sentence": "PKNID"}),),
    ),
    ("django", 1): Decision(
        "accepted",
        "$PKNDS of unit U00001205 (an 8-digit id), date, variation and status left empty",
        (Want(Kind.BEACON, NX_1205, LAT_AHMEDABAD, LON_AHMEDABAD, "2023-02-13T16:09:02Z", {"sentence": "PKNDS"}),),
    ),
    ("django", 2): Decision(
        "accepted",
        "$PKNSH of unit U00001205",
        (Want(Kind.BEACON, NX_1205, LAT_AHMEDABAD, LON_AHMEDABAD, "2023-02-13T16:09:02Z", {"sentence": "PKNSH"}),),
    ),
    ("django", 3): Decision(
        "accepted",
        "the relayed fix as $GPRMC: alone it names no unit (in its burst it is U00001205's, see the burst test)",
        (Want(Kind.BEACON, None, LAT_AHMEDABAD, LON_AHMEDABAD, "2023-02-13T16:09:02Z", {"sentence": "GPRMC"}),),
    ),
    ("django", 4): Decision(
        "accepted",
        "the relayed fix as $GPGGA, likewise",
        (Want(Kind.BEACON, None, LAT_AHMEDABAD, LON_AHMEDABAD, "2023-02-13T16:09:02Z", {"sentence": "GPGGA"}),),
    ),
    ("django", 5): Decision(
        "accepted",
        "the relayed fix as $GPGLL, likewise",
        (Want(Kind.BEACON, None, LAT_AHMEDABAD, LON_AHMEDABAD, "2023-02-13T16:09:02Z", {"sentence": "GPGLL"}),),
    ),
    ("django", 6): Decision(
        "accepted",
        "an xE status like OH2LAK's with U-prefixed ids: U00001205 to U00001500, status 0012, sequence 02",
        (
            Want(
                Kind.STATUS,
                NX_1205,
                detail={"frame": "status", "to": "U00001500", "status": "12", "sequence": "02"},
            ),
        ),
        framed=True,
    ),
    # adrianmo/go-nmea's test: a $PKLSH whose last field has no comma after it; its checksum verifies.
    ("gonmea", 0): Decision(
        "accepted",
        "go-nmea asserts fleet 100, unit 2000, the position, time 02:27:32, status A",
        (Want(Kind.BEACON, "fleetsync:100-2000", 39 + 26.7952 / 60, -(120 + 0.5947 / 60), "2023-02-13T02:27:32Z"),),
    ),
}


def keyed(records: Sequence[dict[str, Any]]) -> dict[tuple[str, int], dict[str, Any]]:
    counts: dict[str, int] = {}
    out = {}
    for record in records:
        n = counts.get(record["source"], 0)
        counts[record["source"]] = n + 1
        out[(record["source"], n)] = record
    return out


def mit_samples() -> dict[tuple[str, int], dict[str, Any]]:
    return keyed(json.loads(MIT_SAMPLES.read_text())["records"])


def all_samples() -> dict[tuple[str, int], dict[str, Any]]:
    return keyed(json.loads(real_path("kenwood_serial", "kenwood_serial_samples.json").read_text())["records"])


def sample(key: tuple[str, int]) -> dict[str, Any]:
    return mit_samples()[key] if key[0] in COPYABLE else all_samples()[key]


def wire(record: dict[str, Any], decision: Decision) -> bytes:
    raw = bytes.fromhex(record["raw_hex"])
    assert raw == record["raw"].encode("latin-1")
    return b"\x02" + raw + b"\x03" if decision.framed else raw


def decode(data: bytes, cuts: Sequence[int] = ()) -> tuple[list[Output], KenwoodDecoder]:
    decoder = KenwoodDecoder()
    out: list[Output] = []
    for a, b in itertools.pairwise([0, *sorted(cuts), len(data)]):
        out += decoder.feed(data[a:b], NOW)
    return out + decoder.flush(), decoder


def on_the_wire(decoded: Decoded) -> Event:
    return decode_event(encode_event(Event.stamp(decoded, seq=1, gateway="gw-1", channel="data-1")))


def check(want: Want, got: Decoded) -> None:
    assert (got.kind, got.unit) == (want.kind, want.unit)
    if want.lat is not None:
        assert got.position is not None
        assert got.position.lat == pytest.approx(want.lat, abs=1e-8)
        assert got.position.lon == pytest.approx(want.lon, abs=1e-8)
        assert got.position.fix_time is not None
        assert got.position.fix_time.isoformat().replace("+00:00", "Z") == want.fix_time
    else:
        assert got.position is None
    for key, value in want.detail.items():
        assert got.detail.get(key) == value, key
    assert on_the_wire(got).unit == want.unit  # the unit fits the event schema


@pytest.mark.parametrize("key", sorted(DECISIONS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_sample_as_its_source_says(key: tuple[str, int]) -> None:
    decision = DECISIONS[key]
    record = sample(key)
    data = wire(record, decision)
    out, decoder = decode(data)
    events = [o for o in out if isinstance(o, Decoded)]
    refused = [o for o in out if isinstance(o, Rejected)]
    assert len(events) == len(decision.events), out
    for want, got in zip(decision.events, events, strict=True):
        check(want, got)
    assert len(refused) == len(decision.refused), refused
    for why, r in zip(decision.refused, refused, strict=True):
        assert why in r.reason
        assert r.protocol == "kenwood" and r.raw and r.raw[:64].hex(" ") in str(r)  # the bytes, in hex
    if decision.verdict == "reply":
        assert decoder.last_reply == Reply(ok=bool(decision.reply_ok)) and decoder.last_reply_time == NOW
    assert (decision.verdict == "refused") is (not events and decision.verdict != "reply")
    # Byte at a time: the same.
    assert decode(data, range(1, len(data)))[0] == out


def test_every_sample_has_a_decision() -> None:
    samples = all_samples()
    assert len(samples) == 33 and set(samples) == set(DECISIONS)
    copied = mit_samples()
    assert {k for k in samples if k[0] in COPYABLE} == set(copied)
    assert all(copied[k] == samples[k] for k in copied), "the copies in tests/data are unchanged"


def test_the_burst_of_a_real_nx_radio() -> None:
    """$PKNID, $PKNDS, $PKNSH, $GPRMC, $GPGGA, $GPGLL of unit U00001205 in one burst: who it is, and its
    position from each Kenwood sentence; the standard sentences are U00001205's too, and repeat that fix."""
    data = real_path("kenwood_serial", "django_nx_burst.txt").read_bytes()
    out, _ = decode(data)
    assert not [o for o in out if isinstance(o, Rejected)]
    ptt, pknds, pknsh = out
    assert isinstance(ptt, Decoded) and isinstance(pknds, Decoded) and isinstance(pknsh, Decoded)
    check(Want(Kind.PTT, NX_1205, detail={"sentence": "PKNID"}), ptt)
    for beacon, name in ((pknds, "PKNDS"), (pknsh, "PKNSH")):
        fix = Want(Kind.BEACON, NX_1205, LAT_AHMEDABAD, LON_AHMEDABAD, "2023-02-13T16:09:02Z", {"sentence": name})
        check(fix, beacon)
    assert decode(data, range(1, len(data)))[0] == out
    # Configured for $PKNID and the standard sentences only, the radio's fix is still U00001205's.
    lines = data.splitlines(keepends=True)
    standard_only = b"".join(line for line in lines if line.startswith((b"$PKNID", b"$GP")))
    _, standard_beacon = decode(standard_only)[0]
    assert isinstance(standard_beacon, Decoded)
    assert standard_beacon.unit == NX_1205 and standard_beacon.detail["identified_by"] == "PKNID"
    assert standard_beacon.position is not None and standard_beacon.position.source == "kenwood"


def stream(records: dict[tuple[str, int], dict[str, Any]]) -> bytes:
    return b"\r\n".join(wire(records[k], DECISIONS[k]) for k in sorted(records)) + b"\r\n"


MIT_STREAM = stream(mit_samples())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(MIT_STREAM)), max_size=40))
def test_the_copied_samples_in_one_stream_at_random_splits(cuts: list[int]) -> None:
    assert decode(MIT_STREAM, cuts)[0] == decode(MIT_STREAM)[0]


def test_all_samples_in_one_stream_at_random_splits() -> None:
    data = stream(all_samples())
    whole = decode(data)[0]
    assert decode(data, range(1, len(data)))[0] == whole

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=len(data)), max_size=60))
    def splits(cuts: list[int]) -> None:
        assert decode(data, cuts)[0] == whole

    splits()


# --- the public test vectors (pynmea2, radiolog) -----------------------------------------------


def vectors() -> list[dict[str, Any]]:
    return [json.loads(line) for line in VECTORS.read_text().splitlines() if line.strip()]


# Templates are frames the host builds, with placeholders: test_kenwood.py holds the encoders to them.
@pytest.mark.parametrize(
    "record", [r for r in vectors() if r["kind"] != "template"], ids=lambda r: r["source"].split(" ")[0]
)
def test_every_public_vector_through_the_data_port(record: dict[str, Any]) -> None:
    raw = record["raw"].encode("latin-1")
    out, decoder = decode(raw)
    events = [o for o in out if isinstance(o, Decoded)]
    refused = [o for o in out if isinstance(o, Rejected)]
    meaning = record["meaning"]
    if record["kind"] == "nmea_sentence":
        if not record["checksum"]["ok"]:
            [r] = refused
            assert r.raw == raw and "checksum" in r.reason
        elif record["sentence_type"] == "PKWDWPL":
            assert out == []  # a waypoint an amateur radio shows, not a unit's position
        else:
            [beacon] = events
            assert beacon.kind is Kind.BEACON and beacon.position is not None and not refused
    elif "caller ID" in meaning["frame"]:
        [ptt] = events
        assert ptt.kind is Kind.PTT and not refused
    elif meaning["frame"] == "radio response code":
        assert out == [] and decoder.last_reply == Reply(ok=meaning["code"] == "0")
    elif "poll" in meaning["frame"]:
        assert out == []  # the host's own command, echoed
    else:
        [text] = events
        assert text.kind is Kind.STATUS and text.detail["text"].startswith(meaning["message"])


def test_the_vectors_are_the_shared_set_unchanged() -> None:
    base = real_dir()
    shared = base.parent / "vectors" / "kenwood.jsonl" if base is not None else None
    if shared is None or not shared.exists():
        pytest.skip("the shared vector set is not here")
    assert shared.read_bytes() == VECTORS.read_bytes()
