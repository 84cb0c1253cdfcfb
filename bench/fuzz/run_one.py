"""Run one fuzz target under atheris: ``python -m bench.fuzz.run_one TARGET [libFuzzer flags] [CORPUS]``.

A process of its own per target, because atheris instruments a module as it is imported: the
project's packages are imported here for the first time, inside ``instrument_imports``, so that
coverage guides the fuzzer through the parsers (and not through pydantic or numpy).
"""

from __future__ import annotations

import sys

import atheris

from bench.fuzz.targets import TARGETS

#: The packages whose code the fuzzer sees the coverage of.
INSTRUMENTED = ["drivers", "gateway", "bridge", "config"]


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: python -m bench.fuzz.run_one {{{','.join(TARGETS)}}} [libFuzzer flags] [corpus dir]")
    with atheris.instrument_imports(include=INSTRUMENTED):
        harness = TARGETS[sys.argv[1]].make()
    atheris.Setup([sys.argv[0], *sys.argv[2:]], harness.run)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
