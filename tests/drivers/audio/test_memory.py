"""The C allocator's thresholds set by drivers.audio.memory, read back from glibc in a process of its own."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[3]


def _glibc() -> bool:
    try:
        ctypes.CDLL(None).mallopt  # noqa: B018
    except AttributeError:
        return False
    return True


@pytest.mark.skipif(not _glibc(), reason="no glibc malloc here: keep_freed_memory does nothing")
def test_freed_blocks_of_a_decoders_size_stay_in_the_heap() -> None:
    """After keep_freed_memory, the arrays a decoder makes for a block (a few MiB, held together, then
    freed) are reused from the heap: the next block maps no new pages. Without it, glibc hands the
    freed top of the heap back to the kernel after each block, and every block faults its pages in again."""
    script = textwrap.dedent(
        """
        import resource, sys
        import numpy as np
        from drivers.audio.memory import keep_freed_memory
        if sys.argv[1] == "keep":
            assert keep_freed_memory()
        def faults():
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        def block():  # a decoder's working arrays for one block: written, held together, freed
            return [np.ones(n) for n in (1 << 18, 1 << 18, 1 << 19, 1 << 17, 1 << 18)]
        for _ in range(3):  # warm up: the heap grows to hold them once
            block()
        before = faults()
        for _ in range(50):
            block()
        print(faults() - before)
        """
    )

    def run(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", script, mode], cwd=ROOT, capture_output=True, text=True,
                             check=True, env={"PATH": "", "PYTHONPATH": str(ROOT)})
        return int(out.stdout)

    kept, default = run("keep"), run("default")
    assert kept < 100, f"{kept} page faults for 50 blocks whose memory should have stayed in the heap"
    assert default > 50 * 1000, f"only {default} faults without the setting: the test no longer shows the case"
