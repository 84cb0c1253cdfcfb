"""The C allocator told to keep the memory the decoders free, in the processes that run them.

Why. The decoders make their working arrays afresh for every block they demodulate (a few MiB for the
3 s blocks of ``pttbridge decode``). glibc's malloc hands large freed blocks back to the kernel (an
``munmap``, or a trim of the heap's top) by thresholds it moves as it goes, and the next block faults
the same pages in again: 150,000-400,000 page faults and 0.2-0.4 s of system time on a 10-minute
channel, a tenth of the decode's CPU, coming and going with the sizes of the arrays. Fixed thresholds
keep that memory in the heap; the peak resident memory is the same (measured on that channel: 62 MiB
for AFSK1200 alone, 74 MiB for five decoders, with and without). They are the highest glibc's own
moving thresholds ever reach (32 MiB, and twice that for the trim), so a long-running gateway keeps no
more than it could have kept anyway. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
from functools import cache

# glibc's malloc.h
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap, not from their own mapping (glibc's largest allowed on
# 64-bit systems is 32 MiB) ...
MMAP_THRESHOLD = 32 << 20
# ... and the heap's free top is given back to the kernel only beyond this.
TRIM_THRESHOLD = 64 << 20


@cache
def keep_freed_memory() -> bool:
    """Set the thresholds, once per process; whether the C library took them (False where it has no
    ``mallopt``)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: musl, macOS
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
