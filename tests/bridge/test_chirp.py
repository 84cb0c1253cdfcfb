"""CHIRP CSV import and export (bridge/chirp.py): a sample written after CHIRP's generic CSV format, a
round trip through a channel plan, bad rows named by line and column, and garbage that only ever gives
errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.chirp import ChirpError, merge, parse_chirp, to_chirp
from bridge.plans import canonical

# As CHIRP writes it: every column, tones filled in even where unused, CRLF line ends.
SAMPLE = (
    "Location,Name,Frequency,Duplex,Offset,Tone,rToneFreq,cToneFreq,DtcsCode,DtcsPolarity,RxDtcsCode,"
    "CrossMode,Mode,TStep,Skip,Power,Comment,URCALL,RPT1CALL,RPT2CALL,DVCODE\r\n"
    "0,PATROL 1,146.520000,,0.000000,TSQL,88.5,100.0,023,NN,023,Tone->Tone,NFM,5.00,,5.0W,city patrol,,,,\r\n"
    "1,RPT2,145.290000,-,0.600000,DTCS,88.5,88.5,047,NN,047,Tone->Tone,FM,5.00,,5.0W,,,,,\r\n"
    "2,Fire,453.100000,split,458.100000,Tone,127.3,88.5,023,NN,023,Tone->Tone,FM,12.50,S,1.0W,,,,,\r\n"
    "3,Listen,162.550000,off,0.000000,,88.5,88.5,023,NN,023,Tone->Tone,AM,5.00,,,,,,,\r\n"
)


def test_a_chirp_sample_becomes_plan_channels() -> None:
    channels = parse_chirp(SAMPLE)
    assert channels == [
        {"name": "PATROL-1", "rx_mhz": 146.52, "ctcss_hz": 100.0, "mode": "NFM", "comment": "city patrol"},
        {"name": "RPT2", "rx_mhz": 145.29, "tx_mhz": 144.69, "dcs_code": "047", "mode": "FM"},
        {"name": "Fire", "rx_mhz": 453.1, "tx_mhz": 458.1, "ctcss_hz": 127.3, "mode": "FM"},
        {"name": "Listen", "rx_mhz": 162.55, "mode": "AM"},
    ]
    canonical(channels)  # a valid plan as it stands


def test_round_trip_through_chirp_keeps_the_radio_fields() -> None:
    channels = parse_chirp(SAMPLE)
    text = to_chirp(channels)
    assert text.splitlines()[0].startswith("Location,Name,Frequency,Duplex,Offset,Tone,rToneFreq,cToneFreq")
    assert parse_chirp(text) == channels
    rows = text.splitlines()
    assert rows[2].split(",")[3:5] == ["-", "0.600000"]  # a repeater pair, as CHIRP writes one
    assert rows[3].split(",")[3:5] == ["+", "5.000000"]  # the UHF repeater offset
    assert to_chirp([{"name": "x", "rx_mhz": 146.52, "tx_mhz": 446.0}]).splitlines()[1].split(",")[3:5] == [
        "split", "446.000000"]


def test_channels_without_a_frequency_are_left_out_and_an_import_keeps_the_drivers() -> None:
    plan = [{"name": "PATROL-1", "rx_mhz": 150.0, "drivers": [{"type": "audio", "device": "pulse",
                                                                "decoders": ["dtmf"]}]},
            {"name": "io-box"}]
    assert len(to_chirp(plan).splitlines()) == 2  # the header and PATROL-1; the I/O box has no frequency
    merged = merge(plan, parse_chirp(SAMPLE))
    assert merged[0]["drivers"] == plan[0]["drivers"] and merged[0]["rx_mhz"] == 146.52
    assert [c["name"] for c in merged] == ["PATROL-1", "io-box", "RPT2", "Fire", "Listen"]


def test_bad_rows_are_named_by_line_and_column() -> None:
    header = SAMPLE.splitlines()[0]
    bad = "\r\n".join([
        header,
        "0,A,146.52x,,0,,88.5,88.5,023,NN,023,,FM,5.00,,,,,,,",
        "1,B,146.52,,0,TSQL,88.5,101.0,023,NN,023,,FM,5.00,,,,,,,",
        "2,C,146.52,,0,DTCS,88.5,88.5,089,NN,023,,FM,5.00,,,,,,,",
        "3,D,146.52,,0,,88.5,88.5,023,NN,023,,SSTV,5.00,,,,,,,",
        "4,E,146.52,*,0,,88.5,88.5,023,NN,023,,FM,5.00,,,,,,,",
        "5,A,146.52,,0,,88.5,88.5,023,NN,023,,FM,5.00,,,,,,,",
    ])
    with pytest.raises(ChirpError) as caught:
        parse_chirp(bad)
    errors = caught.value.errors
    assert errors[0].startswith("line 2, column Frequency: expected MHz")
    assert errors[1].startswith("line 3, column rToneFreq: 101.0 Hz is no standard CTCSS tone")
    assert errors[2].startswith("line 4, column DtcsCode:")
    assert errors[3].startswith("line 5, column Mode:")
    assert errors[4].startswith("line 6, column Duplex:")
    assert len(errors) == 5  # line 7's A is no second A: line 2's never made it


def test_not_a_chirp_file() -> None:
    with pytest.raises(ChirpError, match="line 1: not a CHIRP CSV: no Frequency column"):
        parse_chirp("Name,Freq\nA,146.52\n")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400)
       | st.lists(st.sampled_from(["Location,Name,Frequency,Tone,cToneFreq,Mode,Duplex,Offset\n", "1,", "a b",
                                   "146.52", ",", "TSQL", "nan", "-1", "\n", '"', "split", "DTCS", "1e309",
                                   "\x00", "\r"]), max_size=40).map("".join))
def test_garbage_gives_channels_or_errors_only(text: str) -> None:
    try:
        channels = parse_chirp(text)
    except ChirpError as exc:
        assert exc.errors and all(e.startswith("line ") for e in exc.errors)
        return
    canonical(channels)  # whatever it accepts is a valid plan


def test_frequencies_finer_than_a_hertz_are_rounded_so_export_and_import_agree() -> None:
    # Found by bench/fuzz: 145.29009999 was kept, exported as 145.290100, and read back different.
    text = SAMPLE.replace("145.290000,-,0.600000", "145.29009999,-,0.60000001")
    channels = parse_chirp(text)
    assert channels[1]["rx_mhz"] == 145.2901 and channels[1]["tx_mhz"] == 144.6901
    assert parse_chirp(to_chirp(channels)) == channels


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0.1, 1300.0), st.floats(0.1, 1300.0) | st.none()), min_size=1, max_size=5))
def test_export_then_import_gives_the_same_channels(pairs: list[tuple[float, float | None]]) -> None:
    rows = "".join(f"{i},ch{i},{rx!r},{'' if tx is None else 'split'},{0.0 if tx is None else tx!r},,,,,,,,FM\r\n"
                   for i, (rx, tx) in enumerate(pairs))
    channels = parse_chirp(SAMPLE.splitlines()[0] + "\r\n" + rows)
    assert parse_chirp(to_chirp(channels)) == channels


def test_a_split_to_the_receive_frequency_is_simplex() -> None:
    # Found by the property above: tx_mhz == rx_mhz was kept, exported as simplex and read back without it.
    text = SAMPLE.replace("453.100000,split,458.100000", "453.100000,split,453.100000")
    fire = parse_chirp(text)[2]
    assert fire["rx_mhz"] == 453.1 and "tx_mhz" not in fire
