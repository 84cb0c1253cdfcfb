"""DMR forward error correction and checksums (ETSI TS 102 361-1 annex B), encode and decode.

Every code here is written from the standard's generator matrices and polynomials; constants were
checked against the public open-source decoders (MMDVMHost ``Golay2087``, ``QR1676``, ``Hamming``,
``BPTC19696``, ``RS129``, ``CRC``, ``DMRTrellis``, ``DMREmbeddedData``; ok-dmrlib's CRC tables), whose
tables these codes reproduce (tests/drivers/test_dmr_fec.py checks the ones that were copied down).

Bits are numpy uint8 arrays, most significant (first sent) first. Decoders never guess: each returns
``None`` (or raises :class:`FecError` with the reason) when what came in is past what the code corrects.

    code              where                                    corrects            clause
    Golay(20,8,7)     slot type (colour code + data type)      3 bits (soft ML)    B.3.1
    QR(16,7,6)        EMB of voice bursts B-F                  2 bits (soft ML)    B.3.2
    Hamming(7,4,3)    TACT of the CACH                         1 bit               B.3.3
    BPTC(196,96)      LC header/terminator, CSBK, data header  rows (15,11,3) x    B.1.1
                      and rate 1/2 data                        columns (13,9,3)
    Hamming(16,11,4)  embedded LC rows (+ column parity)       1 bit, detects 2    B.2.1, B.3.4
    RS(12,9)          full LC (checked, masked per data type)  detection           B.3.6
    trellis 3/4       rate 3/4 data                            Viterbi (soft)      B.2.2 (tables B.7, B.9)
    CRC-CCITT         CSBK, data header, ...: masked           detection           B.3.7, table B.21
    CRC-9             confirmed data blocks: masked            detection           B.3.10
    CRC-32            a whole unconfirmed/confirmed packet     detection           B.3.9
    5-bit checksum    embedded LC                              detection           B.3.11
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

Bits = npt.NDArray[np.uint8]
Soft = npt.NDArray[np.float64]  # per bit: +1 = surely 0, -1 = surely 1 (0 = no idea)


class FecError(ValueError):
    """What failed and why: refused, never guessed."""


def bits_of(value: int, n: int) -> Bits:
    return np.array([(value >> (n - 1 - i)) & 1 for i in range(n)], np.uint8)


def value_of(bits: Bits | list[int]) -> int:
    v = 0
    for b in np.asarray(bits, np.uint8).tolist():
        v = v << 1 | int(b)
    return v


def bytes_to_bits(data: bytes) -> Bits:
    return np.unpackbits(np.frombuffer(bytes(data), np.uint8))


def bits_to_bytes(bits: Bits) -> bytes:
    return np.packbits(np.asarray(bits, np.uint8)).tobytes()


def hard(soft: Soft) -> Bits:
    return (np.asarray(soft) < 0).astype(np.uint8)


# --------------------------------------------------------------------------- Golay(20,8) B.3.1

# The parity (12 bits) of each information bit d7 (first sent) .. d0, rows of the generator matrix
# of clause B.3.1 (the same as MMDVMHost ENCODING_TABLE_2087 for 0x80 .. 0x01).
_GOLAY_ROWS = (0x3DA, 0xD99, 0x6CD, 0x367, 0xDC6, 0xA97, 0x93E, 0x8EB)


def golay2087_encode(data: int) -> Bits:
    parity = 0
    for i, row in enumerate(_GOLAY_ROWS):
        if data >> (7 - i) & 1:
            parity ^= row
    return np.concatenate((bits_of(data, 8), bits_of(parity, 12)))


@cache
def _golay_book() -> npt.NDArray[np.float64]:
    return 1.0 - 2.0 * np.array([golay2087_encode(v) for v in range(256)], np.float64)


def golay2087_decode(soft: Soft) -> tuple[int, int] | None:
    """(data byte, bits corrected) by soft maximum likelihood over all 256 words; None past 3 errors
    (the code's distance is 7, so a word more than 3 bits from what came in is not trusted)."""
    book = _golay_book()
    best = int(np.argmax(book @ np.asarray(soft, np.float64)))
    errors = int(np.count_nonzero(hard(soft) != (book[best] < 0)))
    return (best, errors) if errors <= 3 else None


# ---------------------------------------------------------------------------- QR(16,7,6) B.3.2

_QR_GENERATOR = 0x139  # g(x) = x^8 + x^5 + x^4 + x^3 + 1 of the cyclic (15,7) code, plus overall parity


def qr1676_encode(data: int) -> Bits:
    reg = data << 8
    for bit in range(14, 7, -1):
        if reg >> bit & 1:
            reg ^= _QR_GENERATOR << (bit - 8)
    word15 = data << 8 | reg
    return np.concatenate((bits_of(word15, 15), [bin(word15).count("1") & 1])).astype(np.uint8)


@cache
def _qr_book() -> npt.NDArray[np.float64]:
    return 1.0 - 2.0 * np.array([qr1676_encode(v) for v in range(128)], np.float64)


@cache
def _qr_near() -> npt.NDArray[np.int16]:
    """16-bit word -> the data of the codeword at most 2 bits from it (there is at most one: the distance
    is 6), or -1."""
    near = np.full(1 << 16, -1, np.int16)
    flips = [0] + [1 << i for i in range(16)] + [1 << i | 1 << j for i in range(16) for j in range(i)]
    for data in range(128):
        near[value_of(qr1676_encode(data)) ^ np.array(flips)] = data
    near.flags.writeable = False  # shared by every caller (cached)
    return near


def qr1676_decode(soft: Soft) -> tuple[int, int] | None:
    """(7 data bits, bits corrected) by soft ML; None past 2 errors (distance 6)."""
    s = np.asarray(soft, np.float64)
    word = hard(s)
    # The soft ML word is kept only if it is within 2 bits of the hard word, so only the codeword there
    # can be kept: where there is none (most words heard from noise), nothing is.
    near = int(_qr_near()[int(word @ _bit_weights(16))])
    if near < 0:
        return None
    book = _qr_book()
    best = int(np.argmax(book @ s))
    errors = int(np.count_nonzero(word != (book[best] < 0)))
    return (best, errors) if errors <= 2 else None


# ------------------------------------------------------------------------------ Hamming codes

# Parity equations over the data bits (B.3.3-B.3.5, as in MMDVMHost Hamming.cpp).
H15_11 = ((0, 1, 2, 3, 5, 7, 8), (1, 2, 3, 4, 6, 8, 9), (2, 3, 4, 5, 7, 9, 10), (0, 1, 2, 4, 6, 7, 10))
H16_11 = (*H15_11, (0, 2, 5, 6, 8, 9, 10))
H13_9 = ((0, 1, 3, 5, 6), (0, 1, 2, 4, 6, 7), (0, 1, 2, 3, 5, 7, 8), (0, 2, 4, 5, 8))
H7_4 = ((0, 1, 2), (1, 2, 3), (0, 1, 3))


@cache  # asked for every syndrome, tens of thousands of times a minute on a busy channel
def _parity_matrix(eqs: tuple[tuple[int, ...], ...], k: int) -> Bits:
    n = k + len(eqs)
    h = np.zeros((len(eqs), n), np.uint8)
    for r, eq in enumerate(eqs):
        h[r, list(eq)] = 1
        h[r, k + r] = 1
    h.flags.writeable = False  # shared by every caller (cached)
    return h


def hamming_encode(data: Bits, eqs: tuple[tuple[int, ...], ...]) -> Bits:
    d = np.asarray(data, np.uint8)
    return np.concatenate((d, [int(d[list(eq)].sum() & 1) for eq in eqs])).astype(np.uint8)


@cache
def _syndrome_table(eqs: tuple[tuple[int, ...], ...], k: int) -> dict[int, int]:
    """syndrome -> position of the single bit error that makes it."""
    h = _parity_matrix(eqs, k)
    return {value_of(h[:, i]): i for i in range(h.shape[1])}


def hamming_correct(word: Bits, eqs: tuple[tuple[int, ...], ...], k: int) -> tuple[Bits, int] | None:
    """(corrected word, 0 or 1 bits fixed), or None when the syndrome is no single error."""
    w = np.array(word, np.uint8)
    syndrome = value_of(_parity_matrix(eqs, k) @ w % 2)
    if syndrome == 0:
        return w, 0
    pos = _syndrome_table(eqs, k).get(syndrome)
    if pos is None:
        return None
    w[pos] ^= 1
    return w, 1


# --------------------------------------------------------------------------- BPTC(196,96) B.1.1
#
#   196 bits = R(3) + a 13 x 15 matrix, row-major from bit 1. Rows 0-8: 11 data bits + Hamming(15,11,3)
#   parity; rows 9-12: Hamming(13,9,3) parity of each column. Data: R(2) R(1) R(0) then 96 info bits.
#   Interleave (B.1.1): matrix bit i is sent at position (i * 181) mod 196.

BPTC_INTERLEAVE = np.array([(i * 181) % 196 for i in range(196)], np.int64)
_BPTC_DATA_POS = np.array([1 + 15 * r + c for r in range(9) for c in range(11)][3:], np.int64)


def bptc196_encode(info: bytes) -> Bits:
    if len(info) != 12:
        raise ValueError(f"BPTC(196,96) carries 12 bytes, not {len(info)}")
    m = np.zeros(196, np.uint8)
    m[_BPTC_DATA_POS] = bytes_to_bits(info)
    grid = m[1:].reshape(13, 15)
    for r in range(9):
        grid[r] = hamming_encode(grid[r, :11], H15_11)
    for c in range(15):
        grid[:, c] = hamming_encode(grid[:9, c], H13_9)
    m[1:] = grid.ravel()
    out = np.zeros(196, np.uint8)
    out[BPTC_INTERLEAVE] = m
    return out


def bptc196_decode(soft: Soft) -> tuple[bytes, int]:
    """(12 info bytes, bits corrected); :class:`FecError` when a data row still fails after the
    iterative row/column correction (B.1.1: each row and column corrects one error)."""
    bits = hard(np.asarray(soft)[BPTC_INTERLEAVE])
    grid = bits[1:].reshape(13, 15).copy()
    fixed = 0
    # A product code: a bit is wrong where a failing row and a failing column meet. Flips that both
    # agree on go first; a row or column alone (its crossing code clean) is trusted only when nothing
    # else is left, so that a column with two errors is not "corrected" into three.
    for _ in range(12):
        row_errors, col_errors = _single_errors(grid[:9], H15_11, 11), _single_errors(grid.T, H13_9, 9)
        rows = {r: e for r, e in enumerate(row_errors) if e != _CLEAN}
        cols = {c: e for c, e in enumerate(col_errors) if e != _CLEAN}
        if not rows and not cols:
            break
        agreed = {(r, c) for r, c in rows.items() if c is not None and cols.get(c) == r}
        if not agreed:
            agreed = {(r, c) for r, c in rows.items() if c is not None and c in cols}
        if not agreed:
            agreed = {(r, c) for r, c in rows.items() if c is not None}
        if not agreed:
            agreed = {(r, c) for c, r in cols.items() if r is not None}
        if not agreed:
            break
        for r, c in agreed:
            grid[r, c] ^= 1
            fixed += 1
    bad_rows = [r for r, e in enumerate(_single_errors(grid[:9], H15_11, 11)) if e != _CLEAN]
    if bad_rows:
        bad_cols = [c for c, e in enumerate(_single_errors(grid.T, H13_9, 9)) if e != _CLEAN]
        raise FecError(f"BPTC(196,96): {len(bad_rows)} row(s) and {len(bad_cols)} column(s) uncorrectable")
    # Columns may still fail with every data row clean (two errors in a column's parity rows, which no
    # row code covers): the data rows agree with themselves, and the CRC or RS after this decides.
    m = np.concatenate(([bits[0]], grid.ravel()))
    return bits_to_bytes(m[_BPTC_DATA_POS]), fixed


_CLEAN = -1  # a word whose syndrome is zero


def _single_errors(words: Bits, eqs: tuple[tuple[int, ...], ...], k: int) -> list[int | None]:
    """For each word (a row of ``words``): _CLEAN, the one error its syndrome points at, or None if
    it points at none. Every syndrome at once: a BPTC decode asks for 24 per pass."""
    syndromes = words @ _parity_columns(eqs, k) % 2 @ _bit_weights(len(eqs))
    errors: list[int | None] = _error_lookup(eqs, k)[syndromes].tolist()
    return errors


@cache
def _parity_columns(eqs: tuple[tuple[int, ...], ...], k: int) -> npt.NDArray[np.int64]:
    return _parity_matrix(eqs, k).T.astype(np.int64)


@cache
def _bit_weights(n: int) -> npt.NDArray[np.int64]:
    return 1 << np.arange(n - 1, -1, -1)  # the first bit the most significant, as value_of


@cache
def _error_lookup(eqs: tuple[tuple[int, ...], ...], k: int) -> npt.NDArray[np.object_]:
    """syndrome -> _CLEAN (0), the single error's position, or None."""
    table = _syndrome_table(eqs, k)
    return np.array([_CLEAN] + [table.get(v) for v in range(1, 1 << len(eqs))], object)


# ------------------------------------------------------------------------------ RS(12,9) B.3.6
# GF(256) with primitive polynomial x^8 + x^4 + x^3 + x^2 + 1; g(x) = (x - a)(x - a^2)(x - a^3)
# = x^3 + 0x0E x^2 + 0x38 x + 0x40 (B.3.6; MMDVMHost RS129 POLY).

_GF_EXP = np.zeros(512, np.int64)
_GF_LOG = np.zeros(256, np.int64)
_x = 1
for _i in range(255):
    _GF_EXP[_i] = _x
    _GF_LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
_GF_EXP[255:510] = _GF_EXP[:255]
RS_GENERATOR = (0x40, 0x38, 0x0E)  # g0, g1, g2 (g3 = 1)


def _gmul(a: int, b: int) -> int:
    return 0 if a == 0 or b == 0 else int(_GF_EXP[_GF_LOG[a] + _GF_LOG[b]])


def rs129_parity(data: bytes) -> bytes:
    """The three parity bytes (highest degree first, as sent after the nine data bytes)."""
    p = [0, 0, 0]  # p[0] = coefficient of x^0
    for byte in data:
        feedback = byte ^ p[2]
        p[2] = p[1] ^ _gmul(RS_GENERATOR[2], feedback)
        p[1] = p[0] ^ _gmul(RS_GENERATOR[1], feedback)
        p[0] = _gmul(RS_GENERATOR[0], feedback)
    return bytes((p[2], p[1], p[0]))


# CRC masks of table B.21 (the RS parity of a full LC is masked by its data type).
MASK_VOICE_LC_HEADER = 0x969696
MASK_TERMINATOR_LC = 0x999999
MASK_PI_HEADER = 0x6969
MASK_CSBK = 0xA5A5
MASK_MBC_HEADER = 0xAAAA
MASK_DATA_HEADER = 0xCCCC
MASK_USBD = 0x3333
MASK_RATE12_BLOCK = 0x0F0
MASK_RATE34_BLOCK = 0x1FF
MASK_RATE1_BLOCK = 0x10F


def full_lc_encode(lc: bytes, mask: int) -> bytes:
    if len(lc) != 9:
        raise ValueError(f"a full LC is 9 bytes, not {len(lc)}")
    parity = int.from_bytes(rs129_parity(lc), "big") ^ mask
    return lc + parity.to_bytes(3, "big")


def full_lc_check(block: bytes, mask: int) -> bool:
    return rs129_parity(block[:9]) == (int.from_bytes(block[9:12], "big") ^ mask).to_bytes(3, "big")


# --------------------------------------------------------------------------------- CRCs B.3.7-B.3.11


def crc_ccitt(data: bytes) -> int:
    """B.3.7: G(x) = x^16 + x^12 + x^5 + 1, register 0, MSB first, result inverted (then masked)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc ^ 0xFFFF


def with_ccitt(data: bytes, mask: int) -> bytes:
    return data + (crc_ccitt(data) ^ mask).to_bytes(2, "big")


def ccitt_ok(block: bytes, mask: int) -> bool:
    return crc_ccitt(block[:-2]) ^ mask == int.from_bytes(block[-2:], "big")


def crc9(bits: Bits) -> int:
    """B.3.10: G(x) = x^9 + x^6 + x^4 + x^3 + 1 over the block's data bits then its 7-bit serial number
    (as ok-dmrlib's CRC9 checks it), register 0; the result is masked by the block's rate."""
    crc = 0
    for b in np.asarray(bits, np.uint8).tolist():
        top = (crc >> 8) & 1
        crc = (crc << 1) & 0x1FF
        if top ^ int(b):
            crc ^= 0x059
    return crc


def crc32_dmr(data: bytes) -> int:
    """B.3.9: G(x) = 0x04C11DB7, register 0, no final inversion, over the packet's octets taken in
    pairs with the two octets of each pair swapped and each octet least significant bit first (as
    ok-dmrlib's CRC32 computes it). Sent after the data, least significant octet first."""
    swapped = bytearray(data)
    for i in range(0, len(swapped) - 1, 2):
        swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    crc = 0
    for byte in swapped:
        for k in range(8):
            bit = (byte >> k) & 1
            top = (crc >> 31) & 1
            crc = (crc << 1) & 0xFFFFFFFF
            if top ^ bit:
                crc ^= 0x04C11DB7
    return crc


def checksum5(lc: bytes) -> int:
    """B.3.11: the embedded LC's checksum, the sum of its nine octets modulo 31."""
    return sum(lc[:9]) % 31


# ------------------------------------------------------------------- embedded LC (B.2.1, 7.1.3.2)
#
#   128 bits = 8 rows x 16 columns; rows 0-6: 11 bits + Hamming(16,11,4); row 7: even parity of each
#   column. The 72 LC bits fill the data columns (11, 11, 10, 10, 10, 10, 10 of rows 0-6); the 5-bit
#   checksum takes column 10 of rows 2-6 (MSB first). Sent column by column, in four fragments of 32.

_EMB_LC_POS = np.array([16 * r + c for r in range(7) for c in range(11 if r < 2 else 10)], np.int64)
_EMB_CS_POS = np.array([16 * r + 10 for r in range(2, 7)], np.int64)
EMBEDDED_ORDER = np.array([16 * (i % 8) + i // 8 for i in range(128)], np.int64)  # sent i <- matrix


def embedded_lc_encode(lc: bytes) -> Bits:
    """The 128 bits of an embedded LC in the order sent (four fragments of 32)."""
    m = np.zeros(128, np.uint8)
    m[_EMB_LC_POS] = bytes_to_bits(lc[:9])
    m[_EMB_CS_POS] = bits_of(checksum5(lc), 5)
    grid = m.reshape(8, 16)
    for r in range(7):
        grid[r] = hamming_encode(grid[r, :11], H16_11)
    grid[7] = grid[:7].sum(axis=0) & 1
    return grid.ravel()[EMBEDDED_ORDER]


def embedded_lc_decode(sent: Bits) -> tuple[bytes, int]:
    """(9 LC bytes, bits corrected) from the 128 bits of four fragments; FecError with the reason."""
    m = np.zeros(128, np.uint8)
    m[EMBEDDED_ORDER] = sent
    grid = m.reshape(8, 16).copy()
    fixed = 0
    for r in range(7):
        got = hamming_correct(grid[r], H16_11, 11)
        if got is None:
            raise FecError(f"embedded LC: row {r} has more errors than Hamming(16,11,4) corrects")
        grid[r], n = got
        fixed += n
    failing = np.flatnonzero(grid.sum(axis=0) & 1)
    if failing.size > 1:
        raise FecError(f"embedded LC: column parity fails in {failing.size} columns")
    if failing.size:
        fixed += 1  # one error in the parity row itself, which no row code covers
    flat = grid.ravel()
    lc = bits_to_bytes(flat[_EMB_LC_POS])
    if value_of(flat[_EMB_CS_POS]) != checksum5(lc):
        raise FecError("embedded LC: 5-bit checksum fails")
    return lc, fixed


# ------------------------------------------------------------------------- trellis 3/4 B.2.2
#
#   18 bytes = 48 tribits + a zero tribit; state machine of table B.7 (next state = the tribit) gives
#   49 constellation points; each point is two symbols (table B.8); the 98 symbols are interleaved
#   (table B.9) and sent as 196 bits.

TRELLIS_ENCODE = (
    (0, 8, 4, 12, 2, 10, 6, 14), (4, 12, 2, 10, 6, 14, 0, 8), (1, 9, 5, 13, 3, 11, 7, 15),
    (5, 13, 3, 11, 7, 15, 1, 9), (3, 11, 7, 15, 1, 9, 5, 13), (7, 15, 1, 9, 5, 13, 3, 11),
    (2, 10, 6, 14, 0, 8, 4, 12), (6, 14, 0, 8, 4, 12, 2, 10),
)
# Constellation point -> its two symbols (table B.8).
TRELLIS_POINTS = np.array([
    (1, -1), (-1, -1), (3, -3), (-3, -3), (-3, -1), (3, -1), (-1, -3), (1, -3),
    (-3, 3), (3, 3), (-1, 1), (1, 1), (1, 3), (-1, 3), (3, 1), (-3, 1)], np.float64)
# Table B.9: received symbol i is symbol TRELLIS_INTERLEAVE[i] of the coded sequence.
TRELLIS_INTERLEAVE = np.array([8 * k + 2 * g + j for g in range(4) for k in range(13 if g == 0 else 12)
                               for j in (0, 1)], np.int64)


def trellis_encode(data: bytes) -> npt.NDArray[np.float64]:
    """98 symbols (+-1, +-3) in the order sent."""
    if len(data) != 18:
        raise ValueError(f"rate 3/4 data carries 18 bytes, not {len(data)}")
    b = bytes_to_bits(data)
    tribits = [int(b[3 * i] << 2 | b[3 * i + 1] << 1 | b[3 * i + 2]) for i in range(48)] + [0]
    state, symbols = 0, []
    for t in tribits:
        symbols.extend(TRELLIS_POINTS[TRELLIS_ENCODE[state][t]])
        state = t
    out = np.zeros(98)
    out[np.arange(98)] = np.asarray(symbols)[TRELLIS_INTERLEAVE]
    return out


def trellis_decode(symbols: npt.NDArray[np.float64]) -> tuple[bytes, float]:
    """(18 bytes, mean squared symbol distance of the chosen path) by Viterbi over the 8 states, from
    the 98 received symbol values (soft, in units of the +-1/+-3 levels)."""
    rx = np.zeros(98)
    rx[TRELLIS_INTERLEAVE] = np.asarray(symbols, np.float64)
    pairs = rx.reshape(49, 2)
    table = np.array(TRELLIS_ENCODE)  # [state, tribit] -> point
    cost = np.full(8, np.inf)
    cost[0] = 0.0
    back = np.zeros((49, 8), np.int64)
    for i in range(49):
        d = np.sum((TRELLIS_POINTS[table] - pairs[i]) ** 2, axis=2)  # [state, tribit]
        total = cost[:, None] + d
        back[i] = np.argmin(total, axis=0)  # best previous state for each new state (= tribit)
        cost = total[back[i], np.arange(8)]
    state = 0  # the tail tribit is 0
    tribits = []
    for i in range(48, -1, -1):
        tribits.append(state)
        state = int(back[i, state])
    tribits.reverse()
    bits = np.array([(t >> s) & 1 for t in tribits[:48] for s in (2, 1, 0)], np.uint8)
    return bits_to_bytes(bits), float(cost[0]) / 98
