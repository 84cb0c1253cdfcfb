"""Build DMR transmissions symbol by symbol (the encoder of tests and benches): voice calls with their
LC header, embedded LC and terminator, CSBKs, data packets (header + rate 1/2, 3/4 or 1 blocks) with
LRRP or LIP inside, as a repeater sends them (continuous, CACH, both slots) or as a radio does (MS
bursts every 60 ms). The voice frames carry fixed pseudo-random bits in place of AMBE+2 speech.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivers.audio.dmr import fec, layer2
from drivers.audio.dmr.layer2 import DataType, LinkControl, Symbols, SyncKind
from drivers.audio.dmr.location import PORT_LIP, PORT_LRRP, build_udp_ip, radio_ip

_VOICE_BITS = np.random.default_rng(0x444D52).integers(0, 2, 216).astype(np.uint8)  # stands in for AMBE+2


@dataclass(frozen=True, slots=True)
class Burst:
    """132 symbols of one burst, for one slot."""

    slot: int
    symbols: Symbols


def data_burst(color_code: int, data_type: int, payload196: fec.Bits, *, sync: SyncKind = SyncKind.BS_DATA,
               slot: int = 1) -> Burst:
    st = layer2.slot_type_bits(color_code, data_type)
    p = np.asarray(payload196, np.uint8)
    bits = np.concatenate((p[:98], st[:10], fec.bits_of(layer2.SYNC_WORDS[sync], 48), st[10:], p[98:]))
    return Burst(slot, layer2.bits_to_symbols(bits))


def trellis_burst(color_code: int, block: bytes, *, sync: SyncKind = SyncKind.BS_DATA, slot: int = 1) -> Burst:
    st = layer2.slot_type_bits(color_code, DataType.RATE_34_DATA)
    sym = fec.trellis_encode(block)
    mid = layer2.bits_to_symbols(np.concatenate((st[:10], fec.bits_of(layer2.SYNC_WORDS[sync], 48), st[10:])))
    return Burst(slot, np.concatenate((sym[:49], mid, sym[49:])))


def voice_burst(middle48: fec.Bits, *, slot: int = 1) -> Burst:
    bits = np.concatenate((_VOICE_BITS[:108], np.asarray(middle48, np.uint8), _VOICE_BITS[108:]))
    return Burst(slot, layer2.bits_to_symbols(bits))


def lc_burst(lc: LinkControl | bytes, color_code: int, data_type: DataType, *, sync: SyncKind, slot: int) -> Burst:
    mask = fec.MASK_VOICE_LC_HEADER if data_type == DataType.VOICE_LC_HEADER else fec.MASK_TERMINATOR_LC
    raw = lc.to_bytes() if isinstance(lc, LinkControl) else lc
    return data_burst(color_code, data_type, fec.bptc196_encode(fec.full_lc_encode(raw, mask)), sync=sync, slot=slot)


def voice_call(lc: LinkControl, *, color_code: int = 1, slot: int = 1, superframes: int = 2, headers: int = 2,
               ms: bool = False, embedded: list[bytes] | None = None) -> list[Burst]:
    """Voice LC headers, ``superframes`` superframes (A with the voice sync, B-E the embedded LC in four
    fragments, F a null fragment), a terminator with LC. ``embedded``: the LC of each superframe's
    B-E (default the call's LC; e.g. a GPS info LC in some)."""
    data_sync = SyncKind.MS_DATA if ms else SyncKind.BS_DATA
    voice_sync = SyncKind.MS_VOICE if ms else SyncKind.BS_VOICE
    out = [lc_burst(lc, color_code, DataType.VOICE_LC_HEADER, sync=data_sync, slot=slot) for _ in range(headers)]
    for n in range(superframes):
        emb_lc = (embedded[n % len(embedded)] if embedded else lc.to_bytes())
        frags = fec.embedded_lc_encode(emb_lc).reshape(4, 32)
        out.append(voice_burst(fec.bits_of(layer2.SYNC_WORDS[voice_sync], 48), slot=slot))
        for k in range(5):
            lcss = (1, 3, 3, 2, 0)[k]
            frag = frags[k] if k < 4 else np.zeros(32, np.uint8)
            emb = layer2.emb_bits(color_code, lcss)
            out.append(voice_burst(np.concatenate((emb[:8], frag, emb[8:])), slot=slot))
    out.append(lc_burst(lc, color_code, DataType.TERMINATOR_WITH_LC, sync=data_sync, slot=slot))
    return out


def csbk_burst(csbk: layer2.Csbk, *, color_code: int = 1, slot: int = 1, ms: bool = False) -> Burst:
    return data_burst(color_code, DataType.CSBK, fec.bptc196_encode(csbk.to_bytes()),
                      sync=SyncKind.MS_DATA if ms else SyncKind.BS_DATA, slot=slot)


def data_packet(payload: bytes, *, source: int, target: int, color_code: int = 1, slot: int = 1, ms: bool = False,
                rate: DataType = DataType.RATE_12_DATA, confirmed: bool = False, sap: int = layer2.SAP_IP,
                group: bool = False, preambles: int = 2) -> list[Burst]:
    """Preamble CSBKs, a data header, the blocks of ``payload``."""
    sync = SyncKind.MS_DATA if ms else SyncKind.BS_DATA
    blocks, pad = layer2.packet_blocks(payload, rate, confirmed=confirmed)
    header = layer2.DataHeader(dpf=3 if confirmed else 2, sap=sap, target=target, source=source,
                               blocks=len(blocks), group=group, pad=pad)
    out = [csbk_burst(layer2.preamble_csbk(source, target, len(blocks) + 1, group=group), color_code=color_code,
                      slot=slot, ms=ms) for _ in range(preambles)]
    out.append(data_burst(color_code, DataType.DATA_HEADER, fec.bptc196_encode(header.to_bytes()), sync=sync,
                          slot=slot))
    for block in blocks:
        if rate == DataType.RATE_12_DATA:
            out.append(data_burst(color_code, rate, fec.bptc196_encode(block), sync=sync, slot=slot))
        elif rate == DataType.RATE_34_DATA:
            out.append(trellis_burst(color_code, block, sync=sync, slot=slot))
        else:
            out.append(data_burst(color_code, rate, layer2.rate1_bits(block), sync=sync, slot=slot))
    return out


def lrrp_packet(lrrp: bytes, *, source: int, **kw: object) -> list[Burst]:
    """An LRRP report from radio ``source`` to the location server (UDP port 4001), in a data packet."""
    ip = build_udp_ip(lrrp, src_ip=radio_ip(source), dst_ip=radio_ip(kw.get("target", 0xFFFCC9), 13),  # type: ignore[arg-type]
                      src_port=PORT_LRRP, dst_port=PORT_LRRP)
    kw.setdefault("target", 0xFFFCC9)
    return data_packet(ip, source=source, **kw)  # type: ignore[arg-type]


def lip_packet(lip: bytes, *, source: int, **kw: object) -> list[Burst]:
    ip = build_udp_ip(lip, src_ip=radio_ip(source), dst_ip=radio_ip(1, 13), src_port=PORT_LIP, dst_port=PORT_LIP)
    kw.setdefault("target", 1)
    return data_packet(ip, source=source, **kw)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------- on the air

_IDLE_PAYLOAD = np.random.default_rng(0x1D1E).integers(0, 2, 196).astype(np.uint8)


def repeater_stream(bursts: list[Burst], *, color_code: int = 1, lead_slots: int = 4, tail_slots: int = 4) -> Symbols:
    """What a repeater sends: slots 1 and 2 alternate every 30 ms, each a CACH (TC = the slot) and a
    burst; the bursts given go out in order in their slot, the other slot and gaps are idle bursts."""
    queues = {1: [b for b in bursts if b.slot == 1], 2: [b for b in bursts if b.slot == 2]}
    n = 2 * max(len(queues[1]), len(queues[2])) + lead_slots + tail_slots
    out = []
    slot = 1
    started = {1: 0, 2: 0}
    for i in range(n):
        if i >= lead_slots and started[slot] < len(queues[slot]):
            burst = queues[slot][started[slot]].symbols
            started[slot] += 1
        else:
            burst = data_burst(color_code, DataType.IDLE, _IDLE_PAYLOAD).symbols
        out.append(layer2.bits_to_symbols(layer2.cach_bits(slot)))
        out.append(burst)
        slot = 3 - slot
    return np.concatenate(out)


def mobile_bursts(bursts: list[Burst]) -> tuple[Symbols, np.ndarray]:
    """What a radio sends (MS-sourced): one burst every 60 ms, the transmitter off in between.
    Returns the symbols (0 where off) and a boolean per symbol, True where the carrier is on."""
    period = 2 * layer2.SLOT_SYMBOLS
    sym = np.zeros(period * len(bursts) + period)
    on = np.zeros(sym.size, bool)
    for i, b in enumerate(bursts):
        at = period // 2 + i * period
        sym[at:at + layer2.BURST_SYMBOLS] = b.symbols
        on[at - 2:at + layer2.BURST_SYMBOLS + 2] = True
    return sym, on
