"""NET/ROM routing broadcasts: a real TARPN node's table read entry by entry, what is no broadcast
refused with the reason, and garbage that never raises anything else (nor breaks the event)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ax25 import Address, encode_ui
from drivers.base import Rejected
from drivers.kiss import frame_to_output
from drivers.netrom import NetRomError, Route, parse_nodes
from gateway.events import Event

NOW = datetime(2026, 11, 26, 19, 30, 1, tzinfo=UTC)
# KA2DEW-2's (TADD) second routing broadcast on 147.555 MHz, from mumrah/JNC (Apache-2.0).
TADD_2 = (Path(__file__).resolve().parents[1] / "data" / "ax25" / "jnc_tarpn_tadd-nodes-part-2.bin").read_bytes()
INFO = TADD_2[16:]  # after two addresses, control 0x03 and PID 0xCF


def test_a_real_broadcast_entry_by_entry() -> None:
    nodes = parse_nodes(INFO)
    assert nodes.mnemonic == "TADD"
    assert len(nodes.routes) == 7
    assert nodes.routes[0] == Route(Address("KA2DEW", 3), "FFVC", Address("AI4WV", 2), 156)
    assert nodes.routes[-1] == Route(Address("K4RGN", 1), "BBTILL", Address("K4RGN", 2), 77)


@pytest.mark.parametrize(
    ("info", "why"),
    [
        (b"", "no NODES signature"),
        (b"\xfeTADD  ", "no NODES signature"),  # 0xFE: a poll for routes, no table
        (b"\xffTAD", "at least 7"),
        (INFO[:-1], "not a whole number"),
        (INFO[:7] + INFO[7:28] * 12, "at most 11"),
        (INFO[:7] + b"APRS  \x60" + INFO[14:28], "route 1: addr_invalid"),  # an unshifted callsign
    ],
)
def test_what_is_no_broadcast_is_refused_with_the_reason(info: bytes, why: str) -> None:
    with pytest.raises(NetRomError, match=why):
        parse_nodes(info)


def test_a_broken_broadcast_is_still_the_node_s_status() -> None:
    event = frame_to_output(encode_ui("KA2DEW-2", "NODES", INFO[:-1], pid=0xCF), NOW, "kiss")
    assert not isinstance(event, Rejected)
    assert (event.unit, event.detail["protocol"], event.detail["pid_name"]) == ("aprs:KA2DEW-2", "ax25", "NET/ROM")
    assert event.detail["error"].startswith("NET/ROM routing broadcast: ")


@given(st.binary(max_size=300))
def test_garbage_raises_only_netrom_error_and_always_makes_an_event(data: bytes) -> None:
    try:
        parse_nodes(b"\xff" + data)
    except NetRomError:
        pass
    event = frame_to_output(encode_ui("N0CALL-1", "NODES", b"\xff" + data, pid=0xCF), NOW, "kiss")
    assert not isinstance(event, Rejected)
    Event.stamp(event, seq=1, gateway="gw", channel="ch")
