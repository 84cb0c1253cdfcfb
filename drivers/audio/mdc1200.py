r"""MDC-1200 (Motorola): 1200 bps XOR-precoded MSK bursts -> PTT ID / emergency / status events, and the
encoder that makes them (a dispatcher's emergency acknowledgement goes back to the radio this way).

On the air (bits sent in this order, each byte of the leader and sync MSB first)::

    | leader 0x55 x 7 (bit sync) | frame sync 0x07092A446F (40 bits) | codeword 112 bits | [codeword 2] | hangover
                                                                        \__ second codeword only for the
                                                                            double-packet opcodes (0x35, 0x55),
                                                                            straight after the first, no sync

    codeword = interleave(FEC(block)); block = 7 bytes, each byte sent LSB first:

        byte   0      1      2         3         4        5        6
             | op   | arg  | unit hi | unit lo | crc lo | crc hi | 0x00 |
             | b0   | b1   | b2      | b3      | crc lo | crc hi | 0x00 |   second codeword of a double

        FEC  rate 1/2, K = 7, systematic: the 56 block bits d[m], then 56 parity bits
             p[m] = d[m] ^ d[m-2] ^ d[m-5] ^ d[m-6]   (register starts at 0, no tail)
        interleave 16 x 7: FEC bit n (0..111) is sent at position 16 * (n % 7) + n // 7

    CRC: CRC-16 polynomial 0x1021, reflected (each byte LSB first), init 0x0000, final XOR 0xFFFF,
         over bytes 0-3, sent low byte first.

    modulation: one bit per 1/1200 s; the tone of a bit is 1800 Hz (1.5 cycles) when it differs from
    the previous bit and 1200 Hz (1 cycle) when it repeats it, phase-continuous ("XOR precoding").

All of it (sync word, leader, CRC parameters, FEC taps, interleave, tone rule, double-packet opcodes
and the 5-bit sync tolerance) is from Matthew Kaufman's MDC Encoder/Decoder Library (KA6SQG,
github.com/atmatthewat/mdc-encode-decode: mdc_encode.c ``_enc_leader``/``_enc_str``/``_enc_get_samp``,
mdc_common.c ``_docrc``, mdc_decode.c ``_gofix``/``_procbits``/``_shiftin``, mdc_decode.h
``MDC_GDTHRESH``); the opcode table is the KA6SQG/BatLabs list as kept in the UV-K5 firmware
(github.com/losehu/uv-k5-firmware-custom ``app/mdc1200.h``).

How it decodes. Precoded MSK is coherently detectable bit by bit: relative to a 1500 Hz carrier the
phase moves -90 degrees over a 1200 Hz bit and +90 over an 1800 Hz bit, so at the end of bit n the
complex baseband z_n, turned back by j^n, is C * (-1)^b[n]: BPSK with an unknown carrier phase C. So:

    samples -x e^{-j2pi 1500 t}- low-pass -decimate (~8-11 kHz)- MSK matched filter (half-cosine, 2 bits)
       -> sync search: at every sample, the 40 sync-bit samples (bit-spaced, x j^n) against the known
          sync signs, coherently within 4 segments of 10 bits and added non-coherently, over their
          energy (0..1; any carrier phase, either polarity, a tone offset of a few %); its local maxima
          over a threshold are candidates
       -> per candidate, six demodulators (:data:`VARIANTS`, after the reference decoder's five
          sampling phases): three bit-timing phases (-1/4, 0, +1/4 bit) with the carrier phase and
          frequency estimated from the known sync; one that estimates the phase blind from the
          squared samples and so must resolve the polarity from the sync bits, as the reference
          does; two with a narrower and a wider carrier loop. The sync bits must be within 5 errors
          of the pattern (or, for the blind one, of its complement); then a decision-directed loop
          tracks the carrier phase, frequency and the bit clock through the codeword(s), giving
          soft bits
       -> de-interleave -> Viterbi (64 states, soft) -> CRC. The first demodulator (in order) whose CRC
          checks is reported; the same packet from a neighbouring candidate is reported once.

Measured with this module's encoder (white noise over the 0-4 kHz band at 8000 Hz, SNR against the
burst's power; 60 bursts, singles and doubles, half of them 2 % off frequency): 3 dB and 0 dB SNR
decode 60 of 60, -2 dB 59, -4 dB 44; one demodulator alone 60 / 56-60 / 46-57 / 23-35.

The sample-level stages are numpy (filters with carried state, the sync search as one gather over all
positions); Python loops only over the bits of a candidate (a few hundred, only where a sync was seen).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from scipy import signal

from drivers.audio.base import AudioDecoder, Samples
from drivers.audio.peaks import sync_peaks
from drivers.base import Output, Rejected
from gateway.events import Decoded, Kind

BAUD = 1200.0
LOW_HZ = 1200.0  # a bit equal to the previous one (mdc_encode.c: 1.0 x incr)
HIGH_HZ = 1800.0  # a bit that differs from the previous one (mdc_encode.c: 1.5 x incr)
CENTER_HZ = (LOW_HZ + HIGH_HZ) / 2
SYNC = 0x07092A446F  # mdc_encode.c _enc_leader bytes 7-11; mdc_decode.c _shiftin
SYNC_BITS = 40
LEADER_BYTE = 0x55  # mdc_encode.c _enc_leader bytes 0-6
LEADER_BITS = 56
CODEWORD_BITS = 112
SYNC_TOLERANCE = 5  # mdc_decode.h MDC_GDTHRESH: sync accepted with up to 5 of 40 bits wrong
# Carrier loop gains per bit (proportional, integral). Measured on 60 bursts at 0 / -2 dB SNR, half of
# them 2 % off frequency, demodulator A alone: 0.04/0.001 decode 51/40, 0.08/0.003 57/50, 0.16/0.01
# 60/56, 0.2/0.015 58/52.
KP, KI = 0.16, 0.01
DOUBLE_OPS = frozenset({0x35, 0x55})  # mdc_decode.c _procbits: "opcode that mean 'double packet'"
CRC_POLY = 0x1021  # mdc_common.c _docrc (applied reflected, init 0, final XOR 0xFFFF)
FEC_TAPS = (0, 2, 5, 6)  # mdc_encode.c _enc_str: csr[0] + csr[2] + csr[5] + csr[6]

Float = npt.NDArray[np.float64]
Complex = npt.NDArray[np.complex128]
Bits = npt.NDArray[np.uint8]


# ---------------------------------------------------------------------------------------- packets


@dataclass(frozen=True, slots=True)
class Mdc1200Packet:
    """One MDC-1200 packet: opcode, argument, unit ID; ``second`` is the second codeword of a double
    packet (its four bytes as op, arg and the two bytes of unit_id), e.g. the caller of a call alert."""

    op: int
    arg: int
    unit_id: int
    second: Mdc1200Packet | None = None

    def __post_init__(self) -> None:
        for name, value, top in (("op", self.op, 0xFF), ("arg", self.arg, 0xFF), ("unit_id", self.unit_id, 0xFFFF)):
            if not 0 <= value <= top:
                raise ValueError(f"MDC-1200 {name} must be 0..{top:#x}, got {value!r}")
        if self.second is not None and self.second.second is not None:
            raise ValueError("an MDC-1200 double packet has two codewords, not more")

    @property
    def block(self) -> bytes:
        """The four payload bytes of this codeword."""
        return bytes((self.op, self.arg, self.unit_id >> 8, self.unit_id & 0xFF))


# Opcode table (KA6SQG / BatLabs list, as in uv-k5-firmware-custom app/mdc1200.h): (op, arg or None for
# any) -> (name, kind). Looked up with the exact argument first, then with None.
OPCODES: dict[tuple[int, int | None], tuple[str, Kind]] = {
    (0x00, None): ("emergency", Kind.ALERT),  # 0x00 (0x81) emergency alarm
    (0x20, None): ("emergency_ack", Kind.STATUS),  # 0x20 (0x00) emergency alarm ack
    (0x01, 0x80): ("ptt_id_pre", Kind.PTT),  # 0x01 (0x80) PTT ID (at key-up)
    (0x01, 0x00): ("ptt_id_post", Kind.PTT),  # 0x01 (0x00) POST ID (at de-key)
    (0x01, None): ("ptt_id", Kind.PTT),
    (0x11, None): ("remote_monitor", Kind.STATUS),  # 0x11 (0x8A)
    (0x22, None): ("status_request", Kind.STATUS),  # 0x22 (0x06): "unit NNNN report your last status"
    (0x06, None): ("status_response", Kind.STATUS),  # 0x06 (0x0X): answer to a status request
    (0x46, None): ("status", Kind.STATUS),  # 0x46 (0xXX): status number XX
    (0x23, None): ("ack", Kind.STATUS),  # 0x23 (0x00): status / message / request-to-talk acknowledge
    (0x47, None): ("message", Kind.STATUS),  # 0x47 (0xXX): message XX, ack expected
    (0x07, None): ("message", Kind.STATUS),  # 0x07 (0xXX): message XX, no ack expected
    (0x63, None): ("radio_check", Kind.STATUS),  # 0x63 (0x85)
    (0x30, None): ("radio_check_ack", Kind.STATUS),  # 0x30 (0x00) as the list gives it
    (0x2B, 0x00): ("radio_inhibit", Kind.STATUS),  # 0x2B (0x00) selective radio inhibit
    (0x2B, 0x0C): ("radio_enable", Kind.STATUS),  # 0x2B (0x0C) inhibit cancel
    (0x0B, 0x00): ("radio_inhibit_ack", Kind.STATUS),
    (0x0B, 0x0C): ("radio_enable_ack", Kind.STATUS),
    (0x40, None): ("request_to_talk", Kind.STATUS),  # 0x40 (0x01) / 0x41 (0x01)
    (0x41, None): ("request_to_talk", Kind.STATUS),
    (0x35, None): ("call_alert", Kind.STATUS),  # 0x35 (0x89) + second codeword, see _double_name
    (0x55, None): ("double", Kind.STATUS),  # a double packet of unknown meaning (mdc_decode.c)
}


def _lookup(op: int, arg: int) -> tuple[str, Kind]:
    return OPCODES.get((op, arg)) or OPCODES.get((op, None)) or ("unknown", Kind.STATUS)


def _double_name(second: Mdc1200Packet) -> str:
    """What a 0x35 double packet is, from its second codeword's first two bytes (same list):
    83 0D / 81 0D call alert (page), 82 05 / 80 15 voice selective call, A0 00 call alert acknowledge."""
    if second.op == 0xA0:
        return "call_alert_ack"
    if (second.op, second.arg) in ((0x82, 0x05), (0x80, 0x15)):
        return "selective_call"
    return "call_alert"


def ptt_id(unit_id: int, *, post: bool = False) -> Mdc1200Packet:
    return Mdc1200Packet(0x01, 0x00 if post else 0x80, unit_id)


def emergency(unit_id: int) -> Mdc1200Packet:
    return Mdc1200Packet(0x00, 0x81, unit_id)


def emergency_ack(unit_id: int) -> Mdc1200Packet:
    """The acknowledgement a fixed end sends to ``unit_id`` after its emergency (0x20, arg 0x00)."""
    return Mdc1200Packet(0x20, 0x00, unit_id)


def status(unit_id: int, number: int) -> Mdc1200Packet:
    return Mdc1200Packet(0x46, number, unit_id)


def message(unit_id: int, number: int, *, ack: bool = True) -> Mdc1200Packet:
    return Mdc1200Packet(0x47 if ack else 0x07, number, unit_id)


def status_request(target: int) -> Mdc1200Packet:
    return Mdc1200Packet(0x22, 0x06, target)


def radio_check(target: int) -> Mdc1200Packet:
    return Mdc1200Packet(0x63, 0x85, target)


def call_alert(target: int, caller: int, *, ack_expected: bool = True) -> Mdc1200Packet:
    """Call alert / page from ``caller`` to ``target`` (double packet 3589 tttt 830D cccc)."""
    return Mdc1200Packet(0x35, 0x89, target, Mdc1200Packet(0x83 if ack_expected else 0x81, 0x0D, caller))


def selective_call(target: int, caller: int) -> Mdc1200Packet:
    """Voice selective call from ``caller`` to ``target`` (double packet 3589 tttt 8205 cccc)."""
    return Mdc1200Packet(0x35, 0x89, target, Mdc1200Packet(0x82, 0x05, caller))


# ------------------------------------------------------------------------------ bit level coding


def crc16(data: bytes) -> int:
    """The MDC-1200 CRC (mdc_common.c ``_docrc``): CRC-16/0x1021 over each byte LSB first, register
    starting at 0, result bit-reversed and inverted. Computed here in the reflected form (0x8408)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def _block7(block: bytes) -> bytes:
    crc = crc16(block[:4])
    return bytes((*block[:4], crc & 0xFF, crc >> 8, 0))


def _parity(data_bits: Bits) -> Bits:
    d = np.concatenate((np.zeros(6, np.uint8), data_bits))
    n = data_bits.size
    return d[6 : 6 + n] ^ d[4 : 4 + n] ^ d[1 : 1 + n] ^ d[0:n]  # taps 0, 2, 5, 6 back


# FEC bit n goes out at position 16 * (n % 7) + n // 7 (mdc_encode.c _enc_str: k += 16, wrap to ++m).
_INTERLEAVE = np.array([16 * (n % 7) + n // 7 for n in range(CODEWORD_BITS)], np.int64)


def codeword(block: bytes) -> Bits:
    """The 112 bits sent for four payload bytes, in the order they are sent."""
    if len(block) != 4:
        raise ValueError(f"an MDC-1200 codeword carries 4 bytes, not {len(block)}")
    data = np.unpackbits(np.frombuffer(_block7(block), np.uint8), bitorder="little")
    fec = np.concatenate((data, _parity(data)))
    out = np.empty(CODEWORD_BITS, np.uint8)
    out[_INTERLEAVE] = fec
    return out


def _byte_bits(value: int, nbits: int) -> Bits:
    return np.array([(value >> (nbits - 1 - i)) & 1 for i in range(nbits)], np.uint8)


SYNC_PATTERN = _byte_bits(SYNC, SYNC_BITS)


def frame_bits(packet: Mdc1200Packet, *, leader_bits: int = LEADER_BITS, hangover_bits: int = 8) -> Bits:
    """Every bit of one burst: leader (0x55...), frame sync, the codeword(s), and ``hangover_bits`` zeros
    (the reference encoder, too, sends one byte past the last codeword)."""
    leader = np.resize(_byte_bits(LEADER_BYTE, 8), max(0, leader_bits))
    words = [codeword(packet.block)]
    if packet.second is not None:
        words.append(codeword(packet.second.block))
    return np.concatenate((leader, SYNC_PATTERN, *words, np.zeros(hangover_bits, np.uint8))).astype(np.uint8)


def modulate(
    bits: Sequence[int] | Bits,
    rate: int = 8000,
    *,
    level: float = 0.5,
    baud: float = BAUD,
    tone_scale: float = 1.0,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
) -> Samples:
    """Precoded MSK samples of ``bits``: 1800 Hz for a bit that differs from the one before, else 1200
    Hz, phase-continuous. ``baud`` and ``tone_scale`` (1.02 = tones 2 % high) model a transmitter off
    frequency."""
    b = np.asarray(bits, np.uint8)
    change = np.concatenate(([0], b[1:] != b[:-1])).astype(bool)
    n = math.ceil(b.size * rate / baud)
    which = np.minimum((np.arange(n) * baud / rate).astype(np.int64), b.size - 1)
    freq = np.where(change[which], HIGH_HZ, LOW_HZ) * tone_scale * (baud / BAUD)
    phase = np.cumsum(2 * np.pi * freq / rate)
    x = level * np.sin(phase - phase[0]) if n else np.zeros(0)
    return np.concatenate((np.zeros(round(lead_s * rate)), x, np.zeros(round(tail_s * rate)))).astype(np.float32)


def encode(
    *packets: Mdc1200Packet,
    rate: int = 8000,
    leader_bits: int = LEADER_BITS,
    level: float = 0.5,
    gap_s: float = 0.1,
    lead_s: float = 0.0,
    tail_s: float = 0.0,
    baud: float = BAUD,
    tone_scale: float = 1.0,
) -> Samples:
    """Audio (float32, -1..1) of one burst per packet, ``gap_s`` of silence between bursts."""
    parts: list[Samples] = [np.zeros(round(lead_s * rate), np.float32)]
    for i, packet in enumerate(packets):
        if i:
            parts.append(np.zeros(round(gap_s * rate), np.float32))
        bits = frame_bits(packet, leader_bits=leader_bits)
        parts.append(modulate(bits, rate, level=level, baud=baud, tone_scale=tone_scale))
    parts.append(np.zeros(round(tail_s * rate), np.float32))
    return np.concatenate(parts).astype(np.float32)


# ------------------------------------------------------------------------------------ FEC decoding

_STATES = np.arange(64)
# Trellis of the systematic K=7 code; a state holds the last six data bits (bit 0 the newest).
_PREV = np.stack([(_STATES >> 1) | (x << 5) for x in (0, 1)])  # (2, 64): predecessors of each state
_INPUT = _STATES & 1  # the data bit that leads into each state
_PAR = np.stack([_INPUT ^ ((p >> 1) & 1) ^ ((p >> 4) & 1) ^ ((p >> 5) & 1) for p in _PREV])  # (2, 64)


def decode_codeword(received: Sequence[float] | npt.NDArray[Any]) -> tuple[bytes, int]:
    """The 7-byte block (op, arg, unit, crc lo, crc hi, byte 6) from 112 received bits in the order
    sent, each 0/1 or a soft value in between (0.5 = no idea), corrected by a soft Viterbi decoder; and
    how many of the received bits it changed. Check the result with :func:`crc_ok`."""
    r = np.clip(np.asarray(received, np.float64).ravel(), 0.0, 1.0)
    if r.size != CODEWORD_BITS:
        raise ValueError(f"an MDC-1200 codeword has {CODEWORD_BITS} bits, not {r.size}")
    fec = r[_INTERLEAVE]
    v = 1.0 - 2.0 * fec  # +1 for a sure 0, -1 for a sure 1
    vd, vp = v[:56], v[56:]
    metric = np.full(64, -1e18)
    metric[0] = 0.0  # the encoder's register starts at zero
    choice = np.zeros((56, 64), np.uint8)
    sign_in = 1.0 - 2.0 * _INPUT
    sign_par = 1.0 - 2.0 * _PAR
    for m in range(56):
        cand = metric[_PREV] + vd[m] * sign_in[None, :] + vp[m] * sign_par  # (2, 64)
        pick = np.argmax(cand, axis=0)
        choice[m] = pick
        metric = cand[pick, _STATES]
    state = int(np.argmax(metric))
    data = np.zeros(56, np.uint8)
    for m in range(55, -1, -1):
        data[m] = state & 1
        state = int(_PREV[choice[m, state], state])
    block = np.packbits(data, bitorder="little").tobytes()
    sent = np.concatenate((data, _parity(data)))
    corrected = int(np.count_nonzero(sent != (fec > 0.5)))
    return block, corrected


def crc_ok(block: bytes) -> bool:
    return len(block) >= 6 and crc16(block[:4]) == block[4] | block[5] << 8


# ------------------------------------------------------------------------------------- the decoder


@dataclass(frozen=True, slots=True)
class Variant:
    """One demodulator: a bit-timing offset (fraction of a bit) and whether the carrier phase comes from
    the known sync bits (data-aided) or blind from the squared samples (then the sync decides the
    polarity, as the reference decoder's inverted-sync case)."""

    name: str
    timing: float
    blind: bool = False
    loop: float = 1.0  # scales the carrier loop gains KP, KI


VARIANTS: tuple[Variant, ...] = (
    Variant("A", 0.0),
    Variant("B", -0.25),
    Variant("C", 0.25),
    Variant("D", 0.0, blind=True),
    Variant("E", 0.0, loop=0.5),
    Variant("F", 0.0, loop=1.6),
)


@dataclass
class _Candidate:
    pos: float  # z index (fractional) of the end of the last sync bit
    metric: float


class Mdc1200Decoder(AudioDecoder):
    """MDC-1200 bursts -> one :class:`Decoded` per packet (``ptt`` for PTT ID, ``alert`` for emergency,
    ``status`` for the rest, unknown opcodes included).

    Option ``demodulators``: which of :data:`VARIANTS` run, by letter (default all, ``"ABCDEF"``), tried
    in that order on every sync candidate.
    """

    name: ClassVar[str] = "mdc1200"
    rates: ClassVar[tuple[int, ...]] = (8000, 11025, 16000, 22050, 32000, 44100, 48000)

    #: Sync metric (0..1, 1 = the 40 sync bits exactly) from which a position is tried. A clean burst
    #: gives 0.95+, one at 3 dB SNR (4 kHz band) about 0.8; white noise about 23 local maxima a second
    #: over 0.45, the highest near 0.62 in a minute. Those all fail the bit check of the sync (at most 5
    #: of 40 wrong), so this sets how much work is done more than what is found.
    THRESHOLD: ClassVar[float] = 0.45
    #: Audio is demodulated in pieces of at least this length (numpy calls cost the same for 20 ms as for
    #: 250 ms); events come this much later.
    CHUNK_SECONDS: ClassVar[float] = 0.25
    #: The same packet within this time (a neighbouring sync peak, another demodulator) is one packet.
    DEDUP_SECONDS: ClassVar[float] = 0.1

    def __init__(self, rate: int | None = None, *, demodulators: str = "ABCDEF", **options: Any) -> None:
        super().__init__(rate, **options)
        known = {v.name: v for v in VARIANTS}
        if not demodulators or any(c not in known for c in demodulators):
            raise ValueError(
                f"decoder 'mdc1200': demodulators must be letters of {''.join(known)}, got {demodulators!r}"
            )
        self._variants = tuple(v for v in VARIANTS if v.name in demodulators)
        r = self.rate
        self._dec = max(1, round(r / 8000))
        self._rb = r / self._dec  # baseband rate
        self._spb = self._rb / BAUD  # samples per bit in baseband
        period = r // math.gcd(r, int(CENTER_HZ))
        self._lo = np.exp(-2j * np.pi * CENTER_HZ * np.arange(period) / r)
        self._period = period
        self._sos = signal.butter(4, 1000.0, fs=r, output="sos")
        self._zi = np.zeros((self._sos.shape[0], 2), np.complex128)
        # MSK matched filter: a half-cosine over two bits, centred (delay = half its length).
        half = math.floor(self._spb)
        tau = (np.arange(2 * half + 1) - half) / self._spb
        self._mf = np.cos(np.pi * tau / 2)
        self._mf /= self._mf.sum()
        self._mf_delay = half
        self._mf_zi = np.zeros(self._mf.size - 1, np.complex128)
        self._n = 0  # native samples consumed
        self._nb = 0  # baseband samples produced
        self._z = np.zeros(0, np.complex128)  # matched-filter output, kept from global index _zbase
        self._zbase = 0
        self._checked = 0  # next z index to test for a sync peak
        self._metric = np.zeros(0)  # sync metric, from global index _mbase
        self._mbase = 0
        self._pending: list[_Candidate] = []
        self._recent: list[tuple[float, bytes]] = []  # (z position, raw) of packets reported
        self._held: list[npt.NDArray[Any]] = []
        self._held_size = 0
        self._held_start = datetime.min
        self._held_first = 0
        # Sync geometry: bit m (0..39) of the sync sits (39 - m) bits before the sync's end.
        self._sync_sign = 1.0 - 2.0 * SYNC_PATTERN.astype(np.float64)
        self._sync_rot = np.array([1j ** (m % 4) for m in range(SYNC_BITS)])
        self._sync_off = np.round((SYNC_BITS - 1 - np.arange(SYNC_BITS)) * self._spb).astype(np.int64)
        self._window = int(self._sync_off[0]) + 2  # samples before a position the metric needs
        self._need_after = math.ceil((2 * CODEWORD_BITS + 3) * self._spb) + 4

    # ----------------------------------------------------------------------------- audio -> z

    def feed(self, block: Samples, start: datetime) -> list[Output]:
        if not self._held:
            self._held_start, self._held_first = start, self._n + self._held_size
        self._held.append(np.asarray(block).ravel())
        self._held_size += self._held[-1].size
        if self._held_size < self.CHUNK_SECONDS * self.rate:
            return []
        return self._process(final=False)

    def flush(self, now: datetime) -> list[Output]:
        return self._process(final=True, now=now)

    def _process(self, *, final: bool, now: datetime | None = None) -> list[Output]:
        start, first = self._held_start, self._held_first
        if not self._held:
            start, first = now or datetime.min, self._n
        x = np.concatenate(self._held) if self._held else np.zeros(0)
        self._held.clear()
        self._held_size = 0
        x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(x, -4.0, 4.0, out=x)
        if x.size:
            idx = np.arange(self._n, self._n + x.size) % self._period
            base, self._zi = signal.sosfilt(self._sos, x * self._lo[idx], zi=self._zi)
            keep = np.arange((-self._n) % self._dec, x.size, self._dec)
            self._n += x.size
            zb = base[keep]
            zmf, self._mf_zi = signal.lfilter(self._mf, [1.0], zb, zi=self._mf_zi)
            self._z = np.concatenate((self._z, zmf))
            self._nb += zb.size
        self._search(final)
        out = self._decode_ready(start, first, final)
        self._trim()
        return out

    # -------------------------------------------------------------------------- sync search

    def _sync_metric(self, lo: int, hi: int) -> Float:
        """Sync metric for z positions lo..hi-1 (global), each the end of a would-be last sync bit."""
        pos = np.arange(lo, hi)
        y = self._z[(pos - self._zbase)[:, None] - self._sync_off[None, :]] * self._sync_rot
        seg = (y * self._sync_sign).reshape(pos.size, 4, SYNC_BITS // 4).sum(axis=2)
        energy = np.sqrt(np.sum(np.abs(y) ** 2, axis=1) * SYNC_BITS) + 1e-12
        return np.asarray(np.abs(seg).sum(axis=1) / energy)

    def _search(self, final: bool) -> None:
        end = self._zbase + self._z.size
        lo = max(self._checked, self._zbase + self._window)
        w = max(1, round(self._spb))
        # Peaks need the metric w samples either side; positions near the end wait for more audio.
        hi = end if final else end - w
        if hi <= lo:
            return
        mlo = max(self._zbase + self._window, lo - w)
        metric = self._sync_metric(mlo, end)
        for pos, k in sync_peaks(metric, first=mlo, lo=lo, hi=hi, half_width=w, threshold=self.THRESHOLD):
            self._pending.append(_Candidate(pos, float(metric[k])))
        self._checked = hi

    # ---------------------------------------------------------------------------- demodulate

    def _decode_ready(self, start: datetime, first: int, final: bool) -> list[Output]:
        end = self._zbase + self._z.size
        out: list[Output] = []
        still: list[_Candidate] = []
        for cand in self._pending:
            if not final and cand.pos + self._need_after > end:
                still.append(cand)
                continue
            out.extend(self._candidate(cand, start, first))
        self._pending = still
        return out

    def _interp(self, pos: float) -> complex:
        i = pos - self._zbase
        k = math.floor(i)
        if k < 0 or k + 1 >= self._z.size:
            return 0j
        f = i - k
        return complex(self._z[k] * (1 - f) + self._z[k + 1] * f)

    def _candidate(self, cand: _Candidate, start: datetime, first: int) -> list[Output]:
        best_reject: Rejected | None = None
        for variant in self._variants:
            result = self._demodulate(cand, variant)
            if result is None:
                continue
            blocks, corrected, sync_errors = result
            if all(crc_ok(b) for b in blocks):
                return self._report(cand, blocks, corrected, sync_errors, variant, start, first)
            if sync_errors <= 2 and best_reject is None:
                raw = b"".join(blocks)
                best_reject = Rejected(self.name, "CRC does not check after error correction", raw)
        if best_reject is not None and not self._seen(cand.pos, best_reject.raw):
            self._recent.append((cand.pos, best_reject.raw))
            return [best_reject]
        return []

    def _demodulate(self, cand: _Candidate, variant: Variant) -> tuple[list[bytes], int, int] | None:
        spb = self._spb
        p0 = cand.pos + variant.timing * spb
        n_sync = np.arange(-(SYNC_BITS - 1), 1)
        y = np.array([self._interp(p0 + n * spb) for n in n_sync.tolist()]) * np.array(
            [1j ** (n % 4) for n in n_sync.tolist()]
        )
        amp = float(np.mean(np.abs(y)))
        if amp <= 0:
            return None
        # Carrier frequency (rad/bit) from the phase step between 10-bit segments of the known sync.
        seg = (y * self._sync_sign).reshape(4, 10).sum(axis=1)
        omega = float(np.angle(np.sum(seg[1:] * np.conj(seg[:-1])))) / 10
        yd = y * np.exp(-1j * omega * n_sync)
        if variant.blind:
            # Blind: the phase modulo 180 degrees from the squared samples; the sync bits tell which.
            phi = float(np.angle(np.sum(yd**2))) / 2
            hard = (np.real(yd * np.exp(-1j * phi)) < 0).astype(np.uint8)
            errors = int(np.count_nonzero(hard != SYNC_PATTERN))
            if errors >= SYNC_BITS - SYNC_TOLERANCE:
                phi += math.pi
                errors = SYNC_BITS - errors
        else:
            phi = float(np.angle(np.sum(yd * self._sync_sign)))
            hard = (np.real(yd * np.exp(-1j * phi)) < 0).astype(np.uint8)
            errors = int(np.count_nonzero(hard != SYNC_PATTERN))
        if errors > SYNC_TOLERANCE:
            return None
        # Decision-directed tracking through the codewords: carrier phase and frequency (a second-order
        # loop), bit clock from early/late samples a quarter bit either side.
        pos, step = p0, spb
        kp, ki = KP * variant.loop, KI * variant.loop**2
        blocks: list[bytes] = []
        corrected = 0
        soft: list[float] = []
        n = 0
        total = CODEWORD_BITS
        while n < total:
            n += 1
            pos += step
            phi += omega
            rot = (1j ** (n % 4)) * complex(math.cos(phi), -math.sin(phi))
            u = self._interp(pos) * rot
            d = 1.0 if u.real >= 0 else -1.0
            # Phase error from the quadrature part, bounded: a sample near zero (noise) must not yank
            # the loop around by up to 90 degrees, which is how a loop slips half a turn.
            err = max(-1.0, min(1.0, u.imag * d / amp))
            phi += kp * err
            omega += ki * err
            early = (self._interp(pos - step / 4) * rot).real
            late = (self._interp(pos + step / 4) * rot).real
            te = d * (late - early) / amp
            pos += 0.06 * te * spb
            step += 0.004 * te * spb
            soft.append(0.5 - 0.5 * max(-1.0, min(1.0, u.real / amp)))
            if n == total:
                block, fixed = decode_codeword(soft[-CODEWORD_BITS:])
                blocks.append(block)
                corrected += fixed
                if len(blocks) == 1 and crc_ok(block) and block[0] in DOUBLE_OPS:
                    total += CODEWORD_BITS
        return blocks, corrected, errors

    # ------------------------------------------------------------------------------- events

    def _seen(self, pos: float, raw: bytes) -> bool:
        window = self.DEDUP_SECONDS * self._rb
        self._recent = [(p, r) for p, r in self._recent if abs(pos - p) <= 4 * window]
        return any(r == raw and abs(pos - p) <= window for p, r in self._recent)

    def _report(
        self,
        cand: _Candidate,
        blocks: list[bytes],
        corrected: int,
        sync_errors: int,
        variant: Variant,
        start: datetime,
        first: int,
    ) -> list[Output]:
        raw = b"".join(blocks)
        if self._seen(cand.pos, raw):
            return []
        self._recent.append((cand.pos, raw))
        b = blocks[0]
        packet = Mdc1200Packet(b[0], b[1], b[2] << 8 | b[3])
        name, kind = _lookup(packet.op, packet.arg)
        unit = packet.unit_id
        detail: dict[str, Any] = {
            "protocol": "mdc1200",
            "op": packet.op,
            "arg": packet.arg,
            "unit_id": f"{packet.unit_id:04X}",
        }
        if len(blocks) > 1:
            s = blocks[1]
            second = Mdc1200Packet(s[0], s[1], s[2] << 8 | s[3])
            detail["second"] = {"op": second.op, "arg": second.arg, "unit_id": f"{second.unit_id:04X}"}
            if packet.op == 0x35:
                # The caller is in the second codeword, the called unit in the first (KA6SQG list).
                name = _double_name(second)
                unit = second.unit_id
                detail["unit_id"] = f"{second.unit_id:04X}"
                detail["target_id"] = f"{packet.unit_id:04X}"
        # Where the burst's sync began, in native samples (the matched filter delays z by _mf_delay).
        sync_start = cand.pos - (SYNC_BITS * self._spb) - self._mf_delay
        index = max(0, round(sync_start * self._dec))
        detail.update(
            {
                "name": name,
                "raw": raw.hex(),
                "corrected_bits": corrected,
                "sync_errors": sync_errors,
                "offset_s": round(index / self.rate, 4),
                "demodulator": variant.name,
            }
        )
        return [Decoded(kind=kind, time=self.at(start, index - first), unit=f"mdc:{unit:04X}", detail=detail)]

    def _trim(self) -> None:
        """Forget audio no pending candidate and no future sync search needs."""
        end = self._zbase + self._z.size
        keep_from = min(
            [end - self._window - 4 * int(self._spb) - 4, self._checked - self._window - 4 * int(self._spb)]
            + [int(c.pos) - self._window - 4 * int(self._spb) for c in self._pending]
        )
        drop = keep_from - self._zbase
        if drop > 0:
            self._z = self._z[drop:]
            self._zbase += drop
