"""Prometheus metrics over HTTP: ``GET /metrics`` in the text exposition format 0.0.4, standard library only.

    [gateway] metrics = "127.0.0.1:9101"        [bridge] metrics = "127.0.0.1:9102"

A program hands :class:`MetricsServer` a function that renders its metrics; the server calls it on each
scrape, on its own daemon thread, so what is exported is read from the counters and states the program
keeps anyway (nothing is counted twice, and a scrape never waits on ingest). :class:`Exposition` writes
the text format, :class:`Histogram` is the one thing kept here (cumulative buckets, thread-safe).

Shared by both sides (standard library only, nothing of ours): ``gateway/metrics.py`` renders a
gateway's metrics, ``bridge/metrics.py`` a bridge's.
"""

from __future__ import annotations

import bisect
import logging
import math
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = Mapping[str, str]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(float(value))


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class Histogram:
    """Observations counted into cumulative buckets (upper bounds, ascending), with their sum."""

    def __init__(self, buckets: Sequence[float]) -> None:
        self.bounds = sorted(buckets)
        self._counts = [0] * (len(self.bounds) + 1)  # the last: above every bound (+Inf only)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        i = bisect.bisect_left(self.bounds, value)
        with self._lock:
            self._counts[i] += 1
            self._sum += value

    def observe_many(self, values: Iterable[float]) -> None:
        """A batch under one lock (the bridge observes each event of a stored batch)."""
        places = [(bisect.bisect_left(self.bounds, v), v) for v in values]
        with self._lock:
            for i, v in places:
                self._counts[i] += 1
                self._sum += v

    def snapshot(self) -> tuple[list[tuple[float, int]], int, float]:
        """``([(upper bound, cumulative count), ..., (+inf, count)], count, sum)``."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        out, running = [], 0
        for bound, n in zip([*self.bounds, math.inf], counts, strict=True):
            running += n
            out.append((bound, running))
        return out, running, total


class Exposition:
    """The text exposition format 0.0.4: one ``# HELP``/``# TYPE`` block per family, then its samples."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def _family(self, name: str, kind: str, help_text: str) -> None:
        escaped = help_text.replace("\\", "\\\\").replace("\n", "\\n")  # the format's two escapes in HELP
        self._lines.append(f"# HELP {name} {escaped}")
        self._lines.append(f"# TYPE {name} {kind}")

    def _sample(self, name: str, labels: Labels, value: float) -> None:
        self._lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def counter(self, name: str, help_text: str, value: float | Iterable[tuple[Labels, float]]) -> None:
        """``name`` ends in ``_total``; ``value`` is one number, or (labels, number) pairs."""
        self._metric(name, "counter", help_text, value)

    def gauge(self, name: str, help_text: str, value: float | Iterable[tuple[Labels, float]]) -> None:
        self._metric(name, "gauge", help_text, value)

    def _metric(self, name: str, kind: str, help_text: str, value: float | Iterable[tuple[Labels, float]]) -> None:
        self._family(name, kind, help_text)
        if isinstance(value, int | float):
            self._sample(name, {}, value)
            return
        for labels, v in value:
            self._sample(name, labels, v)

    def histogram(self, name: str, help_text: str, histogram: Histogram) -> None:
        self._family(name, "histogram", help_text)
        buckets, count, total = histogram.snapshot()
        for bound, n in buckets:
            self._sample(f"{name}_bucket", {"le": _number(bound)}, n)
        self._sample(f"{name}_sum", {}, total)
        self._sample(f"{name}_count", {}, count)

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def split_listen(listen: str) -> tuple[str, int]:
    """``"127.0.0.1:9101"`` -> ``("127.0.0.1", 9101)``; ``"[::1]:9101"`` -> ``("::1", 9101)``."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a scrape that hangs never holds up the program's exit


class _Server6(_Server):
    address_family = socket.AF_INET6


class MetricsServer:
    """``GET /metrics`` on ``listen`` (host:port), answered by ``render()`` on a daemon thread."""

    def __init__(self, listen: str, render: Callable[[], str], *, name: str = "metrics") -> None:
        self.listen = listen
        self.render = render
        self.name = name
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port bound (the one picked, for port 0)."""
        assert self._server is not None, "not started"
        return int(self._server.server_address[1])

    def start(self) -> None:
        host, port = split_listen(self.listen)
        render = self.render

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?", 1)[0] != "/metrics":
                    self._answer(404, b"not found: metrics are on /metrics\n", "text/plain; charset=utf-8")
                    return
                try:
                    body = render().encode()
                except Exception:  # a scrape must never take the program down; the log says why
                    log.exception("metrics: rendering failed")
                    self._answer(500, b"metrics could not be rendered; see the program's log\n",
                                 "text/plain; charset=utf-8")
                    return
                self._answer(200, body, CONTENT_TYPE)

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics: %s %s", self.address_string(), format % args)

        # Binding fails here, in start(), with the address in the message: a clear error at startup.
        try:
            server = (_Server6 if ":" in host else _Server)((host, port), Handler)
        except OSError as exc:
            raise OSError(exc.errno, f"metrics: cannot listen on {self.listen}: {exc.strerror}") from None
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.5},
                                        name=f"{self.name}-http", daemon=True)
        self._thread.start()
        log.info("%s: Prometheus metrics on http://%s:%d/metrics", self.name, host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(2.0)
            self._thread = None
