"""scipy's compiled kernels without importing the scipy packages that hold them.

Why. A decode needs two of scipy's extension modules (``scipy.signal._sosfilt`` for the IIR filters,
``scipy.fft._pocketfft.pypocketfft`` for the spectra), but importing them the ordinary way runs their
packages' ``__init__``: scipy.signal pulls in scipy.stats and more (0.6 s of CPU), scipy.fft pulls in
scipy.special and numpy.f2py (0.16 s), a good part of a short decode. An extension module needs none of
that: :func:`load` loads it from its file. Where that is not possible (another scipy layout), it is
imported the ordinary way, which is slower to start but computes the same.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load(name: str) -> ModuleType:
    """The compiled module ``name`` (e.g. ``scipy.signal._sosfilt``): the one imported already if it is
    (a test, a benchmark), else loaded from its file, else imported."""
    loaded = sys.modules.get(name)
    if loaded is not None:
        return loaded
    try:
        return from_file(name)
    except (ImportError, OSError):
        return importlib.import_module(name)


def from_file(name: str) -> ModuleType:
    """The extension module ``name`` loaded from its file, without running the ``__init__`` of the packages
    above it (only the top package is imported, to find the folder). scipy's own import of it later, if
    any, works as before (tested)."""
    top, *packages, leaf = name.split(".")
    folder = Path(importlib.import_module(top).__file__ or "").parent.joinpath(*packages)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:  # the interpreter's own order of preference
        path = folder / (leaf + suffix)
        if path.is_file():
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                break
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    raise ImportError(f"no extension module {name} in {folder}", name=name)
