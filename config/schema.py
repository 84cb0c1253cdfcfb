"""Configuration schema and loader: one TOML file, validated on load.

Every error names the file, the key path and what was expected, and every mistake of a file is said in
one run (pydantic collects them; names and locations given twice are found beside them), e.g.::

    config/site.toml: channels[0].drivers[1].port: field required
    config/site.toml: channels[2].name: channel names must be unique, repeated: patrol-1 (also channels[0])

Secrets never sit in the file: ``mqtt.password_env`` names the environment variable that holds the
password (default ``PTTBRIDGE_MQTT_PASSWORD``), and the broker URL may come from ``PTTBRIDGE_MQTT_URL``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    ModelWrapValidatorHandler,
    PlainValidator,
    SerializeAsAny,
    Tag,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

TOPIC_LEVEL = r"^[A-Za-z0-9_.\-]{1,64}$"  # one MQTT topic level; same rule as gateway/events.py

DEFAULT_PREFIX = "pttbridge/v1"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names file, key path and expectation."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def default_data_dir() -> Path:
    """Where state lives unless ``data_dir`` says otherwise: ``$PTTBRIDGE_DATA`` or the XDG data home."""
    env = os.environ.get("PTTBRIDGE_DATA")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "pttbridge"


class TlsConfig(_Strict):
    ca: Path | None = Field(None, description="CA certificate (PEM) that signed the broker's certificate")
    cert: Path | None = Field(None, description="client certificate (PEM), for brokers that require one")
    key: Path | None = Field(None, description="client private key (PEM)")
    insecure: bool = Field(False, description="skip the broker host-name check (testing only)")


class MqttConfig(_Strict):
    url: str = Field("mqtt://127.0.0.1:1883", description="mqtt://host:port, or mqtts://host:port for TLS")
    prefix: str = Field(DEFAULT_PREFIX, description="topic prefix shared by every program of one installation")
    client_id: str | None = Field(None, description="MQTT client id; default pttbridge-{program}-{name}")
    username: str | None = None
    password_env: str = Field("PTTBRIDGE_MQTT_PASSWORD", description="environment variable with the password")
    keepalive_s: int = Field(30, ge=5, le=3600)
    tls: TlsConfig | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.username is not None or parts.password is not None:  # the URL is logged: said without it
            raise ValueError("credentials do not belong in the URL (it is logged): use username and password_env")
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not parts.hostname:
            raise ValueError(f"expected mqtt://host[:port] or mqtts://host[:port], got {v!r}")
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v or v.startswith("/") or v.endswith("/") or any(c in v for c in "+#"):
            raise ValueError("expected topic levels without leading/trailing '/' or wildcards")
        return v

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if self.use_tls else 1883)

    @property
    def use_tls(self) -> bool:
        return urlsplit(self.url).scheme in ("mqtts", "ssl") or self.tls is not None

    @property
    def password(self) -> str | None:
        return os.environ.get(self.password_env)


class DriverTable(_Strict):
    """What every ``[[channels.drivers]]`` table has: ``type`` names its I/O driver, ``name`` tells two
    drivers of one channel apart. A third-party driver's model extends this one (see ``DriverConfig``)."""

    type: str
    name: str | None = Field(None, pattern=TOPIC_LEVEL)


class SerialDriverConfig(DriverTable):
    """A serial port (any pyserial URL) carrying one protocol."""

    type: Literal["serial"] = "serial"
    name: str | None = Field(None, pattern=TOPIC_LEVEL, description="default: the protocol name")
    port: str = Field(description="pyserial URL: /dev/ttyUSB0, socket://host:port, rfc2217://..., loop://")
    protocol: str = Field(description="nmea | kenwood | kiss | framespec | a plugin's name")
    baudrate: int = Field(9600, gt=0)
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    stopbits: float = Field(1, description="1, 1.5 or 2")
    rtscts: bool = False
    options: dict[str, Any] = Field(default_factory=dict, description="the protocol's own options")

    @field_validator("stopbits")
    @classmethod
    def _stopbits(cls, v: float) -> float:
        if v not in (1, 1.5, 2):
            raise ValueError(f"expected 1, 1.5 or 2, got {v}")
        return v


class DmrOptions(_Strict):
    """``options.dmr``: which DMR traffic the channel listens to (drivers/audio/dmr/decoder.py)."""

    color_codes: int | list[int] | None = Field(
        None, description="colour code(s) 0-15 to decode; bursts of other colour codes are ignored (default: all)")
    slots: int | list[int] | None = Field(
        None, description="timeslot(s) 1, 2 whose events are published (default both; bursts with no slot, "
        "a radio's own direct-mode bursts, are kept)")
    invert: bool = Field(False, description="the receiver's discriminator output is inverted")

    @field_validator("color_codes", "slots", mode="before")
    @classmethod
    def _range(cls, v: Any, info: Any) -> Any:
        # Before pydantic's own parsing, so that a wrong value is named as it was written (not "valid
        # integer" of one branch of the union), and as the decoder takes it: whole numbers, no "1" or True.
        top = 15 if info.field_name == "color_codes" else 2
        low = 0 if info.field_name == "color_codes" else 1
        values = v if isinstance(v, list) else [v]
        if v is not None and (not values or any(isinstance(x, bool) or not isinstance(x, int) or not low <= x <= top
                                                for x in values)):
            raise ValueError(f"expected {low}..{top} or a non-empty list of them, got {v!r}")
        return v


class AudioDriverConfig(DriverTable):
    """One radio's receive audio: an input of a sound card (several radios may share a multi-channel
    interface: one capture stream per device, split by ``input``), and the decoders listening to it."""

    type: Literal["audio"]
    name: str | None = Field(None, pattern=TOPIC_LEVEL, description="default: audio")
    device: str = Field(
        description="sound device: a name (any part of it) or an index from `pttbridge audio-devices`; "
        "'wav:PATH' replays a recording in real time"
    )
    rate: int = Field(48000, ge=8000, le=192000, description="sample rate the device is opened at")
    channels: int = Field(1, ge=1, le=32, description="channels opened on the device")
    input: int = Field(1, ge=1, le=32, description="which of those channels this radio is on (1 = first)")
    decoders: list[str] = Field(description="dtmf | selcall | afsk1200 | mdc1200 | fleetsync | dmr | a plugin's name")
    loop: bool = Field(False, description="a recording (wav:) starts again when it ends (for demonstrations)")
    decode_ms: int = Field(
        100, ge=0, le=1000,
        description="the decoders get the audio in pieces of at least this length (0: each block as captured); "
        "longer costs less CPU and delays events by up to as much",
    )
    options: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="each decoder's options by its name, e.g. selcall = { standard = 'CCIR' }"
    )

    @model_validator(mode="after")
    def _input_exists(self) -> AudioDriverConfig:
        if self.input > self.channels:
            raise ValueError(f"input {self.input} does not exist when {self.channels} channel(s) are opened")
        unknown = set(self.options) - set(self.decoders)
        if unknown:
            raise ValueError(f"options for {', '.join(sorted(unknown))}, which is not among the decoders")
        if "dmr" in self.options:
            try:
                DmrOptions.model_validate(self.options["dmr"])
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ValueError(f"options.dmr.{where}: {first['msg']}") from None
        return self


def _unit(value: str | None) -> str | None:
    """A protocol-qualified identity, by the event schema's one rule (gateway/events.py, a leaf module)."""
    from gateway.events import unit_problem

    problem = unit_problem(value) if value is not None else None
    if problem is not None:
        raise ValueError(problem)
    return value


_Unit = Annotated[str | None, AfterValidator(_unit)]


class ModbusPointConfig(_Strict):
    """One bit of a Modbus I/O module: a wired panic button, a COR line, a door contact, a PTT relay."""

    name: str = Field(pattern=TOPIC_LEVEL, description="the point's name, in events (detail.point) and for coil writes")
    table: Literal["discrete_input", "coil", "input_register", "holding_register"]
    address: int = Field(ge=0, le=65535, description="0-based PDU address (a manual's 'input 1' is often 0)")
    kind: Literal["alert", "io"] = Field("io", description="alert: becoming active is an emergency; io: a change")
    invert: bool = Field(False, description="active when the bit is 0: normally-closed contacts, active-low lines")
    bit: int | None = Field(None, ge=0, le=15, description="registers: the bit that is the point (0 = lowest)")
    threshold: int | None = Field(None, ge=0, le=65535, description="registers: active at or above this value")
    debounce_ms: int = Field(50, ge=0, le=60_000, description="a change must last this long to count")
    unit: _Unit = Field(None, description="who the event is about, e.g. io:lobby-panic")
    label: str | None = Field(None, description="shown to dispatchers, e.g. 'lobby panic button'")
    alert_at_start: bool | None = Field(
        None, description="alert points: already active at start (or found so) raises the alert; default true"
    )

    @model_validator(mode="after")
    def _fits_table(self) -> ModbusPointConfig:
        if self.table in ("discrete_input", "coil") and (self.bit is not None or self.threshold is not None):
            raise ValueError(f"bit/threshold: a {self.table} is one bit already")
        if self.bit is not None and self.threshold is not None:
            raise ValueError("bit/threshold: give one of them, not both")
        if self.alert_at_start and self.kind != "alert":
            raise ValueError("alert_at_start: only points of kind alert raise alerts")
        return self


class ModbusDriverConfig(DriverTable):
    """A Modbus I/O module polled over Modbus TCP or RTU (any pyserial URL)."""

    type: Literal["modbus"]
    name: str | None = Field(None, pattern=TOPIC_LEVEL, description="default: modbus")
    url: str = Field(description="tcp://host[:port] (Modbus TCP, port 502), or a serial port URL for RTU: "
                     "/dev/ttyUSB0, socket://host:port (a serial device server), rfc2217://...")
    slave: int = Field(1, ge=0, le=255, description="the module's unit (slave) id")
    poll_interval_s: float = Field(0.1, ge=0.01, le=60, description="how often every point is read")
    timeout_s: float = Field(1.0, gt=0, le=30, description="how long one request waits for the answer")
    # RTU only; Modbus over Serial Line V1.02, section 2.5.1: 19200 baud, even parity by default.
    baudrate: int = Field(19200, gt=0)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1
    points: list[ModbusPointConfig] = Field(min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v.startswith("tcp://"):
            try:
                host = urlsplit(v).hostname
                urlsplit(v).port  # noqa: B018 - raises on a port that is no number
            except ValueError as exc:
                raise ValueError(f"expected tcp://host[:port], got {v!r}: {exc}") from None
            if not host:
                raise ValueError(f"expected tcp://host[:port], got {v!r}")
        elif not v:
            raise ValueError("expected tcp://host[:port] or a serial port URL")
        return v

    @field_validator("points")
    @classmethod
    def _unique_points(cls, v: list[ModbusPointConfig]) -> list[ModbusPointConfig]:
        names = [p.name for p in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"two points named {dup[0]!r}")
        return v


class SerialLinesConfig(DriverTable):
    """Inputs on a serial port's modem-status lines: the radio interface's COR on CD, a switch on DSR."""

    type: Literal["lines"]
    name: str | None = Field(None, pattern=TOPIC_LEVEL, description="default: lines")
    port: str = Field(description="pyserial URL: /dev/ttyUSB0, rfc2217://... (a pseudo-terminal has no lines)")
    points: dict[str, Literal["cts", "dsr", "cd", "ri"]] = Field(
        description="point name -> line, e.g. { cor = 'cd' }; each change is an io event of that point")
    invert: bool = Field(False, description="the lines are active low")
    debounce_ms: int = Field(50, ge=0, le=10_000)
    poll_ms: int = Field(20, ge=5, le=10_000)

    @field_validator("points")
    @classmethod
    def _names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not re.match(TOPIC_LEVEL, name):
                raise ValueError(f"{name!r}: a point name is 1-64 characters of A-Z a-z 0-9 _ . -")
        if not v:
            raise ValueError("name at least one point, e.g. { cor = 'cd' }")
        return v


def _driver_type(v: Any) -> str:
    return str(v.get("type", "serial")) if isinstance(v, dict) else str(getattr(v, "type", "serial"))


# A built-in driver is tagged by ``type``; without one it is a serial port.
_BUILTIN_DRIVERS: TypeAdapter[DriverTable] = TypeAdapter(Annotated[
    Annotated[SerialDriverConfig, Tag("serial")]
    | Annotated[AudioDriverConfig, Tag("audio")]
    | Annotated[ModbusDriverConfig, Tag("modbus")]
    | Annotated[SerialLinesConfig, Tag("lines")],
    Discriminator(_driver_type),
])
BUILTIN_DRIVER_TYPES = ("serial", "audio", "modbus", "lines")


def _driver_table(value: Any) -> DriverTable:
    """A built-in driver's table by the union above; any other ``type`` by the model its I/O driver names
    (``IoDriver.CONFIG``), found through the registry (a plugin's entry point), so that a plugin's table
    is checked on load and its errors name the key as a built-in one's do."""
    kind = _driver_type(value)
    if kind in BUILTIN_DRIVER_TYPES or not isinstance(value, dict | DriverTable):
        return _BUILTIN_DRIVERS.validate_python(value)
    # Only for a plugin's table: the built-in tables, and so the bridge's plans, need nothing of drivers.
    from drivers.registry import UnknownIoDriver, io_driver_config

    try:
        model = io_driver_config(kind)
    except UnknownIoDriver as exc:
        raise ValidationError.from_exception_data("DriverTable", [InitErrorDetails(
            type="value_error", loc=("type",), input=kind, ctx={"error": str(exc)})]) from None
    return model.model_validate(value)


DriverConfig = Annotated[SerializeAsAny[DriverTable], PlainValidator(_driver_table)]


class Rule(_Strict):
    """Turns what a decoder saw into what it means on this channel: e.g. status 99 -> alert.

    ``when`` matches the decoded event exactly: ``kind`` and ``unit`` (``*`` glob) against the event,
    every other key against the same key of its ``detail`` (a list means any of those values).
    ``match`` holds regular expressions that must match the whole value (``digits = '\\*(\\d{4})#'``);
    their groups fill ``unit`` (``"dtmf:{1}"``), so a DTMF ``*1234#`` can become a key-up of dtmf:1234.
    """

    when: dict[str, Any] = Field(default_factory=dict)
    match: dict[str, str] = Field(default_factory=dict)
    kind: Literal["alert", "beacon", "ptt", "status", "call", "io"]
    label: str | None = Field(None, description="shown to dispatchers, e.g. 'emergency status'")
    unit: str | None = Field(None, description="the unit, from match groups: {1}, {name}; e.g. 'dtmf:{1}'")

    @field_validator("match")
    @classmethod
    def _patterns(cls, v: dict[str, str]) -> dict[str, str]:
        for key, pattern in v.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{key}: not a regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _unit_fields_exist(self) -> Rule:
        if self.unit is not None:
            groups: set[str] = {"0"}
            for pattern in self.match.values():
                compiled = re.compile(pattern)
                groups |= {str(i) for i in range(1, compiled.groups + 1)} | set(compiled.groupindex)
            for field_name in re.findall(r"{([^{}:!]*)", self.unit):
                if field_name not in groups:
                    raise ValueError(f"unit: {{{field_name}}} is no group of the match patterns")
        return self


class SerialPttConfig(_Strict):
    method: Literal["serial"]
    port: str = Field(description="pyserial URL of the port whose line keys the radio: /dev/ttyUSB0, rfc2217://...")
    line: Literal["rts", "dtr"] = "rts"
    active_low: bool = Field(False, description="the interface keys when the line is low")


class ModbusPttConfig(_Strict):
    method: Literal["modbus"]
    driver: str = Field(description="name of a modbus driver of this gateway (a channel's [[drivers]] name)")
    coil: str = Field(description="the point (by name) or coil address that keys the radio")


class VoxPttConfig(_Strict):
    method: Literal["vox"]


PttConfig = Annotated[SerialPttConfig | ModbusPttConfig | VoxPttConfig, Field(discriminator="method")]


class TransmitConfig(_Strict):
    """How the gateway talks back on a channel: audio out and PTT (e.g. the MDC-1200 emergency ack)."""

    device: str = Field(description="sound device to play into (name, part of it, or index); 'wav:PATH' for a dry "
                        "run, where PATH may start with {data_dir}")
    rate: int = Field(48000, ge=8000, le=192000)
    channels: int = Field(1, ge=1, le=32, description="channels opened on the output device")
    output: int = Field(1, ge=1, le=32, description="which of those channels this radio's microphone input is on")
    ptt: PttConfig = Field(default_factory=lambda: VoxPttConfig(method="vox"))
    lead_in_ms: int = Field(300, ge=0, le=5000, description="PTT keyed before the audio starts (radio attack)")
    tail_ms: int = Field(100, ge=0, le=5000, description="PTT held after the audio ends")
    timeout_s: float = Field(10.0, gt=0, le=300, description="a transmission longer than this is cut off")

    @model_validator(mode="after")
    def _output_exists(self) -> TransmitConfig:
        if self.output > self.channels:
            raise ValueError(f"output {self.output} does not exist when {self.channels} channel(s) are opened")
        return self


class DispatchConfig(_Strict):
    """What the gateway sends as when it dispatches to a radio on this channel (gateway/dispatch.py)."""

    language: str = Field("en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*(\+[a-z0-9]{1,8})?$",
                          description="espeak-ng voice of announcements that name none: en, cmn, en-us, ...")
    speech_wpm: int = Field(150, ge=80, le=450, description="announcement speed, words per minute")
    speech_level: float = Field(0.5, gt=0, le=1, description="announcement peak level (full scale 1)")
    busy_retry_s: float = Field(5.0, gt=0, le=600, description="how long to wait for a busy channel to clear "
                                "before trying again (a command's repeat_if_busy says how often)")
    mdc_id: str = Field("0001", pattern=r"^[0-9A-Fa-f]{1,4}$", description="this station's MDC-1200 id (hex): "
                        "the caller of a call alert")
    fleetsync_id: str | None = Field(None, pattern=r"^\d{3}-\d{4}$", description="this station's FleetSync "
                                     "fleet-unit, the sender of text messages; default none (0)")
    fleetsync_version: Literal[1, 2] = Field(2, description="FleetSync coding of text messages and pages")
    fleetsync_baud: Literal[1200, 2400] | None = Field(None, description="default: 1200 for I, 2400 for II")
    aprs_callsign: str | None = Field(None, pattern=r"^[A-Za-z0-9]{1,6}(-(1[0-5]|[1-9]))?$",
                                      description="this station's callsign, the sender of APRS messages")
    aprs_path: list[str] = Field(default_factory=lambda: ["WIDE1-1"], max_length=8,
                                 description="digipeater path of APRS messages")
    aprs_retry_s: list[float] = Field(default_factory=lambda: [15.0, 30.0, 60.0, 120.0], min_length=1, max_length=20,
                                      description="one try per entry, each waiting that long for the ack")
    kiss_port: int = Field(0, ge=0, le=15, description="the KISS port APRS messages go out on")
    kenwood_reply_s: float = Field(10.0, gt=0, le=120, description="how long to wait for the radio's reply to a "
                                   "data-port text or poll (it answers once the unit acknowledged, or did not)")
    paths: list[Literal["kenwood_message", "fleetsync_message", "mdc_call_alert", "aprs_message", "announcement"]] \
        | None = Field(None, min_length=1, max_length=5, description="the order a dispatch tries its paths on this "
                       "channel when the bridge names none (those the unit's protocol and the channel have); default "
                       "kenwood_message, fleetsync_message, mdc_call_alert, aprs_message, announcement. E.g. "
                       "['announcement', 'kenwood_message']: the case is spoken, the text only where speech fails")

    @field_validator("aprs_retry_s")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(not s > 0 for s in v):
            raise ValueError("every wait must be more than 0 seconds")
        return v


class RecordConfig(_Strict):
    """Marks each received transmission and records it as a ``call`` event with a FLAC clip."""

    detect: Literal["vad", "cor"] = Field("vad", description="voice activity in the audio, or a COR input")
    cor_point: str = Field("cor", description="with detect = 'cor': the io point (e.g. a modbus input) that is COR")
    threshold_dbfs: float = Field(-40.0, ge=-90, le=0, description="audio above this (and above the noise) is activity")
    hang_ms: int = Field(800, ge=50, le=10_000, description="silence that ends a transmission")
    min_ms: int = Field(300, ge=0, le=10_000, description="shorter activity is not a transmission (clicks, bursts)")
    pre_roll_ms: int = Field(300, ge=0, le=5000, description="audio kept from before the start")
    max_s: float = Field(120.0, gt=0, le=3600, description="a longer transmission is cut into several calls")


class VoiceConfig(_Strict):
    """Live voice on a channel: its receive audio streamed to listening consoles, dispatchers talking on it
    (see Live voice in the README). Every channel with an audio input streams; this tunes it."""

    bitrate: int = Field(24_000, ge=6_000, le=128_000, description="Opus bit rate of the receive stream, bit/s")
    threshold_dbfs: float = Field(-50.0, ge=-90, le=0, description="receive audio above this is radio traffic: the "
                                  "channel is busy and its audio is streamed (with detect = 'cor', COR says so)")
    hang_ms: int = Field(500, ge=0, le=10_000, description="quiet that ends a talk spurt of the receive stream")
    silence_ms: int = Field(1000, ge=200, le=30_000, description="a dispatcher whose audio stops this long loses "
                            "the floor and PTT is released (keep it well inside the transmit timeout_s)")
    jitter_ms: int = Field(40, ge=0, le=1000, description="dispatcher audio buffered before it is played")


class PatchConfig(_Strict):
    """Channels connected together: what one receives is transmitted on the others. Channels of another
    gateway (``GATEWAY/CHANNEL``) are joined over their voice topics, as a console would."""

    name: str = Field(pattern=TOPIC_LEVEL)
    channels: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}(/[A-Za-z0-9_.\-]{1,64})?$")]] = Field(
        min_length=2, description="the patched channels: this gateway's by name, another gateway's as GATEWAY/CHANNEL")


# The CTCSS tones radios offer (EIA/TIA-603 plus the common extras), as CHIRP lists them (chirp_common.TONES).
CTCSS_TONES = frozenset((
    67.0, 69.3, 71.9, 74.4, 77.0, 79.7, 82.5, 85.4, 88.5, 91.5, 94.8, 97.4, 100.0, 103.5, 107.2, 110.9, 114.8,
    118.8, 123.0, 127.3, 131.8, 136.5, 141.3, 146.2, 151.4, 156.7, 159.8, 162.2, 165.5, 167.9, 171.3, 173.8,
    177.3, 179.9, 183.5, 186.2, 189.9, 192.8, 196.6, 199.5, 203.5, 206.5, 210.7, 218.1, 225.7, 229.1, 233.6,
    241.8, 250.3, 254.1,
))
# CHIRP's modes (chirp_common.MODES), which its CSV accepts, and NXDN, which CHIRP has no name for.
CHIRP_MODES = ("WFM", "FM", "NFM", "AM", "NAM", "DV", "USB", "LSB", "CW", "RTTY", "DIG", "PKT", "NCW", "NCWR", "CWR",
               "P25", "Auto", "RTTYR", "FSK", "FSKR", "DMR", "DN")
RADIO_MODES = Literal["WFM", "FM", "NFM", "AM", "NAM", "DV", "USB", "LSB", "CW", "RTTY", "DIG", "PKT", "NCW", "NCWR",
                      "CWR", "P25", "Auto", "RTTYR", "FSK", "FSKR", "DMR", "DN", "NXDN"]
# CHIRP's tone modes and cross modes (chirp_common.TONE_MODES, CROSS_MODES). Which tone each uses, as CHIRP's
# split_tone_encode and its radio drivers read them: Tone sends rToneFreq; TSQL sends and listens for
# cToneFreq, TSQL-R mutes on it; DTCS and DTCS-R use DtcsCode both ways; Cross sends rToneFreq or DtcsCode
# and listens for cToneFreq or RxDtcsCode, as CrossMode says ("Tone->DTCS": send a tone, listen for a code).
TONE_MODES = Literal["Tone", "TSQL", "TSQL-R", "DTCS", "DTCS-R", "Cross"]
CROSS_MODES = Literal["Tone->Tone", "DTCS->", "->DTCS", "Tone->DTCS", "DTCS->Tone", "->Tone", "DTCS->DTCS", "Tone->"]
# CHIRP's tuning steps in kHz (chirp_common.TUNING_STEPS): what its current CSV driver lets a channel have.
TUNING_STEPS_KHZ = (5.0, 6.25, 10.0, 12.5, 15.0, 20.0, 25.0, 30.0, 50.0, 100.0, 125.0, 200.0, 9.0, 1.0, 2.5)
_DCS = r"^[0-7]{3}$"


def _tone_keys(mode: str | None, cross: str | None) -> set[str]:
    """The keys that carry a channel's tones in ``mode`` (the others must be absent)."""
    if mode == "Tone":
        return {"tx_ctcss_hz"}
    if mode in ("TSQL", "TSQL-R"):
        return {"ctcss_hz"}
    if mode in ("DTCS", "DTCS-R"):
        return {"dcs_code"}
    if mode == "Cross" and cross is not None:
        send, listen = cross.split("->")
        return ({"Tone": {"tx_ctcss_hz"}, "DTCS": {"dcs_code"}}.get(send, set())
                | {"Tone": {"ctcss_hz"}, "DTCS": {"rx_dcs_code"}}.get(listen, set()))
    return set()


class ChannelConfig(_Strict):
    name: str = Field(pattern=TOPIC_LEVEL)
    drivers: list[DriverConfig] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    transmit: TransmitConfig | None = Field(None, description="audio out and PTT, for answering the radio")
    record: RecordConfig | None = Field(None, description="record received transmissions as call events")
    voice: VoiceConfig | None = Field(None, description="live voice settings (default: as VoiceConfig says)")
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig, description="this station's identities and "
                                     "settings for dispatching to radios (cmd/dispatch, cmd/radio_check)")
    # What the radio on this channel is tuned to: kept with the plan (and exchanged as CHIRP CSV) so that
    # the technician's channel list and the gateway's are one list; the gateway itself does not tune radios.
    rx_mhz: float | None = Field(None, gt=0, le=10_000, description="receive frequency in MHz, e.g. 146.52")
    tx_mhz: float | None = Field(None, gt=0, le=10_000, description="transmit frequency in MHz; default rx_mhz")
    receive_only: bool = Field(False, description="the radio only listens on this channel (CHIRP's Duplex 'off'): "
                               "the gateway never keys it")
    power_w: float | None = Field(None, gt=0, le=1500, description="transmit power in watts (CHIRP's Power); "
                                  "default: CHIRP's 50 W")
    mode: RADIO_MODES | None = Field(None, description="FM | NFM | AM | DMR | ... (as CHIRP names them)")
    tone_mode: TONE_MODES | None = Field(
        None, description="CHIRP's Tone: Tone, TSQL, TSQL-R, DTCS, DTCS-R or Cross; default TSQL with ctcss_hz alone, "
        "DTCS with dcs_code alone, none without tones")
    tx_ctcss_hz: float | None = Field(
        None, description="CTCSS tone sent in tone_mode Tone and Cross (CHIRP's rToneFreq)")
    ctcss_hz: float | None = Field(
        None, description="CTCSS tone in Hz, one of the standard tones (67.0 ... 254.1): sent and listened for in "
        "TSQL, listened for in TSQL-R and Cross (CHIRP's cToneFreq)")
    dcs_code: str | None = Field(None, pattern=_DCS, description="DCS code, three octal digits: '023'; both ways in "
                                 "DTCS and DTCS-R, sent in Cross (CHIRP's DtcsCode)")
    rx_dcs_code: str | None = Field(
        None, pattern=_DCS, description="DCS code listened for in Cross (CHIRP's RxDtcsCode)")
    dcs_polarity: Literal["NR", "RN", "RR"] | None = Field(
        None, description="DCS polarity sent, then listened for: N normal, R reversed (CHIRP's DtcsPolarity); "
        "default NN")
    cross_mode: CROSS_MODES | None = Field(None, description="tone_mode Cross: what is sent -> what is listened for, "
                                           "e.g. 'Tone->DTCS' (CHIRP's CrossMode)")
    step_khz: float | None = Field(
        None, description="tuning step in kHz (CHIRP's TStep: 5.0, 6.25, 12.5 ...); default 5")
    skip: Literal["S", "P"] | None = Field(None, description="scanning: S skipped, P priority (CHIRP's Skip)")
    location: int | None = Field(None, ge=0, le=99_999, description="the radio's memory number (CHIRP's Location); "
                                 "default: after the highest")
    radio_name: str | None = Field(None, max_length=200, description="the name the radio shows (CHIRP's Name) where "
                                   "it is not the channel's name (spaces, '*', empty ...)")
    comment: str | None = Field(None, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _one_spelling(cls, data: Any) -> Any:
        # What the defaults already say is left out, so that a plan saved again is the same plan.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if data.get("dcs_polarity") == "NN":
            del data["dcs_polarity"]
        implied = {"TSQL": ("ctcss_hz", "dcs_code"), "DTCS": ("dcs_code", "ctcss_hz")}.get(str(data.get("tone_mode")))
        if implied is not None and data.get(implied[0]) is not None and data.get(implied[1]) is None:
            del data["tone_mode"]
        return data

    @field_validator("ctcss_hz", "tx_ctcss_hz")
    @classmethod
    def _ctcss(cls, v: float | None) -> float | None:
        if v is not None and round(v, 1) not in CTCSS_TONES:
            raise ValueError(f"{v} Hz is no standard CTCSS tone (67.0, 69.3, 71.9, ... 254.1)")
        return v

    @field_validator("step_khz")
    @classmethod
    def _step(cls, v: float | None) -> float | None:
        if v is not None and v not in TUNING_STEPS_KHZ:
            raise ValueError(f"expected one of CHIRP's steps {', '.join(f'{s:g}' for s in sorted(TUNING_STEPS_KHZ))} "
                             f"kHz, got {v:g}")
        return v

    @field_validator("radio_name")
    @classmethod
    def _printable(cls, v: str | None) -> str | None:
        if v is not None and any(ord(c) < 0x20 or ord(c) == 0x7F for c in v):
            raise ValueError(f"a radio shows no control characters, got {v!r}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> ChannelConfig:
        if self.receive_only and self.tx_mhz is not None:
            raise ValueError("tx_mhz/receive_only: a receive-only channel has no transmit frequency")
        self._check_tones()
        seen: set[str] = set()
        for i, d in enumerate(self.drivers):
            name = d.name or (d.protocol if isinstance(d, SerialDriverConfig) else d.type)
            if name in seen:
                raise ValueError(f"drivers[{i}]: two drivers named {name!r} on one channel; give each a name")
            seen.add(name)
        return self

    def _check_tones(self) -> None:
        mode = self.effective_tone_mode
        if self.tone_mode is None and self.ctcss_hz is not None and self.dcs_code is not None:
            raise ValueError("ctcss_hz/dcs_code: a channel has a CTCSS tone or a DCS code, not both (or a tone_mode "
                             "that uses both: Cross)")
        if mode == "Cross" and self.cross_mode is None:
            raise ValueError("cross_mode: tone_mode Cross needs it, e.g. 'Tone->DTCS'")
        if mode != "Cross" and self.cross_mode is not None:
            raise ValueError(f"cross_mode: only tone_mode Cross has one (this channel's is {mode or 'none'})")
        wanted = _tone_keys(mode, self.cross_mode)
        given = {k for k in ("tx_ctcss_hz", "ctcss_hz", "dcs_code", "rx_dcs_code") if getattr(self, k) is not None}
        said = f"tone_mode {mode}" + (f" {self.cross_mode}" if mode == "Cross" else "") if mode else "no tone_mode"
        for key in sorted(wanted - given):
            raise ValueError(f"{key}: {said} needs it")
        for key in sorted(given - wanted):
            raise ValueError(f"{key}: not used with {said}" + ("" if self.tone_mode else "; name the tone_mode"))
        if self.dcs_polarity is not None and not wanted & {"dcs_code", "rx_dcs_code"}:
            raise ValueError(f"dcs_polarity: only a DCS code has a polarity ({said} uses none)")

    @property
    def effective_tone_mode(self) -> str | None:
        """The tone mode, where it is left to the default: TSQL with a CTCSS tone, DTCS with a DCS code."""
        if self.tone_mode is not None:
            return self.tone_mode
        if self.ctcss_hz is not None and self.dcs_code is None:
            return "TSQL"
        if self.dcs_code is not None and self.ctcss_hz is None:
            return "DTCS"
        return None


def _listen_address(value: str) -> str:
    """``host:port`` (``[::1]:port`` for IPv6) where a program serves Prometheus metrics."""
    m = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})", value)
    if m is None or int(m.group(2)) > 65535:
        raise ValueError(f"expected host:port such as 127.0.0.1:9101, got {value!r}")
    return value


MetricsListen = Annotated[str, AfterValidator(_listen_address)]


# [gateway] decode_workers = "auto": decoders in the drivers' own threads up to this many audio radios.
# 16 radios with every decoder fell behind on one core of this project's machine, 8 kept up with room.
AUTO_DECODE_RADIOS = 8


class GatewayConfig(_Strict):
    name: str = Field(pattern=TOPIC_LEVEL, description="this gateway's name: a topic level, unique per installation")
    outbox: Path | None = Field(None, description="SQLite outbox; default {data_dir}/outbox-{name}.sqlite")
    retention_h: float = Field(24.0, gt=0, description="how long published events are kept for replay")
    state_interval_s: float = Field(30.0, gt=0, description="how often the retained state is refreshed")
    publish_rate: float = Field(
        200.0, gt=0, description="most events per second (1 s bursts) handed to the broker, so a chattering "
        "radio or a long backlog cannot flood the bridge; the rest waits in the outbox. Alerts never wait"
    )
    decode_workers: Annotated[int, Field(ge=0, le=64)] | Literal["auto"] = Field(
        "auto", description="processes the audio decoders run in, each radio's in one of them, so that the "
        "channels use more than one core; 0: in the audio drivers' own threads; auto: 0 up to "
        f"{AUTO_DECODE_RADIOS} audio radios, above that one per core"
    )
    metrics: MetricsListen | None = Field(
        None, description="host:port serving Prometheus metrics on /metrics, e.g. 127.0.0.1:9101 (port 0: any "
        "free port); default off. Outbox depth, events by kind, broker connection, each radio's state and counters"
    )

    def decoding_workers(self, audio_radios: int, cores: int | None) -> int:
        """The number of decoding workers for a gateway of this many audio radios on this many cores: up to
        AUTO_DECODE_RADIOS radios, the drivers' threads keep up on one core (bench/gateway_audio_bench.py);
        above, a process per core (never more than there are radios)."""
        if self.decode_workers != "auto":
            return self.decode_workers
        if audio_radios <= AUTO_DECODE_RADIOS:
            return 0
        return min(cores or 1, audio_radios, 64)


class DemoReplay(_Strict):
    """A bundled capture replayed into a pseudo-terminal by ``pttbridge up`` (see launcher/replay.py)."""

    port: str = Field(description="the port string a driver names, e.g. demo://patrol-1, replaced by the pty")
    capture: Path = Field(description="JSON-lines capture, relative to this file")
    loop: bool = True


class DemoDetection(_Strict):
    """A camera's detection that ``pttbridge up`` publishes on ``cam/{camera}/event`` (see launcher/story.py),
    with the camera's snapshot served by the demo's own HTTP server."""

    camera: str = Field(pattern=TOPIC_LEVEL, description="a camera of [[cameras]]; its snapshot_url is set to the "
                        "demo's server")
    after_s: float = Field(ge=0, description="seconds after the start (divided by up's --speed)")
    label: str = Field(description="what the camera saw, e.g. street_stall")
    score: float = Field(0.9, ge=0, le=1)
    lat: float = Field(ge=-90, le=90, description="where the thing seen is")
    lon: float = Field(ge=-180, le=180)
    snapshot: Path = Field(description="JPEG or PNG served as the camera's snapshot, relative to this file")


class DemoOfficer(_Strict):
    """A demo officer who answers a dispatch from his radio: once the gateway reports the case delivered to
    ``unit``, ``answers`` (a capture, as in [[demo.replay]]) is written once into the data port ``port``."""

    unit: str = Field(description="his radio's unit identity, e.g. fleetsync:100-1004")
    port: str = Field(description="the [[demo.replay]] port his radio's data port is, e.g. demo://patrol-1")
    answers: Path = Field(description="JSON-lines capture of his answers, relative to this file")


class DemoConfig(_Strict):
    replay: list[DemoReplay] = Field(default_factory=list)
    detection: list[DemoDetection] = Field(default_factory=list)
    officer: list[DemoOfficer] = Field(default_factory=list)


class CameraConfig(_Strict):
    """A road camera, a PTZ dome or a vehicle's 360-degree camera, as the bridge's registry keeps it."""

    id: str = Field(pattern=TOPIC_LEVEL, description="the camera's id: its topic level in cam/{id}/event")
    name: str = Field("", description="what dispatchers call it, e.g. 'Xixi Rd / Wenyi Rd, north-east corner'")
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    heading_deg: float | None = Field(None, ge=0, le=360, description="where it looks, degrees from north; none: 360")
    fov_deg: float = Field(90.0, gt=0, le=360, description="field of view; 360 for an all-round camera")
    range_m: float = Field(150.0, gt=0, le=5000, description="how far it usefully sees")
    kind: Literal["fixed", "ptz", "vehicle"] = "fixed"
    unit: str | None = Field(None, description="vehicle cameras: the radio unit whose beacons move it, e.g. mdc:1234")
    stream_url: str | None = Field(None, description="RTSP stream, e.g. rtsp://10.1.2.3/stream1")
    snapshot_url: str | None = Field(None, description="HTTP snapshot (JPEG)")
    credentials_env: str | None = Field(None, description="environment variable holding user:password for its URLs")
    presets: dict[str, float] = Field(default_factory=dict, description="PTZ presets: name -> heading in degrees")

    @field_validator("stream_url", "snapshot_url")
    @classmethod
    def _no_password(cls, v: str | None) -> str | None:
        # Refused here, before the registry stores it; the message never quotes the URL (a value error is
        # not echoed by format_validation_error).
        if v is not None and urlsplit(v).password is not None:
            raise ValueError("the URL contains a password; name an environment variable holding user:password "
                             "in credentials_env instead")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> CameraConfig:
        if self.kind == "vehicle" and not self.unit:
            raise ValueError("unit: a vehicle camera follows a unit's beacons; name the unit")
        if self.kind != "vehicle" and self.unit:
            raise ValueError(f"unit: only a vehicle camera follows a unit (this one is {self.kind})")
        if self.kind == "fixed" and self.heading_deg is None and self.fov_deg < 360:
            raise ValueError("heading_deg: a fixed camera looks one way; give its heading (or fov_deg = 360)")
        if self.presets and self.kind != "ptz":
            raise ValueError(f"presets: only a PTZ camera has presets (this one is {self.kind})")
        return self


class CategoryConfig(_Strict):
    """Time limits of an incident category; for a street-event category, also whether it opens incidents."""

    opens_incidents: bool = Field(True, description="street-event categories: a detection opens an incident")
    min_score: float = Field(0.6, ge=0, le=1, description="street-event categories: weaker detections do not")
    ack_s: float | None = Field(None, gt=0, description="escalated when nobody acknowledged it within this")
    resolve_s: float | None = Field(None, gt=0, description="escalated when it is not resolved within this")


class CameraSettings(_Strict):
    """How the bridge correlates cameras with alerts, and fetches evidence."""

    window_s: float = Field(300.0, gt=0, description="detections this close in time to an alert are attached to it")
    near_m: float = Field(200.0, gt=0, description="detections of other cameras this close to the position count too")
    position_age_s: float = Field(600.0, gt=0, description="a unit's last position is used if it is this fresh")
    best: int = Field(3, ge=0, le=20, description="how many of the best cameras are attached and asked for evidence")
    evidence: bool = Field(True, description="fetch snapshots (and clips, where ffmpeg is installed) on an alert")
    clip_s: float = Field(10.0, gt=0, le=120, description="length of an evidence clip")
    suggest_units: int = Field(3, ge=0, le=20, description="nearest units suggested for a street-event incident")
    unit_age_s: float = Field(900.0, gt=0, description="units not heard for this long are not suggested")
    frigate_topic: str = Field("frigate/events", description="where Frigate publishes its events (its own prefix)")
    frigate_url: str | None = Field(None, description="Frigate's HTTP address, for snapshot and clip links")
    frigate_cameras: dict[str, str] = Field(
        default_factory=dict, description="Frigate camera name -> camera id in the registry")
    frigate_unit_system: Literal["metric", "imperial"] = Field(
        "metric", description="Frigate's ui.unit_system: its speed estimates are km/h (metric) or mph (imperial)")
    frigate_snapshots: int = Field(
        20, ge=0, le=1000,
        description="most snapshots Frigate pushes over MQTT kept per incident and camera (0: none)")
    categories: dict[str, CategoryConfig] = Field(
        default_factory=dict,
        description="per category: time limits, and for street events whether they open incidents; "
        "'alert' is the category of radio and wired alerts",
    )


class BridgeConfig(_Strict):
    """The command-center bridge: where it stores events and incidents, and how it treats the wire."""

    name: str = Field(
        "bridge", pattern=TOPIC_LEVEL, description="this bridge's name; its MQTT client id is pttbridge-bridge-{name}"
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user@host/db; default sqlite in data_dir "
        "(PTTBRIDGE_DATABASE_URL overrides, so a password need not sit in the file)",
    )
    mqtt_version: Literal["auto", "5", "3.1.1"] = Field(
        "auto", description="MQTT protocol; auto tries 5 and falls back to 3.1.1 when the broker refuses it"
    )
    shared_group: str | None = Field(
        None,
        pattern=TOPIC_LEVEL,
        description="subscribe to gateway events as $share/{group}/... (MQTT 5) so bridges share the load",
    )
    session_expiry_s: int = Field(
        7 * 24 * 3600, ge=0, description="how long the broker keeps queueing for this bridge while it is away"
    )
    incident_window_s: float = Field(
        600.0, gt=0, description="an alert joins the unit's open incident if its last alert is this recent"
    )
    reannounce_s: float = Field(30.0, gt=0, description="how often an unacknowledged incident is announced again")
    report_summary_s: float = Field(
        3600.0, ge=0, description="how often settled days are summarised for reports (0: only when a report "
        "that may write reads them)")
    batch_max: int = Field(500, ge=1, le=5000, description="most events stored in one database transaction")
    future_s: float = Field(
        300.0, gt=0, description="an event stamped more than this far ahead of the bridge's clock is counted and "
        "logged (its gateway's clock is wrong, or it is forged); no time ahead of the bridge's clock moves a unit "
        "or an incident"
    )
    replay_interval_s: float = Field(
        2.0, gt=0, description="how long a gap waits before it is requested, and between requests"
    )
    replay_tries: int = Field(5, ge=1, description="replay requests for one gap before it is logged as lost")
    replay_max: int = Field(500, ge=1, description="most events asked of one gateway in one round of requests")
    cameras: CameraSettings = Field(default_factory=lambda: CameraSettings())
    beacon: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.\-]{1,64}/[A-Za-z0-9_.\-]{1,64}$",
        description="GATEWAY/POINT: an output (a Modbus coil) lit while any incident is unacknowledged, "
        "e.g. the command center's beacon lamp",
    )
    metrics: MetricsListen | None = Field(
        None, description="host:port serving Prometheus metrics on /metrics, e.g. 127.0.0.1:9102 (port 0: any "
        "free port); default off. Events received/stored/duplicate/rejected/lost, gaps, ingest latency, incidents"
    )


class ConsoleConfig(_Strict):
    """The dispatcher console: who sits at it, and how it calls for attention."""

    operator: str | None = Field(
        None, min_length=1, max_length=64,
        description="the dispatcher's name sent with every command; default: --operator, else asked at start",
    )
    bell: bool = Field(True, description="ring the terminal bell on a new alert and on each re-announcement")
    flash: bool = Field(True, description="flash the marker of unacknowledged incidents in the alert queue")
    audio_device: str | None = Field(
        None, description="where transmission clips are played: an output device's name, part of it, or index; "
                          "default: the system's default output",
    )
    name: str = Field(
        "console", pattern=r"^[A-Za-z0-9_.\-]{1,64}$",
        description="the console's name on the voice topics (listen leases, floor requests), as "
                    "`pttbridge broker-acl --console` names it",
    )
    microphone: str | None = Field(
        None, description="the dispatcher's microphone for live voice: an input device's name, part of it, or "
                          "index; default: the system's default input",
    )
    voice_lease_s: float = Field(30.0, ge=3, le=60, description="the listen lease asked for; renewed every third of it")
    map_center: tuple[Annotated[float, Field(ge=-90, le=90)], Annotated[float, Field(ge=-180, le=180)]] | None = \
        Field(None, description="the map's centre at start, [lat, lon]; default: the selected incident, else the units")
    map_zoom_m: float = Field(10.0, ge=0.25, le=20_000, description="the map's zoom at start: metres per column")
    map_overlay: Path | None = Field(None, description="GeoJSON outlines drawn on the map (roads, a district)")


# --- cases: departments, case kinds, what radios answer --------------------------------------------

CASE_KIND = r"^[a-z0-9_]{1,32}$"  # a case kind: a street-event category, "alert", or a kind opened by hand
DEPARTMENT = r"^[A-Za-z0-9_.\-]{1,64}$"
TRANSITIONS = ("accepted", "arrived", "handled", "needs_help")
Transition = Literal["accepted", "arrived", "handled", "needs_help"]
FLOWS = ("single", "lead", "joint", "transfer")


def _unit_pattern(value: str) -> str:
    """A unit pattern: a protocol-qualified identity with ``*`` and ``?`` as globs, e.g. ``fleetsync:100-*``."""
    protocol, sep, rest = value.partition(":")
    if not sep or not re.fullmatch(r"[a-z0-9]{1,16}", protocol) or not rest or len(rest) > 64 \
            or any(not (c.isprintable() and not c.isspace()) for c in rest):
        raise ValueError(f"expected a unit pattern like 'fleetsync:100-*' or 'mdc:2*' (protocol, ':', the id "
                         f"with * and ? as wildcards), got {value!r}")
    return value


UnitPattern = Annotated[str, AfterValidator(_unit_pattern)]


class DepartmentConfig(_Strict):
    """A department that handles cases, and the radios that belong to it."""

    name: str = Field(pattern=DEPARTMENT, description="the department's name, e.g. urban-management")
    label: str | None = Field(None, max_length=100, description="what dispatchers call it; default the name")
    units: list[UnitPattern] = Field(
        default_factory=list, description="its units by pattern, e.g. ['fleetsync:100-*', 'mdc:2*']; the first "
        "department whose pattern matches a unit is the unit's")


class TransferConfig(_Strict):
    """Where a case of a ``transfer`` flow is handed over: an outbound MQTT topic and/or an HTTP webhook."""

    name: str = Field("outside", pattern=DEPARTMENT, description="the outside system's name, as a department")
    mqtt_topic: str | None = Field(None, description="the topic the case is published on (QoS 1; the PUBACK is "
                                   "its receipt); a whole topic, not under the installation's prefix")
    webhook: str | None = Field(None, description="http(s):// URL the case is POSTed to as JSON; a 2xx answer is "
                                "its receipt")
    retries: int = Field(5, ge=0, le=20, description="tries after the first, on a timeout, 5xx or no connection")
    backoff_s: float = Field(2.0, gt=0, le=300, description="wait before the first retry, doubled each time")
    backoff_max_s: float = Field(60.0, gt=0, le=3600, description="the longest wait between two tries")
    timeout_s: float = Field(10.0, gt=0, le=120, description="how long one try may take")

    @field_validator("mqtt_topic")
    @classmethod
    def _topic(cls, v: str | None) -> str | None:
        if v is not None and (not v or any(c in v for c in "+#\x00") or len(v.encode()) > 1024):
            raise ValueError(f"expected an MQTT topic without wildcards, got {v!r}")
        return v

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, v: str | None) -> str | None:
        if v is None:
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {v!r}")
        if parts.password is not None:  # the URL is logged and written into case histories
            raise ValueError("the URL contains a password; put a token in the outside system's own setting")
        return v

    @model_validator(mode="after")
    def _somewhere(self) -> TransferConfig:
        if self.mqtt_topic is None and self.webhook is None:
            raise ValueError("mqtt_topic/webhook: a transfer goes somewhere: give one or both")
        return self


class CaseKindConfig(_Strict):
    """A kind of case: which departments handle it and how, under which duty, within which limits."""

    flow: Literal["single", "lead", "joint", "transfer"] = Field(
        "single", description="single: one department; lead: the first leads, the others assist; joint: each "
        "department owns a part; transfer: handed to an outside system")
    departments: list[str] = Field(default_factory=list, description="the departments of its parts, lead first")
    name: str | None = Field(None, max_length=60, description="the kind as announced, in the kind's language "
                             "(e.g. 占道经营); default the kind with spaces for underscores")
    duty: str | None = Field(None, max_length=2000, description="the legal duty under which it is handled")
    accept_s: float | None = Field(None, gt=0, description="each part: the unit sent must accept within this")
    arrive_s: float | None = Field(None, gt=0, description="each part: ... be there within this")
    resolve_s: float | None = Field(None, gt=0, description="each part: ... report it handled within this")
    language: str = Field("en", pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{1,8})*(\+[a-z0-9]{1,8})?$",
                          description="espeak-ng voice of announcements to the radio: en, cmn, ...")
    transfer: TransferConfig | None = Field(None, description="flow transfer: where it goes")

    @model_validator(mode="after")
    def _flow(self) -> CaseKindConfig:
        n = len(self.departments)
        dup = sorted({d for d in self.departments if self.departments.count(d) > 1})
        if dup:
            raise ValueError(f"departments: {dup[0]!r} is named twice")
        if self.flow == "single" and n != 1:
            raise ValueError(f"departments: flow single has exactly one department, got {n}")
        if self.flow == "lead" and n < 1:
            raise ValueError("departments: flow lead needs its lead department (first), and any assisting ones")
        if self.flow == "joint" and n < 2:
            raise ValueError(f"departments: flow joint has two departments or more, each owning a part, got {n}")
        if self.flow == "transfer" and self.transfer is None:
            raise ValueError("transfer: flow transfer needs where the case goes (mqtt_topic and/or webhook)")
        if self.flow != "transfer" and self.transfer is not None:
            raise ValueError(f"transfer: only flow transfer hands a case over (this kind's is {self.flow})")
        return self


def _code_keys(low: int, high: int, what: str) -> Any:
    # Before the values are read, so that a wrong number is said in the same run as a wrong transition.
    def check(v: Any) -> Any:
        problems = []
        for key, value in v.items() if isinstance(v, dict) else ():
            if not isinstance(key, str) or not key.isdigit() or not low <= int(key) <= high:
                problems.append(f"{key!r}: expected a {what} number {low}-{high}")
            if value not in TRANSITIONS:
                problems.append(f"{key!r}: expected one of {', '.join(TRANSITIONS)}, got {value!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return v
    return BeforeValidator(check)


class AnswersConfig(_Strict):
    """What the site's radios send to answer a case, each mapped to a transition of that unit's open case
    part; and the lone-worker check."""

    fleetsync_status: Annotated[dict[str, Transition], _code_keys(10, 136, "FleetSync status")] = Field(
        default_factory=dict, description="FleetSync status number (over the air or from a Kenwood data port) -> "
        "accepted | arrived | handled | needs_help, e.g. { 10 = 'accepted', 11 = 'arrived' }")
    mdc_status: Annotated[dict[str, Transition], _code_keys(0, 255, "MDC-1200 status")] = Field(
        default_factory=dict, description="MDC-1200 status code (0-255) -> transition")
    dtmf: dict[str, Transition] = Field(default_factory=dict, description="DTMF digits as decoded, e.g. '*21*'")
    aprs: dict[str, Transition] = Field(
        default_factory=dict, description="the first word of an APRS message to the centre (any case), e.g. ACK")
    modbus: dict[str, Transition] = Field(
        default_factory=dict, description="a Modbus input point's name -> transition, when it becomes active")
    lone_worker_s: float | None = Field(
        None, gt=0, description="a unit on a case not heard for this long gets a radio check; default off")
    radio_check_grace_s: float = Field(
        60.0, gt=0, description="a unit still silent this long after its radio check raises an alert")

    @field_validator("dtmf")
    @classmethod
    def _digits(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not re.fullmatch(r"[0-9A-D*#]{1,32}", key):
                raise ValueError(f"{key!r}: expected DTMF digits 0-9 A-D * #")
        return v

    @field_validator("aprs", "modbus")
    @classmethod
    def _words(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", key):
                raise ValueError(f"{key!r}: expected one word of A-Z a-z 0-9 _ . -")
        return v


def _case_references(data: Any) -> list[InitErrorDetails]:
    """Departments named by a case kind that are not declared, and departments declared twice."""
    found: list[InitErrorDetails] = []
    if not isinstance(data, dict):
        return found
    departments = data.get("departments")
    names: dict[str, int] = {}
    for i, d in enumerate(departments if isinstance(departments, list) else []):
        name = d.get("name") if isinstance(d, dict) else getattr(d, "name", None)
        if isinstance(name, str):
            if name in names:
                found.append(InitErrorDetails(type=PydanticCustomError(
                    "value_error", "department names must be unique, repeated: {name} (also departments[{at}])",
                    {"name": name, "at": names[name]}), loc=("departments", i, "name"), input=name))
            else:
                names[name] = i
    kinds = data.get("case_kinds")
    for kind, table in (kinds.items() if isinstance(kinds, dict) else ()):
        listed = table.get("departments") if isinstance(table, dict) else getattr(table, "departments", None)
        for j, name in enumerate(listed if isinstance(listed, list) else []):
            if isinstance(name, str) and name not in names:
                known = ", ".join(sorted(names)) or "none"
                found.append(InitErrorDetails(type=PydanticCustomError(
                    "value_error", "no department named {name} (declared: {known})", {"name": name, "known": known}),
                    loc=("case_kinds", kind, "departments", j), input=name))
    return found


def _repeated(data: Any) -> list[InitErrorDetails]:
    """Channel names, radio memory locations and camera ids that are given twice, each at its second place."""
    found: list[InitErrorDetails] = []
    if not isinstance(data, dict):
        return found
    checks = (("channels", "name", "channel names must be unique"),
              ("channels", "location", "radio memory locations must be unique"),
              ("cameras", "id", "camera ids must be unique"))
    for section, key, rule in checks:
        items = data.get(section)
        first: dict[Any, int] = {}
        for i, item in enumerate(items if isinstance(items, list) else []):
            value = item.get(key) if isinstance(item, dict) else getattr(item, key, None)
            if not isinstance(value, str | int) or isinstance(value, bool):
                continue
            if value in first:
                said = {"rule": rule, "value": str(value), "section": section, "at": first[value]}
                found.append(InitErrorDetails(
                    type=PydanticCustomError("value_error", "{rule}, repeated: {value} (also {section}[{at}])", said),
                    loc=(section, i, key), input=value))
            else:
                first[value] = i
    return found


class Config(_Strict):
    """One file for every program; each program reads the sections it needs."""

    data_dir: Path = Field(default_factory=default_data_dir)
    mqtt: MqttConfig = Field(default_factory=lambda: MqttConfig())
    gateway: GatewayConfig | None = None
    channels: list[ChannelConfig] = Field(default_factory=list)
    demo: DemoConfig = Field(default_factory=lambda: DemoConfig())
    bridge: BridgeConfig = Field(default_factory=lambda: BridgeConfig())
    console: ConsoleConfig = Field(default_factory=lambda: ConsoleConfig())
    cameras: list[CameraConfig] = Field(default_factory=list, description="the camera registry's configured part")
    patches: list[PatchConfig] = Field(default_factory=list, description="channels patched together (gateway)")
    departments: list[DepartmentConfig] = Field(default_factory=list, description="departments that handle cases")
    case_kinds: dict[Annotated[str, Field(pattern=CASE_KIND)], CaseKindConfig] = Field(
        default_factory=dict, description="per case kind (a street-event category, alert, or a kind opened by "
        "hand): its flow, departments, duty, limits and language")
    answers: AnswersConfig = Field(default_factory=lambda: AnswersConfig(), description="what radios answer with")

    def department_of(self, unit: str) -> str | None:
        """The department a unit belongs to: the first whose pattern matches it."""
        for d in self.departments:
            if any(fnmatch.fnmatchcase(unit, pattern) for pattern in d.units):
                return d.name
        return None

    @model_validator(mode="wrap")
    @classmethod
    def _unique(cls, data: Any, handler: ModelWrapValidatorHandler[Config]) -> Config:
        # Repeated names are said together with every other mistake of the file, not after they are fixed:
        # they are found in what was given, whether or not each channel is valid itself.
        try:
            config = handler(data)
        except ValidationError as exc:
            repeated = _repeated(data) + _case_references(data)
            if repeated:
                given = cast(list[InitErrorDetails], exc.errors())  # the same keys: type, loc, input, ctx
                raise ValidationError.from_exception_data(exc.title, [*given, *repeated]) from None
            raise
        repeated = _repeated(data) + _case_references(data)
        if repeated:
            raise ValidationError.from_exception_data(cls.__name__, repeated)
        return config

    def outbox_path(self) -> Path:
        gw = self.require_gateway()
        return gw.outbox if gw.outbox is not None else self.data_dir / f"outbox-{gw.name}.sqlite"

    def require_gateway(self) -> GatewayConfig:
        if self.gateway is None:
            raise ConfigError("gateway: section [gateway] is required to run a gateway")
        return self.gateway


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("serial", "audio", "modbus", "lines"):  # the discriminator tag pydantic adds for tagged unions
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def format_validation_error(source: str, exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        msg = re.sub(r"^Value error, ", "", err["msg"])
        if err["type"] == "string_pattern_mismatch" and err["ctx"].get("pattern") == TOPIC_LEVEL:
            msg = "expected 1-64 characters of A-Z a-z 0-9 _ . - (it is used as an MQTT topic level)"
        got = err.get("input")
        # A value error already quotes what it got; a missing key or a whole table has nothing to show.
        quiet = err["type"] in ("missing", "value_error") or isinstance(got, dict | list)
        shown = "" if quiet else f" (got {got!r})"
        lines.append(f"{source}: {_key_path(err['loc'])}: {msg}{shown}")
    return "\n".join(lines)


def _include_spec_files(raw: dict[str, Any], source: str, base: Path) -> list[str]:
    """``options = { spec_file = "framespecs/box.toml" }``: the file's tables become the options
    (keys given inline beside ``spec_file`` override the file's), so one box spec serves many channels.
    Returns what could not be included, one line per file, so that every mistake is said in one run."""
    errors: list[str] = []
    channels = raw.get("channels")
    for ci, channel in enumerate(channels if isinstance(channels, list) else []):
        drivers = channel.get("drivers") if isinstance(channel, dict) else None
        for di, driver in enumerate(drivers if isinstance(drivers, list) else []):
            options = driver.get("options") if isinstance(driver, dict) else None
            if not (isinstance(options, dict) and isinstance(options.get("spec_file"), str)):
                continue
            key = f"{source}: channels[{ci}].drivers[{di}].options.spec_file"
            path = base / options["spec_file"]
            try:
                included = tomllib.loads(path.read_text(encoding="utf-8"))
            except OSError as exc:
                errors.append(f"{key}: cannot read {path}: {exc.strerror or exc}")
                continue
            except UnicodeDecodeError as exc:  # as in load_config
                errors.append(f"{key}: {path} is not UTF-8 text: {exc}")
                continue
            except tomllib.TOMLDecodeError as exc:
                errors.append(f"{key}: {path} is not valid TOML: {exc}")
                continue
            except ValueError as exc:  # a NUL byte in the path
                errors.append(f"{key}: bad path: {exc}")
                continue
            inline = {k: v for k, v in options.items() if k != "spec_file"}
            driver["options"] = {**included, **inline}
    return errors


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    """Relative paths in the file are relative to the file, not to wherever the program was started."""
    if isinstance(raw.get("data_dir"), str):
        raw["data_dir"] = str((base / raw["data_dir"]).resolve())
    gw = raw.get("gateway")
    if isinstance(gw, dict) and isinstance(gw.get("outbox"), str):
        gw["outbox"] = str((base / gw["outbox"]).resolve())
    channels = raw.get("channels")
    for channel in channels if isinstance(channels, list) else []:
        drivers = channel.get("drivers") if isinstance(channel, dict) else None
        for driver in drivers if isinstance(drivers, list) else []:
            device = driver.get("device") if isinstance(driver, dict) else None
            if isinstance(device, str) and device.startswith("wav:") and not Path(device[4:]).is_absolute():
                driver["device"] = f"wav:{(base / device[4:]).resolve()}"
        transmit = channel.get("transmit") if isinstance(channel, dict) else None
        device = transmit.get("device") if isinstance(transmit, dict) else None
        if isinstance(device, str) and device.startswith("wav:") and not device.startswith("wav:{data_dir}") \
                and not Path(device[4:]).is_absolute():
            transmit["device"] = f"wav:{(base / device[4:]).resolve()}"  # type: ignore[index]
    demo = raw.get("demo")
    for key, file_key in (("replay", "capture"), ("detection", "snapshot"), ("officer", "answers")):
        entries = demo.get(key) if isinstance(demo, dict) else None
        for entry in entries if isinstance(entries, list) else []:  # any other type is the validator's to name
            if isinstance(entry, dict) and isinstance(entry.get(file_key), str):
                entry[file_key] = str((base / entry[file_key]).resolve())
    console = raw.get("console")
    if isinstance(console, dict) and isinstance(console.get("map_overlay"), str):
        console["map_overlay"] = str((base / console["map_overlay"]).resolve())
    tls = raw.get("mqtt", {}).get("tls") if isinstance(raw.get("mqtt"), dict) else None
    if isinstance(tls, dict):
        for key in ("ca", "cert", "key"):
            if isinstance(tls.get(key), str):
                tls[key] = str((base / tls[key]).resolve())


def parse_config(raw: dict[str, Any], source: str = "<config>", base: Path | None = None) -> Config:
    """The configuration ``raw`` holds; raises ConfigError naming every mistake, one line each."""
    raw = dict(raw)
    errors: list[str] = []
    if base is not None:
        try:
            _resolve_paths(raw, base)
        except ValueError as exc:  # a path with a NUL byte cannot be resolved (found by fuzzing)
            raise ConfigError(f"{source}: bad path: {exc}") from None
        errors += _include_spec_files(raw, source, base)
    if url := os.environ.get("PTTBRIDGE_MQTT_URL"):
        mqtt = raw.get("mqtt")
        raw["mqtt"] = {**(mqtt if isinstance(mqtt, dict) else {}), "url": url}
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        errors.append(format_validation_error(source, exc))
    if errors:
        raise ConfigError("\n".join(errors))
    return config


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:  # a binary or Latin-1 file is a user error too (found by fuzzing)
        raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, str(path), path.parent)
