"""Find decoders (of byte streams and of audio) and I/O drivers by name, lazily (after python-can's
interface registry).

Built-in ones are listed here as ``name -> "module:Class"``; third parties add theirs through two
entry-point groups without touching the package: ``pttbridge.drivers`` for decoders (a
:class:`drivers.base.ProtocolDecoder` or :class:`drivers.audio.base.AudioDecoder`), and
``pttbridge.io_drivers`` for I/O drivers (a :class:`drivers.io.IoDriver`, registered by the ``type``
of its configuration table)::

    [options.entry_points]
    pttbridge.drivers =
        acme-panic = acme_pttbridge.panic:AcmePanicDecoder
    pttbridge.io_drivers =
        acme-udp = acme_pttbridge.udp:AcmeUdpDriver

A module is imported only when its decoder or driver is asked for, so a missing optional dependency
fails for that one alone, with a clear error. A plugin cannot replace a built-in name.
"""

from __future__ import annotations

import functools
import importlib
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from drivers.audio.base import AudioDecoder
from drivers.base import ProtocolDecoder, make_protocol

if TYPE_CHECKING:
    from config.schema import DriverTable
    from drivers.io import IoDriver

ENTRY_POINT_GROUP = "pttbridge.drivers"
IO_DRIVER_GROUP = "pttbridge.io_drivers"

BUILTIN: dict[str, str] = {
    # byte streams (serial ports, TCP)
    "nmea": "drivers.nmea:NmeaDecoder",
    "kenwood": "drivers.kenwood:KenwoodDecoder",
    "kiss": "drivers.kiss:KissAprsDecoder",
    "framespec": "drivers.framespec:FrameSpecDecoder",
    # audio
    "dtmf": "drivers.audio.dtmf:DtmfDecoder",
    "selcall": "drivers.audio.selcall:SelcallDecoder",
    "afsk1200": "drivers.audio.afsk:Afsk1200Decoder",
    "fleetsync": "drivers.audio.fleetsync:FleetSyncDecoder",
    "mdc1200": "drivers.audio.mdc1200:Mdc1200Decoder",
    "dmr": "drivers.audio.dmr.decoder:DmrDecoder",
}


# I/O drivers by the ``type`` of their configuration table (config/schema.py holds their models).
IO_BUILTIN: dict[str, str] = {
    "serial": "drivers.serial_port:SerialDriver",
    "lines": "drivers.serial_lines:SerialLinesDriver",
    "modbus": "drivers.modbus:ModbusDriver",
    "audio": "drivers.audio.driver:AudioDriver",
}


class UnknownProtocol(LookupError):
    pass


class UnknownIoDriver(LookupError):
    pass


def _found(builtin: dict[str, str], group: str) -> dict[str, str]:
    found = dict(builtin)
    for name, value in _plugins(group, tuple(sys.path)):
        found.setdefault(name, value)
    return found


@functools.cache
def _plugins(group: str, path: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The entry points of ``group`` (name, ``module:Class``) as installed on ``path``, the ``sys.path`` they
    are found on: read once per path, as reading every installed package's metadata takes 5 ms and names
    are looked up again and again (twice per decoder in a decode)."""
    from importlib.metadata import entry_points  # here: 20 ms to import, and built-in names need none

    return tuple((ep.name, ep.value) for ep in entry_points(group=group))


def _import(what: str, target: str, error: type[LookupError]) -> type:
    """The class ``target`` (``module:Class``) names; ``error`` says why not (``what`` is the asked name)."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise error(f"{what} cannot be loaded from {module_name}: {exc}") from exc
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise error(f"{what}: {target} is not a class")
    return cls


def available() -> dict[str, str]:
    """Every known protocol name with where it comes from (built-in first, then plugins)."""
    return _found(BUILTIN, ENTRY_POINT_GROUP)


def _load(name: str) -> type:
    # A built-in name is found without reading every installed package's metadata.
    target = BUILTIN.get(name) or available().get(name)
    if target is None:
        raise UnknownProtocol(f"unknown protocol {name!r}; known: {', '.join(sorted(available()))}")
    return _import(f"protocol {name!r}", target, UnknownProtocol)


def protocol_class(name: str) -> type[ProtocolDecoder]:
    cls = _load(name)
    if not issubclass(cls, ProtocolDecoder):
        raise UnknownProtocol(f"{name!r} decodes audio, not a byte stream")
    return cls


def create_protocol(name: str, options: Mapping[str, Any] | None = None) -> ProtocolDecoder:
    return make_protocol(protocol_class(name), options or {})


def audio_decoder_class(name: str) -> type[AudioDecoder]:
    cls = _load(name)
    if not issubclass(cls, AudioDecoder):
        raise UnknownProtocol(f"{name!r} decodes a byte stream, not audio")
    return cls


def audio_decoder_names() -> list[str]:
    """Every decoder of audio that can be loaded (built-in and plugins), for "all" on the command line."""
    names = []
    for name in available():
        try:
            if issubclass(_load(name), AudioDecoder):
                names.append(name)
        except UnknownProtocol:
            continue  # a plugin that cannot load is reported when it is asked for by name
    return names


def create_audio_decoder(name: str, rate: int | None = None, options: Mapping[str, Any] | None = None) -> AudioDecoder:
    """An audio decoder by name. Every process that makes one (a decode of recordings, a gateway, its
    decoding workers) keeps the memory decoders free in the heap from then on (drivers/audio/memory.py)."""
    from drivers.audio.memory import keep_freed_memory

    keep_freed_memory()
    try:
        return audio_decoder_class(name)(rate, **(options or {}))
    except TypeError as exc:
        raise ValueError(str(exc)) from None


def io_driver_types() -> dict[str, str]:
    """Every I/O driver ``type`` with where it comes from (built-in first, then plugins)."""
    return _found(IO_BUILTIN, IO_DRIVER_GROUP)


def io_driver_class(type_: str) -> type[IoDriver[Any, Any]]:
    """The I/O driver of a configuration table's ``type``; UnknownIoDriver says why there is none."""
    # Imported here: pydantic's models take 0.2 s to import, and a decode of recordings needs none.
    from config.schema import DriverTable
    from drivers.io import IoDriver

    # A built-in type is found without reading every installed package's metadata.
    target = IO_BUILTIN.get(type_) or io_driver_types().get(type_)
    if target is None:
        known = ", ".join(sorted(io_driver_types()))
        raise UnknownIoDriver(f"unknown driver type {type_!r}; known: {known} (a plugin's "
                              f"type is known where its package is installed)")
    cls = _import(f"driver type {type_!r}", target, UnknownIoDriver)
    if not issubclass(cls, IoDriver):
        raise UnknownIoDriver(f"driver type {type_!r}: {target} is not a drivers.io.IoDriver")
    config = getattr(cls, "CONFIG", None)
    if not (isinstance(config, type) and issubclass(config, DriverTable)):
        raise UnknownIoDriver(f"driver type {type_!r}: {target}.CONFIG is not a config.schema.DriverTable")
    return cls


def io_driver_config(type_: str) -> type[DriverTable]:
    """The model that validates a table of that ``type`` (config/schema.py asks this for plugins' types)."""
    return io_driver_class(type_).CONFIG
