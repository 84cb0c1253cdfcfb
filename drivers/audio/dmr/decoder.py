r"""The ``dmr`` audio decoder: DMR Tier II from a receiver's discriminator audio -> caller IDs,
emergencies, locations and texts as events. The voice itself (AMBE+2) stays undecoded.

    audio -> RRC matched filter (alpha 0.2, carried state) -> y, one value per sample, in Hz/648
       -> sync search: at every sample, the 24 symbol-spaced values before it against each of the
          eight 48-bit sync words (9.1.1), as a normalised correlation (any gain, any DC offset from a
          mistuned receiver); its local maxima over THRESHOLD are candidates
       -> per candidate: gain and offset by least squares on the 24 known sync symbols, then the burst
          (and the CACH before it) sampled at the symbol centres as soft levels
       -> data/control burst: slot type by soft Golay(20,8) -> colour code and data type; the payload by
          BPTC(196,96) (LC header, terminator, CSBK, data header, rate 1/2 data), trellis 3/4 (rate 3/4,
          soft Viterbi) or as it is (rate 1); every CRC/RS check with its mask; a data header and its
          blocks make a packet (CRC-9 per confirmed block, CRC-32 over the packet)
       -> voice burst A (voice sync): bursts B-F of the superframe are expected 60 ms apart after it
          (and of the next superframe, in case its sync is lost); their EMB by soft QR(16,7,6), the four
          embedded LC fragments (LCSS 1 3 3 2) by Hamming(16,11,4) + parity + 5-bit checksum
       -> the slot: a base station's CACH (TACT, Hamming(7,4,3)) before the burst, or a direct-mode
          sync word; a radio's own (MS) bursts carry none (slot null)

Work is done in position order (sync candidates and expected voice bursts together), so the result does
not depend on how the audio was cut into blocks. Nothing is guessed: an LC, CSBK or packet whose checks
fail is refused with the reason (reported when the sync itself was clean), never reported with its IDs.

Every burst that passed a check is also reported as heard (:meth:`DmrDecoder.heard`): the call recorder
takes those as the transmission, since 4FSK at a steady level looks like a noise floor to voice activity.

Options: ``color_codes`` (a colour code or a list: others are ignored), ``slots`` (1, 2 or both: events
of other slots are dropped; bursts without a known slot are kept), ``invert`` (a discriminator whose
output is inverted: a positive frequency reads negative).
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from drivers.audio.base import AudioDecoder, Heard, Samples, mended
from drivers.audio.dmr import fec, layer2, location
from drivers.audio.dmr.layer2 import DataType, SyncKind
from drivers.audio.dmr.modem import DEVIATION_HZ, SYMBOL_RATE, rrc_taps
from drivers.audio.fir import fir
from drivers.audio.peaks import sync_peaks
from drivers.audio.views import strided
from drivers.base import Output, Rejected
from gateway.events import Decoded, Kind, Position

Float = npt.NDArray[np.float64]

_SYNC_KINDS = tuple(SyncKind)
_SYNC_SYMBOLS = np.array([layer2.sync_symbols(k) for k in _SYNC_KINDS])  # (8, 24)
_SYNC_ZERO_MEAN = _SYNC_SYMBOLS - _SYNC_SYMBOLS.mean(axis=1, keepdims=True)
_SYNC_ZERO_MEAN /= np.linalg.norm(_SYNC_ZERO_MEAN, axis=1, keepdims=True)
# Each data sync is its voice sync with every symbol negated (table 9.2): the four voice patterns are
# correlated, with a row of ones under them for the columns' sums, and a correlation's sign says which
# of its pair it was (kind 2p for +, 2p + 1 for -).
assert np.array_equal(_SYNC_ZERO_MEAN[1::2], -_SYNC_ZERO_MEAN[0::2])
_SYNC_PAIRS = np.vstack((_SYNC_ZERO_MEAN[0::2], np.ones(layer2.SYNC_SYMBOLS)))  # (5, 24)
_SYNC_BITS = np.array([fec.bits_of(layer2.SYNC_WORDS[k], 48) for k in _SYNC_KINDS])
# Least squares of a sync's levels on (its symbols, 1): (gain, offset) = this (2, 24) matrix x the levels.
_SYNC_FIT = np.array([np.linalg.pinv(np.vstack((ref, np.ones(ref.size))).T) for ref in _SYNC_SYMBOLS])
SYNC_LAST = layer2.SYNC_AT + layer2.SYNC_SYMBOLS - 1  # burst index of the last sync symbol (77)
_CACH_AND_BURST = np.arange(-layer2.CACH_SYMBOLS, layer2.BURST_SYMBOLS)  # burst symbol indices
_EMB_AT = np.r_[54:58, 74:78]  # a voice burst's EMB: the 8 symbols either side of its embedded signalling
SUPERFRAME_SPAN = 2 * layer2.SLOT_SYMBOLS  # symbols from one burst of a slot to its next
# Sync positions correlated at once: 24 rows of them (8 bytes each) and 5 patterns stay in the cache.
SEARCH_CHUNK = 4096


@dataclass(order=True)
class _Work:
    pos: float  # native sample index of the last sync (or EMB) symbol's centre, in y's time
    seq: int
    kind: SyncKind = field(compare=False)
    expected: int = field(default=0, compare=False)  # voice burst n (1-5 = B-F) expected from an anchor
    # The levels' (gain, offset) and the wrong bits of the burst's own sync, or of the anchor's.
    scale: tuple[float, float] = field(default=(1.0, 0.0), compare=False)
    sync_errors: int = field(default=0, compare=False)
    slot: int | None = field(default=None, compare=False)


@dataclass
class _Call:
    slot_key: int  # 1, 2 or 0 (unknown slot)
    source: int | None = None
    target: int | None = None
    reported: bool = False
    alerted: bool = False
    last_pos: float = 0.0
    fragments: list[npt.NDArray[np.uint8]] = field(default_factory=list)
    call_type: str = "group"


class DmrDecoder(AudioDecoder):
    """DMR bursts -> ``ptt`` (voice calls), ``alert`` (emergency), ``beacon`` (LRRP, LIP, GPS info LC),
    ``status`` (CSBKs, text, other data)."""

    name: ClassVar[str] = "dmr"
    rates: ClassVar[tuple[int, ...]] = (48000, 44100, 32000, 24000, 22050, 16000, 11025, 8000)

    #: Normalised correlation (0..1) with a sync word from which a position is tried. A clean burst
    #: gives 0.99; the eight words are nearly orthogonal (at most 0.33 between two of them).
    THRESHOLD: ClassVar[float] = 0.6
    #: A sync with more wrong bits than this is no sync (the slot type / EMB then has to check too).
    SYNC_TOLERANCE: ClassVar[int] = 8
    #: Failures are refused aloud only for bursts whose sync had at most this many wrong bits (noise
    #: makes weak syncs all the time; what fails after those is not news).
    REPORT_SYNC_ERRORS: ClassVar[int] = 2
    CHUNK_SECONDS: ClassVar[float] = 0.1
    #: A call on a slot ends when nothing of it was heard for this long (a terminator ends it at once).
    CALL_GAP_S: ClassVar[float] = 1.0

    def __init__(self, rate: int | None = None, *, color_codes: int | Iterable[int] | None = None,
                 slots: int | Iterable[int] | None = None, invert: bool = False, **options: Any) -> None:
        super().__init__(rate, **options)
        self.color_codes = _int_set("color_codes", color_codes, range(16))
        self.slots = _int_set("slots", slots, (1, 2))
        self.invert = bool(invert)
        r = self.rate
        self._sps = r / SYMBOL_RATE
        h = rrc_taps(self._sps)
        self._mf = h / h.sum() * (-1.0 if self.invert else 1.0) / DEVIATION_HZ
        self._mf_delay = (self._mf.size - 1) // 2
        self._zi = np.zeros(self._mf.size - 1)
        # The audio's scale is unknown (a discriminator's volts per kHz): the matched filter gives levels
        # in arbitrary units and each burst's own gain, from its sync, turns them into symbol levels.
        self._n = 0  # native samples consumed
        self._y = np.zeros(0)  # matched-filter output from global index _ybase (already shifted by the delay)
        self._ybase = -self._mf_delay
        self._checked = 0  # next y index to search for a sync
        self._queue: list[_Work] = []
        self._seq = 0
        self._done: list[float] = []  # positions of bursts decoded (voice expectations skip those)
        self._held: list[Samples] = []
        self._held_size = 0
        self._held_start = datetime.min
        self._held_first = 0
        back = np.arange(layer2.SYNC_SYMBOLS) - (layer2.SYNC_SYMBOLS - 1)
        self._offsets = np.round(back * self._sps).astype(np.int64)
        self._window = int(-self._offsets[0]) + 2
        # Work at position p (the last sync symbol) needs the burst's remaining symbols after it.
        self._need_after = math.ceil((layer2.BURST_SYMBOLS - SYNC_LAST + 1) * self._sps) + 2
        self._need_before = math.ceil((SYNC_LAST + layer2.CACH_SYMBOLS + 1) * self._sps) + 2
        self._calls: dict[int, _Call] = {}
        self._packets: dict[int, tuple[layer2.PacketAssembly, float]] = {}
        self._start = datetime.min
        self._first = 0
        # Bursts heard and not asked for yet: bounded, for whoever never asks (the CLI); the recorder
        # asks after every block and looks back one second at most.
        self._heard: deque[Heard] = deque(maxlen=256)

    # ------------------------------------------------------------------------------- audio in

    def feed(self, block: Samples, start: datetime) -> list[Output]:
        if not self._held:
            self._held_start, self._held_first = start, self._n + self._held_size
        self._held.append(np.asarray(block).ravel())
        self._held_size += self._held[-1].size
        if self._held_size < self.CHUNK_SECONDS * self.rate:
            return []
        return self._process(final=False)

    def flush(self, now: datetime) -> list[Output]:
        out = self._process(final=True, now=now)
        out += self._end_calls(None)
        return out

    def heard(self) -> list[Heard]:
        heard = list(self._heard)
        self._heard.clear()
        return heard

    def _process(self, *, final: bool, now: datetime | None = None) -> list[Output]:
        start, first = self._held_start, self._held_first
        if not self._held:
            start, first = now or datetime.min, self._n
        self._start, self._first = start, first
        x = np.concatenate(self._held) if self._held else np.zeros(0)
        self._held.clear()
        self._held_size = 0
        x = mended(np.asarray(x, dtype=np.float64))  # (a new array: the held blocks were concatenated)
        if x.size:
            y, self._zi = fir(self._mf, x, self._zi)
            self._y = np.concatenate((self._y, y))
            self._n += x.size
        if final and self._mf_delay:
            # The filter's tail: what is still inside it when the audio ends.
            tail, self._zi = fir(self._mf, np.zeros(self._mf_delay), self._zi)
            self._y = np.concatenate((self._y, tail))
        self._search(final)
        out = self._work(final)
        self._trim()
        return out

    # ------------------------------------------------------------------------------ sync search

    def _gather(self, pos: npt.NDArray[np.float64]) -> Float:
        """y at fractional global positions (linear interpolation)."""
        i = pos - self._ybase
        k = np.floor(i).astype(np.int64)
        f = i - k
        k = np.minimum(np.maximum(k, 0), self._y.size - 2)
        y: Float = self._y[k] * (1 - f) + self._y[k + 1] * f
        return y

    def _search(self, final: bool) -> None:
        end = self._ybase + self._y.size
        w = max(2, round(2 * self._sps))
        lo = max(self._checked, self._ybase + self._window)
        hi = end if final else end - w
        if hi <= lo:
            return
        mlo = max(self._ybase + self._window, lo - w)
        best = np.empty(end - mlo)
        signed = np.empty((4, end - mlo))
        for a in range(mlo, end, SEARCH_CHUNK):  # pieces that stay in the cache
            b = min(end, a + SEARCH_CHUNK)
            self._correlate(a, b, best[a - mlo : b - mlo], signed[:, a - mlo : b - mlo])
        peaks = sync_peaks(best, first=mlo, lo=lo, hi=hi, half_width=w, threshold=self.THRESHOLD)
        if peaks:
            k = np.array([k for _, k in peaks])
            at = signed[:, k]
            pair = np.abs(at).argmax(axis=0)
            kinds = 2 * pair + (at[pair, np.arange(k.size)] < 0)
            self._check_syncs(np.array([p for p, _ in peaks]), kinds)
        self._checked = hi

    def _correlate(self, lo: int, hi: int, best: Float, signed: Float) -> None:
        """The best sync pattern's correlation (its absolute value) at positions ``lo`` .. ``hi`` - 1, and
        the four voice patterns' signed correlations there."""
        # The 24 symbol-spaced samples of every position as columns; the patterns are zero-mean, so their
        # products need no mean taken out, and the norm of the mean-free columns is from two sums.
        # Each row is a contiguous run of y: copied whole from a view of every window, not gathered
        # element by element.
        n = hi - lo
        y = self._y
        windows = strided(y, (y.size - n + 1, n), (y.itemsize, y.itemsize))
        cols = windows[self._offsets + (lo - self._ybase)]  # (24, N)
        products = _SYNC_PAIRS @ cols  # (5, N): the four patterns', then the sums
        total = products[4]
        square = np.einsum("ij,ij->j", cols, cols) - total * total / self._offsets.size
        norm = np.sqrt(np.maximum(square, 0.0)) + 1e-12
        np.divide(products[:4], norm, out=signed)
        np.abs(signed).max(axis=0, out=best)

    def _check_syncs(self, pos: Float, kinds: npt.NDArray[np.intp]) -> None:
        """Fit each candidate's gain and offset to its sync word and count the sync's wrong bits, all at
        once; those within SYNC_TOLERANCE are tried as bursts. On audio that is not DMR nearly every
        candidate fails here (tens of thousands in ten minutes of a busy analogue channel): one at a time,
        that was most of the decoder's work."""
        idx = pos[:, None] + (np.arange(layer2.SYNC_AT, SYNC_LAST + 1) - SYNC_LAST) * self._sps  # (P, 24)
        sym = self._gather(idx)
        fit = np.einsum("pij,pj->pi", _SYNC_FIT[kinds], sym)  # (P, 2): gain, offset
        gain, offset = fit[:, 0], fit[:, 1]
        levels = (sym - offset[:, None]) / np.where(gain > 1e-9, gain, 1.0)[:, None]
        wrong = np.count_nonzero(layer2.symbols_to_bits(levels) != _SYNC_BITS[kinds], axis=1)
        for i in np.flatnonzero((gain > 1e-9) & (wrong <= self.SYNC_TOLERANCE)).tolist():
            self._push(_Work(float(pos[i]), 0, _SYNC_KINDS[int(kinds[i])], scale=(float(gain[i]), float(offset[i])),
                             sync_errors=int(wrong[i])))

    def _push(self, item: _Work) -> None:
        self._seq += 1
        item.seq = self._seq
        heapq.heappush(self._queue, item)

    # --------------------------------------------------------------------------------- bursts

    def _work(self, final: bool) -> list[Output]:
        out: list[Output] = []
        end = self._ybase + self._y.size
        while self._queue:
            item = self._queue[0]
            if not final and item.pos + self._need_after > end:
                break
            heapq.heappop(self._queue)
            if item.pos + self._need_after > end:
                continue  # the audio ended inside the burst
            out += self._burst(item)
        return out

    def _levels(self, pos: float, gain: float, offset: float, which: npt.NDArray[np.int64]) -> Float:
        """Symbol levels of the burst symbols ``which`` (SYNC_LAST at ``pos``)."""
        idx = pos + (which - SYNC_LAST) * self._sps
        return (self._gather(np.asarray(idx, np.float64)) - offset) / gain

    def _burst(self, item: _Work) -> list[Output]:
        # Bursts are taken in position order, so _done is sorted and the nearest are at its end.
        del self._done[: bisect.bisect_right(self._done, item.pos - 40 * self._sps * layer2.SLOT_SYMBOLS)]
        if item.expected and self._decoded_near(item.pos):
            return []  # this voice burst was decoded already, from its own sync or another anchor
        gain, offset = item.scale
        emb = None
        if item.expected:
            # Most bursts expected after a voice sync are noise (a false sync anchors ten): their EMB
            # alone is read first, and the rest only for a burst whose EMB passes its check.
            emb = fec.qr1676_decode(layer2.symbols_to_soft(self._levels(item.pos, gain, offset, _EMB_AT)))
            if emb is None:
                return []
        sync_errors = 0 if item.expected else item.sync_errors  # (an anchored burst's own sync is not read)
        sym = self._levels(item.pos, gain, offset, _CACH_AND_BURST)
        cach, burst = sym[: layer2.CACH_SYMBOLS], sym[layer2.CACH_SYMBOLS:]
        slot = item.slot if item.expected else layer2.SYNC_SLOT.get(item.kind)
        if slot is None and layer2.SYNC_SOURCE[item.kind] == "BS":
            tact = layer2.decode_tact(layer2.symbols_to_soft(cach))
            slot = tact[0] if tact else None
        if self.slots and slot is not None and slot not in self.slots:
            return []
        index = max(0, round(item.pos - SYNC_LAST * self._sps))
        ctx = _Ctx(self, item, slot, sync_errors, index, gain, offset)
        voice = bool(item.expected) or item.kind in layer2.VOICE_SYNCS
        out = self._voice(ctx, burst, emb) if voice else self._data(ctx, burst)
        if ctx.decoded:
            self._done.append(item.pos)
            self._hear(ctx, voice)
        return out

    def _decoded_near(self, pos: float) -> bool:
        for p in reversed(self._done):
            if abs(p - pos) < 3 * self._sps:
                return True
            if p < pos:
                return False  # (the ones before it are further)
        return False

    def _hear(self, ctx: _Ctx, voice: bool) -> None:
        """The channel is busy where a burst passed its checks (slot type, EMB) and its sync, or the sync
        of the burst A that placed it, was nearly clean: noise passes a Golay(20,8) or QR(16,7,6) check
        behind a sync with 7 or 8 wrong bits several times a minute, never behind a clean one. A burst A
        has no colour code: with a colour-code filter its B-F say whose it was."""
        item = ctx.item
        if item.sync_errors > self.REPORT_SYNC_ERRORS:
            return
        if voice and not item.expected and self.color_codes:
            return
        start = ctx.index - self._first
        self._heard.append(Heard(self.at(self._start, start),
                                 self.at(self._start, start + round(layer2.BURST_SYMBOLS * self._sps))))

    # ---------------------------------------------------------------------------------- voice

    def _voice(self, ctx: _Ctx, burst: Float, emb: tuple[int, int] | None) -> list[Output]:
        item = ctx.item
        if not item.expected:
            # Burst A: anchor the superframe's B-F and the next one's (in case its sync is lost).
            ctx.decoded = True
            for n in (*range(1, 6), *range(7, 12)):
                self._push(_Work(item.pos + n * SUPERFRAME_SPAN * self._sps, 0, item.kind, expected=n % 6,
                                 scale=(ctx.gain, ctx.offset), slot=ctx.slot, sync_errors=ctx.sync_errors))
            call = self._call(ctx.slot, item.pos)
            call.fragments = []
            return []
        assert emb is not None  # (read in _burst for every expected burst)
        value, _ = emb
        cc, lcss = value >> 3, value & 3
        if self.color_codes and cc not in self.color_codes:
            return []
        ctx.decoded = True
        ctx.color_code = cc
        call = self._call(ctx.slot, item.pos)
        frag = layer2.symbols_to_bits(burst[58:74])
        if lcss == 1:
            call.fragments = [frag]
        elif lcss == 3 and 1 <= len(call.fragments) <= 2:
            call.fragments.append(frag)
        elif lcss == 2 and len(call.fragments) == 3:
            call.fragments.append(frag)
            bits = np.concatenate(call.fragments)
            call.fragments = []
            try:
                lc, _ = fec.embedded_lc_decode(bits)
            except fec.FecError as exc:
                return [Rejected("dmr", str(exc), fec.bits_to_bytes(bits))]
            return self._lc(ctx, lc, "embedded_lc")
        else:
            call.fragments = []
        return []

    # ----------------------------------------------------------------------------------- data

    def _data(self, ctx: _Ctx, burst: Float) -> list[Output]:
        st = fec.golay2087_decode(layer2.symbols_to_soft(np.concatenate((burst[49:54], burst[78:83]))))
        if st is None:
            return []
        value, _ = st
        cc, dt = value >> 4, value & 0xF
        if self.color_codes and cc not in self.color_codes:
            return []
        ctx.color_code = cc
        ctx.decoded = True
        payload = np.concatenate((burst[:49], burst[83:]))
        soft = layer2.symbols_to_soft(payload)
        try:
            if dt in (DataType.VOICE_LC_HEADER, DataType.TERMINATOR_WITH_LC):
                info, _ = fec.bptc196_decode(soft)
                mask = fec.MASK_VOICE_LC_HEADER if dt == DataType.VOICE_LC_HEADER else fec.MASK_TERMINATOR_LC
                if not fec.full_lc_check(info, mask):
                    raise fec.FecError("full LC: Reed-Solomon(12,9) check fails")
                out = self._lc(ctx, info[:9], "voice_lc_header" if dt == DataType.VOICE_LC_HEADER else "terminator")
                if dt == DataType.TERMINATOR_WITH_LC:
                    out += self._end_calls(ctx.slot_key)
                return out
            if dt == DataType.CSBK:
                info, _ = fec.bptc196_decode(soft)
                if not fec.ccitt_ok(info, fec.MASK_CSBK):
                    raise fec.FecError("CSBK: CRC fails")
                return self._csbk(ctx, info)
            if dt == DataType.DATA_HEADER:
                info, _ = fec.bptc196_decode(soft)
                if not fec.ccitt_ok(info, fec.MASK_DATA_HEADER):
                    raise fec.FecError("data header: CRC fails")
                return self._data_header(ctx, layer2.DataHeader.from_bytes(info))
            if dt in (DataType.RATE_12_DATA, DataType.RATE_34_DATA, DataType.RATE_1_DATA):
                return self._block(ctx, DataType(dt), soft, payload)
        except fec.FecError as exc:
            if dt in (DataType.RATE_12_DATA, DataType.RATE_34_DATA, DataType.RATE_1_DATA):
                return self._bad_block(ctx, str(exc))
            if ctx.sync_errors <= self.REPORT_SYNC_ERRORS:
                return [Rejected("dmr", f"{DataType(dt).name.lower()}: {exc}", fec.bits_to_bytes(fec.hard(soft)))]
        return []

    def _block(self, ctx: _Ctx, dt: DataType, soft: fec.Soft, payload: Float) -> list[Output]:
        entry = self._packets.get(ctx.slot_key)
        if entry is None:
            return []  # a block without its header: nothing to put it with
        assembly, _ = entry
        if dt == DataType.RATE_12_DATA:
            block, _ = fec.bptc196_decode(soft)
        elif dt == DataType.RATE_34_DATA:
            block, _ = fec.trellis_decode(payload)
        else:
            block = layer2.rate1_block(soft)
        assembly.rate = assembly.rate or dt
        assembly.blocks.append(block)
        return self._maybe_packet(ctx, assembly)

    def _bad_block(self, ctx: _Ctx, reason: str) -> list[Output]:
        entry = self._packets.get(ctx.slot_key)
        if entry is None:
            return []
        entry[0].bad_blocks.append(reason)
        return self._maybe_packet(ctx, entry[0])

    def _data_header(self, ctx: _Ctx, header: layer2.DataHeader) -> list[Output]:
        if header.dpf in (2, 3) and header.blocks:
            self._packets[ctx.slot_key] = (layer2.PacketAssembly(header), ctx.item.pos)
            return []
        return [self._event(ctx, Kind.STATUS, header.source, {
            "name": f"data_header_{layer2.DPF_NAMES.get(header.dpf, header.dpf)}", "target_id": header.target,
            "sap": layer2.SAP_NAMES.get(header.sap, header.sap), "raw": header.raw.hex()})]

    def _maybe_packet(self, ctx: _Ctx, assembly: layer2.PacketAssembly) -> list[Output]:
        if not assembly.complete:
            return []
        del self._packets[ctx.slot_key]
        h = assembly.header
        try:
            data = assembly.payload()
        except fec.FecError as exc:
            return [Rejected("dmr", f"data from {h.source} to {h.target}: {exc}", b"".join(assembly.blocks))]
        base = {"target_id": h.target, "call_type": "group" if h.group else "private",
                "sap": layer2.SAP_NAMES.get(h.sap, h.sap), "data": "confirmed" if h.confirmed else "unconfirmed"}
        if h.sap != layer2.SAP_IP:
            return [self._event(ctx, Kind.STATUS, h.source, {"name": "data", **base, "raw": data.hex()})]
        try:
            dgram = location.parse_udp_ip(data)
            base.update({"src_port": dgram.src_port, "dst_port": dgram.dst_port, "src_ip": dgram.src_ip,
                         "dst_ip": dgram.dst_ip})
            port = dgram.dst_port if dgram.dst_port in (location.PORT_LRRP, location.PORT_LIP, location.PORT_TEXT) \
                else dgram.src_port
            if port == location.PORT_LRRP:
                name, fix, info = location.parse_lrrp(dgram.payload)
                base.update({"lrrp": name, **info, "raw": dgram.payload.hex()})
                if fix is None:
                    return [self._event(ctx, Kind.STATUS, h.source, {"name": name, **base})]
                return self._fix(ctx, h.source, fix, "lrrp", base)
            if port == location.PORT_LIP:
                fix = location.parse_lip(dgram.payload)
                base.update({**fix.detail, "raw": dgram.payload.hex()})
                return self._fix(ctx, h.source, fix, "lip", base)
            if port == location.PORT_TEXT:
                text = location.parse_text(dgram.payload)
                return [self._event(ctx, Kind.STATUS, h.source, {"name": "text", "text": text, **base})]
            return [self._event(ctx, Kind.STATUS, h.source, {"name": "ip_data", **base, "raw": dgram.payload.hex()})]
        except location.LocationError as exc:
            return [Rejected("dmr", f"data from {h.source}: {exc}", data)]

    def _fix(self, ctx: _Ctx, source: int, fix: location.Fix, how: str, detail: dict[str, Any]) -> list[Output]:
        position = Position(lat=round(fix.lat, 7), lon=round(fix.lon, 7), alt_m=fix.alt_m,
                            speed_mps=None if fix.speed_mps is None else round(fix.speed_mps, 2),
                            course_deg=fix.course_deg, fix_time=fix.fix_time, source=f"dmr-{how}")
        out: list[Output] = [self._event(ctx, Kind.BEACON, source, {"name": how, **detail}, position)]
        if fix.emergency:
            out.insert(0, self._event(ctx, Kind.ALERT, source, {"name": "emergency", "via": how, **detail}, position))
        return out

    def _csbk(self, ctx: _Ctx, info: bytes) -> list[Output]:
        csbk = layer2.Csbk(info[0] & 0x3F, info[1], bytes(info[2:10]), bool(info[0] & 0x80))
        if csbk.opcode == 0x3D:
            return []  # preamble: announces data that will be reported when it comes
        name = layer2.CSBK_NAMES.get(csbk.opcode, f"csbk-{csbk.opcode:#04x}")
        return [self._event(ctx, Kind.STATUS, csbk.source, {
            "name": name, "csbko": csbk.opcode, "fid": csbk.fid, "target_id": csbk.target, "raw": info.hex()})]

    # ---------------------------------------------------------------------------------- calls

    def _call(self, slot: int | None, pos: float) -> _Call:
        key = slot or 0
        call = self._calls.get(key)
        if call is None or pos - call.last_pos > self.CALL_GAP_S * self.rate:
            call = _Call(key)
            self._calls[key] = call
        call.last_pos = pos
        return call

    def _lc(self, ctx: _Ctx, lc_bytes: bytes, via: str) -> list[Output]:
        lc = layer2.LinkControl.from_bytes(lc_bytes)
        call = self._call(ctx.slot, ctx.item.pos)
        if lc.flco == layer2.Flco.GPS_INFO:
            if call.source is None:
                return []  # whose position it is comes from the call's LC
            lat, lon, err = layer2.parse_gps_info(lc_bytes)
            fix = location.Fix(lat, lon, detail={"position_error": err})
            return self._fix(ctx, call.source, fix, "gps_info_lc", {"via": via})
        if lc.flco not in (layer2.Flco.GROUP_VOICE, layer2.Flco.UNIT_TO_UNIT_VOICE):
            return []
        if call.reported and (call.source, call.target) != (lc.source, lc.target):
            call = _Call(call.slot_key, last_pos=ctx.item.pos)
            self._calls[call.slot_key] = call
        call.source, call.target, call.call_type = lc.source, lc.target, lc.call_type
        detail = {"target_id": lc.target, "call_type": lc.call_type, "via": via, "fid": lc.fid,
                  "service_options": lc.options, "emergency": lc.emergency, "raw": lc_bytes.hex()}
        out: list[Output] = []
        if lc.emergency and not call.alerted:
            call.alerted = True
            out.append(self._event(ctx, Kind.ALERT, lc.source, {"name": "emergency", **detail}))
        if not call.reported:
            call.reported = True
            out.append(self._event(ctx, Kind.PTT, lc.source, {"name": "voice_call", **detail}))
        return out

    def _end_calls(self, key: int | None) -> list[Output]:
        for k in list(self._calls):
            if key is None or k == key:
                del self._calls[k]
        # A terminator with LC ends the voice transmission on its slot: the bursts its superframes still
        # expected after it are silence or another call's (an EMB read from silence passes its check).
        kept = [w for w in self._queue if not (w.expected and (key is None or (w.slot or 0) == key))]
        if len(kept) != len(self._queue):
            self._queue = kept
            heapq.heapify(self._queue)
        return []

    # --------------------------------------------------------------------------------- events

    def _event(self, ctx: _Ctx, kind: Kind, source: int, detail: dict[str, Any],
               position: Position | None = None) -> Decoded:
        d = {"protocol": "dmr", "source_id": source, **detail, "slot": ctx.slot, "color_code": ctx.color_code,
             "sync": ctx.item.kind.name.lower(), "offset_s": round(ctx.index / self.rate, 4)}
        if ctx.sync_errors:
            d["sync_errors"] = ctx.sync_errors
        return Decoded(kind=kind, time=self.at(self._start, ctx.index - self._first), unit=f"dmr:{source}",
                       position=position, detail=d)

    def _trim(self) -> None:
        end = self._ybase + self._y.size
        keep = [end - self._window - self._need_before, self._checked - self._window - self._need_before]
        keep += [int(w.pos) - self._need_before for w in self._queue]
        drop = int(min(keep)) - self._ybase
        if drop > 0:
            self._y = self._y[drop:]
            self._ybase += drop


@dataclass
class _Ctx:
    decoder: DmrDecoder
    item: _Work
    slot: int | None
    sync_errors: int
    index: int
    gain: float
    offset: float
    color_code: int | None = None
    decoded: bool = False

    @property
    def slot_key(self) -> int:
        return self.slot or 0


def _int_set(name: str, value: int | Iterable[int] | None, allowed: Iterable[int]) -> frozenset[int]:
    if value is None:
        return frozenset()
    values = [value] if isinstance(value, int) else list(value)
    ok = set(allowed)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v not in ok for v in values):
        raise ValueError(f"decoder 'dmr': {name} must be one or more of {sorted(ok)}, got {value!r}")
    return frozenset(values)


def events_in(outputs: Iterable[Output]) -> list[Decoded]:
    return [o for o in outputs if isinstance(o, Decoded) and o.detail.get("protocol") == "dmr"]
