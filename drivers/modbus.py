"""Modbus I/O modules: wired panic buttons, radio interface lines (COR, PTT), doors, mains power.

Two parts, after the rest of ``drivers``:

- **sans-I/O** (:class:`ModbusPoint`, :func:`read_plan`, :class:`ModbusInputs`): which addresses to
  read, and what a change of a point means. No pymodbus, sockets or clock reads: readings and ``now``
  come in, events go out.
- **I/O** (:class:`ModbusDriver`, an :class:`drivers.io.IoDriver`): a pymodbus client polling one slave
  on a thread of its own, and :meth:`ModbusDriver.write_coil` for outputs (keying a radio's PTT, a beacon
  lamp in the command center). pymodbus is imported only here, so a gateway without Modbus never loads it.

A point is one bit of one of the four Modbus tables (Modbus Application Protocol V1.1b3, section 4.3)::

    table              function code (read)   width    a point is active when
    coil               01                     1 bit    the bit is 1
    discrete_input     02                     1 bit    the bit is 1
    holding_register   03                     16 bit   bit ``bit`` is 1, or value >= ``threshold``,
    input_register     04                     16 bit       or (neither given) value != 0

``invert`` turns that round, for normally-closed contacts and active-low lines (a door contact that
opens the loop, a COR line pulled low while the squelch is open).

What comes out, for a point that changed and stayed changed for ``debounce_ms``:

- a point of kind ``alert`` (a panic button) that became active: an ``alert`` event for its ``unit``
  (e.g. ``io:lobby-panic``), so the bridge opens an incident;
- any other change (COR, door, power; and the panic button's release): an ``io`` event.

Both carry ``detail = {"protocol": "modbus", "point", "table", "address", "value", "previous", "raw"}``
(``value``/``previous`` are 0|1 after ``invert``: 1 = active; ``previous`` is None at start), plus
``bit``, ``label`` and ``slave`` where configured.

Start and outages. The first reading establishes each point's state without an event, with one
exception: an ``alert`` point that is already active (``alert_at_start``, on by default for alert
points) raises its alert. Panic buttons latch until a key resets them, so a button pressed while the
gateway was down or restarting must not be swallowed as "the way things were". An outage of the link
keeps the last known states (a change found after it is reported as a change) and forgets changes
that were waiting out their debounce, since nobody saw whether they lasted.

Debounce is measured on the polls: a new value must be seen again at least ``debounce_ms`` after it
was first seen (``debounce_ms = 0``: accepted on the first sight). A glitch shorter than the poll
interval may not be seen at all; one seen on a single poll is dropped.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from config.schema import ConfigError, ModbusDriverConfig
from drivers.base import Output, Rejected
from drivers.io import DeviceError, DriverContext, IoDriver, Sink
from gateway.events import Decoded, Kind, is_unit

if TYPE_CHECKING:
    from pymodbus.client import ModbusSerialClient, ModbusTcpClient
    from pymodbus.client.base import ModbusBaseSyncClient

log = logging.getLogger(__name__)

PROTOCOL = "modbus"
MODBUS_TCP_PORT = 502  # IANA "mbap"
# Most values one read may ask for (Modbus Application Protocol V1.1b3, sections 6.1-6.4).
MAX_READ = {"bits": 2000, "registers": 125}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}\Z")


class Table(StrEnum):
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING_REGISTER = "holding_register"
    INPUT_REGISTER = "input_register"

    @property
    def bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)


@dataclass(frozen=True, slots=True)
class ModbusPoint:
    """One configured input or output; raises ValueError naming the field that is wrong."""

    name: str
    table: Table
    address: int  # the PDU address, 0-based (a module's manual may count from 1: "input 1" = 0)
    kind: Kind = Kind.IO  # ALERT: becoming active is an emergency; IO: every change is an io event
    invert: bool = False
    bit: int | None = None  # registers only: which bit (0 = least significant)
    threshold: int | None = None  # registers only: active when the value is at least this
    debounce_ms: int = 50
    unit: str | None = None  # who the event is about, e.g. io:lobby-panic
    label: str | None = None  # shown to dispatchers
    alert_at_start: bool | None = None  # default: True for alert points (see the module docstring)

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise ValueError(f"name: expected 1-64 characters of A-Z a-z 0-9 _ . -, got {self.name!r}")
        object.__setattr__(self, "table", Table(self.table))
        object.__setattr__(self, "kind", Kind(self.kind))
        if self.kind not in (Kind.ALERT, Kind.IO):
            raise ValueError(f"kind: expected alert or io, got {self.kind!r}")
        if not 0 <= self.address <= 0xFFFF:
            raise ValueError(f"address: expected 0..65535, got {self.address}")
        if self.table.bits and (self.bit is not None or self.threshold is not None):
            raise ValueError(f"bit/threshold: a {self.table} is one bit already")
        if self.bit is not None and self.threshold is not None:
            raise ValueError("bit/threshold: give one of them, not both")
        if self.bit is not None and not 0 <= self.bit <= 15:
            raise ValueError(f"bit: expected 0..15, got {self.bit}")
        if self.threshold is not None and not 0 <= self.threshold <= 0xFFFF:
            raise ValueError(f"threshold: expected 0..65535, got {self.threshold}")
        if self.debounce_ms < 0:
            raise ValueError(f"debounce_ms: expected 0 or more, got {self.debounce_ms}")
        if self.unit is not None and not is_unit(self.unit):
            raise ValueError(f"unit: expected a protocol-qualified identity like 'io:lobby-panic', got {self.unit!r}")
        if self.alert_at_start and self.kind is not Kind.ALERT:
            raise ValueError("alert_at_start: only points of kind alert raise alerts")

    @property
    def alerts_at_start(self) -> bool:
        return self.kind is Kind.ALERT and self.alert_at_start is not False

    def active(self, raw: int) -> bool:
        if self.bit is not None:
            level = bool(raw >> self.bit & 1)
        elif self.threshold is not None:
            level = raw >= self.threshold
        else:
            level = raw != 0
        return level != self.invert


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One read request: ``count`` values of ``table`` from ``start``."""

    table: Table
    start: int
    count: int

    def addresses(self) -> range:
        return range(self.start, self.start + self.count)


def read_plan(points: Iterable[ModbusPoint]) -> list[ReadBlock]:
    """The fewest reads that cover every point: runs of adjacent addresses, each within the request
    limit. Gaps are never read across, since a module may answer "illegal address" for a hole in its map
    and would take the good addresses of that read down with it."""
    blocks: list[ReadBlock] = []
    by_table: dict[Table, set[int]] = {}
    for p in points:
        by_table.setdefault(p.table, set()).add(p.address)
    for table in Table:
        limit = MAX_READ["bits" if table.bits else "registers"]
        run: list[int] = []
        for address in sorted(by_table.get(table, ())):
            if run and (address != run[-1] + 1 or len(run) == limit):
                blocks.append(ReadBlock(table, run[0], len(run)))
                run = []
            run.append(address)
        if run:
            blocks.append(ReadBlock(table, run[0], len(run)))
    return blocks


@dataclass
class _Track:
    state: bool | None = None  # the debounced level; None until the first reading settled
    raw: int | None = None
    candidate: bool | None = None  # a new level waiting out its debounce
    since: datetime | None = None


#: A reading: the raw value at (table, address): a bool for a bit table, 0..65535 for a register.
Readings = Mapping[tuple[Table, int], object]


class ModbusInputs:
    """Sans-I/O: readings in, debounced changes out as events (see the module docstring)."""

    name = PROTOCOL

    def __init__(self, points: Iterable[ModbusPoint], *, slave: int | None = None) -> None:
        self.points = list(points)
        names = [p.name for p in self.points]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"points: two points named {dup[0]!r}")
        self.slave = slave
        self.plan = read_plan(self.points)
        self._tracks = {p.name: _Track() for p in self.points}

    def feed(self, readings: Readings, now: datetime) -> list[Output]:
        """One poll's readings; points missing from it (their read failed) keep waiting."""
        out: list[Output] = []
        for p in self.points:
            if (p.table, p.address) not in readings:
                continue
            value = readings[(p.table, p.address)]
            raw = _raw_value(p.table, value)
            if raw is None:
                out.append(Rejected(PROTOCOL, f"point {p.name}: {p.table} {p.address} read as {value!r}",
                                    repr(value).encode()[:64]))
                continue
            out += self._sample(p, raw, now)
        return out

    def reset(self) -> None:
        """The link went down: changes waiting out their debounce were not seen to last."""
        for t in self._tracks.values():
            t.candidate, t.since = None, None

    def states(self) -> dict[str, int | None]:
        """Each point's debounced level (1 = active), None while not yet known."""
        return {name: None if t.state is None else int(t.state) for name, t in self._tracks.items()}

    def coil_address(self, target: str | int) -> int:
        """The coil a write means: a configured coil point by name, or a coil address (int or digits)."""
        if isinstance(target, str):
            for p in self.points:
                if p.name == target:
                    if p.table is not Table.COIL:
                        raise ValueError(f"point {target!r} is a {p.table}, not a coil")
                    return p.address
            if target.isdigit():  # a coil address given as text, as a configuration file may hold it
                return self.coil_address(int(target))
            raise ValueError(f"no point named {target!r}; coils: {', '.join(self.coils()) or 'none'}")
        if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target <= 0xFFFF:
            raise ValueError(f"expected a coil point name or an address 0..65535, got {target!r}")
        return target

    def coils(self) -> list[str]:
        return [p.name for p in self.points if p.table is Table.COIL]

    def _sample(self, p: ModbusPoint, raw: int, now: datetime) -> list[Output]:
        t = self._tracks[p.name]
        level = p.active(raw)
        if level == t.state:
            t.raw, t.candidate, t.since = raw, None, None
            return []
        if t.candidate != level or t.since is None:
            t.candidate, t.since = level, now
        if now - t.since < timedelta(milliseconds=p.debounce_ms):
            return []
        previous = t.state
        t.state, t.raw, t.candidate, t.since = level, raw, None, None
        if previous is None and not (level and p.alerts_at_start):
            return []  # the first reading only says how things are
        return [self._event(p, level, previous, raw, now)]

    def _event(self, p: ModbusPoint, level: bool, previous: bool | None, raw: int, now: datetime) -> Decoded:
        detail: dict[str, Any] = {
            "protocol": PROTOCOL,
            "point": p.name,
            "table": str(p.table),
            "address": p.address,
            "value": int(level),
            "previous": None if previous is None else int(previous),
            "raw": raw,
        }
        if p.bit is not None:
            detail["bit"] = p.bit
        if p.label is not None:
            detail["label"] = p.label
        if self.slave is not None:
            detail["slave"] = self.slave
        kind = Kind.ALERT if p.kind is Kind.ALERT and level else Kind.IO
        return Decoded(kind=kind, time=now, unit=p.unit, detail=detail)


def _raw_value(table: Table, value: object) -> int | None:
    """A reading as an int, or None when it cannot be one (never raises: garbage is rejected)."""
    if table.bits:
        if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
            return int(value)
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFF:
        return value
    return None


# --- the I/O driver --------------------------------------------------------------------------------


class ModbusWriteError(RuntimeError):
    """A coil write that did not reach the module, or that the module refused; the message says why."""


def endpoint(url: str) -> tuple[str, str, int]:
    """``("tcp", host, port)`` for ``tcp://host[:port]``, else ``("rtu", url, 0)``: any pyserial URL
    (``/dev/ttyUSB0``, a pty path, ``socket://`` to a serial device server, ``rfc2217://``) speaks RTU."""
    if url.startswith("tcp://"):
        parts = urlsplit(url)
        try:
            port = parts.port or MODBUS_TCP_PORT
        except ValueError as exc:
            raise ValueError(f"{url!r}: {exc}") from None
        if not parts.hostname:
            raise ValueError(f"expected tcp://host[:port], got {url!r}")
        return "tcp", parts.hostname, port
    if not url:
        raise ValueError("expected tcp://host[:port] or a serial port URL, got ''")
    return "rtu", url, 0


class ModbusDriver(IoDriver["ModbusTcpClient | ModbusSerialClient", ModbusDriverConfig]):
    """Polls one Modbus slave on a thread of its own; writes coils from any thread.

        connect --> read every block of the plan --> ModbusInputs.feed --> sink(events)
           ^                    |  (one lock: a write waits for the poll, never interleaves with it)
           +-- backoff 0.5 s .. 30 s, reason logged once <-- no connection / no answer

    A slave that answers a read with an exception code is up (it answered): the points of that read are
    rejected and the reason logged when it changes. A link that does not answer is down.
    """

    TYPE = "modbus"
    CONFIG = ModbusDriverConfig
    COUNTERS = ("polls", "decoded", "rejected", "writes", "write_errors")
    UP_ON_OPEN = False  # a TCP connection opens without the slave behind it answering: up on the first poll
    RETRIES = 1  # one resend inside pymodbus for a lost frame on a noisy line; then the link is down

    def __init__(
        self,
        name: str,
        url: str,
        points: Iterable[ModbusPoint],
        sink: Sink,
        *,
        slave: int = 1,
        poll_interval_s: float = 0.1,
        timeout_s: float = 1.0,
        serial_options: dict[str, Any] | None = None,
        on_health: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name, sink=sink, on_health=on_health)
        self.url = url
        self.transport, self.host, self.port = endpoint(url)
        self.slave = slave
        self.inputs = ModbusInputs(points, slave=slave)
        self.poll_interval_s = poll_interval_s
        self.timeout_s = timeout_s
        self.serial_options = serial_options or {}
        self._read_errors: dict[ReadBlock, str] = {}  # the reason each failing read was last logged with
        self._lock = threading.Lock()  # the inputs' states
        self._io = threading.Lock()  # the client: pymodbus sync clients are not thread-safe
        self._client: ModbusTcpClient | ModbusSerialClient | None = None

    @classmethod
    def from_config(cls, config: ModbusDriverConfig, ctx: DriverContext) -> ModbusDriver:
        points = []
        for pi, p in enumerate(config.points):
            try:
                points.append(ModbusPoint(**p.model_dump()))
            except ValueError as exc:  # the schema checks the same; this names the key if they ever differ
                raise ConfigError(f"{ctx.key}.points[{pi}].{exc}") from None
        serial_options = {"baudrate": config.baudrate, "bytesize": config.bytesize, "parity": config.parity,
                          "stopbits": config.stopbits}
        return cls(f"{ctx.channel}/{config.name or 'modbus'}", config.url, points,
                   ctx.sink,  # through the channel's rules, like every other driver
                   slave=config.slave, poll_interval_s=config.poll_interval_s, timeout_s=config.timeout_s,
                   serial_options=serial_options, on_health=ctx.on_health)

    def _status(self) -> dict[str, Any]:
        with self._lock:
            points = self.inputs.states()
        return {"port": self.url, "protocol": PROTOCOL, "slave": self.slave, "points": points}

    def write_coil(self, target: str | int, value: bool) -> None:
        """Set a coil (a point name or an address) and wait for the module's answer.

        Safe from any thread. Raises ValueError for a target that is no coil, and
        :class:`ModbusWriteError` when the link is down or the module refuses the write.
        """
        address = self.inputs.coil_address(target)
        with self._io:
            if self.stopping:  # checked under the lock: the thread closes the client under it on its way out
                raise ModbusWriteError(f"{self.name}: the driver is stopped")
            try:
                client = self._connected()
                response = client.write_coil(address, bool(value), device_id=self.slave)
            except Exception as exc:  # noqa: BLE001 - pymodbus raises ModbusException, OSError, serial errors: never crash
                self._drop_client()
                self.counters.add(write_errors=1)
                raise ModbusWriteError(f"{self.name}: coil {address} not written: {_why(exc)}") from None
        if response.isError():
            self.counters.add(write_errors=1)
            why = _exception_text(response)
            raise ModbusWriteError(f"{self.name}: slave {self.slave} refused coil {address}: {why}")
        self.counters.add(writes=1)
        log.info("%s: coil %d set to %d", self.name, address, int(bool(value)))

    # --- the thread ----------------------------------------------------------------------------

    def _open(self) -> ModbusTcpClient | ModbusSerialClient:
        with self._io:
            try:
                return self._connected()
            except DeviceError:
                self._drop_client()
                raise

    def _pump(self, client: ModbusTcpClient | ModbusSerialClient) -> None:
        while not self.stopping:
            started = time.monotonic()
            with self._io:
                readings, rejected = self._poll()
            if self._up():
                log.info("%s: polling slave %d at %s", self.name, self.slave, self.url)
            with self._lock:
                out = rejected + self.inputs.feed(readings, datetime.now(UTC))
            self.counters.add(polls=1)
            if out:
                self._deliver(out, logged=len(rejected))  # a failing read is logged once per reason
            self._pause(max(0.0, self.poll_interval_s - (time.monotonic() - started)))

    def _close(self, client: ModbusTcpClient | ModbusSerialClient) -> None:
        with self._io:
            self._drop_client()
        with self._lock:
            self.inputs.reset()

    def _poll(self) -> tuple[dict[tuple[Table, int], object], list[Output]]:
        client = self._connected()  # a failed write may have dropped the one the link was opened with
        readings: dict[tuple[Table, int], object] = {}
        rejected: list[Output] = []
        for block in self.inputs.plan:
            try:
                response = _READERS[block.table](client, block.start, count=block.count, device_id=self.slave)
            except Exception as exc:  # noqa: BLE001 - pymodbus raises ModbusException, OSError, serial errors: never crash
                raise DeviceError(f"{self.url} slave {self.slave}: {_why(exc)}") from None
            if response.isError():
                reason = (f"slave {self.slave} answered {_exception_text(response)} to a read of "
                          f"{block.count} {block.table}(s) from {block.start}")
                # The exception PDU as it came: function code | 0x80, exception code.
                raw = bytes([response.function_code & 0xFF, (response.exception_code or 0) & 0xFF])
                rejected.append(Rejected(PROTOCOL, reason, raw))
                self._note_read_error(block, reason)
                continue
            values = response.bits if block.table.bits else response.registers
            if len(values) < block.count:
                raise DeviceError(f"{self.url} slave {self.slave}: short answer to a read of {block.count} "
                                  f"{block.table}(s) from {block.start}")
            self._note_read_error(block, None)
            readings.update(zip(((block.table, a) for a in block.addresses()), values, strict=False))
        return readings, rejected

    def _connected(self) -> ModbusTcpClient | ModbusSerialClient:
        if self._client is None:
            self._client = self._make_client()
        if not self._client.connect():
            where = f"{self.host}:{self.port}" if self.transport == "tcp" else self.url
            raise DeviceError(f"cannot connect to {where}")
        return self._client

    def _make_client(self) -> ModbusTcpClient | ModbusSerialClient:
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient

        if self.transport == "tcp":
            return ModbusTcpClient(self.host, port=self.port, timeout=self.timeout_s, retries=self.RETRIES)
        return ModbusSerialClient(self.url, timeout=self.timeout_s, retries=self.RETRIES, **self.serial_options)

    def _drop_client(self) -> None:
        # Typed as their common base: mypy resolves close() on one class, not on a union of two.
        client: ModbusBaseSyncClient | None = self._client
        self._client = None
        if client is not None:
            try:
                client.close()
            except OSError:
                pass

    def _note_read_error(self, block: ReadBlock, reason: str | None) -> None:
        before = self._read_errors.get(block)  # only the driver's thread reads and writes these
        if reason is None:
            self._read_errors.pop(block, None)
        else:
            self._read_errors[block] = reason
        if reason is not None and reason != before:  # once per distinct reason, not on every poll
            log.warning("%s: %s", self.name, reason)


_READERS: dict[Table, Callable[..., Any]] = {
    Table.COIL: lambda c, *a, **k: c.read_coils(*a, **k),
    Table.DISCRETE_INPUT: lambda c, *a, **k: c.read_discrete_inputs(*a, **k),
    Table.HOLDING_REGISTER: lambda c, *a, **k: c.read_holding_registers(*a, **k),
    Table.INPUT_REGISTER: lambda c, *a, **k: c.read_input_registers(*a, **k),
}

# Exception codes (Modbus Application Protocol V1.1b3, section 7).
_EXCEPTION_CODES = {1: "illegal function", 2: "illegal data address", 3: "illegal data value",
                    4: "slave device failure", 5: "acknowledge", 6: "slave device busy",
                    10: "gateway path unavailable", 11: "gateway target device failed to respond"}


def _exception_text(response: Any) -> str:
    code = getattr(response, "exception_code", None)
    return f"exception {code} ({_EXCEPTION_CODES.get(code, 'unknown')})" if code is not None else str(response)


def _why(exc: BaseException) -> str:
    text = str(exc).replace("Modbus Error: ", "").strip()
    return text or type(exc).__name__
