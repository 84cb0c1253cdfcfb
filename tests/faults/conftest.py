"""The fault-injection suite's site (started once for the folder) and its table of results.

``make faults`` runs this folder alone; ``make test`` runs it with everything else. The table is printed
at the end of the run and written to ``bench/out/faults.md``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import ROWS, Site, markdown

NOTES = [
    "Three gateway processes, each fed through a socat pty pair by a Kenwood radio writing 20 `$PKNSH` "
    "position beacons a second (bulk) and a FleetSync emergency a second (alerts); one bridge process on "
    "PostgreSQL; Mosquitto. Each row: traffic for 3 s, the fault, traffic for 5 s more after the broken part "
    "is back, then up to 2 min for everything written to be stored.",
    "*events sent*: frames written to the radios' ptys (a radio whose cable is pulled, or whose gateway is "
    "down, writes nothing); *stored*: of those, found in the bridge's database (by the frame itself, "
    "`detail.raw`); *duplicates*: a frame stored twice, or a (gateway, seq) stored twice; *out of order*: "
    "a gateway's frames whose seq does not follow the order they were written in.",
    "*worst alert delay*: from the alert frame written into the pty until the bridge stored its row "
    "(`received_at`, set in the storing transaction), waiting behind bulk backlog included; an alert the "
    "fault itself kept from being delivered (written before the broken part came back, not stored before "
    "the fault began) is timed from the moment the part came back. For audio, from the end of the "
    "burst's last tone (a DTMF sequence ends after 1 s of silence, which is in the figure).",
    "*recovered in*: from the moment the broken part came back until everything written before it was "
    "stored.",
]
OUT = Path(__file__).resolve().parents[2] / "bench" / "out" / "faults.md"


def _missing() -> str | None:
    for binary in ("mosquitto", "socat"):
        if shutil.which(binary) is None and not Path(f"/usr/sbin/{binary}").exists():
            return f"{binary} is not installed"
    return None


@pytest.fixture(scope="session")
def outbox_mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """A 16 MB filesystem of its own for one gateway's outbox (a tmpfs: needs root, which CI has)."""
    where = tmp_path_factory.mktemp("outbox-fs")
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(where)],
                                           capture_output=True).returncode != 0:
        yield None
        return
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, outbox_mount: Path | None) -> Iterator[Site]:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the fault suite needs real parts: {missing}")
        pytest.skip(missing)
    try:
        site = Site(tmp_path_factory.mktemp("faults"), outbox_mount=outbox_mount)
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:  # PostgreSQL missing, mostly
        if os.environ.get("CI"):
            pytest.fail(f"the fault suite cannot start its site: {exc}")
        pytest.skip(f"the fault suite cannot start its site: {exc}")
    yield site
    site.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    text = markdown(ROWS, NOTES)
    terminalreporter.write_sep("=", "faults")
    terminalreporter.write(text)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
