"""The technician's channel plans (``t`` from the dispatch screen): per gateway, the channels it should run.

    gateways   each gateway with the plan version it runs (``plan_version`` in its state, as the bridge
               stored it) beside the newest version saved (pending until the gateway reports it), and the
               reason if it refused a plan
    channels   the selected gateway's working plan; enter loads a channel into the form
    form       three tabs:
               channel   name, RX/TX MHz (TX ``off``: receive only), mode, tone (below), power in watts;
                         then the channel's audio inputs and its serial ports, each a list: the picker
                         chooses which one the boxes edit (audio: device, the card's channel count, input,
                         decoders, selcall standard, name, and with ``dmr`` among the decoders its colour
                         codes, slots and polarity; serial: port, protocol, baud rate, name), + adds one,
                         - removes the one shown; what the form does not show (CHIRP's location, step,
                         scan skip, the radio's name, comment) is kept as imported
               rules     the channel's rules in order (the first that matches decides); enter loads one into
                         the rule boxes: kind, label, unit template, ``when`` as ``key=value`` pairs (``a|b``:
                         any of them) and ``match`` as ``key=regex`` pairs; "Emergency rule" puts first the
                         rule that makes a DTMF ``*911*UNIT#`` or a 5-tone status digit 9 an alert
               transmit  transmit on/off, device, rate, lead-in, tail, timeout; PTT by vox, a serial port's
                         RTS/DTR line or a Modbus coil; record on/off, detection, threshold, hang, longest call
               everything is checked as it is typed by the configuration's own schema (the channel parsed
               with the rest of the plan), each box showing the error of its key
    buttons    put (add or change the channel), remove, import / export CHIRP CSV at the path (what the
               import adjusted, or the export could not say, is listed under the form), save

The tone box says CHIRP's tone modes (config.schema.TONE_MODES) in one line, the values as the radio
uses them::

    100.0             TSQL: the tone sent and listened for      D023 NR       DTCS, with its polarity
    Tone 100.0        the tone sent only                         DTCS-R D023   reverse DCS
    TSQL-R 100.0      reverse tone squelch                       100.0->D047   Cross: send -> listen for,
                                                                               either side a tone, a code or none

Every audio and serial driver of the channel can be edited, added and removed; other drivers (Modbus),
and every key the form does not show, are carried over untouched. Saving sends ``{"action": "plan", ...}``
to the bridge on ``bridge/cmd``; the bridge validates it again, stores a new version and sends it to the
gateway. The screen reads the database in a worker thread.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Checkbox, DataTable, Footer, Input, Select, Static, TabbedContent, TabPane

from bridge.chirp import ChirpError, merge, read_chirp, write_chirp
from bridge.plans import Plans, canonical
from config.schema import CHIRP_MODES, ConfigError
from console.data import StoreHandle, describe_error
from console.format import plain, plain_lines
from console.link import BridgeLink, NotConnected
from drivers.audio.selcall_standards import STANDARDS

REFRESH_S = 2.0  # applied and pending versions are read again this often
NOTES_SHOWN = 6  # lines of CSV notes under the form; the command line lists them all

# The form's boxes: (id, placeholder).
FIELDS = (
    ("name", "name, e.g. patrol-1"),
    ("rx_mhz", "RX MHz, e.g. 146.52"),
    ("tx_mhz", "TX MHz, off: RX only"),
    ("mode", "mode: FM NFM AM DMR ..."),
    ("tone", "tone: 100.0 D023 Tone 67.0 ..."),
    ("power", "power W (50)"),
    ("device", "audio device, e.g. pulse"),
    ("channels", "channels (1)"),
    ("input", "input (1)"),
    ("decoders", "decoders: dtmf, selcall, afsk1200, mdc1200, fleetsync, dmr"),
    ("audio_name", "audio name (audio)"),
    ("dmr_color_codes", "DMR colour codes, e.g. 1, 2 (all)"),
    ("port", "serial port URL, e.g. /dev/ttyUSB0"),
    ("protocol", "serial protocol: nmea, kenwood, ..."),
    ("baudrate", "baud (9600)"),
    ("serial_name", "serial name (protocol)"),
)
# The boxes of the audio input and of the serial port the pickers show; the pickers list each kind.
AUDIO_BOXES = ("device", "channels", "input", "decoders", "selcall_standard", "audio_name")
DMR_BOXES = ("dmr_color_codes", "dmr_slots", "dmr_invert")  # options.dmr: a row of its own, shown for dmr
SERIAL_BOXES = ("port", "protocol", "baudrate", "serial_name")
PICKERS = {"audio_at": ("audio", "audio"), "serial_at": ("serial", "serial")}  # id -> (driver type, label)
RULE_FIELDS = (
    ("rule_label", "label, e.g. emergency status"),
    ("rule_unit", "unit template, e.g. dtmf:{1}"),
    ("rule_when", "when: key=value ..., e.g. protocol=fleetsync status=98|99"),
    ("rule_match", r"match: key=regex ..., e.g. digits=\*911\*(\d{4})#"),
)
TRANSMIT_FIELDS = (
    ("tx_device", "transmit device, e.g. pulse"),
    ("tx_rate", "rate Hz (48000)"),
    ("tx_lead_in_ms", "lead-in ms (300)"),
    ("tx_tail_ms", "tail ms (100)"),
    ("tx_timeout_s", "timeout s (10)"),
    ("ptt_port", "PTT serial port URL"),
    ("ptt_driver", "modbus driver name"),
    ("ptt_coil", "coil: point name or address"),
)
RECORD_FIELDS = (
    ("rec_threshold_dbfs", "threshold dBFS (-40)"),
    ("rec_hang_ms", "hang ms (800)"),
    ("rec_max_s", "longest call s (120)"),
    ("rec_cor_point", "COR io point (cor)"),
)
# The choices: id -> (label, value) options; the first is the default (selcall: none, the decoder's ZVEI1).
CHOICES: dict[str, tuple[tuple[str, str], ...]] = {
    "selcall_standard": (("selcall: default", ""), *((f"selcall: {s}", s) for s in STANDARDS)),
    "rule_kind": tuple((f"kind: {k}", k) for k in ("alert", "beacon", "ptt", "status", "call", "io")),
    "ptt_method": (("PTT: vox", "vox"), ("PTT: serial line", "serial"), ("PTT: modbus coil", "modbus")),
    "ptt_line": (("line: RTS", "rts"), ("line: DTR", "dtr")),
    "rec_detect": (("detect: voice (vad)", "vad"), ("detect: COR input", "cor")),
    "dmr_slots": (("DMR slots: both", ""), ("DMR slot 1", "1"), ("DMR slot 2", "2")),
}
CHECKS = (("tx_on", "transmit"), ("rec_on", "record"), ("dmr_invert", "DMR inverted"))
RULE_BOXES = ("rule_kind", *(k for k, _ in RULE_FIELDS))
TRANSMIT_BOXES = ("tx_device", "tx_rate", "tx_lead_in_ms", "tx_tail_ms", "tx_timeout_s")
RECORD_BOXES = ("rec_detect", "rec_threshold_dbfs", "rec_hang_ms", "rec_max_s", "rec_cor_point")
PTT_BOXES = ("ptt_method", "ptt_port", "ptt_line", "ptt_driver", "ptt_coil")
# Which tab each box is on, so that a tab with an error in a hidden box says so in its label.
TABS = {"plan-tab-rules": ("rules", *RULE_BOXES),
        "plan-tab-transmit": ("tx_on", "rec_on", *TRANSMIT_BOXES, *PTT_BOXES, *RECORD_BOXES)}


class PlansLoaded(Message):
    def __init__(self, rows: list[dict[str, Any]], error: str | None = None) -> None:
        super().__init__()
        self.rows = rows  # per gateway: name, applied, pending, online, plan_error, channels
        self.error = error


def send_plan(link: BridgeLink, gateway: str, channels: list[dict[str, Any]], operator: str) -> None:
    """The ``plan`` command to the bridge (QoS 1); refused while the broker is away."""
    body = {"action": "plan", "gateway": gateway, "channels": channels, "operator": operator}
    link.command(body, f"the plan for {gateway}")


def _kind(driver: dict[str, Any]) -> str:
    return str(driver.get("type", "serial"))  # a driver without a type is a serial port


def of_kind(drivers: list[dict[str, Any]], kind: str) -> list[int]:
    """Where the channel's drivers of that type are in its list."""
    return [n for n, d in enumerate(drivers) if _kind(d) == kind]


def _first_at(drivers: list[dict[str, Any]], kind: str) -> int | None:
    return next(iter(of_kind(drivers, kind)), None)


def _put(table: dict[str, Any], key: str, value: Any) -> None:
    """Set ``key``, or leave it out (the schema's default) when the box is empty."""
    if value is None or value == "":
        table.pop(key, None)
    else:
        table[key] = value


def form_channel(values: dict[str, str], base: dict[str, Any] | None = None,
                 rules: list[dict[str, Any]] | None = None, drivers: list[dict[str, Any]] | None = None,
                 audio_at: int | None = None, serial_at: int | None = None) -> dict[str, Any]:
    """The channel the form describes, laid over ``base`` (what the form does not show is kept).

    ``drivers`` are the channel's drivers as edited (default: the base's); the audio boxes are laid over
    ``drivers[audio_at]`` and the serial boxes over ``drivers[serial_at]`` (default: the first of each)."""
    base = base or {}
    if drivers is None:
        drivers = base.get("drivers", [])
        audio_at, serial_at = _first_at(drivers, "audio"), _first_at(drivers, "serial")
    channel: dict[str, Any] = {k: v for k, v in base.items() if k not in (
        "name", "rx_mhz", "tx_mhz", "receive_only", "mode", *TONE_KEYS, "power_w", "rules", "transmit", "record")}
    channel["name"] = values["name"].strip()
    if values["rx_mhz"].strip():
        channel["rx_mhz"] = _number(values["rx_mhz"])
    if values["tx_mhz"].strip().lower() == "off":
        channel["receive_only"] = True
    elif values["tx_mhz"].strip():
        channel["tx_mhz"] = _number(values["tx_mhz"])
    mode = values["mode"].strip()
    if mode:
        channel["mode"] = {m.lower(): m for m in CHIRP_MODES}.get(mode.lower(), mode.upper())
    channel.update(tone_keys(values["tone"]))
    if values["power"].strip():
        channel["power_w"] = _number(values["power"])
    drivers = [dict(d) for d in drivers]
    if audio_at is not None and audio_at < len(drivers):
        drivers[audio_at] = form_audio(values, drivers[audio_at])
    if serial_at is not None and serial_at < len(drivers):
        drivers[serial_at] = form_serial(values, drivers[serial_at])
    channel["drivers"] = drivers
    if rules:
        channel["rules"] = [dict(r) for r in rules]
    if values["tx_on"]:
        channel["transmit"] = _transmit(values, base.get("transmit") or {})
    if values["rec_on"]:
        channel["record"] = _record(values, base.get("record") or {})
    return channel


def form_audio(values: dict[str, str], base: dict[str, Any]) -> dict[str, Any]:
    """The audio input the audio boxes describe, laid over ``base``; an empty box leaves its key to the
    schema's default (or, for the device, to its error)."""
    audio = {**base, "type": "audio"}
    _put(audio, "name", values["audio_name"].strip())
    _put(audio, "device", values["device"].strip())
    for key in ("channels", "input"):
        _put(audio, key, _number(values[key]) if values[key].strip() else None)
    decoders = [d for d in re.split(r"[\s,]+", values["decoders"]) if d]
    audio["decoders"] = decoders
    _put(audio, "options", _decoder_options(audio.get("options") or {}, decoders, values))
    return audio


def form_serial(values: dict[str, str], base: dict[str, Any]) -> dict[str, Any]:
    """The serial port the serial boxes describe, laid over ``base`` (its line settings kept)."""
    serial = dict(base)
    for key in ("port", "protocol"):
        _put(serial, key, values[key].strip())
    _put(serial, "baudrate", _number(values["baudrate"]) if values["baudrate"].strip() else None)
    _put(serial, "name", values["serial_name"].strip())
    return serial


def audio_values(audio: dict[str, Any]) -> dict[str, str]:
    """What the audio boxes show for an audio input (all empty for none)."""
    selcall = (audio.get("options") or {}).get("selcall") or {}
    standard = str(selcall.get("standard", "")).upper() if isinstance(selcall, dict) else ""
    dmr = (audio.get("options") or {}).get("dmr") or {}
    dmr = dmr if isinstance(dmr, dict) else {}
    return {"device": _text(audio.get("device")), "channels": _text(audio.get("channels")),
            "input": _text(audio.get("input")),
            "decoders": ", ".join(audio.get("decoders", [])), "audio_name": _text(audio.get("name")),
            "selcall_standard": standard if standard in STANDARDS else "",
            "dmr_color_codes": _listed(dmr.get("color_codes")), "dmr_slots": _slots_choice(dmr.get("slots")),
            "dmr_invert": "1" if dmr.get("invert") else ""}


def serial_values(serial: dict[str, Any]) -> dict[str, str]:
    """What the serial boxes show for a serial port (all empty for none)."""
    return {"port": _text(serial.get("port")), "protocol": _text(serial.get("protocol")),
            "baudrate": _text(serial.get("baudrate")), "serial_name": _text(serial.get("name"))}


def _decoder_options(options: dict[str, Any], decoders: list[str], values: dict[str, str]) -> dict[str, Any]:
    # Options of a decoder no longer listed go with it: the schema refuses options for absent decoders.
    kept = {name: dict(opts) if isinstance(opts, dict) else opts for name, opts in options.items() if name in decoders}
    standard = values["selcall_standard"]
    if "selcall" in decoders and isinstance(kept.setdefault("selcall", {}), dict):
        selcall = kept["selcall"]
        old = str(selcall.get("standard", ""))
        if standard and standard.upper() != old.upper():
            selcall["standard"] = standard
        elif not standard and old.upper() in STANDARDS:  # a standard the list does not know is kept, not lost
            selcall.pop("standard", None)
        if not selcall:
            del kept["selcall"]
    if "dmr" in decoders and isinstance(kept.setdefault("dmr", {}), dict):
        dmr = kept["dmr"]
        # What is shown as it was stored is kept as it was (``color_codes = 1`` stays a number, ``slots =
        # [1, 2]`` stays, though "both" is the default); what is typed becomes a list, as the schema checks it.
        typed = _words(values["dmr_color_codes"])
        if typed != _words(_listed(dmr.get("color_codes"))):
            _put(dmr, "color_codes", [_whole(w) for w in typed] or None)
        if values["dmr_slots"] != _slots_choice(dmr.get("slots")):
            _put(dmr, "slots", [int(values["dmr_slots"])] if values["dmr_slots"] else None)
        _put(dmr, "invert", True if values["dmr_invert"] else None)
        if not dmr:
            del kept["dmr"]
    return kept


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[\s,]+", text) if w]


def _listed(value: Any) -> str:
    """A number or a list of them as the technician types it: ``1, 2``."""
    return ", ".join(map(str, value)) if isinstance(value, list) else _text(value)


def _whole(text: str) -> int | str:
    """A whole number where the text is one; otherwise the text, for the schema to name."""
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else text


def _slots_choice(slots: Any) -> str:
    """The slots choice a stored ``slots`` means: "" (both, the default), "1" or "2"."""
    chosen = set(slots) if isinstance(slots, list) else {slots} if slots is not None else set()
    return str(next(iter(chosen))) if len(chosen) == 1 and chosen <= {1, 2} else ""


def _transmit(values: dict[str, str], base: dict[str, Any]) -> dict[str, Any]:
    transmit = dict(base)  # channels and output are not on the form: kept
    _put(transmit, "device", values["tx_device"].strip())
    for key in ("rate", "lead_in_ms", "tail_ms", "timeout_s"):
        text = values[f"tx_{key}"].strip()
        _put(transmit, key, _number(text) if text else None)
    method = values["ptt_method"] or "vox"
    old = base.get("ptt") or {}
    ptt = dict(old) if old.get("method") == method else {"method": method}  # e.g. active_low is kept
    if method == "serial":
        _put(ptt, "port", values["ptt_port"].strip())
        ptt["line"] = values["ptt_line"] or "rts"
    elif method == "modbus":
        _put(ptt, "driver", values["ptt_driver"].strip())
        _put(ptt, "coil", values["ptt_coil"].strip())
    transmit["ptt"] = ptt
    return transmit


def _record(values: dict[str, str], base: dict[str, Any]) -> dict[str, Any]:
    record = dict(base)  # min_ms and pre_roll_ms are not on the form: kept
    record["detect"] = values["rec_detect"] or "vad"
    for key in ("threshold_dbfs", "hang_ms", "max_s"):
        text = values[f"rec_{key}"].strip()
        _put(record, key, _number(text) if text else None)
    _put(record, "cor_point", values["rec_cor_point"].strip())
    return record


def form_values(channel: dict[str, Any]) -> dict[str, str]:
    """What every box of the form shows for ``channel`` (choices by value, checks as "1" or "")."""
    drivers = channel.get("drivers", [])
    audio_at, serial_at = _first_at(drivers, "audio"), _first_at(drivers, "serial")
    transmit = channel.get("transmit")
    tx: dict[str, Any] = transmit or {}
    ptt: dict[str, Any] = tx.get("ptt") or {}
    record = channel.get("record")
    rec: dict[str, Any] = record or {}
    return {
        "name": channel.get("name", ""), "rx_mhz": _text(channel.get("rx_mhz")),
        "tx_mhz": "off" if channel.get("receive_only") else _text(channel.get("tx_mhz")),
        "mode": channel.get("mode") or "", "tone": tone_text(channel), "power": _text(channel.get("power_w")),
        **audio_values(drivers[audio_at] if audio_at is not None else {}),
        **serial_values(drivers[serial_at] if serial_at is not None else {}),
        "tx_on": "1" if transmit is not None else "", "tx_device": _text(tx.get("device")),
        **{f"tx_{k}": _text(tx.get(k)) for k in ("rate", "lead_in_ms", "tail_ms", "timeout_s")},
        "ptt_method": ptt.get("method", "vox"), "ptt_port": _text(ptt.get("port")),
        "ptt_line": ptt.get("line", "rts"), "ptt_driver": _text(ptt.get("driver")), "ptt_coil": _text(ptt.get("coil")),
        "rec_on": "1" if record is not None else "", "rec_detect": rec.get("detect", "vad"),
        **{f"rec_{k}": _text(rec.get(k)) for k in ("threshold_dbfs", "hang_ms", "max_s", "cor_point")},
    }


def _number(text: str) -> float | int | str:
    """A number where the box holds one; otherwise the text, for the schema to say what is wrong."""
    try:
        value = float(text)
    except ValueError:
        return text.strip()
    return int(value) if value.is_integer() and "." not in text else value


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# --- tones -----------------------------------------------------------------------------------------

TONE_KEYS = ("tone_mode", "tx_ctcss_hz", "ctcss_hz", "dcs_code", "rx_dcs_code", "dcs_polarity", "cross_mode")
_ONE_TONE = {"tone": ("Tone", "tx_ctcss_hz"), "tsql": ("TSQL", "ctcss_hz"), "tsql-r": ("TSQL-R", "ctcss_hz"),
             "dtcs": ("DTCS", "dcs_code"), "dtcs-r": ("DTCS-R", "dcs_code")}


def tone_text(channel: dict[str, Any]) -> str:
    """What the tone box shows for a channel's tones (see the module's docstring)."""
    c = {k: channel.get(k) for k in TONE_KEYS}
    mode = c["tone_mode"] or ("TSQL" if c["ctcss_hz"] is not None and c["dcs_code"] is None
                              else "DTCS" if c["dcs_code"] is not None and c["ctcss_hz"] is None else None)
    polarity = f" {c['dcs_polarity']}" if c["dcs_polarity"] else ""
    if mode == "TSQL":
        return _text(c["ctcss_hz"])
    if mode in ("DTCS", "DTCS-R"):
        return f"{'DTCS-R ' if mode == 'DTCS-R' else ''}D{c['dcs_code']}{polarity}"
    if mode in ("Tone", "TSQL-R"):
        return f"{mode} {_text(c['tx_ctcss_hz'] if mode == 'Tone' else c['ctcss_hz'])}"
    if mode == "Cross":
        send = _text(c["tx_ctcss_hz"]) or (f"D{c['dcs_code']}" if c["dcs_code"] else "")
        listen = _text(c["ctcss_hz"]) or (f"D{c['rx_dcs_code']}" if c["rx_dcs_code"] else "")
        return f"{send}->{listen}{polarity}"
    return "" if c["ctcss_hz"] is None and c["dcs_code"] is None else f"{c['ctcss_hz']} D{c['dcs_code']}"


def tone_keys(text: str) -> dict[str, Any]:
    """The channel's tone keys the tone box says; what it cannot read goes to the schema as the CTCSS tone,
    so that the box shows what is wrong with it."""
    words = text.split()
    polarity: dict[str, Any] = {}
    if len(words) > 1 and words[-1].upper() in ("NN", "NR", "RN", "RR"):
        polarity = {"dcs_polarity": words.pop().upper()}
    if not words:
        return {"ctcss_hz": text.strip()} if polarity else {}
    if len(words) == 2 and words[0].lower() in _ONE_TONE:
        mode, key = _ONE_TONE[words[0].lower()]
        value = _tone_value(words[1])
        if value is not None and (key == "dcs_code") == isinstance(value, str):
            return {"tone_mode": mode, key: value, **polarity}
    elif len(words) == 1 and "->" in words[0]:
        sides = [_tone_value(side) if side else "" for side in words[0].split("->", 1)]
        if None not in sides and sides != ["", ""]:
            send, listen = sides
            kind = ["" if v == "" else "DTCS" if isinstance(v, str) else "Tone" for v in sides]
            keys: dict[str, Any] = {"tone_mode": "Cross", "cross_mode": f"{kind[0]}->{kind[1]}", **polarity}
            keys.update({"dcs_code": send} if kind[0] == "DTCS" else {"tx_ctcss_hz": send} if kind[0] else {})
            keys.update({"rx_dcs_code": listen} if kind[1] == "DTCS" else {"ctcss_hz": listen} if kind[1] else {})
            return keys
    elif len(words) == 1:
        value = _tone_value(words[0])
        if value is not None:
            return {"dcs_code": value, **polarity} if isinstance(value, str) else {"ctcss_hz": value, **polarity}
    return {"ctcss_hz": text.strip()}


def _tone_value(word: str) -> float | str | None:
    """A CTCSS tone (a number of Hz) or a DCS code (``D023``, a string), or None."""
    if word[:1].upper() == "D":
        return word[1:]
    try:
        return float(word)
    except ValueError:
        return None


# --- rules -----------------------------------------------------------------------------------------

# Pairs are separated by spaces where the next word is a key (``digits=\*(\d{4})# status=99``), so a
# pattern may hold commas and spaces; only " name=" inside a pattern would be read as a new pair.
_PAIRS = re.compile(r"\s+(?=[A-Za-z_][\w.\-]*=)")


def _shown(value: Any) -> str:
    return "|".join(str(v) for v in value) if isinstance(value, list) else str(value)


def rule_texts(rule: dict[str, Any]) -> dict[str, str]:
    """What the rule boxes show for ``rule``."""
    return {
        "rule_kind": rule.get("kind", "alert"), "rule_label": rule.get("label") or "",
        "rule_unit": rule.get("unit") or "",
        "rule_when": " ".join(f"{k}={_shown(v)}" for k, v in (rule.get("when") or {}).items()),
        "rule_match": " ".join(f"{k}={v}" for k, v in (rule.get("match") or {}).items()),
    }


def _pairs(text: str) -> tuple[dict[str, str], str | None]:
    pairs: dict[str, str] = {}
    for piece in _PAIRS.split(text.strip()) if text.strip() else []:
        key, eq, value = piece.partition("=")
        if not eq or not key.strip():
            return pairs, f"expected key=value pairs separated by spaces, got {piece!r}"
        pairs[key.strip()] = value
    return pairs, None


def form_rule(texts: dict[str, str], base: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The rule the rule boxes describe, and what cannot even be read (``when``/``match`` not as pairs).

    A ``when`` value whose text is unchanged keeps its stored type (``status = 99`` stays a number), and an
    untouched rule is ``base`` itself, so loading a rule into the boxes never changes it."""
    base = base or {}
    if base and texts == rule_texts(base):
        return dict(base), {}
    rule: dict[str, Any] = {"kind": texts["rule_kind"] or "alert"}
    for key in ("label", "unit"):
        if texts[f"rule_{key}"]:
            rule[key] = texts[f"rule_{key}"]
    errors: dict[str, str] = {}
    when, error = _pairs(texts["rule_when"])
    if error:
        errors["rule_when"] = f"when: {error}"
    old = base.get("when") or {}
    stated = {k: old[k] if k in old and _shown(old[k]) == v else v.split("|") if "|" in v else v
              for k, v in when.items()}
    if stated:
        rule["when"] = stated
    match, error = _pairs(texts["rule_match"])
    if error:
        errors["rule_match"] = f"match: {error}"
    if match:
        rule["match"] = match
    return rule, errors


def emergency_rule(decoders: list[str], standard: str) -> dict[str, Any] | None:
    """The rule that turns the channel's emergency signalling into an alert, from its first decoder that has
    one: a DTMF ``*911*`` + the 4-digit unit + ``#`` (the code config/default.toml uses), or a 5-tone call
    followed by status digit 9 (the decoder reports 6 tones as a status, without a unit)."""
    for decoder in decoders:
        if decoder == "dtmf":
            return {"when": {"protocol": "dtmf"}, "match": {"digits": r"\*911\*(\d{4})#"}, "kind": "alert",
                    "label": "DTMF emergency code", "unit": "dtmf:{1}"}
        if decoder == "selcall":
            protocol = (standard or "ZVEI1").lower()  # the decoder names its events' protocol by the standard
            return {"when": {"protocol": protocol}, "match": {"digits": r"(\d{5})9"}, "kind": "alert",
                    "label": "5-tone emergency status", "unit": f"{protocol}:{{1}}"}
    return None


# --- errors by box ---------------------------------------------------------------------------------

def field_errors(channel: dict[str, Any], others: list[dict[str, Any]], rule_at: int | None = None,
                 audio_at: int | None = None, serial_at: int | None = None) -> dict[str, str]:
    """Schema errors of ``channel`` (among ``others``) by form box, each naming its key; ``""`` holds what no
    box owns, ``"rules"`` a rule other than the one in the rule boxes (``rule_at``), ``"audio_at"`` and
    ``"serial_at"`` (the pickers) an audio input or serial port other than the one in the boxes."""
    try:
        canonical([*others, channel])
    except ConfigError as exc:
        errors: dict[str, str] = {}
        drivers = channel.get("drivers", [])
        shown = {"audio": audio_at, "serial": serial_at}
        for line in str(exc).splitlines():
            m = re.match(r"^[^:]*: (channels\[(\d+)\]\.?(\S*)|[^:]+): (.*)$", line)
            if m is None:
                errors.setdefault("", line)
                continue
            if m.group(2) is None or int(m.group(2)) != len(others):  # e.g. two channels of one name
                errors.setdefault("name" if "unique" in line else "", m.group(4))
                continue
            key, message = m.group(3), m.group(4)
            errors.setdefault(_box(key, message, drivers, rule_at, shown), f"{key}: {message}" if key else message)
        return errors
    return {}


def _driver_name(driver: dict[str, Any]) -> str:
    """A driver's name as the configuration's check of names sees it (by default its protocol or type)."""
    return str(driver.get("name") or (driver.get("protocol") if _kind(driver) == "serial" else _kind(driver)))


def _box(key: str, message: str, drivers: list[dict[str, Any]], rule_at: int | None,
         shown: dict[str, int | None]) -> str:
    head = key.split(".", 1)[0]
    named = re.match(r"drivers\[(\d+)\]: two drivers named '(.*)' on", message)
    if head == "" and named is not None:  # the channel's check of driver names: a name box
        for kind, at in shown.items():
            if at is not None and at < len(drivers) and _driver_name(drivers[at]) == named.group(2):
                return f"{kind}_name"  # the driver in the boxes is one of the two
        key = f"drivers[{named.group(1)}].name"
        head = "drivers"
    if head == "":  # the channel's own checks name their key first: "ctcss_hz/dcs_code: ...", "drivers[2]: ..."
        head = re.split(r"[/:\[]", message, maxsplit=1)[0]
        if head == "drivers":
            return "drivers"
    if head in ("name", "rx_mhz", "tx_mhz", "mode"):
        return head
    if head == "receive_only":
        return "tx_mhz"
    if head == "power_w":
        return "power"
    if head in TONE_KEYS:
        return "tone"
    if head in ("location", "radio_name", "step_khz", "skip", "comment"):
        return ""  # kept from the CSV or the file: no box
    if head == "transmit":
        parts = key.split(".")[1:]
        if parts[:1] == ["ptt"]:
            return f"ptt_{parts[1]}" if len(parts) > 1 and f"ptt_{parts[1]}" in PTT_BOXES else "ptt_method"
        box = f"tx_{parts[0]}" if parts else "tx_device"
        return box if box in TRANSMIT_BOXES else "tx_device"
    if head == "record":
        box = f"rec_{key.split('.')[1]}" if "." in key else "rec_detect"
        return box if box in RECORD_BOXES else "rec_detect"
    m = re.match(r"rules\[(\d+)\]\.?(\w*)", key)
    if m is not None:
        if rule_at is None or int(m.group(1)) != rule_at:
            return "rules"
        sub = m.group(2) or message.partition(":")[0]  # a rule's own check names its key: "unit: {2} is no ..."
        return f"rule_{sub}" if f"rule_{sub}" in RULE_BOXES else "rules"
    m = re.match(r"drivers\[(\d+)\]\.?(\w*)", key)
    if m is not None:
        at, sub = int(m.group(1)), m.group(2)
        kind = _kind(drivers[at]) if at < len(drivers) else ""
        if kind == "audio" and at == shown["audio"]:
            dmr = re.match(r"options\.dmr\.(\w+)", message) if not sub else None
            if dmr is not None:  # the driver's check of options.dmr names the option: "options.dmr.slots: ..."
                return f"dmr_{dmr.group(1)}" if f"dmr_{dmr.group(1)}" in DMR_BOXES else "decoders"
            if sub == "options":
                return "selcall_standard" if "selcall" in key else "decoders"
            if sub == "name":
                return "audio_name"
            if not sub:  # the driver's own checks: "input 3 does not exist ...", "options for ..."
                return "input" if message.startswith("input") else "decoders"
            return sub if sub in ("device", "channels", "input", "decoders") else "decoders"
        if kind == "serial" and at == shown["serial"]:
            if sub == "name":
                return "serial_name"
            return sub if sub in ("port", "protocol", "baudrate") else "port"
        if kind in ("audio", "serial"):
            return f"{kind}_at"  # another of the channel's inputs or ports: its picker
        return "drivers"  # a driver the form does not show
    return ""


class PlansScreen(Screen[None]):
    DEFAULT_CSS = """
    PlansScreen { layout: vertical; }
    PlansScreen #plans-top { height: 1fr; min-height: 5; }
    PlansScreen #plans-gateways { width: 2fr; }
    PlansScreen #plans-channels { width: 3fr; }
    PlansScreen #plans-form { height: auto; max-height: 70%; }
    PlansScreen #plans-form TabPane { padding: 0; height: auto; }
    PlansScreen #plans-form Horizontal { height: auto; }
    PlansScreen #plans-form Input, PlansScreen #plan-path { width: 1fr; }
    PlansScreen #plans-form Select { width: 1fr; }
    PlansScreen #plans-form Checkbox { width: auto; }
    PlansScreen #plans-form Select.-invalid > SelectCurrent { border: tall $error; }
    PlansScreen #plans-form Select.picker { width: 16; }
    PlansScreen #plans-form Select > SelectCurrent { padding: 0 1; }
    PlansScreen #plans-form #plan-selcall_standard { width: 22; }
    PlansScreen #plans-form #plan-dmr_slots { width: 22; }
    PlansScreen #plans-form #plan-channels, PlansScreen #plans-form #plan-input { width: 15; }
    PlansScreen #plans-form Button.driver { min-width: 3; width: 3; }
    PlansScreen #plan-rules { height: 6; }
    PlansScreen #plan-rules.-invalid { border-left: thick $error; }
    PlansScreen #plans-errors { color: $error; height: auto; }
    PlansScreen #plans-notes { color: $warning; height: auto; display: none; }
    PlansScreen #plans-notes.-shown { display: block; }
    PlansScreen #plans-buttons, PlansScreen #plan-rule-buttons { height: auto; }
    PlansScreen #plans-buttons Button, PlansScreen #plan-rule-buttons Button { min-width: 8; margin: 0 1 0 0; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("ctrl+s", "save", "Save plan"),
        Binding("ctrl+n", "new_channel", "New channel"),
    ]

    def __init__(self, store: StoreHandle, link: BridgeLink, operator: str | None) -> None:
        super().__init__()
        self.store = store
        self.link = link
        self.operator = operator
        self.rows: dict[str, dict[str, Any]] = {}  # gateway -> what was read
        self.working: dict[str, list[dict[str, Any]]] = {}  # gateway -> the plan being edited
        self.gateway: str | None = None
        self.editing: str | None = None  # the channel the form was loaded from
        self.errors: dict[str, str] = {}
        self.rules: list[dict[str, Any]] = []  # the form's channel's rules, as edited
        self.rule_at: int | None = None  # the rule in the rule boxes
        self.rule_loaded: dict[str, Any] = {}  # that rule as it was when loaded (its values' types)
        self.rule_errors: dict[str, str] = {}  # rule boxes that cannot even be read as pairs
        self.drivers: list[dict[str, Any]] = []  # the form's channel's drivers, as edited
        # Where in those drivers the audio input in the audio boxes and the serial port in the serial boxes are.
        self.audio_at: int | None = None
        self.serial_at: int | None = None
        self.gateways_table: DataTable[str] = DataTable(id="plans-gateways", cursor_type="row")
        self.channels_table: DataTable[str] = DataTable(id="plans-channels", cursor_type="row")
        self.rules_table: DataTable[str] = DataTable(id="plan-rules", cursor_type="row")
        self.inputs = {key: Input(placeholder=hint, id=f"plan-{key}")
                       for key, hint in (*FIELDS, *RULE_FIELDS, *TRANSMIT_FIELDS, *RECORD_FIELDS)}
        self.selects: dict[str, Select[str]] = {
            key: Select(options, value=options[0][1], allow_blank=False, id=f"plan-{key}")
            for key, options in CHOICES.items()}
        self.checks = {key: Checkbox(label, id=f"plan-{key}") for key, label in CHECKS}
        self.pickers: dict[str, Select[str]] = {
            key: Select([(f"no {label}", "")], value="", allow_blank=False, id=f"plan-{key}", classes="picker")
            for key, (_kind, label) in PICKERS.items()}
        self.error_label = Static("", id="plans-errors")
        self.notes_label = Static("", id="plans-notes", markup=False)
        self.path = Input(placeholder="CHIRP CSV file path", id="plan-path")

    @property
    def boxes(self) -> dict[str, Widget]:
        """Every box of the form by its key: inputs, choices and checks."""
        return {**self.inputs, **self.selects, **self.checks, **self.pickers}

    def compose(self) -> ComposeResult:
        with Horizontal(id="plans-top"):
            yield self.gateways_table
            yield self.channels_table
        boxes = self.boxes
        with Vertical(id="plans-form"), TabbedContent(id="plan-tabs"):
            with TabPane("channel", id="plan-tab-channel"):
                with Horizontal():
                    yield from (boxes[key] for key in ("name", "rx_mhz", "tx_mhz", "mode", "tone", "power"))
                # The audio boxes take two rows: where the radio is heard (the card, its channel count,
                # the radio's input on it), then what listens to it.
                for kind, keys in (("audio", AUDIO_BOXES[:3]), ("serial", SERIAL_BOXES)):
                    with Horizontal():
                        yield boxes[f"{kind}_at"]
                        yield from (boxes[key] for key in keys)
                        yield Button("+", id=f"plan-{kind}-add", classes="driver", tooltip=f"Add a {kind} driver")
                        yield Button("-", id=f"plan-{kind}-remove", classes="driver",
                                     tooltip=f"Remove this {kind} driver")
                    if kind == "audio":
                        with Horizontal():
                            yield from (boxes[key] for key in AUDIO_BOXES[3:])
                        with Horizontal(id="plan-dmr"):
                            yield from (boxes[key] for key in DMR_BOXES)
            with TabPane("rules", id="plan-tab-rules"):
                yield self.rules_table
                with Horizontal():
                    yield from (boxes[key] for key in ("rule_kind", "rule_label", "rule_unit"))
                with Horizontal():
                    yield from (boxes[key] for key in ("rule_when", "rule_match"))
                with Horizontal(id="plan-rule-buttons"):
                    yield Button("Add rule", id="plan-rule-add")
                    yield Button("Remove rule", id="plan-rule-remove")
                    yield Button("Emergency rule", id="plan-rule-emergency", variant="warning")
            with TabPane("transmit / record", id="plan-tab-transmit"):
                for row in (["tx_on", *TRANSMIT_BOXES], list(PTT_BOXES), ["rec_on", *RECORD_BOXES]):
                    with Horizontal():
                        yield from (boxes[key] for key in row)
        yield self.error_label
        yield self.notes_label
        with Horizontal(id="plans-buttons"):
            yield Button("Put channel", id="plan-put", variant="primary")
            yield Button("Remove", id="plan-remove")
            yield self.path
            yield Button("Import CSV", id="plan-import")
            yield Button("Export CSV", id="plan-export")
            yield Button("Save plan", id="plan-save", variant="success")
        yield Footer()

    def on_mount(self) -> None:
        self.gateways_table.border_title = "gateways"
        self.channels_table.border_title = "channels"
        self.gateways_table.add_columns("gateway", "applied", "pending", "state")
        self.channels_table.add_columns("name", "RX MHz", "TX MHz", "mode", "tone", "W", "drivers")
        self.rules_table.add_columns("#", "kind", "label", "unit", "when", "match")
        self._show_pickers()
        self._sync_enabled(self._values())
        self.load()
        self.set_interval(REFRESH_S, self.load)

    # --- the database ----------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="plans")
    def load(self) -> None:
        try:
            store = self.store.get()
            plans = {p.gateway: p for p in Plans(store.engine).all_current()}
            rows: list[dict[str, Any]] = []
            for g in store.gateways():
                state = g.state or {}
                rows.append({"name": g.name, "online": g.online, "applied": state.get("plan_version"),
                             "plan_error": state.get("plan_error")})
            known = {r["name"] for r in rows}
            rows += [{"name": n, "online": False, "applied": None, "plan_error": None} for n in plans if n not in known]
            for r in rows:
                plan = plans.get(r["name"])
                r["pending"] = plan.version if plan is not None else None
                r["channels"] = plan.channels if plan is not None else []
        except Exception as exc:  # the database away: said on the screen, tried again
            self.post_message(PlansLoaded([], describe_error(exc)))
            return
        self.post_message(PlansLoaded(sorted(rows, key=lambda r: r["name"])))

    def on_plans_loaded(self, message: PlansLoaded) -> None:
        if message.error:
            self.gateways_table.border_subtitle = f"database: {message.error}"
            return
        self.gateways_table.border_subtitle = ""
        for r in message.rows:
            before = self.rows.get(r["name"])
            self.rows[r["name"]] = r
            # A newly saved version replaces the working copy only if nobody is editing it.
            if r["name"] not in self.working or (before is not None and before["channels"] == self.working[r["name"]]):
                self.working[r["name"]] = [dict(c) for c in r["channels"]]
        self._show_gateways()
        if self.gateway is None and self.rows:
            self.gateway = next(iter(sorted(self.rows)))
        self._show_channels()

    # --- tables ----------------------------------------------------------------------------------

    def _show_gateways(self) -> None:
        table = self.gateways_table
        for name in sorted(self.rows):
            r = self.rows[name]
            applied = "file" if r["applied"] is None else f"v{r['applied']}"
            pending = "-" if r["pending"] is None else f"v{r['pending']}"
            edited = self.working.get(name) != r["channels"]
            state = f"refused: {r['plan_error']}" if r["plan_error"] else \
                ("edited" if edited else "in step" if r["applied"] == r["pending"] else "pending")
            cells = (name, applied, pending, state if r["online"] else f"offline; {state}")
            if name in table.rows:
                for column, value in zip(table.columns, cells, strict=True):
                    table.update_cell(name, column, value)
            else:
                table.add_row(*cells, key=name)

    def _show_channels(self) -> None:
        table = self.channels_table
        table.clear()
        table.border_title = plain(f"channels of {self.gateway}" if self.gateway else "channels")
        for c in self.working.get(self.gateway or "", []):
            drivers = ", ".join(d.get("device") or d.get("port") or d.get("url") or "?" for d in c.get("drivers", []))
            tx = "off" if c.get("receive_only") else _text(c.get("tx_mhz"))
            table.add_row(c["name"], _text(c.get("rx_mhz")), tx, c.get("mode") or "", tone_text(c),
                          _text(c.get("power_w")), drivers, key=c["name"])

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.gateways_table and event.row_key.value != self.gateway:
            self.gateway = event.row_key.value
            self._show_channels()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        if event.data_table is self.rules_table and event.row_key.value is not None:
            self._load_rule(int(event.row_key.value))
        elif event.data_table is self.channels_table and self.gateway is not None:
            channel = next(c for c in self.working[self.gateway] if c["name"] == event.row_key.value)
            self.editing = channel["name"]
            self.drivers = copy.deepcopy(channel.get("drivers", []))
            self.audio_at, self.serial_at = _first_at(self.drivers, "audio"), _first_at(self.drivers, "serial")
            self._show_pickers()
            self._fill(form_values(channel))
            self.rules = copy.deepcopy(channel.get("rules", []))
            self._show_rules()
            self._load_rule(0 if self.rules else None)
            self.inputs["name"].focus()

    def _fill(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            if key in self.inputs:
                self.inputs[key].value = value
            elif key in self.selects:
                self.selects[key].value = value or CHOICES[key][0][1]
            elif key in self.checks:
                self.checks[key].value = bool(value)

    # --- rules -----------------------------------------------------------------------------------

    def _show_rules(self) -> None:
        table = self.rules_table
        table.clear()
        for i, rule in enumerate(self.rules):
            texts = rule_texts(rule)
            table.add_row(str(i + 1), texts["rule_kind"], texts["rule_label"], texts["rule_unit"], texts["rule_when"],
                          texts["rule_match"], key=str(i))
        if self.rule_at is not None and self.rule_at < len(self.rules):
            table.move_cursor(row=self.rule_at)

    def _load_rule(self, at: int | None) -> None:
        """Put rule ``at`` in the rule boxes (None: no rule there, the boxes are off)."""
        self.rule_at = at
        self.rule_loaded = copy.deepcopy(self.rules[at]) if at is not None else {}
        self.rule_errors = {}
        self._fill(rule_texts(self.rule_loaded) if at is not None else dict.fromkeys(RULE_BOXES, ""))
        for key in RULE_BOXES:
            self.boxes[key].disabled = at is None
        self.validate_form()

    def _rule_edited(self) -> None:
        if self.rule_at is None or self.rule_at >= len(self.rules):
            return
        values = self._values()
        rule, self.rule_errors = form_rule({k: values[k] for k in RULE_BOXES}, self.rule_loaded)
        if rule == self.rules[self.rule_at]:
            return
        self.rules[self.rule_at] = rule
        texts = rule_texts(rule)
        row = str(self.rule_at)
        if row in self.rules_table.rows:  # changed in place: the cursor stays where the technician is
            for column, key in zip(list(self.rules_table.columns)[1:], RULE_BOXES, strict=True):
                self.rules_table.update_cell(row, column, texts[key])

    def add_rule(self, rule: dict[str, Any] | None = None, at: int | None = None) -> None:
        at = len(self.rules) if at is None else at
        self.rules.insert(at, rule or {"kind": "alert"})
        self.rule_at = at
        self._show_rules()
        self._load_rule(at)
        self.query_one("#plan-tabs", TabbedContent).active = "plan-tab-rules"

    def remove_rule(self) -> None:
        if self.rule_at is None or self.rule_at >= len(self.rules):
            return
        del self.rules[self.rule_at]
        at = min(self.rule_at, len(self.rules) - 1) if self.rules else None
        self.rule_at = at
        self._show_rules()
        self._load_rule(at)

    def add_emergency_rule(self) -> None:
        values = self._values()
        decoders = [d for d in re.split(r"[\s,]+", values["decoders"]) if d]
        # The audio input in the boxes first, then the channel's others.
        for driver in self._channel(values)["drivers"]:
            decoders += [d for d in driver.get("decoders", []) if _kind(driver) == "audio" and d not in decoders]
        rule = emergency_rule(decoders, values["selcall_standard"])
        if rule is None:
            self.notify("An emergency rule needs a dtmf or selcall decoder on the channel's audio.",
                        severity="warning")
            return
        self.add_rule(rule, at=0)  # first: the first rule that matches decides, and an emergency must win

    # --- audio inputs and serial ports ------------------------------------------------------------

    def _show_pickers(self) -> None:
        """Each picker lists the channel's drivers of its kind, showing the one in the boxes."""
        for key, (kind, label) in PICKERS.items():
            at = self.audio_at if kind == "audio" else self.serial_at
            places = of_kind(self.drivers, kind)
            options = [(f"{label} {n + 1}/{len(places)}", str(i)) for n, i in enumerate(places)]
            picker = self.pickers[key]
            picker.set_options(options or [(f"no {label}", "")])
            picker.value = str(at) if at is not None else ""

    def _commit_drivers(self) -> None:
        """What the driver boxes hold goes into the channel's drivers (before other ones are shown)."""
        values = self._values()
        if self.audio_at is not None:
            self.drivers[self.audio_at] = form_audio(values, self.drivers[self.audio_at])
        if self.serial_at is not None:
            self.drivers[self.serial_at] = form_serial(values, self.drivers[self.serial_at])

    def _show_driver(self, kind: str, at: int | None) -> None:
        """Put the channel's driver ``at`` (None: none) in the boxes of its kind."""
        driver = self.drivers[at] if at is not None else {}
        if kind == "audio":
            self.audio_at = at
            self._fill(audio_values(driver))
        else:
            self.serial_at = at
            self._fill(serial_values(driver))
        self._show_pickers()
        self.validate_form()

    def pick_driver(self, kind: str, at: int | None) -> None:
        if at == (self.audio_at if kind == "audio" else self.serial_at):
            return
        self._commit_drivers()
        self._show_driver(kind, at)

    def add_driver(self, kind: str) -> None:
        """A new audio input or serial port, empty in the boxes: the schema says what it still needs."""
        self._commit_drivers()
        self.drivers.append({"type": kind})
        self._show_driver(kind, len(self.drivers) - 1)
        self.inputs["device" if kind == "audio" else "port"].focus()

    def remove_driver(self, kind: str) -> None:
        at = self.audio_at if kind == "audio" else self.serial_at
        if at is None:
            return
        self._commit_drivers()
        del self.drivers[at]
        # The other kind's place moves down if it came after; this kind shows its next one, else the last.
        if self.audio_at is not None and self.audio_at > at:
            self.audio_at -= 1
        if self.serial_at is not None and self.serial_at > at:
            self.serial_at -= 1
        places = of_kind(self.drivers, kind)
        self._show_driver(kind, next((i for i in places if i >= at), places[-1] if places else None))

    def _adopt(self, kind: str) -> None:
        """Something typed into the boxes of a kind the channel has none of: that is its first one."""
        self.drivers.append({"type": kind})
        if kind == "audio":
            self.audio_at = len(self.drivers) - 1
        else:
            self.serial_at = len(self.drivers) - 1
        self._show_pickers()

    # --- the form --------------------------------------------------------------------------------

    def _values(self) -> dict[str, str]:
        values = {key: box.value for key, box in self.inputs.items()}
        for key, select in self.selects.items():
            values[key] = "" if select.value is Select.NULL else str(select.value)
        values.update({key: "1" if check.value else "" for key, check in self.checks.items()})
        return values

    def _others(self) -> list[dict[str, Any]]:
        return [c for c in self.working.get(self.gateway or "", []) if c["name"] != self.editing]

    def _base(self) -> dict[str, Any] | None:
        return next((c for c in self.working.get(self.gateway or "", []) if c["name"] == self.editing), None)

    def _channel(self, values: dict[str, str]) -> dict[str, Any]:
        return form_channel(values, self._base(), self.rules, self.drivers, self.audio_at, self.serial_at)

    def _sync_enabled(self, values: dict[str, str]) -> None:
        """Boxes that mean nothing as the form stands are off (their values are kept for when they count)."""
        decoders = re.split(r"[\s,]+", values["decoders"])
        self.selects["selcall_standard"].disabled = "selcall" not in decoders
        # Three boxes for a decoder most channels do not use: shown only where it listens.
        self.query_one("#plan-dmr", Horizontal).display = "dmr" in decoders
        for kind in ("audio", "serial"):
            remove = self.query_one(f"#plan-{kind}-remove", Button)
            remove.disabled = (self.audio_at if kind == "audio" else self.serial_at) is None
        tx, method = bool(values["tx_on"]), values["ptt_method"]
        for key in TRANSMIT_BOXES:
            self.boxes[key].disabled = not tx
        self.selects["ptt_method"].disabled = not tx
        for key in ("ptt_port", "ptt_line"):
            self.boxes[key].disabled = not tx or method != "serial"
        for key in ("ptt_driver", "ptt_coil"):
            self.boxes[key].disabled = not tx or method != "modbus"
        for key in RECORD_BOXES:
            self.boxes[key].disabled = not values["rec_on"]

    def validate_form(self) -> dict[str, str]:
        """Check the form as it stands; each box shows the error of its key."""
        values = self._values()
        self._sync_enabled(values)
        blank = self.editing is None and not self.rules and not self.drivers and not any(values[k] for k, _ in FIELDS)
        # A blank form is no channel yet: nothing to complain about until something is typed.
        errors = {} if blank else field_errors(self._channel(values), self._others(), self.rule_at, self.audio_at,
                                               self.serial_at)
        if self.rule_at is not None:
            errors.update({box: f"rules[{self.rule_at}].{text}" for box, text in self.rule_errors.items()})
        self.errors = errors
        for key, box in self.boxes.items():
            box.set_class(key in errors, "-invalid")
            box.tooltip = errors.get(key)
        self.rules_table.set_class("rules" in errors, "-invalid")
        for pane, keys in TABS.items():
            tab = self.query_one("#plan-tabs", TabbedContent).get_tab(pane)
            title = "rules" if pane == "plan-tab-rules" else "transmit / record"
            tab.label = f"{title} (!)" if any(k in errors for k in keys) else title
        self.error_label.update(plain_lines(errors.values()))  # what was typed: shown, never markup
        return errors

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input is self.path:
            return
        if event.input in (self.inputs[k] for k in RULE_BOXES if k in self.inputs):
            self._rule_edited()
        elif event.input is self.inputs["device"] and self.audio_at is None and event.value.strip():
            self._adopt("audio")
        elif event.input is self.inputs["port"] and self.serial_at is None and event.value.strip():
            self._adopt("serial")
        self.validate_form()

    def on_select_changed(self, event: Select.Changed) -> None:
        for key, (kind, _label) in PICKERS.items():
            # Only the technician's own pick: showing the pickers again sets them too.
            if event.select is self.pickers[key]:
                if event.select.has_focus and event.value not in ("", Select.NULL):
                    self.pick_driver(kind, int(str(event.value)))
                return
        if event.select is self.selects["rule_kind"]:
            self._rule_edited()
        elif event.select is self.selects["ptt_method"] and event.value == "modbus" \
                and not self.inputs["ptt_driver"].value:
            self.inputs["ptt_driver"].value = self._modbus_driver()
        self.validate_form()

    def on_checkbox_changed(self, event: Checkbox.Changed) -> None:
        if event.checkbox is self.checks["tx_on"] and event.value and not self.inputs["tx_device"].value:
            self.inputs["tx_device"].value = self.inputs["device"].value  # most radios answer on the card they use
        self.validate_form()

    def _modbus_driver(self) -> str:
        """The name of this channel's Modbus driver, else of the first on the gateway: where a PTT coil is."""
        channels = [{"drivers": self.drivers}, *self.working.get(self.gateway or "", [])]
        for channel in channels:
            for driver in channel.get("drivers", []):
                if driver.get("type") == "modbus":
                    return str(driver.get("name") or "modbus")
        return ""

    def action_new_channel(self) -> None:
        self.editing = None
        self._fill({**dict.fromkeys(self.inputs, ""), **dict.fromkeys(self.selects, ""),
                    **dict.fromkeys(self.checks, "")})
        self.rules = []
        self.drivers, self.audio_at, self.serial_at = [], None, None
        self._show_pickers()
        self._show_rules()
        self._load_rule(None)
        self.inputs["name"].focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        actions = {"plan-put": self.put_channel, "plan-remove": self.remove_channel, "plan-save": self.action_save,
                   "plan-import": self.import_csv, "plan-export": self.export_csv, "plan-rule-add": self.add_rule,
                   "plan-rule-remove": self.remove_rule, "plan-rule-emergency": self.add_emergency_rule,
                   "plan-audio-add": lambda: self.add_driver("audio"),
                   "plan-audio-remove": lambda: self.remove_driver("audio"),
                   "plan-serial-add": lambda: self.add_driver("serial"),
                   "plan-serial-remove": lambda: self.remove_driver("serial")}
        action = actions.get(event.button.id or "")
        if action is not None:
            action()

    def put_channel(self) -> None:
        if self.gateway is None:
            self.notify("No gateway is selected.", severity="warning")
            return
        if self.validate_form():
            self.notify("The channel has errors: see the boxes in red.", severity="error", timeout=4)
            return
        self._commit_drivers()
        channel = canonical([self._channel(self._values())])[0]
        plan = self.working[self.gateway]
        at = next((i for i, c in enumerate(plan) if c["name"] == self.editing), None)
        if at is None:
            plan.append(channel)
        else:
            plan[at] = channel
        self.editing = channel["name"]
        self.drivers = copy.deepcopy(channel.get("drivers", []))
        self._show_channels()
        self._show_gateways()

    def remove_channel(self) -> None:
        if self.gateway is None or self.channels_table.row_count == 0:
            return
        table = self.channels_table
        name = self.editing or table.coordinate_to_cell_key(table.cursor_coordinate)[0].value
        self.working[self.gateway] = [c for c in self.working[self.gateway] if c["name"] != name]
        self.action_new_channel()
        self._show_channels()
        self._show_gateways()

    def import_csv(self) -> None:
        if self.gateway is None:
            return
        path = Path(self.path.value.strip()).expanduser()
        try:
            imported = read_chirp(path.read_text(encoding="utf-8"))
        except OSError as exc:
            self.notify(f"Cannot read {self.path.value}: {exc.strerror or exc}", severity="error")
            return
        except UnicodeDecodeError as exc:  # CHIRP reads its CSV as UTF-8 too
            self.notify(f"Cannot read {self.path.value}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                        severity="error")
            return
        except ChirpError as exc:
            self.error_label.update(plain_lines(exc.errors[:8]))
            self.notify(f"Not imported: {len(exc.errors)} error(s).", severity="error")
            return
        notes = list(imported.notes)
        self.working[self.gateway] = merge(self.working[self.gateway], imported.channels, notes)
        self._show_notes(f"imported from {path.name}", notes)
        self.notify(f"{len(imported.channels)} channel(s) imported into {self.gateway}'s plan (not saved yet)"
                    + (f"; {len(notes)} adjustment(s) listed below." if notes else "."))
        self._show_channels()
        self._show_gateways()

    def export_csv(self) -> None:
        if self.gateway is None:
            return
        path = Path(self.path.value.strip()).expanduser()
        try:
            exported = write_chirp(self.working[self.gateway])
            path.write_text(exported.text, encoding="utf-8")
        except (OSError, ValueError) as exc:
            self.notify(f"Cannot write {path}: {exc}", severity="error")
            return
        self._show_notes(f"exported to {path.name}", exported.notes)
        self.notify(f"{self.gateway}'s channels written to {path}.")

    def _show_notes(self, what: str, notes: list[str]) -> None:
        """What an import adjusted or an export could not say, under the form until the next one."""
        shown = notes[:NOTES_SHOWN]
        more = len(notes) - len(shown)
        self.notes_label.update("\n".join([f"{what}: {n}" for n in shown]
                                          + ([f"... and {more} more (pttbridge chirp import lists them all)"]
                                             if more else [])))
        self.notes_label.set_class(bool(notes), "-shown")

    def action_save(self) -> None:
        if self.gateway is None:
            return
        if self.operator is None:
            self.notify("Sign in first: every plan is saved by a named operator.", severity="error")
            return
        try:
            canonical(self.working[self.gateway], f"plan for {self.gateway}")
            send_plan(self.link, self.gateway, self.working[self.gateway], self.operator)
        except ConfigError as exc:
            self.error_label.update(plain_lines(str(exc).split("\n")))
            self.notify("The plan has errors: not sent.", severity="error")
            return
        except NotConnected as exc:
            self.notify(f"Not sent: {exc}.", severity="error")
            return
        self.notify(f"Plan for {self.gateway} sent to the bridge as {self.operator}.", timeout=3)
        self.load()
