r"""NET/ROM routing broadcasts ("NODES"): which nodes a packet network has and how each is reached.

A NET/ROM node (also BPQ, TheNet, JNOS, TARPN) sends its routing table as AX.25 UI frames to the
destination ``NODES`` with PID 0xCF, about once an hour. Sans-I/O: the info field of such a frame in,
a frozen :class:`NodesBroadcast` out, or :class:`NetRomError` with the reason.

Info field (NET/ROM routing broadcast, Software 2000's NET/ROM documentation; the Linux kernel's
net/netrom and JNOS read the same layout)::

    | 0xFF | sender's mnemonic | entry | entry | ... at most 11 entries
      1      6 bytes, ASCII, space padded

    entry (21 bytes):
    | destination | destination's mnemonic | best neighbour | quality |
      7 (AX.25)     6 ASCII, space padded     7 (AX.25)        1: 0-255

    A callsign is a 7-byte AX.25 address (:func:`drivers.ax25.read_address`).
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.ax25 import ADDRESS_LENGTH, Address, Ax25Error, read_address

NODES_SIGNATURE = 0xFF
MNEMONIC_LENGTH = 6
ENTRY_LENGTH = 2 * ADDRESS_LENGTH + MNEMONIC_LENGTH + 1
MAX_ENTRIES = 11


class NetRomError(ValueError):
    """An info field that is not a NET/ROM routing broadcast."""


@dataclass(frozen=True, slots=True)
class Route:
    destination: Address
    mnemonic: str
    neighbour: Address  # the node to send through
    quality: int  # 0-255; 0 means the route is not usable


@dataclass(frozen=True, slots=True)
class NodesBroadcast:
    mnemonic: str  # the sending node's own
    routes: tuple[Route, ...]


def _mnemonic(raw: bytes) -> str:
    # An ASCII field: any other byte is shown as <0xNN>, as Dire Wolf shows unprintable bytes.
    return "".join(chr(b) if 0x20 <= b < 0x7F else f"<0x{b:02x}>" for b in raw).rstrip(" ")


def parse_nodes(info: bytes) -> NodesBroadcast:
    """A routing broadcast's info field (after the PID); raises :class:`NetRomError`."""
    if not info or info[0] != NODES_SIGNATURE:
        raise NetRomError(f"no NODES signature 0xff at the start (0x{info[:1].hex() or '--'})")
    if len(info) < 1 + MNEMONIC_LENGTH:
        raise NetRomError(f"{len(info)} bytes, a NODES broadcast has at least {1 + MNEMONIC_LENGTH}")
    body = info[1 + MNEMONIC_LENGTH :]
    if len(body) % ENTRY_LENGTH or len(body) > MAX_ENTRIES * ENTRY_LENGTH:
        raise NetRomError(f"{len(body)} bytes of routes: not a whole number of {ENTRY_LENGTH}-byte entries, "
                          f"at most {MAX_ENTRIES}")
    routes = []
    for at in range(0, len(body), ENTRY_LENGTH):
        entry = body[at : at + ENTRY_LENGTH]
        try:
            destination = read_address(entry[:ADDRESS_LENGTH])
            neighbour = read_address(entry[ADDRESS_LENGTH + MNEMONIC_LENGTH : 2 * ADDRESS_LENGTH + MNEMONIC_LENGTH])
        except Ax25Error as exc:
            raise NetRomError(f"route {at // ENTRY_LENGTH + 1}: {exc}") from None
        mnemonic = _mnemonic(entry[ADDRESS_LENGTH : ADDRESS_LENGTH + MNEMONIC_LENGTH])
        routes.append(Route(destination, mnemonic, neighbour, entry[-1]))
    return NodesBroadcast(_mnemonic(info[1 : 1 + MNEMONIC_LENGTH]), tuple(routes))
