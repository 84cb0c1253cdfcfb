"""CHIRP CSV import and export (bridge/chirp.py).

Checked against CHIRP itself: the exports are loaded back with CHIRP's own generic CSV driver (Debian's
``chirp`` package, run with the system's python3 by tests/chirp_reader.py) and compared with what CHIRP
loads from the original, channel by channel and field by field; every CSV of CHIRP's stock configurations
that Debian installs goes through it (read from the package, GPL: not copied here). The exports are also
held to the current CHIRP release's stricter rules, read from its source (chirp/drivers/generic_csv.py,
chirp/chirp_common.py): a non-empty power in watts since 2023, a listed tuning step, known modes and tones.
Plus a technician's file with what real files hold (location 0 and gaps, a location and names given twice,
'-' with an offset of 0, receive-only, every tone mode, power spellings), bad rows named by line and
column, and garbage that only ever gives errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.chirp import ChirpError, merge, parse_chirp, read_chirp, to_chirp, write_chirp
from bridge.plans import canonical

READER = Path(__file__).parents[1] / "chirp_reader.py"
STOCK = Path("/usr/share/chirp/stock_configs")  # where Debian's chirp package puts CHIRP's stock configurations

# As CHIRP writes it: every column, tones filled in even where unused, CRLF line ends.
HEADER = ("Location,Name,Frequency,Duplex,Offset,Tone,rToneFreq,cToneFreq,DtcsCode,DtcsPolarity,RxDtcsCode,"
          "CrossMode,Mode,TStep,Skip,Power,Comment,URCALL,RPT1CALL,RPT2CALL,DVCODE")
SAMPLE = (
    f"{HEADER}\r\n"
    "0,PATROL 1,146.520000,,0.000000,TSQL,88.5,100.0,023,NN,023,Tone->Tone,NFM,5.00,,5.0W,city patrol,,,,\r\n"
    "1,RPT2,145.290000,-,0.600000,DTCS,88.5,88.5,047,NN,047,Tone->Tone,FM,5.00,,5.0W,,,,,\r\n"
    "2,Fire,453.100000,split,458.100000,Tone,127.3,88.5,023,NN,023,Tone->Tone,FM,12.50,S,1.0W,,,,,\r\n"
    "3,Listen,162.550000,off,0.000000,,88.5,88.5,023,NN,023,Tone->Tone,AM,5.00,,50W,,,,,\r\n"
)
# A technician's file with what real CHIRP files hold (written for this test): location 0 and gaps, location
# 2 given twice (CHIRP keeps the later row there), names given twice and none, '-' with an offset of 0,
# receive-only, every tone mode, power as CHIRP writes it and as people do, steps, scan skip and priority,
# comments with trailing spaces, commas and accents, a comment line.
QUIRKS = (
    f"{HEADER}\n"
    "# district 4, programmed 2026-11\n"
    "0,PATROL 1,146.520000,,0.000000,TSQL,88.5,100.0,023,NN,023,Tone->Tone,NFM,12.50,P,5.0W,city patrol  ,,,,\n"
    "2,PATROL 2,146.540000,-,0.000000,Tone,123.0,88.5,023,NN,023,Tone->Tone,NFM,12.50,,5,,,,,\n"
    "2,PATROL 2,146.560000,,0.000000,TSQL-R,88.5,136.5,023,NN,023,Tone->Tone,NFM,6.25,,0.5 W,,,,,\n"
    "5,RPT *N,145.290000,-,0.600000,DTCS,88.5,88.5,047,NR,023,Tone->Tone,FM,5.00,S,50W,\"north, hill\",,,,\n"
    "6,RPT S,442.100000,+,5.000000,DTCS-R,88.5,88.5,754,RN,023,Tone->Tone,FM,25.00,,12.5W,,,,,\n"
    "7,,453.100000,split,458.100000,Cross,127.3,88.5,023,NN,411,Tone->DTCS,FM,12.50,,25W,,,,,\n"
    "8,,453.200000,,0.000000,Cross,88.5,88.5,065,RN,023,DTCS->,FM,12.50,,25W,Zażółć ,,,,\n"
    "9,FIRE,154.280000,,0.000000,Cross,88.5,151.4,023,NN,023,->Tone,FM,5.00,,1500W,,,,,\n"
    "12,FIRE,154.300000,,0.000000,Cross,88.5,88.5,116,NR,243,DTCS->DTCS,FM,5.00,,0.1W,,,,,\n"
    "13,WX,162.550000,off,0.000000,,88.5,88.5,023,NN,023,Tone->Tone,FM,5.00,,,weather ,,,,\n"
    "20,AIR,121.500000,,0.000000,,88.5,88.5,023,NN,023,Tone->Tone,AM,8.33,,High,,,,,\n"
)


# --- CHIRP itself -----------------------------------------------------------------------------------

@cache
def _chirp_python() -> str | None:
    """A Python that has CHIRP: Debian's chirp package installs it for the system's python3."""
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and subprocess.run([candidate, "-c", "import chirp.drivers.generic_csv"],
                                        capture_output=True, timeout=60).returncode == 0:
            return candidate
    return None


@pytest.fixture
def chirp_python() -> str:
    python = _chirp_python()
    if python is None:
        if os.environ.get("CI"):
            pytest.fail("CHIRP is not installed (apt-get install chirp)")
        pytest.skip("CHIRP is not installed")
    return python


def chirp_loads(python: str, *paths: Path) -> list[dict[str, Any]]:
    """What CHIRP's generic CSV driver loads from each file: its memories and the rows it refused."""
    run = subprocess.run([python, str(READER), *map(str, paths)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return [json.loads(line) for line in run.stdout.splitlines()]


def on_air(m: dict[str, Any]) -> dict[str, Any]:
    """What a CHIRP memory makes the radio do, field by field: its number, name, receive and transmit
    frequencies, the tones its tone mode uses (chirp_common.split_tone_encode; TSQL-R uses cToneFreq and
    DTCS-R DtcsCode, as CHIRP's radio drivers read them), mode, step, scan, comment. A tone column the tone
    mode does not use is a placeholder, and an offset no duplex uses is none."""
    tx = {"off": None, "": m["freq"], "+": m["freq"] + m["offset"], "-": m["freq"] - m["offset"]}.get(
        m["duplex"], m["offset"])
    send, listen = {"Tone": ("Tone", ""), "TSQL": ("Tone", "Tone"), "TSQL-R": ("", "Tone"), "DTCS": ("DTCS", "DTCS"),
                    "DTCS-R": ("DTCS", "DTCS"), "Cross": tuple(m["cross_mode"].split("->")), "": ("", "")}[m["tmode"]]
    tones: dict[str, Any] = {"tmode": m["tmode"]}
    if m["tmode"] == "Cross":
        tones["cross_mode"] = m["cross_mode"]
    if m["tmode"] in ("TSQL", "TSQL-R"):
        tones["ctone"] = m["ctone"]
    else:
        tones |= {"rtone": m["rtone"]} if send == "Tone" else {"dtcs": m["dtcs"]} if send == "DTCS" else {}
        tones |= {"ctone": m["ctone"]} if listen == "Tone" else {"rx_dtcs": m["rx_dtcs"]} if listen == "DTCS" else {}
    if "DTCS" in (send, listen):
        tones["dtcs_polarity"] = m["dtcs_polarity"]
    return {"number": m["number"], "name": m["name"], "rx": m["freq"], "tx": tx, **tones, "mode": m["mode"],
            "tuning_step": m["tuning_step"], "skip": m["skip"], "comment": m["comment"]}


# The current CHIRP release's rules for a CSV row (chirp/drivers/generic_csv.py ATTR_MAP and chirp_common):
# a Power column is read by parse_power, which refuses an empty or unreadable power (since 2023).
CURRENT_MODES = {"WFM", "FM", "NFM", "AM", "NAM", "DV", "USB", "LSB", "CW", "RTTY", "DIG", "PKT", "NCW", "NCWR",
                 "CWR", "P25", "Auto", "RTTYR", "FSK", "FSKR", "DMR", "DN"}
CURRENT_STEPS = {5.0, 6.25, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 50.0, 100.0, 125.0, 200.0, 9.0, 1.0, 2.5}
CURRENT_CROSS = {"Tone->Tone", "DTCS->", "->DTCS", "Tone->DTCS", "DTCS->Tone", "->Tone", "DTCS->DTCS", "Tone->"}


def current_power_w(text: str) -> float | None:
    """chirp_common.parse_power: watts, all digits or a number with an optional W; None where it refuses."""
    if text.isdigit():
        return float(text)
    m = re.match(r"^\s*([0-9.]+)\s*([Ww]?)\s*$", text)
    try:
        return float(m.group(1)) if m else None
    except ValueError:
        return None


def current_chirp_refuses(text: str) -> list[str]:
    """Every row of a CSV that the current CHIRP release would refuse, and why."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, problems = rows[0], []
    for line, cells in enumerate(rows[1:], start=2):
        row = dict(zip(header, cells, strict=True))

        def bad(column: str, why: str, row: dict[str, str] = row, line: int = line) -> None:
            problems.append(f"line {line}, {column} {row.get(column)!r}: {why}")

        if current_power_w(row["Power"]) is None:
            bad("Power", "parse_power refuses it")
        if float(row["TStep"]) not in CURRENT_STEPS:
            bad("TStep", "not in TUNING_STEPS")
        if row["Mode"] not in CURRENT_MODES:
            bad("Mode", "not in MODES")
        if row["Duplex"] not in ("", "+", "-", "split", "off"):
            bad("Duplex", "not a duplex")
        if row["Tone"] not in ("", "Tone", "TSQL", "DTCS", "DTCS-R", "TSQL-R", "Cross"):
            bad("Tone", "not in TONE_MODES")
        if row["CrossMode"] not in CURRENT_CROSS:
            bad("CrossMode", "not in CROSS_MODES")
        for column in ("rToneFreq", "cToneFreq"):
            if not 50 < float(row[column]) < 300:
                bad(column, "VALIDTONE refuses it")
        for column in ("DtcsCode", "RxDtcsCode"):
            if not re.fullmatch(r"[0-7]{1,3}", str(int(row[column]))):
                bad(column, "not in ALL_DTCS_CODES")
        if row["DtcsPolarity"] not in ("NN", "NR", "RN", "RR") or row["Skip"] not in ("", "S", "P"):
            bad("DtcsPolarity", "polarity or skip not valid")
        if int(row["Location"]) < 0 or not re.fullmatch(r"\d+(\.\d{1,6})?", row["Frequency"]):
            bad("Frequency", "location or frequency not valid")
    return problems


def assert_chirp_loads_the_same(python: str, original: Path, tmp_path: Path) -> None:
    """Import ``original``, export it, and check that CHIRP loads from the export what it loads from the
    original (at each location, field by field), plus the rows CHIRP itself would have lost, which the
    import moved to free locations and said so; and that the export passes the current CHIRP's rules
    with the power CHIRP reads from the original (its default, 50 W, where none)."""
    imported = read_chirp(original.read_text(encoding="utf-8-sig"))
    canonical(imported.channels)  # a valid plan as it stands
    exported = tmp_path / f"{original.stem}.export.csv"
    exported.write_text(to_chirp(imported.channels), encoding="utf-8")
    text = exported.read_text(encoding="utf-8")
    assert current_chirp_refuses(text) == []
    before, after = chirp_loads(python, original, exported)
    assert after["errors"] == []
    moved = [n for n in imported.notes if "moves to location" in n]
    assert len(after["memories"]) == len(before["memories"]) + len(moved)
    read_back = {m["number"]: on_air(m) for m in after["memories"]}
    for m in before["memories"]:
        # A step the current CHIRP does not offer is left to its default (and said so by the import).
        step = {} if m["tuning_step"] in CURRENT_STEPS else {"tuning_step": 5.0}
        assert read_back[m["number"]] == on_air(m) | step, m["number"]
    originals = {int(r["Location"]): r for r in _rows(original.read_text(encoding="utf-8-sig"))}
    for m in before["memories"]:  # the power CHIRP's current release reads from each file
        given = originals[m["number"]].get("Power")
        want = 50.0 if given is None or not current_power_w(given) else current_power_w(given)
        assert current_power_w(_rows(text)[_index(text, m["number"])]["Power"]) == want


def _rows(text: str) -> list[dict[str, str]]:
    import csv
    import io

    return [r for r in csv.DictReader(io.StringIO(text, newline="")) if not r["Location"].startswith("#")]


def _index(text: str, location: int) -> int:
    return next(i for i, r in enumerate(_rows(text)) if int(r["Location"]) == location)


# --- import ------------------------------------------------------------------------------------------

def test_a_chirp_sample_becomes_plan_channels() -> None:
    channels = parse_chirp(SAMPLE)
    assert channels == [
        {"location": 0, "rx_mhz": 146.52, "ctcss_hz": 100.0, "mode": "NFM", "step_khz": 5.0, "power_w": 5.0,
         "comment": "city patrol", "name": "PATROL-1", "radio_name": "PATROL 1"},
        {"location": 1, "rx_mhz": 145.29, "tx_mhz": 144.69, "dcs_code": "047", "mode": "FM", "step_khz": 5.0,
         "power_w": 5.0, "name": "RPT2"},
        {"location": 2, "rx_mhz": 453.1, "tx_mhz": 458.1, "tone_mode": "Tone", "tx_ctcss_hz": 127.3, "mode": "FM",
         "step_khz": 12.5, "skip": "S", "power_w": 1.0, "name": "Fire"},
        {"location": 3, "rx_mhz": 162.55, "receive_only": True, "mode": "AM", "step_khz": 5.0, "power_w": 50.0,
         "name": "Listen"},
    ]
    canonical(channels)  # a valid plan as it stands


def test_round_trip_through_chirp_keeps_the_radio_fields() -> None:
    channels = parse_chirp(SAMPLE)
    text = to_chirp(channels)
    assert text.splitlines()[0] == HEADER
    assert parse_chirp(text) == channels
    rows = text.splitlines()
    assert rows[1].split(",")[:2] == ["0", "PATROL 1"]  # the radio's name, at its location
    assert rows[2].split(",")[3:5] == ["-", "0.600000"]  # a repeater pair, as CHIRP writes one
    assert rows[3].split(",")[3:5] == ["+", "5.000000"]  # the UHF repeater offset
    assert to_chirp([{"name": "x", "rx_mhz": 146.52, "tx_mhz": 446.0}]).splitlines()[1].split(",")[3:5] == [
        "split", "446.000000"]  # an odd pair


def test_power_is_kept_and_a_default_is_written_where_none_was_given() -> None:
    """Item 6: CHIRP refuses a row without a power since 2023; each channel's power goes through the plan,
    and a channel without one is written at CHIRP's own default, 50 W."""
    spelled = {"5.0W": 5.0, "5": 5.0, "0.5 W": 0.5, "50W": 50.0, "12.5W": 12.5, "1500W": 1500.0, "0.1W": 0.1}
    rows = "".join(f"{i},c{i},146.5{i}0000,,0,,88.5,88.5,023,NN,023,Tone->Tone,FM,5.00,,{power},,,,,\r\n"
                   for i, power in enumerate(spelled))
    channels = parse_chirp(f"{HEADER}\r\n{rows}")
    assert [c["power_w"] for c in channels] == list(spelled.values())
    written = [r["Power"] for r in _rows(to_chirp(channels))]
    assert written == ["5.0W", "5.0W", "0.5W", "50W", "12.5W", "1500W", "0.1W"]  # CHIRP's spelling where exact
    assert [current_power_w(w) for w in written] == list(spelled.values())
    plan_made_here = to_chirp([{"name": "patrol-9", "rx_mhz": 146.52}, {"name": "io-box"}])
    assert [r["Power"] for r in _rows(plan_made_here)] == ["50W"]
    assert current_chirp_refuses(plan_made_here) == []
    old_export = plan_made_here.replace(",50W,", ",,")  # what pttbridge wrote before: CHIRP refuses every row
    assert current_chirp_refuses(old_export) == ["line 2, Power '': parse_power refuses it"]


def test_a_power_chirp_would_not_read_is_noted_and_written_as_its_default() -> None:
    imported = read_chirp(QUIRKS)
    by_line = {c["name"]: c for c in imported.channels}
    assert "power_w" not in by_line["WX"] and "power_w" not in by_line["AIR"]
    assert "line 12, column Power: empty (CHIRP refuses that since 2023); exported as CHIRP's default, 50W" \
        in imported.notes
    assert "line 13, column Power: 'High' is no power in watts (CHIRP since 2023 reads e.g. 5W); exported as " \
        "CHIRP's default, 50W" in imported.notes
    assert parse_chirp(f"{HEADER}\n1,A,146.52,,0,,88.5,88.5,023,NN,023,Tone->Tone,FM,5.00,,0W,,,,,\n") == [
        {"location": 1, "rx_mhz": 146.52, "mode": "FM", "step_khz": 5.0, "name": "A"}]  # CHIRP: 0 W is its default


def test_receive_only_stays_receive_only() -> None:
    """Item 7: Duplex 'off' is a receive-only channel through import, the plan and export."""
    [listen] = [c for c in parse_chirp(SAMPLE) if c["name"] == "Listen"]
    assert listen["receive_only"] is True and "tx_mhz" not in listen
    assert canonical([listen])[0]["receive_only"] is True
    assert _rows(to_chirp([listen]))[0]["Duplex"] == "off"
    with pytest.raises(ValueError, match="a receive-only channel has no transmit frequency"):
        canonical([{**listen, "tx_mhz": 162.4}])


@pytest.mark.parametrize(("row", "plan", "columns"), [
    ("Tone,123.0,88.5,023,NN,023,Tone->Tone", {"tone_mode": "Tone", "tx_ctcss_hz": 123.0},
     {"Tone": "Tone", "rToneFreq": "123.0"}),
    ("TSQL,88.5,100.0,023,NN,023,Tone->Tone", {"ctcss_hz": 100.0}, {"Tone": "TSQL", "cToneFreq": "100.0"}),
    ("TSQL-R,88.5,136.5,023,NN,023,Tone->Tone", {"tone_mode": "TSQL-R", "ctcss_hz": 136.5},
     {"Tone": "TSQL-R", "cToneFreq": "136.5"}),
    ("DTCS,88.5,88.5,047,NR,023,Tone->Tone", {"dcs_code": "047", "dcs_polarity": "NR"},
     {"Tone": "DTCS", "DtcsCode": "047", "DtcsPolarity": "NR"}),
    ("DTCS-R,88.5,88.5,754,NN,023,Tone->Tone", {"tone_mode": "DTCS-R", "dcs_code": "754"},
     {"Tone": "DTCS-R", "DtcsCode": "754"}),
    ("Cross,127.3,88.5,023,NN,411,Tone->DTCS",
     {"tone_mode": "Cross", "cross_mode": "Tone->DTCS", "tx_ctcss_hz": 127.3, "rx_dcs_code": "411"},
     {"Tone": "Cross", "CrossMode": "Tone->DTCS", "rToneFreq": "127.3", "RxDtcsCode": "411"}),
    ("Cross,88.5,88.5,065,RN,023,DTCS->", {"tone_mode": "Cross", "cross_mode": "DTCS->", "dcs_code": "065",
                                           "dcs_polarity": "RN"},
     {"Tone": "Cross", "CrossMode": "DTCS->", "DtcsCode": "065", "DtcsPolarity": "RN"}),
    ("Cross,88.5,151.4,023,NN,023,->Tone", {"tone_mode": "Cross", "cross_mode": "->Tone", "ctcss_hz": 151.4},
     {"Tone": "Cross", "CrossMode": "->Tone", "cToneFreq": "151.4"}),
    ("Cross,67.0,254.1,023,NN,023,Tone->Tone",
     {"tone_mode": "Cross", "cross_mode": "Tone->Tone", "tx_ctcss_hz": 67.0, "ctcss_hz": 254.1},
     {"Tone": "Cross", "CrossMode": "Tone->Tone", "rToneFreq": "67.0", "cToneFreq": "254.1"}),
    ("Cross,88.5,88.5,116,NR,243,DTCS->DTCS",
     {"tone_mode": "Cross", "cross_mode": "DTCS->DTCS", "dcs_code": "116", "rx_dcs_code": "243", "dcs_polarity": "NR"},
     {"Tone": "Cross", "CrossMode": "DTCS->DTCS", "DtcsCode": "116", "RxDtcsCode": "243", "DtcsPolarity": "NR"}),
    (",110.9,110.9,023,NN,023,Tone->Tone", {}, {"Tone": "", "rToneFreq": "88.5"}),  # an unused tone is no tone
])
def test_every_tone_mode_is_kept(row: str, plan: dict[str, Any], columns: dict[str, str]) -> None:
    """Item 8: Tone (a transmitted tone only) stays Tone, not TSQL, and so does every tone mode of CHIRP
    with the columns it uses."""
    [channel] = parse_chirp(f"{HEADER}\n1,C,146.520000,,0.000000,{row},FM,5.00,,5W,,,,,\n")
    tones = {k: v for k, v in channel.items() if k in (
        "tone_mode", "tx_ctcss_hz", "ctcss_hz", "dcs_code", "rx_dcs_code", "dcs_polarity", "cross_mode")}
    assert tones == plan
    [written] = _rows(to_chirp([channel]))
    assert {k: written[k] for k in columns} == columns
    assert parse_chirp(to_chirp([channel])) == [channel]


def test_a_tone_the_tone_mode_does_not_use_is_refused_by_the_plan() -> None:
    with pytest.raises(ValueError, match=r"channels\[0\]: tx_ctcss_hz: not used with tone_mode TSQL"):
        canonical([{"name": "a", "rx_mhz": 146.52, "tone_mode": "TSQL", "ctcss_hz": 100.0, "tx_ctcss_hz": 88.5}])
    with pytest.raises(ValueError, match=r"rx_dcs_code: tone_mode Cross Tone->DTCS needs it"):
        canonical([{"name": "a", "rx_mhz": 146.52, "tone_mode": "Cross", "cross_mode": "Tone->DTCS",
                    "tx_ctcss_hz": 88.5}])


def test_a_real_file_is_imported_whole_and_every_adjustment_is_said_row_by_row() -> None:
    """Item 9: what CHIRP accepts, the import accepts, and it tells the technician what it changed."""
    imported = read_chirp(QUIRKS)
    names = [c["name"] for c in imported.channels]
    assert names == ["PATROL-1", "PATROL-2", "PATROL-2-2", "RPT-N", "RPT-S", "ch7", "ch8", "FIRE", "FIRE-2", "WX",
                     "AIR"]
    assert [c["location"] for c in imported.channels] == [0, 21, 2, 5, 6, 7, 8, 9, 12, 13, 20]
    assert [c.get("radio_name") for c in imported.channels] == [
        "PATROL 1", "PATROL 2", "PATROL 2", "RPT *N", "RPT S", "", "", None, "FIRE", None, None]
    patrol_2 = imported.channels[1]
    assert "tx_mhz" not in patrol_2 and patrol_2["rx_mhz"] == 146.54  # '-' with offset 0: simplex
    said = "\n".join(imported.notes)
    for expected in (
        "lines 3-4, 6-7, column Name: spelled as a plan name (one MQTT topic level: 'RPT 2' is RPT-2); the radio's "
        "name kept",
        "line 4, column Duplex: '-' to the receive frequency (Offset 0.000000): simplex",
        "line 4, column Location: 2 is also line 5's, which CHIRP keeps there; this channel moves to location 21",
        "line 5, column Name: a second channel named 'PATROL 2'; named 'PATROL-2-2' in the plan, the radio's name "
        "kept",
        "lines 8-9, column Name: empty; named 'ch' and its location in the plan (ch7 ...)",
        "line 11, column Name: a second channel named 'FIRE'; named 'FIRE-2' in the plan",
        "line 13, column TStep: 8.33 kHz is no step CHIRP offers; left to its default, 5 kHz",
    ):
        assert expected in said
    first = [int(re.match(r"lines? (\d+)", n).group(1)) for n in imported.notes]  # type: ignore[union-attr]
    assert first == sorted(first)  # row by row, in the file's order
    canonical(imported.channels)


def test_a_round_trip_keeps_step_location_and_comment_spaces() -> None:
    """Item 10: what CHIRP keeps, the plan keeps: tuning step, location numbers (gaps, 0) and comments as
    written, trailing spaces, commas and accents too."""
    channels = parse_chirp(QUIRKS)
    assert [c.get("step_khz") for c in channels] == [12.5, 12.5, 6.25, 5.0, 25.0, 12.5, 12.5, 5.0, 5.0, 5.0, None]
    assert [c.get("comment") for c in channels if "comment" in c] == ["city patrol  ", "north, hill", "Zażółć ",
                                                                      "weather "]
    assert [c.get("skip") for c in channels][:4] == ["P", None, None, "S"]
    again = parse_chirp(to_chirp(channels))
    assert again == [{"step_khz": 5.0, "power_w": 50.0} | c for c in channels]  # CHIRP's defaults, written
    assert parse_chirp(to_chirp(again)) == again


def test_bad_rows_are_named_by_line_and_column() -> None:
    bad = "\r\n".join([
        HEADER,
        "0,A,146.52x,,0,,88.5,88.5,023,NN,023,,FM,5.00,,,,,,,",
        "1,B,146.52,,0,TSQL,88.5,101.0,023,NN,023,,FM,5.00,,,,,,,",
        "2,C,146.52,,0,DTCS,88.5,88.5,089,NN,023,,FM,5.00,,,,,,,",
        "3,D,146.52,,0,,88.5,88.5,023,NN,023,,SSTV,5.00,,,,,,,",
        "4,E,146.52,*,0,,88.5,88.5,023,NN,023,,FM,5.00,,,,,,,",
        "5,A,146.52,,0,Cross,88.5,88.5,023,NN,023,Tone=>DTCS,FM,5.00,,,,,,,",
        "-6,F,146.52,,0,,88.5,88.5,023,NN,023,,FM,5.00,,,,,,,",
        "7,G,146.52,,0,,88.5,88.5,023,NN,023,,FM,5.00,X,,,,,,",
        "8,H,146.52,,0,TSQL,88.5,x,023,NN,023,,FM,5.00,,,,,,,",
    ])
    with pytest.raises(ChirpError) as caught:
        parse_chirp(bad)
    assert caught.value.errors == [
        "line 2, column Frequency: expected MHz, e.g. 146.520000, got '146.52x'",
        "line 3, column cToneFreq: 101.0 Hz is no standard CTCSS tone (67.0, 69.3, 71.9, ... 254.1)",
        "line 4, column DtcsCode: String should match pattern '^[0-7]{3}$'",
        "line 5, column Mode: expected one of CHIRP's modes (WFM, FM, NFM, AM, NAM, DV, USB, LSB, CW, RTTY, DIG, PKT, "
        "NCW, NCWR, CWR, P25, Auto, RTTYR, FSK, FSKR, DMR, DN), got 'SSTV'",
        "line 6, column Duplex: expected '', '+', '-', 'split' or 'off', got '*'",
        "line 7, column CrossMode: expected one of Tone->Tone, DTCS->, ->DTCS, Tone->DTCS, DTCS->Tone, ->Tone, "
        "DTCS->DTCS, Tone->, got 'Tone=>DTCS'",
        "line 8, column Location: expected a memory number (0, 1, 2 ...), got '-6'",
        "line 9, column Skip: expected '', S (skipped) or P (priority), got 'X'",
        "line 10, column cToneFreq: expected a tone in Hz, e.g. 100.0, got 'x'",
    ]


def test_not_a_chirp_file() -> None:
    with pytest.raises(ChirpError, match="line 1: not a CHIRP CSV: no Frequency column"):
        parse_chirp("Name,Freq\nA,146.52\n")
    with pytest.raises(ChirpError, match="no header row"):
        parse_chirp("\n\n# nothing\n")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=400)
       | st.lists(st.sampled_from(["Location,Name,Frequency,Tone,cToneFreq,Mode,Duplex,Offset,Power,TStep\n", "1,",
                                   "a b", "146.52", ",", "TSQL", "nan", "-1", "\n", '"', "split", "DTCS", "1e309",
                                   "\x00", "\r", "Cross", "off", "5W", "#", " MHz"]), max_size=40).map("".join))
def test_garbage_gives_channels_or_errors_only(text: str) -> None:
    try:
        imported = read_chirp(text)
    except ChirpError as exc:
        assert exc.errors and all(e.startswith("line ") for e in exc.errors)
        return
    canonical(imported.channels)  # whatever it accepts is a valid plan
    assert all(isinstance(n, str) and n for n in imported.notes)
    exported = to_chirp(imported.channels)
    assert current_chirp_refuses(exported) == []  # and CHIRP's current release reads its export
    # The first export fills in CHIRP's defaults (power, step, mode); after that, export and import agree.
    again = parse_chirp(exported)
    assert [(c["name"], c["location"], c["rx_mhz"], c.get("tx_mhz")) for c in again] == [
        (c["name"], c["location"], c["rx_mhz"], c.get("tx_mhz")) for c in imported.channels]
    assert parse_chirp(to_chirp(again)) == again


def test_frequencies_finer_than_a_hertz_are_rounded_so_export_and_import_agree() -> None:
    # Found by bench/fuzz: 145.29009999 was kept, exported as 145.290100, and read back different.
    text = SAMPLE.replace("145.290000,-,0.600000", "145.29009999,-,0.60000001")
    channels = parse_chirp(text)
    assert channels[1]["rx_mhz"] == 145.2901 and channels[1]["tx_mhz"] == 144.6901
    assert parse_chirp(to_chirp(channels)) == channels


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 1300.0), st.floats(0.1, 1300.0) | st.none()), min_size=1, max_size=5))
def test_export_then_import_gives_the_same_channels(pairs: list[tuple[float, float | None]]) -> None:
    rows = "".join(f"{i},ch{i},{rx!r},{'' if tx is None else 'split'},{0.0 if tx is None else tx!r},,,,,,,,FM,5,,5W"
                   "\r\n" for i, (rx, tx) in enumerate(pairs))
    channels = parse_chirp(HEADER + "\r\n" + rows)
    assert parse_chirp(to_chirp(channels)) == channels


def test_a_split_to_the_receive_frequency_is_simplex_and_said_so() -> None:
    # Found by the property above: tx_mhz == rx_mhz was kept, exported as simplex and read back without it.
    imported = read_chirp(SAMPLE.replace("453.100000,split,458.100000", "453.100000,split,453.100000"))
    fire = imported.channels[2]
    assert fire["rx_mhz"] == 453.1 and "tx_mhz" not in fire
    assert "line 4, column Duplex: 'split' to the receive frequency (Offset 453.100000): simplex" in imported.notes


# --- export and merge --------------------------------------------------------------------------------

def test_channels_without_a_frequency_are_left_out_and_an_import_keeps_the_drivers() -> None:
    plan: list[dict[str, Any]] = [{"name": "PATROL-1", "rx_mhz": 150.0, "location": 3,
             "drivers": [{"type": "audio", "device": "pulse", "decoders": ["dtmf"]}]},
            {"name": "io-box"}, {"name": "yard", "rx_mhz": 151.0, "location": 1}]
    exported = write_chirp(plan)
    assert [r["Name"] for r in _rows(exported.text)] == ["PATROL-1", "yard"]
    assert exported.notes == ["channel io-box: no rx_mhz, so no radio memory; left out"]
    notes: list[str] = []
    merged = merge(plan, parse_chirp(SAMPLE), notes)
    assert merged[0]["drivers"] == plan[0]["drivers"] and merged[0]["rx_mhz"] == 146.52
    assert merged[0]["location"] == 0 and merged[0]["radio_name"] == "PATROL 1"
    assert [c["name"] for c in merged] == ["PATROL-1", "io-box", "yard", "RPT2", "Fire", "Listen"]
    assert "location" not in merged[2]  # the CSV's RPT2 is memory 1 now
    assert notes == ["channel yard: location 1 is now RPT2's; it moves after the highest at export"]
    assert [r["Location"] for r in _rows(to_chirp(merged))] == ["0", "4", "1", "2", "3"]
    canonical(merged)


def test_a_mode_chirp_has_no_name_for_is_written_as_dig_and_said_so() -> None:
    exported = write_chirp([{"name": "nx-1", "rx_mhz": 451.0, "mode": "NXDN"}])
    assert _rows(exported.text)[0]["Mode"] == "DIG"
    assert exported.notes == ["channel nx-1: CHIRP has no mode NXDN; written as DIG"]
    assert current_chirp_refuses(exported.text) == []


def test_repeated_locations_in_a_plan_are_refused_with_the_rest() -> None:
    with pytest.raises(ValueError, match="plan: channels") as caught:
        canonical([{"name": "a", "rx_mhz": 146.52, "location": 4}, {"name": "b", "rx_mhz": -1, "location": 4}])
    assert str(caught.value).splitlines() == [
        "plan: channels[1].rx_mhz: Input should be greater than 0 (got -1)",
        "plan: channels[1].location: radio memory locations must be unique, repeated: 4 (also channels[0])",
    ]


# --- CHIRP's own driver --------------------------------------------------------------------------------

def test_chirps_own_driver_loads_the_exports_with_the_same_channels(chirp_python: str, tmp_path: Path) -> None:
    for name, text in (("sample.csv", SAMPLE), ("quirks.csv", QUIRKS)):
        original = tmp_path / name
        original.write_text(text, encoding="utf-8")
        assert_chirp_loads_the_same(chirp_python, original, tmp_path)


def test_chirps_own_driver_reads_the_tone_modes_as_the_plan_has_them(chirp_python: str, tmp_path: Path) -> None:
    exported = tmp_path / "tones.csv"
    exported.write_text(to_chirp(parse_chirp(QUIRKS)), encoding="utf-8")
    [loaded] = chirp_loads(chirp_python, exported)
    at = {m["number"]: on_air(m) for m in loaded["memories"]}
    assert (at[21]["name"], at[21]["tmode"], at[21]["rtone"], at[21]["tx"]) == ("PATROL 2", "Tone", 123.0, 146540000)
    assert at[13]["tx"] is None  # receive only
    memory = {m["number"]: m for m in loaded["memories"]}
    assert (memory[7]["tmode"], memory[7]["rtone"], at[7]["tx"]) == ("Cross", 127.3, 458100000)
    assert (memory[12]["tmode"], memory[12]["dtcs"], memory[12]["dtcs_polarity"]) == ("Cross", 116, "NR")
    # Debian's 2022 driver reads neither CrossMode nor RxDtcsCode (nor Power): columns CHIRP's CSV gained
    # later. What the current release reads from them is in the text.
    rows = {int(r["Location"]): r for r in _rows(exported.read_text(encoding="utf-8"))}
    assert (rows[7]["CrossMode"], rows[7]["RxDtcsCode"], rows[12]["CrossMode"], rows[12]["RxDtcsCode"]) == (
        "Tone->DTCS", "411", "DTCS->DTCS", "243")


def _stock_files() -> list[Path]:
    return sorted(STOCK.glob("*.csv")) if STOCK.is_dir() else []


@pytest.mark.parametrize("original", _stock_files() or [STOCK / "(none installed)"], ids=lambda p: p.stem)
def test_every_stock_configuration_of_chirp_imports_and_chirp_loads_the_export_alike(
        original: Path, chirp_python: str, tmp_path: Path) -> None:
    """Item 10's goal, on every CSV of CHIRP's stock configurations that Debian's package installs."""
    if not original.exists():
        if os.environ.get("CI"):
            pytest.fail(f"no CHIRP stock configurations in {STOCK} (apt-get install chirp)")
        pytest.skip(f"no CHIRP stock configurations in {STOCK}")
    assert_chirp_loads_the_same(chirp_python, original, tmp_path)
