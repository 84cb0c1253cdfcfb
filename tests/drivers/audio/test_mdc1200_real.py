"""MDC-1200 from outside this project: the two roger sounds qradiolink ships, through `pttbridge decode`.

No repository says what they encode; the reference decoder (atmatthewat/mdc-encode-decode, as recorded
in the folder's truth.json) hears one PTT ID in each, units 0xB183 and 0x1208. pttbridge must hear at
least that, from the WAV, from raw PCM on stdin and with the audio inverted (many radios' receive audio
is). The recordings are GPL-3.0: they are read from the shared real-world folder and these tests skip
when it is absent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from real_material import real_path

ROOT = Path(__file__).resolve().parents[3]
RECORDINGS = ("qradiolink_MDC1200_8k_s16le", "qradiolink_MDC1200_preamble_8k_s16le")


def pttbridge_decode(*args: str, stdin: bytes = b"") -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "pttbridge", "-q", "decode", "-d", "mdc1200", *args],
        input=stdin,
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr.decode()
    return [json.loads(line) for line in out.stdout.splitlines()]


def peer_packets(name: str) -> list[dict[str, Any]]:
    truth = json.loads(real_path("mdc1200", "truth.json").read_text())
    return list(truth["files"][f"{name}.raw"]["packets"])


def heard(events: list[dict[str, Any]]) -> list[tuple[str, int, int, str]]:
    return [(e["kind"], e["detail"]["op"], e["detail"]["arg"], e["unit"]) for e in events]


def as_heard(packet: dict[str, Any]) -> tuple[str, int, int, str]:
    op, arg, unit = (int(packet[k], 16) for k in ("op", "arg", "unit_id"))
    kind = "ptt" if op == 0x01 else "alert" if op == 0x00 else "status"
    return kind, op, arg, f"mdc:{unit:04X}"


@pytest.mark.parametrize("name", RECORDINGS)
def test_pttbridge_hears_what_the_reference_decoder_hears(name: str, tmp_path: Path) -> None:
    wav = real_path("mdc1200", f"{name}.wav")
    want = [as_heard(p) for p in peer_packets(name)]
    assert want and want[0][3] in ("mdc:B183", "mdc:1208")

    from_wav = pttbridge_decode(str(wav))
    assert heard(from_wav) == want
    assert all(e["channel"] == name for e in from_wav)

    raw = real_path("mdc1200", f"{name}.raw").read_bytes()
    assert heard(pttbridge_decode("--rate", "8000", "-", stdin=raw)) == want

    samples, rate = soundfile.read(wav, dtype="int16")
    inverted = tmp_path / "inverted.wav"
    soundfile.write(inverted, (-samples.astype(np.int32)).clip(-32768, 32767).astype(np.int16), rate)
    assert heard(pttbridge_decode(str(inverted))) == want
