"""NMEA decoder: gpsd's receiver logs against gpsd's own output, Kenwood sentences against pynmea2's
and radiolog's examples, and the framing properties every protocol keeps (whole = byte by byte =
random splits; garbage rejected, good input around it kept)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.base import Output, ProtocolDecoder, Rejected
from drivers.nmea import BURST, KNOT_MPS, MAX_LINE, NmeaDecoder, checksum
from drivers.registry import create_protocol
from gateway.events import Decoded, Event, Kind, decode_event, encode_event

DATA = Path(__file__).resolve().parents[1] / "data"
GPSD = DATA / "nmea"
KENWOOD = DATA / "kenwood" / "kenwood.jsonl"
NOW = datetime(2023, 2, 13, 13, 0, tzinfo=UTC)
LATER = NOW + timedelta(seconds=10)


def sentence(body: str) -> bytes:
    """``$body*hh\\r\\n`` with the right checksum."""
    return f"${body}*{checksum(body):02X}\r\n".encode()


def decode(data: bytes, *, now: datetime = NOW, **options: Any) -> list[Output]:
    decoder = NmeaDecoder(**options)
    return decoder.feed(data, now) + decoder.tick(now + timedelta(seconds=10))


def beacons(outputs: Sequence[Output]) -> list[Decoded]:
    return [o for o in outputs if isinstance(o, Decoded)]


def rejects(outputs: Sequence[Output]) -> list[Rejected]:
    return [o for o in outputs if isinstance(o, Rejected)]


def feed_split(data: bytes, cuts: Sequence[int], *, decoder: ProtocolDecoder | None = None) -> list[Output]:
    decoder = decoder or NmeaDecoder()
    out: list[Output] = []
    bounds = [0, *sorted(cuts), len(data)]
    for a, b in itertools.pairwise(bounds):
        out += decoder.feed(data[a:b], NOW)
    return out + decoder.tick(LATER)


def on_the_wire(decoded: Decoded) -> Event:
    """The event as the bridge will read it: proves the beacon passes the schema's validation."""
    return decode_event(encode_event(Event.stamp(decoded, seq=1, gateway="gw-1", channel="patrol-1")))


# --- gpsd regression logs ---------------------------------------------------------------------

# What a user sees per log: beacons, sentences rejected for their checksum (and the gpsd log says so
# too: they are not echoed in the .chk), header comment lines rejected as not NMEA.
GPSD_LOGS = {
    # log: (beacons, bad sentences, header lines)
    "beidou-gb": (2, 0, 9),
    "ch-4711": (7, 0, 12),
    "com-1289": (14, 1, 10),
    "firefly-II": (23, 23, 5),
    "garmin15x": (7, 0, 9),
    "magellan-ec10": (21, 0, 14),
    "nmea-fuzzy-cases": (14, 0, 8),
    "nmea-rtk": (122, 0, 9),
    "sirfstarv-nmea": (59, 0, 10),
    "ublox-f9p-hpnmea": (9, 0, 12),
}


def gpsd_fixes(name: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """gpsd's last TPV with a position per fix time, and the TPVs it sent without a time."""
    timed: dict[str, dict[str, Any]] = {}
    timeless: list[dict[str, Any]] = []
    for line in (GPSD / f"{name}.log.chk").read_text().splitlines():
        if line.startswith('{"class":"TPV"'):
            tpv = json.loads(line)
            if "lat" in tpv and tpv.get("mode", 0) >= 2:
                if "time" in tpv:
                    timed[tpv["time"]] = tpv
                else:
                    timeless.append(tpv)
    return timed, timeless


def iso(t: datetime | None) -> str:
    assert t is not None
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("name", sorted(GPSD_LOGS))
def test_gpsd_log_gives_gpsd_fixes(name: str) -> None:
    raw = (GPSD / f"{name}.log").read_bytes()
    out = decode(raw, unit="gps:car-7")
    got = beacons(out)
    want_beacons, want_bad, want_header = GPSD_LOGS[name]

    lines = [line.rstrip("\r") for line in raw.decode("ascii").split("\n")]
    header = [line for line in lines if line.startswith("#")]
    echoed = {line for line in (GPSD / f"{name}.log.chk").read_text().splitlines() if line.startswith("$")}
    not_echoed = [line for line in lines if line.startswith("$") and line not in echoed]
    assert len(got) == want_beacons
    assert len(not_echoed) == want_bad and len(header) == want_header
    # Exactly the sentences gpsd refused, and every header line, are rejected; nothing else is.
    assert sorted(r.raw.decode() for r in rejects(out)) == sorted(header + not_echoed)

    by_time = {iso(b.position.fix_time if b.position else None): b for b in got}
    assert len(by_time) == len(got), "one beacon per fix"
    timed, timeless = gpsd_fixes(name)
    for when in timed:
        assert when in by_time, f"gpsd has a fix at {when}, we do not"
    for b in got:
        p = b.position
        assert p is not None
        tpv = timed.get(iso(p.fix_time))
        if tpv is None:  # gpsd reported this epoch before it knew the date: match it by position
            tpv = next(t for t in timeless if abs(t["lat"] - p.lat) < 1e-6 and abs(t["lon"] - p.lon) < 1e-6)
        assert p.lat == pytest.approx(tpv["lat"], abs=1e-6)
        assert p.lon == pytest.approx(tpv["lon"], abs=1e-6)
        if "altMSL" in tpv:
            assert p.alt_m == pytest.approx(tpv["altMSL"], abs=1e-3)
        if "speed" in tpv and p.speed_mps is not None:
            assert p.speed_mps == pytest.approx(tpv["speed"], abs=1e-3)  # gpsd prints 3 decimals
        if "track" in tpv:
            assert p.course_deg == pytest.approx(tpv["track"], abs=1e-4)
        assert b.kind is Kind.BEACON and b.unit == "gps:car-7" and p.source == "nmea"
        assert b.detail["protocol"] == "nmea" and b.detail["valid"] is True
        assert on_the_wire(b).position == p
    fix_times = [b.position.fix_time for b in got if b.position and b.position.fix_time]
    assert fix_times == sorted(fix_times)


@pytest.mark.parametrize("name", ["firefly-II", "com-1289", "magellan-ec10", "ch-4711"])
def test_gpsd_log_byte_by_byte_is_the_same(name: str) -> None:
    raw = (GPSD / f"{name}.log").read_bytes()
    assert feed_split(raw, range(1, len(raw))) == decode(raw)


def test_sirfstar_epoch_of_three_sentences_is_one_beacon() -> None:
    # GPGGA and GLGGA of the same second, then GNRMC: one beacon, altitude from the first GGA,
    # speed and date from RMC.
    raw = (GPSD / "sirfstarv-nmea.log").read_bytes()
    first = beacons(decode(raw))[0]
    assert first.detail["sentences"] == ["GPGGA", "GLGGA", "GNRMC"]
    assert first.position is not None
    assert first.position.fix_time == datetime(2019, 2, 5, 2, 9, 35, tzinfo=UTC)
    assert first.position.alt_m == 1123.9
    assert first.position.speed_mps == pytest.approx(0.04 * KNOT_MPS)
    assert first.detail["satellites"] == 8  # GPGGA's count, not GLGGA's


# --- Kenwood sentences (pynmea2 tests and kwd.py, radiolog) -------------------------------------


def kenwood_records() -> list[dict[str, Any]]:
    return [json.loads(line) for line in KENWOOD.read_text().splitlines() if line.strip()]


def sentence_records(ok: bool) -> list[dict[str, Any]]:
    return [r for r in kenwood_records() if r["kind"] == "nmea_sentence" and r["checksum"]["ok"] is ok]


def record_id(r: dict[str, Any]) -> str:
    return str(r["source"].split(" ")[0])


PYNMEA2_TESTS = [r for r in sentence_records(True) if "test_proprietary.py" in r["source"]]


@pytest.mark.parametrize("record", PYNMEA2_TESTS, ids=record_id)
def test_kenwood_sentence_gives_what_pynmea2_asserts(record: dict[str, Any]) -> None:
    out = decode(record["raw"].encode("latin-1") + b"\r\n")
    meaning = record["meaning"]
    if record["sentence_type"] == "PKWDWPL":
        assert out == []  # a waypoint, not a radio's position: ignored, not an error
        return
    [beacon] = out
    assert isinstance(beacon, Decoded) and beacon.position is not None
    p = beacon.position
    assert p.lat == pytest.approx(meaning["latitude"], abs=1e-9)
    assert p.lon == pytest.approx(meaning["longitude"], abs=1e-9)
    assert p.fix_time is not None and p.fix_time.timetz().isoformat() == meaning["timestamp"]
    if "datestamp" in meaning:
        assert p.fix_time.date().isoformat() == meaning["datestamp"]
    if "fleet" in meaning:
        assert beacon.unit == f"fleetsync:{meaning['fleet']}-{meaning['senderid']}"
    else:
        assert beacon.unit == f"nxdn:{meaning['senderid']}"
    if "senderstatus" in meaning:
        assert beacon.detail["sender_status"] == str(meaning["senderstatus"])
    unasserted = meaning.get("unasserted_fields_per_kwd_py", {})
    if "sog" in unasserted:
        assert p.speed_mps == pytest.approx(unasserted["sog"] * KNOT_MPS)
        assert p.course_deg == unasserted["cog"]
    assert beacon.detail["status"] == meaning["status"] == "A"
    assert beacon.detail["valid"] is meaning["is_valid"] is True
    assert beacon.detail["protocol"] == "kenwood" and p.source == "kenwood"
    assert on_the_wire(beacon).unit == beacon.unit


@pytest.mark.parametrize("record", [r for r in sentence_records(True) if "kwd.py" in r["source"]], ids=record_id)
def test_kwd_py_docstring_examples(record: dict[str, Any]) -> None:
    out = decode(record["raw"].encode("latin-1") + b"\r\n")
    if record["sentence_type"] == "PKWDWPL":
        assert out == []
        return
    [beacon] = beacons(out)
    assert beacon.position is not None
    assert beacon.position.lat == pytest.approx(record["meaning"]["latitude_derived"], abs=1e-8)
    assert beacon.position.lon == pytest.approx(record["meaning"]["longitude_derived"], abs=1e-8)


@pytest.mark.parametrize("record", sentence_records(False), ids=record_id)
def test_kenwood_sentences_with_wrong_checksums_are_rejected(record: dict[str, Any]) -> None:
    raw = record["raw"].encode("latin-1")
    [rejected] = decode(raw + b"\r\n")
    assert isinstance(rejected, Rejected) and rejected.raw == raw
    stated, computed = record["checksum"]["stated"], record["checksum"]["computed"]
    if stated == "??":
        assert "malformed checksum" in rejected.reason
    else:
        assert rejected.reason == f"bad checksum: stated {stated}, computed {computed}"


def with_checksum(raw: str) -> bytes:
    body = raw[1 : raw.rindex("*")]
    return sentence(body)


def test_placeholder_checksum_examples_decode_once_the_checksum_is_right() -> None:
    # kwd.py's $PKLDS docstring example, whose checksum is written '??' (the right one is 7E).
    [record] = [r for r in sentence_records(False) if r["raw"].startswith("$PKLDS,001235")]
    [beacon] = beacons(decode(with_checksum(record["raw"]), now=datetime(1998, 4, 11, 1, tzinfo=UTC)))
    meaning = record["meaning"]
    assert beacon.unit == "fleetsync:100-2000"
    assert beacon.position is not None
    assert beacon.position.lat == pytest.approx(meaning["latitude_derived"], abs=1e-8)
    assert beacon.position.lon == pytest.approx(meaning["longitude_derived"], abs=1e-8)
    assert beacon.position.speed_mps == pytest.approx(15.0 * KNOT_MPS)
    assert beacon.position.course_deg == 38.8
    assert beacon.position.fix_time == datetime(1998, 4, 11, 0, 12, 35, tzinfo=UTC)
    assert beacon.detail["sender_status"] == "15"


def test_radiolog_examples_once_their_checksums_are_fixed() -> None:
    raws = {r["raw"][:12]: r["raw"] for r in sentence_records(False) if "radiolog" in r["source"]}
    # "no data for west": half a position is an error that names the missing field.
    [rejected] = decode(with_checksum(raws["$PKLSH,2913."]))
    assert isinstance(rejected, Rejected) and "'lon'" in rejected.reason
    # V: a stale (or dead-GPS) position is still reported, marked not valid.
    [stale] = beacons(decode(with_checksum(raws["$PKLSH,3851."])))
    assert stale.unit == "fleetsync:100-1202" and stale.detail["valid"] is False and stale.detail["status"] == "V"
    assert stale.position is not None and stale.position.lat == pytest.approx(38.85555, abs=1e-8)
    [nxdn] = beacons(decode(with_checksum(raws["$PKNSH,3916."])))
    assert nxdn.unit == "nxdn:U01001" and nxdn.detail["valid"] is True


def test_kenwood_z_means_no_fix_and_gives_nothing() -> None:
    assert decode(sentence("PKLSH,4954.1474,N,11923.6044,W,122434,Z,100,1001,")) == []
    assert decode(sentence("PKLSH,,,,,122434,A,100,1001,")) == []


def test_kenwood_time_of_day_takes_the_date_from_now_across_midnight() -> None:
    raw = sentence("PKNSH,4954.1450,N,11923.6043,W,235958,A,U00002,")
    [b] = beacons(decode(raw, now=datetime(2023, 2, 14, 0, 0, 3, tzinfo=UTC)))
    assert b.position is not None and b.position.fix_time == datetime(2023, 2, 13, 23, 59, 58, tzinfo=UTC)


# --- NX radios: their id forms, $PKNID, one fix one beacon ---------------------------------------

NX_FIX = "PKNSH,2301.2967,N,07228.2519,E,160902,A,{},"
PKNID = sentence("PKNID,00,U00001205,207,00,")


@pytest.mark.parametrize(
    ("unit_id", "ok"),
    [
        ("U00001", True),  # NXDN, U + 5 digits
        ("U00001205", True),  # U + 8 digits, as a real NX radio's burst
        ("004332199", True),  # 9 digits, as robo-w's radios
        ("U0001205", False),
        ("1205", False),
        ("U000012055", False),
        ("u00001", False),
    ],
)
def test_nx_unit_ids_in_the_forms_radios_send(unit_id: str, ok: bool) -> None:
    [out] = decode(sentence(NX_FIX.format(unit_id)))
    if ok:
        assert isinstance(out, Decoded) and out.unit == f"nxdn:{unit_id}"
        assert on_the_wire(out).unit == out.unit
    else:
        assert isinstance(out, Rejected) and "field 'unit_id'" in out.reason and "9 digits" in out.reason


def test_sender_status_of_up_to_four_digits_is_a_number() -> None:
    body = "PKNDS,074505,A,4809.3040,N,01409.5561,E,000.0,,020618,,00,004332199,{},00,"
    [b] = beacons(decode(sentence(body.format("0028"))))
    assert b.detail["sender_status"] == "28" and b.unit == "nxdn:004332199"
    [rejected] = decode(sentence(body.format("12345")))
    assert isinstance(rejected, Rejected) and "'sender_status'" in rejected.reason


def test_pknid_is_who_and_the_standard_sentences_after_it_are_where() -> None:
    decoder = NmeaDecoder(unit="gps:base")
    ptt, beacon = decoder.feed(PKNID + sentence(RMC) + sentence(GGA), NOW)
    assert isinstance(ptt, Decoded) and ptt.kind is Kind.PTT and ptt.unit == "nxdn:U00001205"
    assert ptt.position is None and ptt.detail["sender_status"] == "207" and ptt.detail["version"] == "00"
    assert isinstance(beacon, Decoded) and beacon.kind is Kind.BEACON and beacon.unit == "nxdn:U00001205"
    assert beacon.detail["identified_by"] == "PKNID" and beacon.detail["sender_status"] == "207"
    assert beacon.detail["sentences"] == ["GPRMC", "GPGGA"] and beacon.position is not None
    assert beacon.position.source == "kenwood" and beacon.position.alt_m == 61.7
    # Its position came: the next fix is the gateway receiver's own again.
    later = sentence(RMC.replace("092750", "092751")) + sentence(GGA.replace("092750", "092751"))
    [own] = decoder.feed(later, NOW + timedelta(seconds=1))
    assert isinstance(own, Decoded) and own.unit == "gps:base" and own.position is not None
    assert own.position.source == "nmea"


def test_a_pknid_whose_sentences_never_came_names_no_later_fix() -> None:
    decoder = NmeaDecoder()
    [ptt] = decoder.feed(PKNID, NOW)
    assert isinstance(ptt, Decoded) and ptt.kind is Kind.PTT
    [fix] = decoder.feed(sentence(RMC) + sentence(GGA), NOW + BURST + timedelta(seconds=1))
    assert isinstance(fix, Decoded) and fix.unit is None and "identified_by" not in fix.detail


def test_the_standard_sentences_of_a_fix_a_kenwood_sentence_gave_add_no_beacon() -> None:
    pknds = sentence("PKNDS,160902,A,2301.2967,N,07228.2519,E,000.0,000.0,,,,U00001205,207,,")
    pknsh = sentence(NX_FIX.format("U00001205"))
    gga = sentence("GPGGA,160902,2301.2967,N,07228.2519,E,1,,,,,,,,")
    decoder = NmeaDecoder()

    def heard(data: bytes, now: datetime) -> list[Decoded]:
        return beacons(decoder.feed(data, now) + decoder.flush())  # flush: the GGA waits for an RMC

    # Every Kenwood sentence is heard; the $GPGGA only repeats the fix of the unit its $PKNID named.
    assert [(o.kind, o.detail["sentence"]) for o in heard(PKNID + pknds + pknsh + gga, NOW)] == [
        (Kind.PTT, "PKNID"),
        (Kind.BEACON, "PKNDS"),
        (Kind.BEACON, "PKNSH"),
    ]
    # Another unit's $PKNID with the same fix, or another sender status, is news.
    other = sentence("PKNID,00,U00001206,207,00,")
    assert [(o.kind, o.unit) for o in heard(other + gga, NOW)] == [
        (Kind.PTT, "nxdn:U00001206"),
        (Kind.BEACON, "nxdn:U00001206"),
    ]
    emergency = sentence("PKNID,00,U00001205,99,00,")
    assert [o.detail.get("sender_status") for o in heard(emergency + gga, NOW)] == ["99", "99"]
    # The same fix heard again past the burst is the radio answering again: reported.
    assert [o.kind for o in heard(PKNID + gga, NOW + BURST + timedelta(seconds=1))] == [Kind.PTT, Kind.BEACON]


def test_gll_is_a_fix_too() -> None:
    gll = "GPGLL,2301.2967,N,07228.2519,E,160902,A"
    [b] = beacons(decode(sentence(gll)))
    assert b.position is not None and b.position.lat == pytest.approx(23 + 1.2967 / 60)
    assert b.detail["sentences"] == ["GPGLL"]
    assert decode(sentence(gll.replace(",A", ",V"))) == []  # V: no valid fix
    # With RMC and GGA of the same second it adds nothing: one beacon.
    rmc_gga_gll = sentence(RMC) + sentence(GGA) + sentence("GPGLL,5321.6802,N,00630.3372,W,092750.000,A,A")
    assert len(beacons(decode(rmc_gga_gll))) == 1


def test_an_epoch_reported_later_has_the_time_of_its_last_sentence() -> None:
    decoder = NmeaDecoder()
    assert decoder.feed(sentence(RMC), NOW) == []
    [by_tick] = decoder.tick(NOW + timedelta(seconds=5))
    assert isinstance(by_tick, Decoded) and by_tick.time == NOW
    assert decoder.feed(sentence(RMC.replace("092750", "092751")), NOW + timedelta(seconds=6)) == []
    [by_flush] = decoder.flush()
    assert isinstance(by_flush, Decoded) and by_flush.time == NOW + timedelta(seconds=6)
    assert decoder.flush() == []


def test_the_end_of_input_ends_the_last_line() -> None:
    decoder = NmeaDecoder()
    assert decoder.feed(sentence(GGA).rstrip(), NOW) == []  # no line end yet: more may come
    [b] = decoder.flush()
    assert isinstance(b, Decoded) and b.time == NOW
    cut = NmeaDecoder()
    assert cut.feed(sentence(GGA)[:40], NOW) == []
    [rejected] = cut.flush()
    assert isinstance(rejected, Rejected) and rejected.raw == sentence(GGA)[:40]


# --- fixes of the gateway's own receiver ------------------------------------------------------

RMC = "GPRMC,092750.000,A,5321.6802,N,00630.3372,W,0.02,31.66,280511,,,A"
GGA = "GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,"


@pytest.mark.parametrize("order", [(RMC, GGA), (GGA, RMC)])
def test_rmc_and_gga_of_one_epoch_are_one_beacon(order: tuple[str, str]) -> None:
    decoder = NmeaDecoder(unit="gps:car-7")
    out = decoder.feed(b"".join(sentence(s) for s in order), NOW)
    [b] = out  # reported as soon as both are in, without waiting
    assert isinstance(b, Decoded) and b.position is not None
    assert b.unit == "gps:car-7" and b.kind is Kind.BEACON
    assert b.position.lat == pytest.approx(53 + 21.6802 / 60)
    assert b.position.lon == pytest.approx(-(6 + 30.3372 / 60))
    assert b.position.alt_m == 61.7
    assert b.position.speed_mps == pytest.approx(0.02 * KNOT_MPS)
    assert b.position.course_deg == 31.66
    assert b.position.fix_time == datetime(2011, 5, 28, 9, 27, 50, tzinfo=UTC)
    assert b.detail["status"] == "A" and b.detail["quality"] == 1 and b.detail["satellites"] == 8
    assert decoder.tick(LATER) == []


def test_rmc_only_receiver_gives_a_beacon_per_fix_and_tick_flushes_the_last() -> None:
    decoder = NmeaDecoder()
    first = sentence(RMC)
    second = sentence(RMC.replace("092750.000", "092751.000"))
    assert decoder.feed(first, NOW) == []  # a GGA of the same second may still come
    [b1] = beacons(decoder.feed(second, NOW + timedelta(seconds=1)))  # another second: the first is complete
    assert b1.position is not None and b1.position.fix_time == datetime(2011, 5, 28, 9, 27, 50, tzinfo=UTC)
    assert decoder.tick(NOW + timedelta(seconds=2)) == []  # pending exactly 1 s: not yet
    [b2] = beacons(decoder.tick(NOW + timedelta(seconds=2, milliseconds=1)))
    assert b2.position is not None and b2.position.alt_m is None
    assert decoder.tick(LATER) == []


@pytest.mark.parametrize(
    ("now", "fix_time"),
    [
        (datetime(2023, 2, 13, 9, 30, tzinfo=UTC), datetime(2023, 2, 13, 9, 27, 50, tzinfo=UTC)),
        (datetime(2023, 2, 14, 0, 0, 5, tzinfo=UTC), datetime(2023, 2, 14, 9, 27, 50, tzinfo=UTC)),
        (datetime(2023, 2, 13, 22, 0, tzinfo=UTC), datetime(2023, 2, 14, 9, 27, 50, tzinfo=UTC)),
    ],
)
def test_gga_only_takes_the_date_within_12_hours_of_now(now: datetime, fix_time: datetime) -> None:
    [b] = beacons(decode(sentence(GGA), now=now))
    assert b.position is not None and b.position.fix_time == fix_time
    assert b.detail["sentences"] == ["GPGGA"] and b.detail["status"] == "A"


def test_gga_only_across_midnight_both_ways() -> None:
    late = sentence(GGA.replace("092750.000", "235959.500"))
    [b] = beacons(decode(late, now=datetime(2023, 2, 14, 0, 0, 1, tzinfo=UTC)))
    assert b.position is not None and b.position.fix_time == datetime(2023, 2, 13, 23, 59, 59, 500000, tzinfo=UTC)
    early = sentence(GGA.replace("092750.000", "000001.000"))
    [b] = beacons(decode(early, now=datetime(2023, 2, 13, 23, 59, 58, tzinfo=UTC)))
    assert b.position is not None and b.position.fix_time == datetime(2023, 2, 14, 0, 0, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        "GPRMC,092750.000,V,5321.6802,N,00630.3372,W,0.02,31.66,280511,,,N",  # status V
        "GPRMC,092750.000,A,5321.6802,N,00630.3372,W,0.02,31.66,280511,,,N",  # mode N
        "GPGGA,092750.000,5321.6802,N,00630.3372,W,0,8,1.03,61.7,M,55.2,M,,",  # quality 0
        "GPGGA,092750.000,5321.6802,N,00630.3372,W,8,8,1.03,61.7,M,55.2,M,,",  # simulation
        "GPRMC,092750.000,A,,,,,,,280511,,,A",  # no position
    ],
)
def test_no_fix_gives_no_beacon(body: str) -> None:
    assert decode(sentence(body)) == []


def test_checksum_policy() -> None:
    bare = f"${RMC}\r\n".encode()
    [rejected] = decode(bare)
    assert isinstance(rejected, Rejected) and "no checksum" in rejected.reason
    assert len(beacons(decode(bare, require_checksum=False))) == 1
    lower = b"$PKNDS,114400,A,4954.1450,N,11923.6043,W,001.4,356.8,130223,19.20,W00,U00002,207,00,*2e\r\n"
    assert len(beacons(decode(lower))) == 1


@pytest.mark.parametrize("end", [b"\r\n", b"\n", b"\r"])
def test_line_ends(end: bytes) -> None:
    bodies = [RMC, RMC.replace("092750", "092751")]
    raw = b"".join(sentence(b).replace(b"\r\n", end) for b in bodies)
    assert len(beacons(decode(raw))) == 2
    assert rejects(decode(raw)) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("GPRMC,092750.000,A,53x1.6802,N,00630.3372,W,0.02,31.66,280511,,,A", "lat"),
        ("GPRMC,092750.000,A,5321.6802,N,00630.3372,W,fast,31.66,280511,,,A", "sog"),
        ("GPRMC,092750.000,A,5321.6802,N,00630.3372,W,0.02,31.66,310211,,,A", "date"),
        ("GPRMC,250000.000,A,5321.6802,N,00630.3372,W,0.02,31.66,280511,,,A", "time"),
        ("GPRMC,092750.000,A,5321.6802,Q,00630.3372,W,0.02,31.66,280511,,,A", "lat_dir"),
        ("GPRMC,092750.000,A,5321.6802,N,00630.3372,W,0.02,361.0,280511,,,A", "cog"),
        ("GPGGA,092750.000,5321.6802,N,00630.3372,W,one,8,1.03,61.7,M,55.2,M,,", "quality"),
        ("PKLSH,4954.1474,N,11923.6044,W,122434,A,1OO,1001,", "fleet"),
        ("PKNSH,4954.1474,N,11923.6044,W,122434,A,03001,", "unit_id"),
        ("PKLSH,4954.1474,N,11923.6044,W,122434,X,100,1001,", "status"),
    ],
)
def test_malformed_field_is_rejected_and_named(body: str, field: str) -> None:
    [rejected] = decode(sentence(body))
    assert isinstance(rejected, Rejected)
    assert f"field {field!r}" in rejected.reason and rejected.reason.startswith(body.split(",")[0])


@pytest.mark.parametrize(
    "body",
    [
        "GPRMC,092750.000,A,5321.6802,N",  # too few
        "GPGGA,092750.000,5321.6802,N,00630.3372,W,1,8,1.03,61.7,M,55.2,M,,,extra",  # too many
        "PKLSH,4954.1474,N,11923.6044,W,122434,A",
    ],
)
def test_wrong_field_count_is_rejected(body: str) -> None:
    [rejected] = decode(sentence(body))
    assert isinstance(rejected, Rejected) and "fields, expected" in rejected.reason


def test_other_sentences_are_ignored_not_rejected() -> None:
    raw = sentence("GPGSV,3,1,11,03,03,111,00,04,15,270,00,06,01,010,00,13,06,292,00") + sentence("PGRMT,GPS 15x,,")
    assert decode(raw) == []


def test_overlong_line_is_rejected_and_decoding_resumes_at_the_next_dollar() -> None:
    good = sentence(RMC)
    junk = b"$GPXXX," + b"9" * 200
    out = decode(junk + good)
    assert [type(o) for o in out] == [Rejected, Decoded]
    assert isinstance(out[0], Rejected) and len(out[0].raw) == MAX_LINE + 1 and "longer than" in out[0].reason

    # The limit is on the line, '$' and checksum included, line end excluded: 120 bytes pass.
    def padded(length: int) -> bytes:
        lat = "5321.6802".ljust(9 + length - len(sentence(RMC).rstrip()), "0")
        return sentence(RMC.replace("5321.6802", lat))

    assert len(padded(MAX_LINE).rstrip()) == MAX_LINE
    assert len(beacons(decode(padded(MAX_LINE)))) == 1
    [too_long] = decode(padded(MAX_LINE + 1))
    assert isinstance(too_long, Rejected) and "longer than" in too_long.reason


def test_sentence_cut_short_by_the_next_dollar() -> None:
    good = sentence(RMC)
    out = decode(good[:30] + good)
    assert [type(o) for o in out] == [Rejected, Decoded]
    assert isinstance(out[0], Rejected) and out[0].raw == good[:30]


def test_garbage_lines_are_rejected_blank_ones_are_not() -> None:
    out = decode(b"hello\r\n\r\n   \t\n\x00\x01" + sentence(RMC))
    assert [r.raw for r in rejects(out)] == [b"hello", b"\x00\x01"]
    assert len(beacons(out)) == 1


def test_non_ascii_and_control_bytes_in_a_sentence() -> None:
    for bad in (b"$GPRMC,\xff*00\r\n", b"$GPRMC,\x01*00\r\n"):
        [rejected] = decode(bad)
        assert isinstance(rejected, Rejected)


def test_options_come_through_the_registry() -> None:
    decoder = create_protocol("nmea", {"unit": "gps:car-7", "require_checksum": False})
    assert isinstance(decoder, NmeaDecoder) and decoder.unit == "gps:car-7"
    with pytest.raises(ValueError, match="unit"):
        create_protocol("nmea", {"unit": "car 7"})
    with pytest.raises(ValueError, match="no_such_option"):
        create_protocol("nmea", {"no_such_option": 1})


# --- properties: chunking never matters; garbage never hides good input -------------------------

GOOD_SENTENCES = [
    sentence("PKLSH,4954.1474,N,11923.6044,W,122434,A,100,1001,"),
    sentence("PKNSH,4954.1450,N,11923.6043,W,114400,V,U00002,"),
    sentence("PKLDS,122434,A,4954.1474,N,11923.6044,W,001.1,194.9,130223,19.20,W00,100,1001,80,00,"),
    sentence(RMC) + sentence(GGA),
    sentence(RMC.replace("092750", "092751")),
    sentence(GGA.replace("092750", "092752")),
]
MIXED = (
    b"# a header\n"
    + (GPSD / "com-1289.log").read_bytes()[-1500:]
    + b"".join(GOOD_SENTENCES)
    + b"\x00\xffjunk$GPRMC,1\r\n"
    + (GPSD / "firefly-II.log").read_bytes()[-800:]
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(MIXED)), max_size=40))
def test_random_splits_give_the_same_output(cuts: list[int]) -> None:
    assert feed_split(MIXED, cuts) == feed_split(MIXED, [])


def test_byte_by_byte_gives_the_same_output() -> None:
    whole = feed_split(MIXED, [])
    assert len(beacons(whole)) > 10 and len(rejects(whole)) > 3
    assert feed_split(MIXED, range(1, len(MIXED))) == whole


GARBAGE = st.binary(max_size=60)


@settings(max_examples=100, deadline=None)
@given(st.lists(GARBAGE, min_size=len(GOOD_SENTENCES) + 1, max_size=len(GOOD_SENTENCES) + 1))
def test_garbage_between_sentences_never_hides_them(garbage: list[bytes]) -> None:
    pieces = zip(GOOD_SENTENCES, garbage[1:], strict=True)
    stream = garbage[0] + b"".join(good + junk for good, junk in pieces) + b"\n"
    out = feed_split(stream, [])
    assert beacons(out) == beacons(feed_split(b"".join(GOOD_SENTENCES), []))
    # Each piece of garbage with something else than whitespace in it is at least one rejection
    # (a piece with a '$' may also be one, cut short by the next sentence: not counted here).
    assert len(rejects(out)) >= sum(1 for junk in garbage if junk.strip() and b"$" not in junk)
    assert all(r.protocol == "nmea" and r.reason and r.raw for r in rejects(out))


def test_a_whole_event_round_trip_for_every_good_sentence() -> None:
    for b in beacons(feed_split(b"".join(GOOD_SENTENCES), [])):
        assert on_the_wire(b).detail == dict(b.detail)
