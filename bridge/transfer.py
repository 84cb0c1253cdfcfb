"""Handing a case to an outside system (a kind of the ``transfer`` flow): the case as JSON, published on an
outbound MQTT topic and/or POSTed to an HTTP webhook, on worker threads, so that the bridge's ingest thread
never waits for a slow or dead outside system.

    ingest thread --submit(request)--> queue --> worker threads:
                     webhook: POST the case as JSON (timeout_s a try); 2xx is the receipt (its status and
                              the SHA-256 of its body); a timeout, a 5xx or no connection is tried again
                              after backoff_s, doubled each time up to backoff_max_s, at most ``retries``
                              times; a 4xx is not (the outside system refuses the request itself)
                     MQTT:    PUBLISH at QoS 1 on the bridge's connection; the broker's PUBACK is the
                              receipt, tried again as a webhook is when it does not come in timeout_s
                  --on_news(TransferNews)--> the core, which writes each line into the case's history

Each try that fails is news too ("webhook try 1 of 6: HTTP 500 ...; again in 2 s"), so a dispatcher sees a
hanging outside system as it hangs, not only when it is given up on. URLs are shown without credentials.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import queue
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.cameras.evidence import redact_url

log = logging.getLogger(__name__)

BODY_SHOWN = 80  # characters of an outside system's answer repeated in a history line


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """Hand case ``case_id`` to the outside system ``target``: its payload, where, and how hard to try."""

    case_id: int
    target: str
    payload: dict[str, Any]
    mqtt_topic: str | None = None
    webhook: str | None = None
    retries: int = 5
    backoff_s: float = 2.0
    backoff_max_s: float = 60.0
    timeout_s: float = 10.0


@dataclass(frozen=True, slots=True)
class TransferNews:
    """How handing a case over is going: a line for its history; ``receipt_at`` once one way delivered it."""

    case_id: int
    note: str
    receipt_at: datetime | None = None


class Refused(Exception):
    """A try that must not be repeated (the outside system refuses the request itself)."""


#: Publishes (topic, payload) at QoS 1 and waits up to the timeout for the broker's PUBACK; returns a
#: receipt's words, or raises (TimeoutError, ConnectionError) when there is none.
Publisher = Callable[[str, bytes, float], str]


class CaseTransfer:
    """Worker threads that hand cases over; ``on_news`` is called on a worker thread."""

    def __init__(self, on_news: Callable[[TransferNews], None], publish: Publisher | None = None, *,
                 workers: int = 2, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.on_news = on_news
        self.publish = publish
        self.clock = clock
        self._queue: queue.SimpleQueue[tuple[TransferRequest, str] | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, name=f"case-transfer-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, request: TransferRequest) -> None:
        """Hand the case over each way its kind names (each way is tried on its own)."""
        if request.webhook is not None:
            self._queue.put((request, "webhook"))
        if request.mqtt_topic is not None:
            self._queue.put((request, "mqtt"))

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)
        for t in self._threads:
            t.join(timeout)

    def _work(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                return
            request, way = item
            try:
                self._deliver(request, way)
            except Exception:  # a worker must outlive anything one request does
                log.exception("case %d: handing it over by %s failed unexpectedly", request.case_id, way)
                self.on_news(TransferNews(request.case_id, f"{way} to {request.target} failed: the bridge could "
                                          "not carry it out (see its log)"))

    def _deliver(self, r: TransferRequest, way: str) -> None:
        body = json.dumps(r.payload, separators=(",", ":"), ensure_ascii=False).encode()
        where = redact_url(r.webhook) if way == "webhook" and r.webhook else f"topic {r.mqtt_topic}"
        tries = r.retries + 1
        wait = r.backoff_s
        for n in range(1, tries + 1):
            try:
                receipt = self._webhook(r, body) if way == "webhook" else self._mqtt(r, body)
            except Refused as exc:
                self._news(r, f"{way} to {r.target} ({where}) refused: {exc}; not tried again (the outside system "
                           "refuses the request itself)")
                return
            except (OSError, http.client.HTTPException, ValueError, RuntimeError) as exc:  # said, tried again
                why = _why(exc, r.timeout_s)
                if n == tries:
                    self._news(r, f"{way} to {r.target} ({where}) failed after {tries} tries: {why}; the case stays "
                               "with the dispatcher")
                    return
                self._news(r, f"{way} to {r.target} ({where}) try {n} of {tries}: {why}; again in {wait:g} s")
                if self._stop.wait(wait):
                    return
                wait = min(wait * 2, r.backoff_max_s)
                continue
            self._news(r, f"{way} to {r.target} ({where}): {receipt}", receipt=True)
            return

    def _news(self, r: TransferRequest, note: str, *, receipt: bool = False) -> None:
        log.info("case %d: %s", r.case_id, note)
        self.on_news(TransferNews(r.case_id, note, self.clock() if receipt else None))

    @staticmethod
    def _webhook(r: TransferRequest, body: bytes) -> str:
        assert r.webhook is not None
        request = urllib.request.Request(r.webhook, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "pttbridge"})
        try:
            with urllib.request.urlopen(request, timeout=r.timeout_s) as answer:  # the configured URL
                status, data = answer.status, answer.read(1 << 20)
        except urllib.error.HTTPError as exc:
            data = exc.read(1 << 16) if exc.fp is not None else b""
            said = data[:BODY_SHOWN].decode("utf-8", "replace").strip()
            words = f"HTTP {exc.code}" + (f" ({said!r})" if said else "")
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                raise Refused(words) from None
            raise ConnectionError(words) from None
        digest = hashlib.sha256(data).hexdigest()[:16]
        return f"HTTP {status}, answer {len(data)} bytes, sha256 {digest}"

    def _mqtt(self, r: TransferRequest, body: bytes) -> str:
        assert r.mqtt_topic is not None
        if self.publish is None:
            raise ConnectionError("no MQTT connection to publish on")
        return self.publish(r.mqtt_topic, body, r.timeout_s)


def _why(exc: BaseException, timeout_s: float) -> str:
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
        exc = exc.reason
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, http.client.HTTPException):
        return f"broken answer ({type(exc).__name__})"
    return str(exc) or type(exc).__name__
