"""Find decoders (of byte streams and of audio) by name, lazily (after python-can's interface registry).

Built-in decoders are listed here as ``name -> "module:Class"``; third parties add theirs through the
entry-point group ``pttbridge.drivers`` without touching the package::

    [options.entry_points]
    pttbridge.drivers =
        acme-panic = acme_pttbridge.panic:AcmePanicDecoder

A module is imported only when its decoder is asked for, so a missing optional dependency fails for
that decoder alone, with a clear error.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from drivers.audio.base import AudioDecoder
from drivers.base import ProtocolDecoder, make_protocol

ENTRY_POINT_GROUP = "pttbridge.drivers"

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


class UnknownProtocol(LookupError):
    pass


def available() -> dict[str, str]:
    """Every known protocol name with where it comes from (built-in first, then plugins)."""
    found = dict(BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def _load(name: str) -> type:
    target = available().get(name)
    if target is None:
        raise UnknownProtocol(f"unknown protocol {name!r}; known: {', '.join(sorted(available()))}")
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UnknownProtocol(f"protocol {name!r} cannot be loaded from {module_name}: {exc}") from exc
    cls = getattr(module, attr, None)
    if not isinstance(cls, type):
        raise UnknownProtocol(f"protocol {name!r}: {target} is not a class")
    return cls


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
    try:
        return audio_decoder_class(name)(rate, **(options or {}))
    except TypeError as exc:
        raise ValueError(str(exc)) from None
