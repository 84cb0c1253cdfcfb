"""The template every I/O driver follows (after python-can's ``BusABC``): what all drivers share is
written here once, and a driver writes only what is its own.

An I/O driver owns one thread that opens a device (a serial port, a sound device, a Modbus link, a
plugin's radio interface), pumps what it reads into its decoders, hands their output to the gateway,
reopens the device with backoff when it goes away, and reports its health from any thread::

    start() ─▶ _open() ─▶ _pump(handle) ─▶ _close(handle) ─▶ ... stop() ─▶ _drain(): flush the decoders
                  │  ▲          │
                  │  │          └─ DeviceError, or anything unforeseen: the reason logged once per
                  └──┴─ backoff     distinct reason, link "down", reconnects counted
                        0.5 s .. 30 s, doubling; a device that worked starts it over
    _pump returns by itself (a recording played out) ─▶ _drain(); "ended", or opened again

A driver subclasses :class:`IoDriver`::

    class AcmeDriver(IoDriver[socket.socket, AcmeConfig]):
        TYPE = "acme"             # the ``type`` of its [[channels.drivers]] table
        CONFIG = AcmeConfig       # the pydantic model (a config.schema.DriverTable) validating that table
        COUNTERS = ("decoded", "rejected")

        @classmethod
        def from_config(cls, config, ctx): ...   # build it from its table; ConfigError names ctx.key
        def _open(self): ...                      # open the device, or raise DeviceError(why)
        def _pump(self, handle): ...              # read, feed, self._deliver(out) until self.stopping
        def _close(self, handle): ...

and registers it by ``TYPE`` (``drivers/registry.py``: built in, or the entry-point group
``pttbridge.io_drivers``), so that the gateway builds it from a table without knowing it.

Errors, all named in one place:

    DeviceError            the device cannot be opened, or failed in use: raised by _open/_pump, its
                           message is the ``last_error`` technicians see; handled here (backoff)
    config.ConfigError     from_config: the table cannot run here; the message names the key (ctx.key)
    registry.UnknownIoDriver   no driver of that type is installed (or its module does not load)
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from config.schema import DriverTable
from drivers.base import Output, Rejected
from drivers.link import BACKOFF_MAX_S, BACKOFF_MIN_S, LinkState

if TYPE_CHECKING:
    from drivers.audio.base import AudioTap
    from drivers.audio.recorder import CallMark, CallRecorder
    from drivers.audio.workers import DecodePool

log = logging.getLogger(__name__)

# How long stop() waits for the thread: longer than any one blocking read of the built-in drivers (a
# serial read 0.1 s, a Modbus request at its default 1 s timeout tried twice; a sound device's read is
# cut short by closing the stream).
STOP_WAIT_S = 3.0

Sink = Callable[[list[Output]], None]
CallSink = Callable[[list["CallMark"]], None]

HandleT = TypeVar("HandleT")
ConfigT = TypeVar("ConfigT", bound=DriverTable)


class DeviceError(Exception):
    """The device cannot be opened or failed while in use; the message says why, as a technician reads it."""


class Counters:
    """Named counts that a driver's thread adds to while health and metrics read them from other threads."""

    def __init__(self, names: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(names, 0)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, n in deltas.items():
                self._counts[name] += n

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


def _no_recorder() -> None:
    return None


def _no_tap() -> None:
    return None


@dataclass(frozen=True)
class DriverContext:
    """What the gateway gives a driver it builds from a channel's table."""

    channel: str  # the channel's name; a driver is named ``{channel}/{its name}``
    key: str  # where its table is, for errors: ``channels[0].drivers[1]``
    sink: Sink  # where its outputs go: the channel's rules, then the outbox
    on_health: Callable[[], None] | None = None  # called when its link state changes
    # The channel's call recorder and where its marks go, for the first driver of the channel that hears
    # its audio; None when the channel records nothing or another driver records it.
    take_recorder: Callable[[], tuple[CallRecorder, CallSink] | None] = _no_recorder
    # Who hears the channel's receive audio live (the gateway's voice stream), for the first driver of the
    # channel that hears its audio; None when nobody listens or another driver feeds it.
    take_tap: Callable[[], AudioTap | None] = _no_tap
    # The gateway's decoding workers (``[gateway] decode_workers``); None: decoders run in the driver's thread.
    decode_pool: DecodePool | None = None


class IoDriver(ABC, Generic[HandleT, ConfigT]):
    """One device read on a thread of its own (see the module docstring)."""

    TYPE: ClassVar[str]  # the ``type`` of the driver's configuration table
    CONFIG: ClassVar[type[DriverTable]]  # the model that validates that table
    COUNTERS: ClassVar[tuple[str, ...]] = ()  # counted with self.counters.add(...), shown in snapshot()
    # The link is up once _open returns. A driver whose device can open without working (a port whose
    # modem lines cannot be read, a Modbus link whose slave does not answer) sets False and calls _up()
    # after its first good reading.
    UP_ON_OPEN: ClassVar[bool] = True
    REJECTED_LOG_LEVEL: ClassVar[int] = logging.WARNING

    def __init__(self, name: str, *, sink: Sink | None = None, on_health: Callable[[], None] | None = None) -> None:
        self.name = name
        self.sink = sink  # where _deliver hands outputs by default (a driver of several radios has one each)
        self.link = LinkState(name, on_health)
        self.counters = Counters(self.COUNTERS)
        self._stop = threading.Event()
        self._is_up = False  # in this connection: set by _up(), so that backoff knows the device worked
        self._handle: HandleT | None = None  # the open device while the thread pumps it (for _interrupt)
        self._thread = threading.Thread(target=self._run, name=f"{self.TYPE}:{name}", daemon=True)

    # --- building from configuration ----------------------------------------------------------

    @classmethod
    @abstractmethod
    def from_config(cls, config: ConfigT, ctx: DriverContext) -> Self:
        """The driver a channel's table describes, not started; raises ConfigError naming ``ctx.key``."""

    @classmethod
    def share_key(cls, config: ConfigT) -> Hashable | None:
        """Tables with the same key share one driver (one capture stream per sound device): it is built
        by :meth:`from_config` from the first and every table is :meth:`attach`-ed to it. None: its own."""
        return None

    def attach(self, config: ConfigT, ctx: DriverContext) -> None:
        """Add one channel's table to a shared driver (see :meth:`share_key`)."""
        raise NotImplementedError(f"{self.TYPE} drivers are not shared")

    # --- control, from any thread ---------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def request_stop(self) -> None:
        """Tell the thread to stop and cut short a read in progress, without waiting for it."""
        self._stop.set()
        self._interrupt()

    def stop(self, timeout: float = STOP_WAIT_S) -> None:
        """Stop the thread and close the device; waits at most ``timeout`` for a read in progress."""
        self.request_stop()
        if self._thread.ident is not None:  # built but never started (a plan refused later): nothing runs
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: still in a read after %.1f s; the device closes when it returns", self.name, timeout)
        self.link.set("stopped")

    def snapshot(self) -> dict[str, Any]:
        """Health: link state, since when, last error, reconnects; the driver's own fields; its counters."""
        return {**self.link.as_dict(), **self._status(), **self.counters.as_dict()}

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # --- what a driver writes -------------------------------------------------------------------

    @abstractmethod
    def _open(self) -> HandleT:
        """Open the device; raise DeviceError (or let the library's error through) when it cannot be.
        Leaves nothing open when it raises."""

    @abstractmethod
    def _pump(self, handle: HandleT) -> None:
        """Read, feed the decoders and :meth:`_deliver` their output until :attr:`stopping`; raise
        DeviceError when the device fails. Returning while not stopping means the input ended."""

    def _close(self, handle: HandleT) -> None:
        """Close the handle (after a failure too); errors here are logged, never raised."""

    def _status(self) -> dict[str, Any]:
        """The driver's own fields of :meth:`snapshot`: where it reads (port, device) and the like."""
        return {}

    def _drain(self) -> None:
        """Hand on what the decoders still hold: called when the input ended and when the thread stops."""

    def _reopen_at_end(self) -> bool:
        """The input ended by itself (a recording played out): True to open it again."""
        return False

    def _interrupt(self) -> None:
        """Called by :meth:`stop` from another thread: cut short a read that would not return soon."""

    # --- helpers for drivers --------------------------------------------------------------------

    def _up(self) -> bool:
        """The device works: the link is open. True the first time in this connection (to log it once)."""
        if self._is_up or self.stopping:
            return False
        self._is_up = True
        self.link.set("open")
        return True

    def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the driver is stopped."""
        self._stop.wait(seconds)

    def _deliver(self, out: list[Output], *, sink: Sink | None = None, counters: Counters | None = None,
                 source: str | None = None, logged: int = 0) -> None:
        """Count what the decoders completed (``decoded`` and ``rejected`` of ``counters``, by default the
        driver's, which must name them), log each rejection (the first ``logged`` were logged already),
        and hand all of it on to ``sink`` (by default the driver's ``sink``)."""
        rejected = sum(isinstance(o, Rejected) for o in out)
        (counters or self.counters).add(decoded=len(out) - rejected, rejected=rejected)
        for r in out[logged:]:
            if isinstance(r, Rejected):
                log.log(self.REJECTED_LOG_LEVEL, "%s: rejected %s", source or self.name, r)
        deliver = sink or self.sink
        if deliver is None:
            raise TypeError(f"{self.name}: no sink to deliver to")
        deliver(out)

    # --- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = BACKOFF_MIN_S
        while not self.stopping:
            self._is_up = False
            try:
                handle = self._open()
            except Exception as exc:  # noqa: BLE001 - the driver's own errors and any library's: the thread lives on
                backoff = self._failed(exc, backoff)
                continue
            self._handle = handle
            if self.UP_ON_OPEN:
                self._up()
            failure: Exception | None = None
            try:
                self._pump(handle)
            except Exception as exc:  # noqa: BLE001 - as above: a radio must never sit "open" and deaf
                failure = exc
            finally:
                self._handle = None
                self._close_quietly(handle)
            if failure is not None:
                backoff = self._failed(failure, backoff)
                continue
            backoff = BACKOFF_MIN_S
            if self.stopping:
                break
            self._drain()  # the input ended (a recording): what the decoders hold is complete
            if not self._reopen_at_end():
                self.link.set("ended")
                return
        self._drain()

    def _failed(self, exc: Exception, backoff: float) -> float:
        """Report a failure and wait out the backoff; returns the next one."""
        if self.stopping:
            return backoff  # a read cut short by stop(): no failure of the device
        if isinstance(exc, DeviceError):
            reason = str(exc)
        else:  # not foreseen by the driver: shown with its traceback, so that it can be foreseen next time
            log.warning("%s: %r", self.name, exc, exc_info=exc)
            reason = f"{type(exc).__name__}: {exc}"
        if self._is_up:
            backoff = BACKOFF_MIN_S  # the device worked: backoff starts over
        self.link.down(reason, backoff)
        self._pause(backoff)
        return min(backoff * 2, BACKOFF_MAX_S)

    def _close_quietly(self, handle: HandleT) -> None:
        try:
            self._close(handle)
        except Exception as exc:  # noqa: BLE001 - a device that went away may fail to close too; the thread goes on
            log.debug("%s: close failed: %r", self.name, exc)
