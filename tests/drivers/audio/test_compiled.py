"""scipy's compiled kernels as drivers.audio.compiled loads them (from their files, or by the ordinary import
where that fails): the spectra and the IIR filters computed with them are scipy's own, bit for bit, and
loading them imports none of scipy's slow packages."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import scipy.fft
from scipy import signal

from drivers.audio import compiled, iir, spectra

ROOT = Path(__file__).parents[3]
POCKETFFT = "scipy.fft._pocketfft.pypocketfft"
SOSFILT = "scipy.signal._sosfilt"


def _loaded(name: str, how: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    if how == "file":
        return compiled.from_file(name)

    def no_file(name: str) -> ModuleType:
        raise ImportError(name)

    monkeypatch.setattr(compiled, "from_file", no_file)  # another scipy layout
    monkeypatch.delitem(sys.modules, name, raising=False)
    return compiled.load(name)


@pytest.mark.parametrize("how", ["file", "fallback"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("rows", "width", "n"), [(1, 160, 1024), (37, 441, 4096), (5, 300, 300), (3, 500, 256)])
def test_rfft_is_scipys(how: str, dtype: type, rows: int, width: int, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spectra, "_pocketfft", _loaded(POCKETFFT, how, monkeypatch))
    x: np.ndarray = np.random.default_rng(width).normal(size=(rows, width)).astype(dtype)
    want = scipy.fft.rfft(x, n, axis=1)
    got = spectra._rfft(x, n)
    assert got.dtype == want.dtype and np.array_equal(got, want)


@pytest.mark.parametrize("how", ["file", "fallback"])
@pytest.mark.parametrize("rate", [8000, 11025, 16000, 22050, 44100, 48000])
def test_spectrogram_powers_are_those_of_scipy_fft(how: str, rate: int, monkeypatch: pytest.MonkeyPatch) -> None:
    x = (0.3 * np.random.default_rng(rate).normal(size=rate // 2)).astype(np.float32)
    monkeypatch.setattr(spectra, "_rfft", lambda frames, n: scipy.fft.rfft(frames, n, axis=1))
    want_starts, want = spectra.Spectrogram(rate, 0.020, 0.005).feed(x)
    monkeypatch.undo()
    monkeypatch.setattr(spectra, "_pocketfft", _loaded(POCKETFFT, how, monkeypatch))
    starts, power = spectra.Spectrogram(rate, 0.020, 0.005).feed(x)
    assert np.array_equal(starts, want_starts) and power.dtype == want.dtype and np.array_equal(power, want)


@pytest.mark.parametrize("how", ["file", "fallback"])
def test_sosfilt_kernel_is_scipys(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(iir, "_KERNEL", _loaded(SOSFILT, how, monkeypatch)._sosfilt)
    sos = iir.butter_lowpass(4, 1200.0, 22050)
    x = np.random.default_rng(3).normal(size=(2, 5000))
    zi = np.zeros((sos.shape[0], 2, 2))
    y, z = iir.sosfilt(sos, x, zi)
    want_y, want_z = signal.sosfilt(sos, x, axis=-1, zi=zi)
    assert np.array_equal(y, want_y) and np.array_equal(z, want_z)


def test_loading_them_imports_no_scipy_package_and_scipys_own_import_still_works() -> None:
    script = textwrap.dedent("""
        import sys
        import numpy as np
        from drivers.audio import iir, spectra

        slow = sorted({"scipy.fft", "scipy.signal", "scipy.special"} & set(sys.modules))
        assert not slow, slow
        import scipy.fft
        from scipy import signal

        x = np.random.default_rng(1).normal(size=(4, 300)).astype(np.float32)
        assert np.array_equal(spectra._rfft(x, 2048), scipy.fft.rfft(x, 2048, axis=1))
        sos, zi = iir.butter_lowpass(3, 480.0, 9600), np.zeros((2, 4, 2))
        for a, b in zip(iir.sosfilt(sos, x, zi), signal.sosfilt(sos, x, axis=-1, zi=zi)):
            assert np.array_equal(a, b)
    """)
    subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, check=True)
