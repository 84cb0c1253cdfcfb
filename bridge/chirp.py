"""CHIRP CSV: a channel list exchanged with CHIRP, the radio programming tool (sans-I/O: text in, text out).

CHIRP's generic CSV (chirp/drivers/generic_csv.py, chirp_common.Memory.CSV_FORMAT) has a header row naming
its columns, each row one memory of the radio::

    Location,Name,Frequency,Duplex,Offset,Tone,rToneFreq,cToneFreq,DtcsCode,DtcsPolarity,RxDtcsCode,CrossMode,
        Mode,TStep,Skip,Power,Comment,URCALL,RPT1CALL,RPT2CALL,DVCODE
    0,PATROL 1,146.520000,,0.000000,TSQL,88.5,100.0,023,NN,023,Tone->Tone,NFM,12.50,,5.0W,city patrol ,,,,
    7,RPT2,145.290000,-,0.600000,Cross,88.5,88.5,047,NN,023,DTCS->Tone,FM,5.00,S,50W,,,,,

    column        plan key                  what CHIRP means by it
    Location      location                  memory number (gaps and 0 allowed)
    Name          name, radio_name          free text; the plan's name is one MQTT topic level, so 'PATROL 1'
                                            becomes PATROL-1 and the radio's spelling is kept in radio_name
    Frequency     rx_mhz                    receive frequency, MHz (or '500 kHz', '146.52 MHz')
    Duplex        tx_mhz, receive_only      '' simplex, '+'/'-' transmit Offset MHz above/below, 'split'
                                            transmit on Offset, 'off' receive only
    Tone          tone_mode                 '', Tone, TSQL, TSQL-R, DTCS, DTCS-R, Cross (config.schema)
    rToneFreq     tx_ctcss_hz               the tone sent in Tone, and in Cross from Tone
    cToneFreq     ctcss_hz                  the tone of TSQL (both ways), TSQL-R, Cross to Tone
    DtcsCode      dcs_code                  DTCS, DTCS-R (both ways), Cross from DTCS
    RxDtcsCode    rx_dcs_code               Cross to DTCS
    DtcsPolarity  dcs_polarity              NN, NR, RN, RR (sent, listened for)
    CrossMode     cross_mode                Tone->Tone, DTCS->, ->DTCS, Tone->DTCS, ...
    Mode          mode                      FM, NFM, AM, DMR, ... (config.schema.CHIRP_MODES)
    TStep         step_khz                  tuning step, kHz
    Skip          skip                      '', S (skipped in scans), P (priority)
    Power         power_w                   watts: 50W, 5.0W, 5 (CHIRP refuses an empty or unreadable power
                                            since 2023: an export writes CHIRP's own default, 50W)
    Comment       comment                   free text, kept as written (trailing spaces too)

A tone column that the row's tone mode does not use holds a placeholder (CHIRP writes 88.5 and 023): it is
not kept, and an export writes CHIRP's placeholders there. D-STAR calls (URCALL ...) are not kept.

An import takes whatever CHIRP itself loads and says, row by row, what it adjusted (``ChirpImport.notes``):
names made into plan names or made unique, a location given twice (CHIRP keeps the later row there; the
earlier moves to a free one), '-' with an offset of 0 (simplex), a power CHIRP would not read. What CHIRP
refuses too (a frequency that is no number, an unknown tone mode) is an error naming the line and column,
and then nothing of the file is imported. Every row is validated by the configuration's own schema.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from config.schema import CHIRP_MODES, TUNING_STEPS_KHZ, ChannelConfig

COLUMNS = ("Location", "Name", "Frequency", "Duplex", "Offset", "Tone", "rToneFreq", "cToneFreq", "DtcsCode",
           "DtcsPolarity", "RxDtcsCode", "CrossMode", "Mode", "TStep", "Skip", "Power", "Comment",
           "URCALL", "RPT1CALL", "RPT2CALL", "DVCODE")
DSTAR_COLUMNS = ("URCALL", "RPT1CALL", "RPT2CALL", "DVCODE")
RADIO_FIELDS = ("rx_mhz", "tx_mhz", "receive_only", "power_w", "mode", "tone_mode", "tx_ctcss_hz", "ctcss_hz",
                "dcs_code", "rx_dcs_code", "dcs_polarity", "cross_mode", "step_khz", "skip", "location",
                "radio_name", "comment")
SPLIT_ABOVE_MHZ = 10.0  # a transmit offset larger than this is written as 'split' (an odd pair, not a repeater)
DEFAULT_POWER_W = 50.0  # what CHIRP's generic CSV gives a memory without a power (DEFAULT_POWER_LEVEL)
DEFAULT_STEP_KHZ = 5.0  # chirp_common.Memory.tuning_step
# CHIRP's placeholders for the tone columns a row does not use (chirp_common.Memory's defaults).
PLACEHOLDER_HZ, PLACEHOLDER_DCS = 88.5, "023"
TONE_MODE_NAMES = ("", "Tone", "TSQL", "TSQL-R", "DTCS", "DTCS-R", "Cross")
CROSS_MODE_NAMES = ("Tone->Tone", "DTCS->", "->DTCS", "Tone->DTCS", "DTCS->Tone", "->Tone", "DTCS->DTCS", "Tone->")

# Which CSV column a schema key comes from, so that a schema error names the column the technician wrote.
_COLUMN_OF = {"name": "Name", "radio_name": "Name", "rx_mhz": "Frequency", "tx_mhz": "Offset",
              "receive_only": "Duplex", "power_w": "Power", "mode": "Mode", "tone_mode": "Tone",
              "tx_ctcss_hz": "rToneFreq", "ctcss_hz": "cToneFreq", "dcs_code": "DtcsCode", "rx_dcs_code": "RxDtcsCode",
              "dcs_polarity": "DtcsPolarity", "cross_mode": "CrossMode", "step_khz": "TStep", "skip": "Skip",
              "location": "Location", "comment": "Comment"}
# chirp_common.parse_power: watts, with or without a W.
_POWER = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*[Ww]?\s*$")

Say = Callable[[str, str], None]  # (column, message): an error or a note of the row being read
_Note = tuple[int, str, str]  # (line, column, message); line 0 for the file as a whole


class ChirpError(ValueError):
    """A CSV that cannot be imported; ``errors`` holds one message per problem, each naming line and column."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class ChirpImport:
    """The channels of a CHIRP CSV (plan channel tables) and what was adjusted to make them plan channels."""

    channels: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ChirpExport:
    """A CHIRP CSV and what it could not say as the plan says it."""

    text: str
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Row:
    line: int
    channel: dict[str, Any]
    raw: str  # the Name as written
    natural: str  # the plan name it makes, before names are made unique


def _slug(raw: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "", re.sub(r"\s+", "-", raw.strip()))[:64]


def _freq(text: str) -> float:
    """MHz as CHIRP's parse_freq reads it ('146.52', '146.52 MHz', '500 kHz'); ValueError if none."""
    m = re.fullmatch(r"\s*(.*?)\s*([kKmM][hH][zZ])?\s*", text)
    if m is None:
        raise ValueError(text)
    value = float(m.group(1)) / (1000 if (m.group(2) or "").lower() == "khz" else 1)
    if not math.isfinite(value):
        raise ValueError(text)
    # Whole hertz, as CHIRP keeps them: finer digits are noise, and an export of the import would
    # otherwise differ from it (found by fuzzing).
    return round(value, 6)


def _power_text(watts: float) -> str:
    # CHIRP's own spelling (AutoNamedPowerLevel: 50W, 5.0W) where it says the value exactly.
    if watts >= 10 and watts == int(watts):
        return f"{int(watts)}W"
    if watts < 10 and round(watts, 1) == watts:
        return f"{watts:.1f}W"
    return f"{watts:.3f}".rstrip("0").rstrip(".") + "W"


class _Reader:
    """One CSV's rows as plan channels; errors and notes named by line and column."""

    def __init__(self, header: list[str]) -> None:
        self.header = header
        self.errors: list[str] = []
        self.notes: list[_Note] = []
        self.has = set(header)
        # CHIRP's _clean_tmode: with only one of the two tone columns, it serves both.
        self.rtone = "rToneFreq" if "rToneFreq" in self.has or "cToneFreq" not in self.has else "cToneFreq"
        self.ctone = "cToneFreq" if "cToneFreq" in self.has or "rToneFreq" not in self.has else "rToneFreq"

    def row(self, cells: list[str], line: int) -> _Row | None:
        values = dict(zip(self.header, cells, strict=False))
        found: list[str] = []

        def raw(column: str) -> str:
            return values.get(column) or ""

        def cell(column: str) -> str:
            return raw(column).strip()

        def error(column: str, message: str) -> None:
            found.append(f"line {line}, column {column}: {message}")

        def note(column: str, message: str) -> None:
            self.notes.append((line, column, message))

        channel: dict[str, Any] = {}
        if "Location" in self.has and cell("Location"):
            self._location(cell("Location"), channel, error)
        name = raw("Name")
        rx = self._frequency(cell("Frequency"), channel, error)
        self._duplex(cell("Duplex"), cell("Offset"), rx, channel, error, note)
        self._tones(cell, channel, error)
        self._mode(cell("Mode"), channel, error)
        self._step(cell("TStep"), channel, error, note)
        self._skip(cell("Skip"), channel, error)
        self._power(cell("Power"), channel, note)
        if raw("Comment"):
            channel["comment"] = raw("Comment")
        if any(cell(c) for c in DSTAR_COLUMNS if c != "DVCODE") and channel.get("mode") == "DV":
            note("URCALL", "D-STAR calls are not kept in the plan")
        natural = _slug(name)
        channel["name"] = natural or "ch"  # made unique, and named where empty, once every row is read
        if name != natural:
            channel["radio_name"] = name  # checked with the row; set again where the name is made unique
        if not found:
            self._validate(channel, line, found)
        self.errors.extend(found)
        return None if found else _Row(line, channel, name, natural)

    @staticmethod
    def _location(text: str, channel: dict[str, Any], error: Say) -> None:
        try:
            channel["location"] = int(text)
            if channel["location"] < 0:
                raise ValueError
        except ValueError:
            error("Location", f"expected a memory number (0, 1, 2 ...), got {text!r}")

    @staticmethod
    def _frequency(text: str, channel: dict[str, Any], error: Say) -> float | None:
        """The receive frequency, kept in ``channel`` even when not positive (the error says so); None if no
        frequency at all."""
        try:
            rx = _freq(text)
        except ValueError:
            error("Frequency", f"expected MHz, e.g. 146.520000, got {text!r}")
            return None
        if rx <= 0:
            error("Frequency", f"expected a positive frequency in MHz, got {text!r}")
        channel["rx_mhz"] = rx
        return rx

    @staticmethod
    def _mode(text: str, channel: dict[str, Any], error: Say) -> None:
        if not text:
            return
        spelled = {m.lower(): m for m in CHIRP_MODES}.get(text.lower())
        if spelled is None:
            error("Mode", f"expected one of CHIRP's modes ({', '.join(CHIRP_MODES)}), got {text!r}")
        else:
            channel["mode"] = spelled

    @staticmethod
    def _skip(text: str, channel: dict[str, Any], error: Say) -> None:
        skip = text.upper()
        if skip in ("S", "P"):
            channel["skip"] = skip
        elif skip:
            error("Skip", f"expected '', S (skipped) or P (priority), got {text!r}")

    @staticmethod
    def _duplex(duplex: str, offset_text: str, rx: float | None, channel: dict[str, Any], error: Say,
                note: Say) -> None:
        duplex = duplex.lower() if duplex.lower() in ("split", "off") else duplex
        if duplex not in ("", "+", "-", "split", "off"):
            error("Duplex", f"expected '', '+', '-', 'split' or 'off', got {duplex!r}")
            return
        if duplex == "off":
            channel["receive_only"] = True
            return
        if duplex == "" or rx is None:
            return
        try:
            offset = _freq(offset_text) if offset_text else 0.0
        except ValueError:
            error("Offset", f"expected MHz, e.g. 0.600000, got {offset_text!r}")
            return
        if duplex == "split":
            if offset <= 0:
                error("Offset", f"Duplex split transmits on Offset: expected a frequency in MHz, got {offset_text!r}")
                return
            tx = offset
        else:
            tx = round(rx + offset if duplex == "+" else rx - offset, 6)
        if tx == rx:  # '-' with an offset of 0, or a split to the receive frequency
            note("Duplex", f"{duplex!r} to the receive frequency (Offset {offset_text or '0'}): simplex")
            return
        channel["tx_mhz"] = tx

    def _tones(self, cell: Callable[[str], str], channel: dict[str, Any], error: Say) -> None:
        text = cell("Tone")
        mode = {m.lower(): m for m in TONE_MODE_NAMES}.get(text.lower())
        if mode is None:
            error("Tone", f"expected '', Tone, TSQL, TSQL-R, DTCS, DTCS-R or Cross, got {text!r}")
            return
        if not mode:
            return
        send, listen = {"Tone": ("Tone", ""), "TSQL": ("Tone", "Tone"), "TSQL-R": ("", "Tone"),
                        "DTCS": ("DTCS", "DTCS"), "DTCS-R": ("DTCS", "DTCS"), "Cross": ("", "")}[mode]
        if mode == "Cross":
            cross = cell("CrossMode") or "Tone->Tone"  # CHIRP's default where the column is missing
            if cross not in CROSS_MODE_NAMES:
                error("CrossMode", f"expected one of {', '.join(CROSS_MODE_NAMES)}, got {cross!r}")
                return
            channel["cross_mode"] = cross
            send, listen = cross.split("->")
        if mode not in ("TSQL", "DTCS"):  # those two are what the keys alone say
            channel["tone_mode"] = mode
        if mode in ("TSQL", "TSQL-R"):
            channel["ctcss_hz"] = self._hz(self.ctone, cell, error)
        elif mode in ("DTCS", "DTCS-R"):
            channel["dcs_code"] = self._code("DtcsCode", cell, error)
        else:
            self._each_way(send, listen, cell, channel, error)
        if "DTCS" in (send, listen):
            polarity = cell("DtcsPolarity").upper() or "NN"
            if polarity not in ("NN", "NR", "RN", "RR"):
                error("DtcsPolarity", f"expected NN, NR, RN or RR, got {cell('DtcsPolarity')!r}")
            elif polarity != "NN":
                channel["dcs_polarity"] = polarity

    def _each_way(self, send: str, listen: str, cell: Callable[[str], str], channel: dict[str, Any],
                  error: Say) -> None:
        """Tone and Cross: what is sent and what is listened for, each a CTCSS tone, a DCS code or nothing."""
        if send == "Tone":
            channel["tx_ctcss_hz"] = self._hz(self.rtone, cell, error)
        elif send == "DTCS":
            channel["dcs_code"] = self._code("DtcsCode", cell, error)
        if listen == "Tone":
            channel["ctcss_hz"] = self._hz(self.ctone, cell, error)
        elif listen == "DTCS":
            channel["rx_dcs_code"] = self._code("RxDtcsCode", cell, error)

    def _hz(self, column: str, cell: Callable[[str], str], error: Say) -> float | None:
        if column not in self.has:
            return PLACEHOLDER_HZ  # CHIRP's default where the file has no such column
        try:
            return float(cell(column))
        except ValueError:
            error(column, f"expected a tone in Hz, e.g. 100.0, got {cell(column)!r}")
            return None

    def _code(self, column: str, cell: Callable[[str], str], error: Say) -> str | None:
        text = cell(column) if column in self.has else PLACEHOLDER_DCS  # CHIRP's default without the column
        if not text.isdigit():
            error(column, f"expected a DCS code, e.g. 023, got {text!r}")
            return None
        return f"{int(text):03d}"

    @staticmethod
    def _step(text: str, channel: dict[str, Any], error: Say, note: Say) -> None:
        if not text:
            return
        try:
            step = float(text)
        except ValueError:
            error("TStep", f"expected a tuning step in kHz, e.g. 12.50, got {text!r}")
            return
        if step in TUNING_STEPS_KHZ:
            channel["step_khz"] = step
        else:
            note("TStep", f"{text} kHz is no step CHIRP offers; left to its default, {DEFAULT_STEP_KHZ:g} kHz")

    def _power(self, text: str, channel: dict[str, Any], note: Say) -> None:
        if "Power" not in self.has:
            return
        m = _POWER.match(text)
        if not text:
            note("Power", f"empty (CHIRP refuses that since 2023); exported as CHIRP's default, "
                 f"{_power_text(DEFAULT_POWER_W)}")
        elif m is None:
            note("Power", f"{text!r} is no power in watts (CHIRP since 2023 reads e.g. 5W); exported as CHIRP's "
                 f"default, {_power_text(DEFAULT_POWER_W)}")
        elif float(m.group(1)) == 0:
            note("Power", f"{text!r}: CHIRP reads no power as its default, {_power_text(DEFAULT_POWER_W)}")
        else:
            channel["power_w"] = round(float(m.group(1)), 3)

    @staticmethod
    def _validate(channel: dict[str, Any], line: int, found: list[str]) -> None:
        try:
            ChannelConfig.model_validate(channel)
        except ValidationError as exc:
            for err in exc.errors():
                msg = re.sub(r"^Value error, ", "", str(err["msg"]))
                # A check across keys names its key first ("ctcss_hz/dcs_code: ...", "tx_ctcss_hz: ...").
                key = str(err["loc"][0]) if err["loc"] else re.split(r"[/:]", msg, maxsplit=1)[0]
                found.append(f"line {line}, column {_COLUMN_OF.get(key, key)}: {msg}")


def read_chirp(text: str) -> ChirpImport:
    """The channels of a CHIRP CSV, as plan channel tables (name and radio keys), and the notes of what was
    adjusted. Raises ChirpError naming every bad line and column; nothing is half-imported."""
    rows: list[_Row] = []
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    header: _Reader | None = None
    try:
        for cells in reader:
            if not any(c.strip() for c in cells) or cells[0].startswith("#"):
                continue  # a blank line, or a comment (CHIRP skips lines starting with #)
            if header is None:
                header = _Reader([c.strip() for c in cells])
                missing = [c for c in ("Name", "Frequency") if c not in header.has]
                if missing:
                    raise ChirpError([f"line 1: not a CHIRP CSV: no {' or '.join(missing)} column in the header"])
                continue
            row = header.row(cells, reader.line_num)
            if row is not None:
                rows.append(row)
    except csv.Error as exc:
        errors = header.errors if header is not None else []
        raise ChirpError([*errors, f"line {reader.line_num}: not CSV: {exc}"]) from None
    if header is None:
        raise ChirpError(["line 1: not a CHIRP CSV: no header row"])
    if header.errors:
        raise ChirpError(header.errors)
    notes = [*_file_notes(header.header), *header.notes, *_locate(rows, "Location" in header.has),
             *_unique_names(rows)]
    return ChirpImport([r.channel for r in rows], _said(notes))


def parse_chirp(text: str) -> list[dict[str, Any]]:
    """The channels of a CHIRP CSV (see read_chirp, which also says what was adjusted)."""
    return read_chirp(text).channels


def _said(notes: list[_Note]) -> list[str]:
    """The notes as the technician reads them: what the file lacks first, then row by row; one adjustment
    made on many rows is said once with its lines ("lines 2-40, 45, column Power: ...")."""
    lines: dict[tuple[str, str], list[int]] = {}
    for line, column, message in notes:
        lines.setdefault((column, message), []).append(line)
    out = []
    def place(item: tuple[tuple[str, str], list[int]]) -> tuple[int, int]:  # by line, then as the columns go
        (column, _), at = item
        return at[0], COLUMNS.index(column) if column in COLUMNS else -1

    for (column, message), at in sorted(lines.items(), key=place):
        said = f"{'columns' if ', ' in column else 'column'} {column}: {message}"
        if at[0] == 0:
            out.append(said)
            continue
        spans: list[list[int]] = []
        for n in at:
            if spans and n == spans[-1][1] + 1:
                spans[-1][1] = n
            else:
                spans.append([n, n])
        where = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)
        out.append(f"{'line' if len(at) == 1 else 'lines'} {where}, {said}")
    return out


def _file_notes(header: list[str]) -> list[_Note]:
    notes: list[_Note] = []
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        notes.append((0, ", ".join(repr(c) for c in unknown), "not read by CHIRP's CSV driver (its column names "
                      "are case-sensitive: TStep, not Tstep), so ignored"))
    if "Power" not in header:
        notes.append((0, "Power", "none; every channel is exported at CHIRP's default, "
                      f"{_power_text(DEFAULT_POWER_W)}"))
    return notes


def _locate(rows: list[_Row], has_column: bool) -> list[_Note]:
    """Every row a memory location of its own: where a location is given twice, CHIRP keeps the later
    row there, so the earlier moves; rows without one follow the highest."""
    notes: list[_Note] = []
    last = {r.channel["location"]: r for r in rows if "location" in r.channel}
    taken = set(last)
    following = max(taken, default=0) + 1
    for r in rows:
        at = r.channel.get("location")
        if at is not None and last[at] is r:
            continue
        r.channel["location"] = following
        taken.add(following)
        if at is not None:
            notes.append((r.line, "Location", f"{at} is also line {last[at].line}'s, which CHIRP keeps there; this "
                          f"channel moves to location {following}"))
        elif has_column:
            notes.append((r.line, "Location", f"empty; given the location after the highest, {following}"))
        following += 1
    if not has_column and rows:
        notes.append((0, "Location", f"none; the channels are numbered {rows[0].channel['location']} to "
                      f"{rows[-1].channel['location']} in the file's order"))
    return notes


def _unique_names(rows: list[_Row]) -> list[_Note]:
    """Plan names are unique topic levels: a name given twice is numbered (-2, -3 ...), an empty one named
    after its location. The radio keeps CHIRP's spelling (radio_name)."""
    notes: list[_Note] = []
    natural = {r.natural for r in rows if r.natural}
    used: set[str] = set()
    for r in rows:
        base = r.natural or f"ch{r.channel['location']}"
        name, k = base, 1
        while name in used or (name != r.natural and name in natural):
            k += 1
            name = f"{base[:64 - len(str(k)) - 1]}-{k}"
        used.add(name)
        # The names first, as a technician reads a channel.
        named = {"name": name, **({"radio_name": r.raw} if name != r.raw else {})}
        r.channel = named | {k: v for k, v in r.channel.items() if k not in ("name", "radio_name")}
        if not r.natural:
            notes.append((r.line, "Name", "empty; named 'ch' and its location in the plan (ch7 ...)"))
        elif name != r.natural:
            notes.append((r.line, "Name", f"a second channel named {r.raw!r}; named {name!r} in the plan, the "
                          "radio's name kept"))
        elif name != r.raw:  # the same words for every such row, so that they are said once
            notes.append((r.line, "Name", "spelled as a plan name (one MQTT topic level: 'RPT 2' is RPT-2); the "
                          "radio's name kept"))
    return notes


def write_chirp(channels: Iterable[Mapping[str, Any] | ChannelConfig]) -> ChirpExport:
    """A CHIRP CSV of the channels that have a receive frequency (others, e.g. a wired I/O box's, have no
    place in a radio's memory), with what it could not write as the plan says it. Every row passes
    CHIRP's current rules (a power, a listed tuning step, a known mode)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    notes: list[str] = []
    radios: list[ChannelConfig] = []
    for item in channels:
        c = item if isinstance(item, ChannelConfig) else ChannelConfig.model_validate(item)
        if c.rx_mhz is None:
            notes.append(f"channel {c.name}: no rx_mhz, so no radio memory; left out")
        else:
            radios.append(c)
    following = max((c.location for c in radios if c.location is not None), default=0) + 1
    for c in radios:
        location = c.location
        if location is None:
            location, following = following, following + 1
        writer.writerow(_memory(c, location, notes))
    return ChirpExport(out.getvalue(), notes)


def to_chirp(channels: Iterable[Mapping[str, Any] | ChannelConfig]) -> str:
    """The CHIRP CSV of the channels (see write_chirp, which also says what could not be written as is)."""
    return write_chirp(channels).text


def _memory(c: ChannelConfig, location: int, notes: list[str]) -> list[str]:
    rx = c.rx_mhz
    assert rx is not None
    duplex, offset = "", 0.0
    if c.receive_only:
        duplex = "off"
    elif c.tx_mhz is not None and round(c.tx_mhz - rx, 6) != 0:
        diff = round(c.tx_mhz - rx, 6)
        if abs(diff) > SPLIT_ABOVE_MHZ:
            duplex, offset = "split", c.tx_mhz
        else:
            duplex, offset = ("+" if diff > 0 else "-"), abs(diff)
    # CHIRP wants every tone column filled, used or not: its placeholders where the tone mode uses none.
    rtone = c.tx_ctcss_hz if c.tx_ctcss_hz is not None else PLACEHOLDER_HZ
    ctone = c.ctcss_hz if c.ctcss_hz is not None else PLACEHOLDER_HZ
    mode = c.mode or "FM"
    if mode not in CHIRP_MODES:
        notes.append(f"channel {c.name}: CHIRP has no mode {mode}; written as DIG")
        mode = "DIG"
    return [str(location), c.radio_name if c.radio_name is not None else c.name, f"{rx:.6f}", duplex,
            f"{offset:.6f}", c.effective_tone_mode or "", f"{rtone:.1f}", f"{ctone:.1f}", c.dcs_code or PLACEHOLDER_DCS,
            "NN" if c.dcs_polarity is None else c.dcs_polarity, c.rx_dcs_code or PLACEHOLDER_DCS,
            c.cross_mode or "Tone->Tone", mode, f"{c.step_khz or DEFAULT_STEP_KHZ:.2f}", c.skip or "",
            _power_text(c.power_w or DEFAULT_POWER_W), c.comment or "", "", "", "", ""]


def merge(plan: list[dict[str, Any]], imported: list[dict[str, Any]],
          notes: list[str] | None = None) -> list[dict[str, Any]]:
    """Imported radio keys laid over a plan: a channel of the same name keeps its drivers, rules and
    transmit path and takes the CSV's frequencies, tones, power and location; new names are added as
    channels of their own. A plan channel whose memory location the CSV now fills gives it up (the export
    puts it after the highest), said in ``notes``."""
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
    names = {c["name"] for c in imported}
    filled = {c["location"]: c["name"] for c in imported if c.get("location") is not None}
    for c in out:
        at = c.get("location")
        if c.get("name") not in names and at in filled:
            del c["location"]
            if notes is not None:
                notes.append(f"channel {c.get('name')}: location {at} is now {filled[at]}'s; it moves after the "
                             "highest at export")
    return out
