"""The plan form's arithmetic, without a screen: a channel of a plan to the values of the form's boxes and
back, and the schema's errors to the box that owns each.

The form's values are a dict of box key to text, as the boxes hold them: inputs as typed, choices by their
value, checks ``"1"`` or ``""`` (:data:`console.screens.plans.FIELDS` and its neighbours name every box).
Laying values over a channel keeps what the form does not show (CHIRP's location, step, scan skip, the
radio's name, comment; drivers of other kinds; a transmitter's output), so a channel loaded and put back
unchanged is the same channel.

The tone box says CHIRP's tone modes (config.schema.TONE_MODES) in one line, the values as the radio
uses them::

    100.0             TSQL: the tone sent and listened for      D023 NR       DTCS, with its polarity
    Tone 100.0        the tone sent only                         DTCS-R D023   reverse DCS
    TSQL-R 100.0      reverse tone squelch                       100.0->D047   Cross: send -> listen for,
                                                                               either side a tone, a code or none
"""

from __future__ import annotations

import re
from typing import Any

from bridge.plans import canonical
from config.schema import CHIRP_MODES, ConfigError
from drivers.audio.selcall_standards import STANDARDS

# The boxes of the audio input and of the serial port the pickers show, by key.
AUDIO_BOXES = ("device", "channels", "input", "decoders", "selcall_standard", "audio_name")
DMR_BOXES = ("dmr_color_codes", "dmr_slots", "dmr_invert")  # options.dmr: a row of its own, shown for dmr
SERIAL_BOXES = ("port", "protocol", "baudrate", "serial_name")
RULE_BOXES = ("rule_kind", "rule_label", "rule_unit", "rule_when", "rule_match")
TRANSMIT_BOXES = ("tx_device", "tx_rate", "tx_lead_in_ms", "tx_tail_ms", "tx_timeout_s")
RECORD_BOXES = ("rec_detect", "rec_threshold_dbfs", "rec_hang_ms", "rec_max_s", "rec_cor_point")
PTT_BOXES = ("ptt_method", "ptt_port", "ptt_line", "ptt_driver", "ptt_coil")


def driver_kind(driver: dict[str, Any]) -> str:
    return str(driver.get("type", "serial"))  # a driver without a type is a serial port


def of_kind(drivers: list[dict[str, Any]], kind: str) -> list[int]:
    """Where the channel's drivers of that type are in its list."""
    return [n for n, d in enumerate(drivers) if driver_kind(d) == kind]


def first_of_kind(drivers: list[dict[str, Any]], kind: str) -> int | None:
    """Where the channel's first driver of that type is (None: it has none)."""
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
        audio_at, serial_at = first_of_kind(drivers, "audio"), first_of_kind(drivers, "serial")
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
    return {"device": text_of(audio.get("device")), "channels": text_of(audio.get("channels")),
            "input": text_of(audio.get("input")),
            "decoders": ", ".join(audio.get("decoders", [])), "audio_name": text_of(audio.get("name")),
            "selcall_standard": standard if standard in STANDARDS else "",
            "dmr_color_codes": _listed(dmr.get("color_codes")), "dmr_slots": _slots_choice(dmr.get("slots")),
            "dmr_invert": "1" if dmr.get("invert") else ""}


def serial_values(serial: dict[str, Any]) -> dict[str, str]:
    """What the serial boxes show for a serial port (all empty for none)."""
    return {"port": text_of(serial.get("port")), "protocol": text_of(serial.get("protocol")),
            "baudrate": text_of(serial.get("baudrate")), "serial_name": text_of(serial.get("name"))}


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
    return ", ".join(map(str, value)) if isinstance(value, list) else text_of(value)


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
    audio_at, serial_at = first_of_kind(drivers, "audio"), first_of_kind(drivers, "serial")
    transmit = channel.get("transmit")
    tx: dict[str, Any] = transmit or {}
    ptt: dict[str, Any] = tx.get("ptt") or {}
    record = channel.get("record")
    rec: dict[str, Any] = record or {}
    return {
        "name": channel.get("name", ""), "rx_mhz": text_of(channel.get("rx_mhz")),
        "tx_mhz": "off" if channel.get("receive_only") else text_of(channel.get("tx_mhz")),
        "mode": channel.get("mode") or "", "tone": tone_text(channel), "power": text_of(channel.get("power_w")),
        **audio_values(drivers[audio_at] if audio_at is not None else {}),
        **serial_values(drivers[serial_at] if serial_at is not None else {}),
        "tx_on": "1" if transmit is not None else "", "tx_device": text_of(tx.get("device")),
        **{f"tx_{k}": text_of(tx.get(k)) for k in ("rate", "lead_in_ms", "tail_ms", "timeout_s")},
        "ptt_method": ptt.get("method", "vox"), "ptt_port": text_of(ptt.get("port")),
        "ptt_line": ptt.get("line", "rts"), "ptt_driver": text_of(ptt.get("driver")),
        "ptt_coil": text_of(ptt.get("coil")),
        "rec_on": "1" if record is not None else "", "rec_detect": rec.get("detect", "vad"),
        **{f"rec_{k}": text_of(rec.get(k)) for k in ("threshold_dbfs", "hang_ms", "max_s", "cor_point")},
    }


def _number(text: str) -> float | int | str:
    """A number where the box holds one; otherwise the text, for the schema to say what is wrong."""
    try:
        value = float(text)
    except ValueError:
        return text.strip()
    return int(value) if value.is_integer() and "." not in text else value


def text_of(value: Any) -> str:
    """What a box shows for a stored value (nothing for none)."""
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
        return text_of(c["ctcss_hz"])
    if mode in ("DTCS", "DTCS-R"):
        return f"{'DTCS-R ' if mode == 'DTCS-R' else ''}D{c['dcs_code']}{polarity}"
    if mode in ("Tone", "TSQL-R"):
        return f"{mode} {text_of(c['tx_ctcss_hz'] if mode == 'Tone' else c['ctcss_hz'])}"
    if mode == "Cross":
        send = text_of(c["tx_ctcss_hz"]) or (f"D{c['dcs_code']}" if c["dcs_code"] else "")
        listen = text_of(c["ctcss_hz"]) or (f"D{c['rx_dcs_code']}" if c["rx_dcs_code"] else "")
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
    kind = driver_kind(driver)
    return str(driver.get("name") or (driver.get("protocol") if kind == "serial" else kind))


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
        kind = driver_kind(drivers[at]) if at < len(drivers) else ""
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
