"""The console bench's own bookkeeping: its latency figures take the same memory however long it runs (its
lists of floats grew by about half a MiB a minute, counted in the RSS it reports as the console's), and its
percentiles stay those of the values it saw."""

from __future__ import annotations

import random
import tracemalloc

from bench.console_bench import Samples, pct


def test_a_long_run_keeps_its_latencies_in_fixed_memory_and_reads_their_percentiles() -> None:
    rng = random.Random(17)
    values = [rng.lognormvariate(-4.0, 1.0) for _ in range(20_000)]  # frame times around 20 ms, a long tail
    samples = Samples()
    tracemalloc.start()
    try:
        for v in values[:1_000]:
            samples.add(v)
        after_a_minute = tracemalloc.get_traced_memory()[0]
        for _ in range(10):  # ten times as many again, as in a long run
            for v in values:
                samples.add(v)
        after_a_long_run = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after_a_long_run - after_a_minute < 1024  # a list would have grown by 200,000 floats: 8 MB
    every = values[:1_000] + values * 10
    assert len(samples) == len(every) and samples.max == max(every)
    for q in (0.5, 0.99):
        assert pct(every, q) <= samples.pct(q) <= pct(every, q) * 1.005
    assert abs(samples.mean() - sum(every) / len(every)) < 1e-9
    assert Samples().pct(0.99) != Samples().pct(0.99)  # nothing measured: NaN, as for an empty list
