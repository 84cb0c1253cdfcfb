"""Evidence for an incident: a camera's snapshot (HTTP GET) and a short clip of its stream (ffmpeg),
fetched on worker threads so that the bridge's ingest thread never waits for a camera.

    ingest thread --submit(request)--> bounded queue (snapshots first, clips after)
                                          |  full: the oldest clip is dropped (else the oldest snapshot),
                                          |  logged, counted and reported through on_done
                                          v
                     worker threads --> HTTP GET snapshot_url (timeout, retries with backoff on
                                          |  timeouts, 5xx and connection errors; never on 4xx;
                                          |  JPEG/PNG by magic bytes; a size limit)
                                          |--> ffmpeg -i stream_url -t clip_s -c copy -> MP4 (killed at a
                                          |  hard timeout; transcoded when the stream cannot be copied)
                                          '--> on_done(Evidence | EvidenceFailure), on the worker thread

Credentials come from an environment variable named by the request (``user:password``), read at fetch
time and never stored, or from the URL's user-info. Either way every ``source``, reason and log line
carries the URL redacted (``http://***@host/...``), and the secret is scrubbed from any text an
exception or ffmpeg produced.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

log = logging.getLogger(__name__)

Kind = Literal["snapshot", "clip"]

#: Magic numbers: JPEG starts with SOI then a marker (ITU-T T.81 B.1.1.3, FF D8 FF); PNG with its
#: 8-byte signature (ISO/IEC 15948, 5.2).
MAGIC: tuple[tuple[bytes, str], ...] = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))

#: Query parameters that cameras use for credentials (Foscam ``pwd``, Hikvision/Dahua ``password``,
#: signed URLs ``token``/``signature``): their values are redacted like user-info.
SECRET_PARAMS = frozenset({"password", "passwd", "pwd", "pass", "token", "key", "auth", "secret", "signature",
                           "sig", "access_token", "apikey", "api_key"})


@dataclass(frozen=True, slots=True)
class EvidenceRequest:
    """Fetch evidence of ``camera_id`` for ``incident_id``: a snapshot, a clip of ``clip_s`` seconds, or both."""

    incident_id: int
    camera_id: str
    snapshot_url: str | None
    stream_url: str | None  # rtsp://, or any URL ffmpeg reads
    credentials_env: str | None  # the NAME of a variable holding "user:password", read at fetch time
    at: datetime  # the alert time (aware)
    clip_s: float = 10.0

    def __post_init__(self) -> None:
        if self.at.tzinfo is None:
            raise ValueError(f"EvidenceRequest.at must be timezone-aware, got {self.at!r}")
        if not self.clip_s > 0:
            raise ValueError(f"EvidenceRequest.clip_s must be positive, got {self.clip_s!r}")


@dataclass(frozen=True, slots=True)
class Evidence:
    incident_id: int
    camera_id: str
    kind: Kind
    time: datetime  # when fetched, UTC
    source: str  # the URL, credentials redacted
    content_type: str  # from the content's magic bytes, not from what the server claims
    sha256: str  # hex
    data: bytes
    size: int

    def __repr__(self) -> str:  # the data would flood a log line
        return (f"Evidence(incident_id={self.incident_id}, camera_id={self.camera_id!r}, kind={self.kind!r}, "
                f"time={self.time.isoformat()}, source={self.source!r}, content_type={self.content_type!r}, "
                f"sha256={self.sha256!r}, size={self.size})")


@dataclass(frozen=True, slots=True)
class EvidenceFailure:
    incident_id: int
    camera_id: str
    kind: Kind
    source: str  # redacted
    reason: str  # "timed out after 3.0 s", "HTTP 503", "not a JPEG/PNG image (...)", "ffmpeg not installed"
    tries: int  # 0 when nothing was attempted (dropped, no ffmpeg)


def redact_url(url: str) -> str:
    """``url`` with user-info replaced by ``***`` and credential-like query values by ``***``."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError:
        return "<unparsable URL>"
    netloc = f"***@{host}" if "@" in parts.netloc else parts.netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
            query = urlencode([(k, "***" if k.lower() in SECRET_PARAMS else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True, slots=True)
class _Access:
    """Where to fetch from and as whom; lives only for one fetch."""

    url: str  # without user-info
    user: str | None
    password: str | None
    source: str  # redacted, for the outside world

    def with_userinfo(self) -> str:
        """The URL with the credentials in its user-info, as ffmpeg takes them (RTSP has no other way)."""
        if self.user is None:
            return self.url
        parts = urlsplit(self.url)
        info = quote(self.user, safe="") + (f":{quote(self.password, safe='')}" if self.password is not None else "")
        return urlunsplit((parts.scheme, f"{info}@{parts.netloc}", parts.path, parts.query, parts.fragment))

    def scrub(self, text: str) -> str:
        """``text`` with every form of the secret a library might echo replaced by ``***``."""
        text = text.replace(self.with_userinfo(), self.source)
        if self.password:
            pair = f"{self.user or ''}:{self.password}"
            for secret in (base64.b64encode(pair.encode()).decode(), pair, quote(self.password, safe=""),
                           self.password):
                text = text.replace(secret, "***")
        return text


class _FetchError(Exception):
    def __init__(self, reason: str, *, retry: bool) -> None:
        super().__init__(reason)
        self.reason, self.retry = reason, retry


@dataclass(slots=True)
class _Job:
    request: EvidenceRequest
    kind: Kind
    url: str


def _access(url: str, credentials_env: str | None) -> _Access:
    """Split the user-info off ``url``; the environment variable, when named, wins over it."""
    source = redact_url(url)
    try:
        parts = urlsplit(url)
        user = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
    except ValueError:
        raise _FetchError(f"not a URL: {source}", retry=False) from None
    clean = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))
    if credentials_env:
        value = os.environ.get(credentials_env)
        if value is None:
            raise _FetchError(f"credentials variable {credentials_env} is not set", retry=False)
        user, sep, rest = value.partition(":")
        password = rest if sep else None
    return _Access(clean, user, password, source)


class EvidenceFetcher:
    """Fetches snapshots and clips on ``workers`` threads; ``submit`` never blocks.

    ``on_done`` is called on a worker thread with each :class:`Evidence` or :class:`EvidenceFailure`
    (including work dropped because the queue was full); an exception it raises is logged and ignored.
    """

    def __init__(self, on_done: Callable[[Evidence | EvidenceFailure], None], *, workers: int = 4,
                 timeout_s: float = 3.0, retries: int = 2, backoff_s: float = 0.5, max_bytes: int = 5_000_000,
                 ffmpeg: str | None = shutil.which("ffmpeg"), queue_size: int = 64,
                 max_clip_bytes: int = 50_000_000) -> None:
        if workers < 1 or queue_size < 1:
            raise ValueError("EvidenceFetcher needs at least one worker and a queue of at least one")
        self.on_done = on_done
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.max_bytes, self.max_clip_bytes = max_bytes, max_clip_bytes
        self.ffmpeg, self.queue_size = ffmpeg, queue_size
        self._snapshots: deque[_Job] = deque()
        self._clips: deque[_Job] = deque()  # low priority: a snapshot is small, quick and seen first
        self._notices: deque[EvidenceFailure] = deque()  # drops, reported by a worker, not by the caller
        self._cond = threading.Condition(threading.RLock())
        self._stop = threading.Event()
        self._counts: Counter[str] = Counter()
        self._in_flight = 0
        self._procs: set[subprocess.Popen[bytes]] = set()
        self._threads = [threading.Thread(target=self._work, name=f"evidence-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    # --- the caller's side -----------------------------------------------------------------------

    def submit(self, request: EvidenceRequest) -> None:
        """Queue the request's snapshot and clip; returns at once, whatever the cameras do."""
        if self._stop.is_set():
            log.warning("evidence for incident %d from %s not fetched: the fetcher is stopped",
                        request.incident_id, request.camera_id)
            return
        jobs: list[_Job] = []
        notices: list[EvidenceFailure] = []
        if request.snapshot_url:
            jobs.append(_Job(request, "snapshot", request.snapshot_url))
        if request.stream_url:
            if self.ffmpeg:
                jobs.append(_Job(request, "clip", request.stream_url))
            else:
                notices.append(self._failure(request, "clip", redact_url(request.stream_url),
                                             "ffmpeg not installed", 0))
        if not jobs and not notices:
            log.warning("evidence for incident %d from %s not fetched: the camera has no snapshot or stream URL",
                        request.incident_id, request.camera_id)
            return
        with self._cond:
            for job in jobs:
                if len(self._snapshots) + len(self._clips) >= self.queue_size:
                    victim = self._make_room(job)
                    notices.append(self._failure(
                        victim.request, victim.kind, redact_url(victim.url),
                        f"dropped: the evidence queue is full ({self.queue_size} waiting)", 0, dropped=True))
                    if victim is job:
                        continue
                (self._snapshots if job.kind == "snapshot" else self._clips).append(job)
            self._notices.extend(notices)
            self._cond.notify(len(jobs) + len(notices))

    def _make_room(self, job: _Job) -> _Job:
        """The job to drop for ``job``: the oldest clip, else ``job`` itself if a clip, else the oldest snapshot."""
        if self._clips:
            return self._clips.popleft()
        if job.kind == "clip":
            return job
        return self._snapshots.popleft()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop taking work, abandon what waits, kill running ffmpegs and wait up to ``timeout`` for the
        workers; results that arrive after this are not delivered. True when every worker has ended."""
        self._stop.set()
        with self._cond:
            abandoned = len(self._snapshots) + len(self._clips)
            self._snapshots.clear()
            self._clips.clear()
            self._notices.clear()
            self._cond.notify_all()
            procs = list(self._procs)
        if abandoned:
            log.info("evidence fetcher stopped with %d fetches not started", abandoned)
        for proc in procs:
            proc.kill()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        # An HTTP read in flight cannot be interrupted; it ends by its own timeout on a daemon thread.
        return not any(thread.is_alive() for thread in self._threads)

    def stats(self) -> dict[str, int]:
        """Counters: fetched, failed, dropped (queue full), in_flight and queued."""
        with self._cond:
            return {"fetched": self._counts["fetched"], "failed": self._counts["failed"],
                    "dropped": self._counts["dropped"], "in_flight": self._in_flight,
                    "queued": len(self._snapshots) + len(self._clips)}

    # --- the workers -----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._cond:
                while not (self._stop.is_set() or self._notices or self._snapshots or self._clips):
                    self._cond.wait()
                if self._stop.is_set():
                    return
                if self._notices:
                    self._deliver(self._notices.popleft())
                    continue
                job = self._snapshots.popleft() if self._snapshots else self._clips.popleft()
                self._in_flight += 1
            try:
                result = self._snapshot(job) if job.kind == "snapshot" else self._clip(job)
            except Exception as exc:  # a bug here must not take a worker away
                log.exception("evidence worker: unexpected error")
                result = self._failure(job.request, job.kind, redact_url(job.url),
                                       f"internal error: {type(exc).__name__}", 0)
            with self._cond:
                self._in_flight -= 1
            if self._stop.is_set():
                log.info("evidence %s of %s for incident %d not delivered: the fetcher is stopped",
                         job.kind, job.request.camera_id, job.request.incident_id)
                return
            self._deliver(result)

    def _deliver(self, result: Evidence | EvidenceFailure) -> None:
        try:
            self.on_done(result)
        except Exception:
            log.exception("evidence: the on_done callback failed for %s of %s", result.kind, result.camera_id)

    def _failure(self, request: EvidenceRequest, kind: Kind, source: str, reason: str, tries: int, *,
                 dropped: bool = False) -> EvidenceFailure:
        with self._cond:  # an RLock: submit() holds it already when it drops
            self._counts["dropped" if dropped else "failed"] += 1
        log.warning("evidence %s of %s for incident %d from %s: %s (%d tries)", kind, request.camera_id,
                    request.incident_id, source, reason, tries)
        return EvidenceFailure(request.incident_id, request.camera_id, kind, source, reason, tries)

    def _evidence(self, request: EvidenceRequest, kind: Kind, source: str, content_type: str, data: bytes,
                  tries: int, started: float) -> Evidence:
        with self._cond:
            self._counts["fetched"] += 1
        digest = hashlib.sha256(data).hexdigest()
        now = datetime.now(UTC)
        log.info("evidence %s of %s for incident %d from %s: %d bytes, sha256 %s, in %.2f s (%d tries, "
                 "%.1f s after the alert)", kind, request.camera_id, request.incident_id, source, len(data),
                 digest[:16], time.monotonic() - started, tries, (now - request.at).total_seconds())
        return Evidence(request.incident_id, request.camera_id, kind, now, source, content_type, digest, data,
                        len(data))

    # --- snapshots -------------------------------------------------------------------------------

    def _snapshot(self, job: _Job) -> Evidence | EvidenceFailure:
        request, started = job.request, time.monotonic()
        try:
            access = _access(job.url, request.credentials_env)
        except _FetchError as exc:
            return self._failure(request, "snapshot", redact_url(job.url), exc.reason, 0)
        tries = 0
        while True:
            tries += 1
            try:
                data = self._get(access)
                content_type = next((kind for magic, kind in MAGIC if data.startswith(magic)), None)
                if content_type is None:
                    raise _FetchError(f"not a JPEG/PNG image (starts {data[:16].hex(' ')})", retry=False)
                return self._evidence(request, "snapshot", access.source, content_type, data, tries, started)
            except _FetchError as exc:
                reason, retry = access.scrub(exc.reason), exc.retry
            if not retry or tries > self.retries:
                return self._failure(request, "snapshot", access.source, reason, tries)
            delay = self.backoff_s * 2 ** (tries - 1)
            log.info("evidence snapshot of %s from %s: %s; try %d in %.1f s", request.camera_id, access.source,
                     reason, tries + 1, delay)
            if self._stop.wait(delay):
                return self._failure(request, "snapshot", access.source, f"{reason}; stopped before retrying",
                                     tries)

    def _get(self, access: _Access) -> bytes:
        """One GET of the whole body within ``timeout_s``, or a _FetchError saying why not."""
        handlers: list[urllib.request.BaseHandler] = []
        if access.user is not None:
            # Both schemes: urllib answers the challenge the camera sends (Axis, Hikvision: Digest).
            passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
            passwords.add_password(None, access.url, access.user, access.password or "")
            handlers += [urllib.request.HTTPBasicAuthHandler(passwords),
                         urllib.request.HTTPDigestAuthHandler(passwords)]
        opener = urllib.request.build_opener(*handlers)
        request = urllib.request.Request(access.url, headers={"User-Agent": "pttbridge-evidence",
                                                              "Accept": "image/jpeg, image/png"})
        deadline = time.monotonic() + self.timeout_s
        timed_out = _FetchError(f"timed out after {self.timeout_s:.1f} s", retry=True)
        try:
            with opener.open(request, timeout=self.timeout_s) as response:
                length = response.headers.get("Content-Length")
                if length and length.isdigit() and int(length) > self.max_bytes:
                    raise _FetchError(f"too big: {length} bytes, over the limit of {self.max_bytes}", retry=False)
                chunks: list[bytes] = []
                size = 0
                while chunk := response.read1(65536):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise _FetchError(f"too big: over the limit of {self.max_bytes} bytes", retry=False)
                    chunks.append(chunk)
                    if time.monotonic() > deadline:  # a camera that trickles must not hold a worker forever
                        raise timed_out
                return b"".join(chunks)
        except urllib.error.HTTPError as exc:
            exc.close()
            hint = " (wrong or missing credentials)" if exc.code == 401 else ""
            raise _FetchError(f"HTTP {exc.code}{hint}", retry=exc.code >= 500) from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError | socket.timeout):
                raise timed_out from None
            raise _FetchError(f"cannot connect: {exc.reason}", retry=True) from None
        except TimeoutError:
            raise timed_out from None
        except (http.client.HTTPException, OSError) as exc:
            raise _FetchError(f"connection failed: {type(exc).__name__}: {exc}", retry=True) from None
        except ValueError as exc:  # urllib's "unknown url type" and the like
            raise _FetchError(f"bad URL: {exc}", retry=False) from None

    # --- clips -----------------------------------------------------------------------------------

    def _clip(self, job: _Job) -> Evidence | EvidenceFailure:
        request, started = job.request, time.monotonic()
        try:
            access = _access(job.url, request.credentials_env)
        except _FetchError as exc:
            return self._failure(request, "clip", redact_url(job.url), exc.reason, 0)
        assert self.ffmpeg is not None  # submit() reports a missing ffmpeg instead of queueing
        url = access.with_userinfo()
        io_timeout_us = str(int(self.timeout_s * 1e6))
        if urlsplit(url).scheme.lower() in ("rtsp", "rtsps"):
            # TCP interleaving gets through NAT and firewalls where RTP over UDP does not, and loses nothing.
            source_opts = ["-rtsp_transport", "tcp", "-timeout", io_timeout_us]
        else:
            source_opts = ["-rw_timeout", io_timeout_us]
        # The hard limit: the clip itself, plus connecting and the stream's first key frame.
        hard_s = request.clip_s + 3 * self.timeout_s + 5
        reason = ""
        tries = 0
        with tempfile.TemporaryDirectory(prefix="pttbridge-clip-") as tmp:
            out = Path(tmp) / "clip.mp4"
            # Copy first (no CPU, the camera's own quality); transcode when MP4 cannot hold the codecs.
            for codecs in (["-c", "copy"],
                           ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac"]):
                tries += 1
                command = [self.ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *source_opts,
                           "-i", url, "-t", f"{request.clip_s:g}", *codecs, "-fs", str(self.max_clip_bytes),
                           "-movflags", "+faststart", "-f", "mp4", str(out)]
                code, stderr = self._run(command, hard_s)
                if self._stop.is_set():
                    return self._failure(request, "clip", access.source, "stopped", tries)
                if code is None:
                    return self._failure(request, "clip", access.source,
                                         f"ffmpeg timed out after {hard_s:.1f} s (killed)", tries)
                data = out.read_bytes() if out.exists() else b""
                if code == 0 and data[4:8] == b"ftyp":
                    return self._evidence(request, "clip", access.source, "video/mp4", data, tries, started)
                last = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
                reason = access.scrub(f"ffmpeg failed (exit {code}): {last[0]}" if code else "ffmpeg wrote no MP4")
                log.info("evidence clip of %s from %s: %s", request.camera_id, access.source, reason)
                out.unlink(missing_ok=True)
        return self._failure(request, "clip", access.source, reason, tries)

    def _run(self, command: list[str], hard_s: float) -> tuple[int | None, bytes]:
        """Run ffmpeg; (exit code, stderr), or (None, stderr) when it had to be killed at ``hard_s``."""
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        with self._cond:
            self._procs.add(proc)
        try:
            _, stderr = proc.communicate(timeout=hard_s)
            return proc.returncode, stderr
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
            return None, stderr
        finally:
            with self._cond:
                self._procs.discard(proc)

