"""Where the project's real-world material lives for tests that may not copy it.

Recordings and captures from public repositories are kept in a ``shared/real/`` folder beside the
checkout (each item's README gives its licence). MIT and similar items are copied into ``tests/data``;
GPL-3.0 and unlicensed ones are read from that folder, and the tests that need them skip when it is
not there. ``PTTBRIDGE_REAL`` names the folder explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def real_dir() -> Path | None:
    """The real-world folder, or None: ``$PTTBRIDGE_REAL``, else ``shared/real`` beside the checkout
    (or beside the folder that holds it, for a checkout kept a level down, like a git worktree)."""
    named = os.environ.get("PTTBRIDGE_REAL")
    if named:
        return Path(named) if Path(named).is_dir() else None
    for parent in list(ROOT.parents)[:2]:
        candidate = parent / "shared" / "real"
        if candidate.is_dir():
            return candidate
    return None


def real_path(*parts: str) -> Path:
    """The path of one real item; the calling test is skipped when it is not here."""
    base = real_dir()
    path = base.joinpath(*parts) if base is not None else None
    if path is None or not path.exists():
        where = "shared/real beside the checkout, or PTTBRIDGE_REAL"
        pytest.skip(f"real-world item {'/'.join(parts)} is not here ({where})")
    return path
