"""CHIRP's own generic CSV driver reading CSV files, for tests/bridge/test_chirp.py.

Run by a Python that has CHIRP (Debian's ``chirp`` package puts it in the system's python3, not in our
virtual environment): ``python3 tests/chirp_reader.py FILE...`` prints, for each file, the memories CHIRP
loads (every attribute the CSV sets, frequencies in Hz as CHIRP keeps them) and the rows it refused, as one
JSON object ``{"memories": [...], "errors": [...]}`` per file on a line of its own.

The file is read by CHIRP's ``CSVRadio._load``, CHIRP's parser itself; only the opening of the file is
ours, since Debian's 2022 CHIRP opens it in the 'rU' mode that Python 3.11 no longer has.
"""

from __future__ import annotations

import json
import sys
from typing import Any


def read(path: str) -> dict[str, Any]:
    from chirp import errors
    from chirp.drivers.generic_csv import CSVRadio

    radio = CSVRadio(None)
    radio._blank()
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            radio._load(f)
    except errors.InvalidDataError as exc:  # no row at all could be read
        return {"memories": [], "errors": [*radio.errors, str(exc)]}
    memories = []
    for m in radio.memories:
        if m.empty:
            continue
        memories.append({
            "number": m.number, "name": m.name, "freq": m.freq, "duplex": m.duplex, "offset": m.offset,
            "tmode": m.tmode, "rtone": m.rtone, "ctone": m.ctone, "dtcs": m.dtcs, "rx_dtcs": m.rx_dtcs,
            "dtcs_polarity": m.dtcs_polarity, "cross_mode": m.cross_mode, "mode": m.mode,
            "tuning_step": m.tuning_step, "skip": m.skip, "comment": m.comment,
            "power": None if m.power is None else str(m.power),
        })
    return {"memories": memories, "errors": list(radio.errors)}


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(json.dumps(read(name)))
