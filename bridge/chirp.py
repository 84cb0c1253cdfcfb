"""CHIRP CSV: a channel list exchanged with CHIRP, the radio programming tool (sans-I/O: text in, text out).

CHIRP's generic CSV has a header row naming its columns; the ones that matter here::

    Location,Name,Frequency,Duplex,Offset,Tone,rToneFreq,cToneFreq,DtcsCode,DtcsPolarity,Mode,TStep,Skip,Comment
    1,patrol-1,146.520000,,0.000000,TSQL,100.0,100.0,023,NN,NFM,5.00,,city patrol
    2,RPT 2,145.290000,-,0.600000,DTCS,88.5,88.5,023,NN,FM,5.00,,

    Frequency   receive frequency, MHz
    Duplex      '' simplex, '+'/'-' transmit Offset MHz above/below, 'split' transmit on Offset (MHz),
                'off' receive only (no transmit frequency here)
    Tone        '' none, 'Tone' (rToneFreq on transmit), 'TSQL' (cToneFreq both ways), 'TSQL-R' (rToneFreq),
                'DTCS' / 'DTCS-R' (DtcsCode), 'Cross' (not supported: refused)
    Mode        FM, NFM, AM, DMR, ... (config.schema.RADIO_MODES)

Other columns (Power, TStep, Skip, D-STAR calls...) are ignored on import and written with neutral values.
A row maps to a plan channel's radio fields (``rx_mhz``, ``tx_mhz``, ``mode``, ``ctcss_hz``, ``dcs_code``,
``comment``); a channel name must be one MQTT topic level, so CHIRP's names have their spaces turned into
dashes. Every row is validated by the configuration's own schema; errors name the line and the column.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from config.schema import ChannelConfig

COLUMNS = ("Location", "Name", "Frequency", "Duplex", "Offset", "Tone", "rToneFreq", "cToneFreq", "DtcsCode",
           "DtcsPolarity", "RxDtcsCode", "CrossMode", "Mode", "TStep", "Skip", "Power", "Comment",
           "URCALL", "RPT1CALL", "RPT2CALL", "DVCODE")
RADIO_FIELDS = ("rx_mhz", "tx_mhz", "mode", "ctcss_hz", "dcs_code", "comment")
SPLIT_ABOVE_MHZ = 10.0  # a transmit offset larger than this is written as 'split' (an odd pair, not a repeater)

# Which CSV column a schema key came from, so that a schema error names the column the technician wrote.
_COLUMN_OF = {"name": "Name", "rx_mhz": "Frequency", "tx_mhz": "Offset", "mode": "Mode", "ctcss_hz": "rToneFreq",
              "dcs_code": "DtcsCode", "comment": "Comment"}


class ChirpError(ValueError):
    """A CSV that cannot be imported; ``errors`` holds one message per problem, each naming line and column."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def _name(raw: str, location: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_.\-]", "", re.sub(r"\s+", "-", raw.strip()))[:64]
    return name or f"ch{re.sub(r'[^0-9]', '', location)[:8] or 'x'}"


def _mhz(text: str, line: int, column: str, errors: list[str]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        errors.append(f"line {line}, column {column}: expected MHz, e.g. 146.520000, got {text!r}")
        return None
    if not math.isfinite(value) or value <= 0:
        errors.append(f"line {line}, column {column}: expected a positive frequency in MHz, got {text!r}")
        return None
    # Whole hertz, as CHIRP writes them: finer digits are noise, and an export of the import would
    # otherwise differ from it (found by fuzzing).
    return round(value, 6)


def _row(row: Mapping[str, str], line: int, errors: list[str]) -> dict[str, Any] | None:
    def cell(column: str) -> str:
        return (row.get(column) or "").strip()

    found: list[str] = []
    channel: dict[str, Any] = {"name": _name(cell("Name"), cell("Location"))}
    rx = _mhz(cell("Frequency"), line, "Frequency", found)
    duplex = cell("Duplex").lower()
    if rx is not None:
        channel["rx_mhz"] = rx
        if duplex in ("+", "-", "split"):
            offset = _mhz(cell("Offset"), line, "Offset", found)
            tx = None if offset is None else round(offset if duplex == "split" else rx + offset if duplex == "+"
                                                   else rx - offset, 6)
            if tx is not None and tx != rx:  # a split to rx itself is simplex, as an export writes it (fuzzing)
                channel["tx_mhz"] = tx
        elif duplex not in ("", "off"):
            found.append(f"line {line}, column Duplex: expected '', '+', '-', 'split' or 'off', got {cell('Duplex')!r}")
    tone = cell("Tone")
    tone_column = {"Tone": "rToneFreq", "TSQL": "cToneFreq", "TSQL-R": "rToneFreq"}.get(tone)
    if tone_column is not None:
        try:
            channel["ctcss_hz"] = float(cell(tone_column))
        except ValueError:
            found.append(f"line {line}, column {tone_column}: expected a tone in Hz, got {cell(tone_column)!r}")
    elif tone in ("DTCS", "DTCS-R"):
        code = cell("DtcsCode")
        channel["dcs_code"] = code.zfill(3) if code.isdigit() else code
    elif tone:
        found.append(f"line {line}, column Tone: expected '', Tone, TSQL, TSQL-R, DTCS or DTCS-R, got {tone!r}")
    if cell("Mode"):
        channel["mode"] = cell("Mode")
    if cell("Comment"):
        channel["comment"] = cell("Comment")
    if not found:
        try:
            ChannelConfig.model_validate(channel)
        except ValidationError as exc:
            for err in exc.errors():
                msg = re.sub(r"^Value error, ", "", str(err["msg"]))
                # A check across fields names no key: the only one on these fields is about the tone.
                column = _COLUMN_OF.get(str(err["loc"][0]), str(err["loc"][0])) if err["loc"] else "Tone"
                found.append(f"line {line}, column {column}: {msg}")
    errors.extend(found)
    return None if found else channel


def parse_chirp(text: str) -> list[dict[str, Any]]:
    """The channels of a CHIRP CSV, as plan channel tables (name and radio fields only).
    Raises ChirpError naming every bad line and column; nothing is half-imported."""
    errors: list[str] = []
    channels: list[dict[str, Any]] = []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = reader.fieldnames or []
        missing = [c for c in ("Name", "Frequency") if c not in header]
        if missing:
            raise ChirpError([f"line 1: not a CHIRP CSV: no {' or '.join(missing)} column in the header"])
        names: set[str] = set()
        for row in reader:
            line = reader.line_num
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue  # a blank line
            channel = _row(row, line, errors)
            if channel is None:
                continue
            if channel["name"] in names:
                errors.append(f"line {line}, column Name: a second channel named {channel['name']!r}")
                continue
            names.add(channel["name"])
            channels.append(channel)
    except csv.Error as exc:
        errors.append(f"line {reader.line_num}: not CSV: {exc}")
    if errors:
        raise ChirpError(errors)
    return channels


def _tone_cell(hz: float) -> str:
    return f"{hz:.1f}"


def to_chirp(channels: Iterable[Mapping[str, Any] | ChannelConfig]) -> str:
    """A CHIRP CSV of the channels that have a receive frequency (others, e.g. a wired I/O box's, have no
    place in a radio's memory)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    location = 0
    for item in channels:
        c = item if isinstance(item, ChannelConfig) else ChannelConfig.model_validate(item)
        if c.rx_mhz is None:
            continue
        location += 1
        duplex, offset = "", 0.0
        if c.tx_mhz is not None and round(c.tx_mhz - c.rx_mhz, 6) != 0:
            diff = round(c.tx_mhz - c.rx_mhz, 6)
            if abs(diff) > SPLIT_ABOVE_MHZ:
                duplex, offset = "split", c.tx_mhz
            else:
                duplex, offset = ("+" if diff > 0 else "-"), abs(diff)
        # CHIRP wants every tone column filled, used or not; 88.5 Hz and 023 are its own defaults.
        tone, hz, dcs = "", 88.5, "023"
        if c.ctcss_hz is not None:
            tone, hz = "TSQL", c.ctcss_hz
        elif c.dcs_code is not None:
            tone, dcs = "DTCS", c.dcs_code
        writer.writerow([location, c.name, f"{c.rx_mhz:.6f}", duplex, f"{offset:.6f}", tone, _tone_cell(hz),
                         _tone_cell(hz), dcs, "NN", dcs, "Tone->Tone", c.mode or "FM", "5.00", "", "",
                         c.comment or "", "", "", "", ""])
    return out.getvalue()


def merge(plan: list[dict[str, Any]], imported: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Imported radio fields laid over a plan: a channel of the same name keeps its drivers, rules and
    transmit path and takes the CSV's frequencies and tones; new names are added as channels of their own."""
    out = [dict(c) for c in plan]
    by_name = {c.get("name"): c for c in out}
    for new in imported:
        mine = by_name.get(new["name"])
        if mine is None:
            out.append(dict(new))
            continue
        for key in RADIO_FIELDS:
            mine.pop(key, None)
        mine.update({k: v for k, v in new.items() if k in RADIO_FIELDS})
    return out
