"""Coverage-guided fuzzing of every parser with atheris (``python -m bench.fuzz --help``).

Each target in :mod:`bench.fuzz.targets` turns the fuzzer's bytes into input for one parser and
asserts the parser's contract: only its documented error type escapes, a streaming decoder finds
the good frame after garbage, and what an encoder writes decodes to the same thing. Anything else
(another exception, a failed assertion, a hang) is a finding; libFuzzer saves the input.
"""
