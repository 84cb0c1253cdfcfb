"""The evidence fetcher against a real camera web server process (tests/camera_server.py): snapshots
good, slow, hanging, flaky, wrong, too big and behind authentication, and clips cut by a real ffmpeg
from streams that server serves.

RTSP: the clip path for ``rtsp://`` URLs is the same ffmpeg command with ``-rtsp_transport tcp`` and
``-timeout``; no RTSP server that serves over TCP-interleaved transport is packaged here (Debian's
rtsp-server-perl only sends RTP over UDP), so clips are tested from HTTP streams, which ffmpeg reads
through the same demuxers a camera's RTSP session feeds (H.264 elementary stream, MJPEG).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from camera_server import BIG, GOOD_JPEG, GOOD_PNG
from support import CameraServer, end_process, free_port, wait_until

from bridge.cameras.evidence import Evidence, EvidenceFailure, EvidenceFetcher, EvidenceRequest, redact_url

USER, PASSWORD = "officer", "S3cr3t-Pa55w0rd!"


def need(tool: str) -> None:
    """Skip without ``tool``, except under CI, where a missing tool is a failure."""
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed (apt-get install ffmpeg)")
        pytest.skip(f"{tool} is not installed")


class Camera(CameraServer):
    def __init__(self, media: Path) -> None:
        super().__init__(media, auth=f"{USER}:{PASSWORD}")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="module")
def camera(media: Path) -> Iterator[Camera]:
    server = Camera(media)
    yield server
    end_process(server.proc)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def h264_stream(media: Path) -> str:
    """6 s of H.264 test pattern in MPEG-TS (what an RTSP camera's session carries), made by ffmpeg."""
    need("ffmpeg")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
                    "-t", "6", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-f", "mpegts",
                    str(media / "clip.ts")], check=True)
    return "/media/clip.ts"


class Results:
    """The on_done callback: what arrived, on which thread."""

    def __init__(self) -> None:
        self.items: list[Evidence | EvidenceFailure] = []
        self.threads: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, result: Evidence | EvidenceFailure) -> None:
        with self._cond:
            self.items.append(result)
            self.threads.append(threading.current_thread().name)
            self._cond.notify_all()

    def wait(self, n: int = 1, timeout: float = 20.0) -> list[Evidence | EvidenceFailure]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= n, timeout), f"only {self.items} arrived"
            return list(self.items)


@pytest.fixture
def results() -> Results:
    return Results()


@pytest.fixture
def fetchers() -> Iterator[list[EvidenceFetcher]]:
    made: list[EvidenceFetcher] = []
    yield made
    for fetcher in made:
        fetcher.stop(1.0)


def fetcher(fetchers: list[EvidenceFetcher], results: Results, **kwargs: Any) -> EvidenceFetcher:
    kwargs.setdefault("backoff_s", 0.05)
    made = EvidenceFetcher(results, **kwargs)
    fetchers.append(made)
    return made


def request(snapshot: str | None, stream: str | None = None, *, env: str | None = None, clip_s: float = 2.0,
            incident: int = 7) -> EvidenceRequest:
    return EvidenceRequest(incident, "cam-xixing-3", snapshot, stream, env, datetime.now(UTC), clip_s)


def unique(path: str) -> str:
    """The path with a query of its own, so the server counts its hits apart from other tests'."""
    return f"{path}{'&' if '?' in path else '?'}t={uuid.uuid4().hex[:8]}"


# --- snapshots -----------------------------------------------------------------------------------


def test_a_good_snapshot_arrives_with_its_sha256(camera: Camera, results: Results,
                                                 fetchers: list[EvidenceFetcher]) -> None:
    evidence = fetcher(fetchers, results)
    before = datetime.now(UTC)
    evidence.submit(request(camera.url("/good.jpg")))
    [got] = results.wait()
    assert isinstance(got, Evidence)
    assert (got.incident_id, got.camera_id, got.kind, got.content_type) == (7, "cam-xixing-3", "snapshot",
                                                                           "image/jpeg")
    assert got.data == GOOD_JPEG and got.size == len(GOOD_JPEG)
    assert got.sha256 == hashlib.sha256(GOOD_JPEG).hexdigest()
    assert got.source == camera.url("/good.jpg")
    assert got.time.tzinfo is not None and before <= got.time <= datetime.now(UTC)
    assert results.threads[0].startswith("evidence-")  # delivered on a worker, not on the caller's thread
    assert evidence.stats() == {"fetched": 1, "failed": 0, "dropped": 0, "in_flight": 0, "queued": 0}


def test_a_png_snapshot_is_accepted(camera: Camera, results: Results, fetchers: list[EvidenceFetcher]) -> None:
    fetcher(fetchers, results).submit(request(camera.url("/good.png")))
    [got] = results.wait()
    assert isinstance(got, Evidence) and got.content_type == "image/png" and got.data == GOOD_PNG


def test_a_slow_camera_is_retried_then_reported_timed_out(camera: Camera, results: Results,
                                                          fetchers: list[EvidenceFetcher]) -> None:
    path = unique("/slow.jpg?s=3")
    fetcher(fetchers, results, timeout_s=0.5, retries=2).submit(request(camera.url(path)))
    [got] = results.wait()
    assert isinstance(got, EvidenceFailure)
    assert got.reason == "timed out after 0.5 s" and got.tries == 3 and got.kind == "snapshot"
    assert camera.hits(path) == 3


def test_a_camera_answering_503_is_retried_until_it_answers(camera: Camera, results: Results,
                                                            fetchers: list[EvidenceFetcher]) -> None:
    path = unique("/fail?n=2")
    evidence = fetcher(fetchers, results, retries=2)
    evidence.submit(request(camera.url(path)))
    [got] = results.wait()
    assert isinstance(got, Evidence) and got.sha256 == hashlib.sha256(GOOD_JPEG).hexdigest()
    assert camera.hits(path) == 3
    assert evidence.stats()["fetched"] == 1


def test_503_beyond_the_retries_is_a_failure(camera: Camera, results: Results,
                                             fetchers: list[EvidenceFetcher]) -> None:
    path = unique("/fail?n=5")
    fetcher(fetchers, results, retries=1).submit(request(camera.url(path)))
    [got] = results.wait()
    assert isinstance(got, EvidenceFailure) and got.reason == "HTTP 503" and got.tries == 2
    assert camera.hits(path) == 2


def test_404_is_not_retried(camera: Camera, results: Results, fetchers: list[EvidenceFetcher]) -> None:
    path = unique("/no-such-snapshot.jpg")
    fetcher(fetchers, results, retries=3).submit(request(camera.url(path)))
    [got] = results.wait()
    assert isinstance(got, EvidenceFailure) and got.reason == "HTTP 404" and got.tries == 1
    assert camera.hits(path) == 1


def test_a_page_that_is_not_an_image_is_refused(camera: Camera, results: Results,
                                                fetchers: list[EvidenceFetcher]) -> None:
    fetcher(fetchers, results).submit(request(camera.url("/notimage")))
    [got] = results.wait()
    assert isinstance(got, EvidenceFailure) and got.tries == 1
    assert got.reason.startswith("not a JPEG/PNG image (starts 3c 21 44 4f 43 54 59 50")  # "<!DOCTYPE"


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_a_snapshot_over_the_limit_is_refused(camera: Camera, results: Results, fetchers: list[EvidenceFetcher],
                                              path: str) -> None:
    fetcher(fetchers, results, max_bytes=BIG - 1).submit(request(camera.url(path)))
    [got] = results.wait()
    assert isinstance(got, EvidenceFailure) and got.reason.startswith("too big") and got.tries == 1
    assert str(BIG - 1) in got.reason


def test_an_unreachable_camera_is_retried_then_reported(results: Results, fetchers: list[EvidenceFetcher]) -> None:
    fetcher(fetchers, results, retries=1).submit(request(f"http://127.0.0.1:{free_port()}/snap.jpg"))
    [got] = results.wait()
    assert isinstance(got, EvidenceFailure) and got.reason.startswith("cannot connect") and got.tries == 2


# --- credentials ---------------------------------------------------------------------------------


def assert_secret_kept(caplog: pytest.LogCaptureFixture, results: Results) -> None:
    for secret in (PASSWORD, "S3cr3t-Pa55w0rd%21"):
        assert secret not in caplog.text
        for item in results.items:
            assert secret not in repr(item) and secret not in item.source
            assert secret not in getattr(item, "reason", "")


@pytest.mark.parametrize("path", ["/auth.jpg", "/digest.jpg"])
def test_credentials_from_the_environment_open_basic_and_digest(
        camera: Camera, results: Results, fetchers: list[EvidenceFetcher], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CAM3_CREDENTIALS", f"{USER}:{PASSWORD}")
    fetcher(fetchers, results).submit(request(camera.url(path), env="CAM3_CREDENTIALS"))
    [got] = results.wait()
    assert isinstance(got, Evidence) and got.data == GOOD_JPEG
    assert got.source == camera.url(path)
    assert_secret_kept(caplog, results)


def test_credentials_in_the_url_work_and_are_redacted(camera: Camera, results: Results,
                                                      fetchers: list[EvidenceFetcher],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    url = f"http://{USER}:{PASSWORD.replace('!', '%21')}@127.0.0.1:{camera.port}/auth.jpg"
    fetcher(fetchers, results).submit(request(url))
    [got] = results.wait()
    assert isinstance(got, Evidence) and got.source == f"http://***@127.0.0.1:{camera.port}/auth.jpg"
    assert_secret_kept(caplog, results)


def test_a_wrong_password_is_a_401_and_stays_secret(camera: Camera, results: Results,
                                                    fetchers: list[EvidenceFetcher], caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CAM3_CREDENTIALS", f"{USER}:not-{PASSWORD}")
    fetcher(fetchers, results, retries=2).submit(request(camera.url("/auth.jpg"), env="CAM3_CREDENTIALS"))
    [got] = results.wait()
    assert isinstance(got, EvidenceFailure) and got.reason.startswith("HTTP 401") and got.tries == 1
    assert_secret_kept(caplog, results)


def test_a_missing_credentials_variable_is_reported(camera: Camera, results: Results,
                                                    fetchers: list[EvidenceFetcher],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CAM9_CREDENTIALS", raising=False)
    fetcher(fetchers, results).submit(request(camera.url("/auth.jpg"), env="CAM9_CREDENTIALS"))
    [got] = results.wait()
    assert isinstance(got, EvidenceFailure) and got.reason == "credentials variable CAM9_CREDENTIALS is not set"


def test_redacted_urls_keep_no_secret() -> None:
    assert redact_url("rtsp://admin:pw@10.0.0.3:554/Streaming/Channels/101") == \
        "rtsp://***@10.0.0.3:554/Streaming/Channels/101"
    assert redact_url("http://10.0.0.4/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=pw") == \
        "http://10.0.0.4/cgi-bin/CGIProxy.fcgi?cmd=snapPicture2&usr=admin&pwd=***"
    assert redact_url("http://10.0.0.5/snap.jpg") == "http://10.0.0.5/snap.jpg"


# --- never blocking --------------------------------------------------------------------------------


def test_submit_returns_at_once_while_the_camera_hangs(camera: Camera, results: Results,
                                                       fetchers: list[EvidenceFetcher]) -> None:
    evidence = fetcher(fetchers, results, workers=2, timeout_s=5.0, queue_size=64)
    started = time.monotonic()
    for n in range(20):
        evidence.submit(request(camera.url(unique("/hang")), incident=n))
    # A behaviour, not a speed: 20 requests to a camera that never answers (5 s timeout each) would take
    # minutes if submit() waited; on a loaded machine it still returns in a moment.
    assert time.monotonic() - started < 3.0
    stats = evidence.stats()
    assert stats["in_flight"] + stats["queued"] == 20 and results.items == []
    # stop() while the workers are (most likely) stuck in a read: it returns, and nothing is delivered after it.
    started = time.monotonic()
    evidence.stop(0.5)  # False when a worker is still stuck in a read, which urllib cannot interrupt
    assert time.monotonic() - started < 4.0
    # The stuck reads end by their timeout (5 s) and the workers with them: what they got is not delivered.
    wait_until(lambda: evidence.stop(0.1), 15, "the workers to end")
    assert results.items == [] and evidence.stats()["queued"] == 0


def test_a_full_queue_drops_the_oldest_clip_first(camera: Camera, results: Results, fetchers: list[EvidenceFetcher],
                                                  caplog: pytest.LogCaptureFixture) -> None:
    # ffmpeg is never run here: the one worker is held by a hanging camera until the drops are made.
    evidence = fetcher(fetchers, results, workers=1, queue_size=2, timeout_s=1.0, retries=0, ffmpeg="ffmpeg")
    evidence.submit(request(camera.url(unique("/hang")), incident=1))
    wait_until(lambda: evidence.stats()["in_flight"] == 1, 5, "the worker to take the hanging camera")
    evidence.submit(request(camera.url("/good.jpg"), camera.url(unique("/hang")), incident=2))  # snapshot + clip
    evidence.submit(request(camera.url("/good.jpg"), incident=3))  # full: incident 2's clip goes
    assert evidence.stats()["dropped"] == 1
    assert "incident 2" in caplog.text and "dropped: the evidence queue is full (2 waiting)" in caplog.text
    got = results.wait(4)
    kinds = [(r.incident_id, r.kind, type(r).__name__) for r in got]
    assert kinds[0] == (1, "snapshot", "EvidenceFailure")  # the hang timed out
    assert (2, "clip", "EvidenceFailure") in kinds
    assert {(2, "snapshot", "Evidence"), (3, "snapshot", "Evidence")} <= set(kinds)
    [drop] = [r for r in got if r.kind == "clip"]
    assert isinstance(drop, EvidenceFailure) and drop.tries == 0 and drop.reason.startswith("dropped")


def test_an_alert_time_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        EvidenceRequest(1, "cam", "http://x/s.jpg", None, None, datetime(2026, 11, 26, 19, 30))


# --- clips ---------------------------------------------------------------------------------------


def test_without_ffmpeg_a_clip_is_reported_missing(camera: Camera, results: Results,
                                                   fetchers: list[EvidenceFetcher]) -> None:
    fetcher(fetchers, results, ffmpeg=None).submit(request(camera.url("/good.jpg"), "rtsp://10.0.0.3/live"))
    got = results.wait(2)
    [clip] = [r for r in got if r.kind == "clip"]
    assert isinstance(clip, EvidenceFailure) and clip.reason == "ffmpeg not installed" and clip.tries == 0
    assert any(isinstance(r, Evidence) and r.kind == "snapshot" for r in got)


def probe(data: bytes, tmp_path: Path) -> dict[str, Any]:
    need("ffprobe")
    file = tmp_path / "got.mp4"
    file.write_bytes(data)
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration:stream=codec_name",
                          "-of", "json", str(file)], check=True, capture_output=True, text=True).stdout
    return dict(json.loads(out))


def assert_clip(got: Evidence | EvidenceFailure, seconds: float, tmp_path: Path) -> dict[str, Any]:
    assert isinstance(got, Evidence), got
    assert got.kind == "clip" and got.content_type == "video/mp4" and got.data[4:8] == b"ftyp"
    assert got.sha256 == hashlib.sha256(got.data).hexdigest() and got.size == len(got.data)
    info = probe(got.data, tmp_path)
    assert "mp4" in info["format"]["format_name"]
    assert abs(float(info["format"]["duration"]) - seconds) < 0.5
    return info


def test_a_clip_of_an_h264_stream(camera: Camera, h264_stream: str, results: Results,
                                  fetchers: list[EvidenceFetcher], tmp_path: Path) -> None:
    fetcher(fetchers, results).submit(request(None, camera.url(h264_stream), clip_s=2.0))
    [got] = results.wait(timeout=30)
    info = assert_clip(got, 2.0, tmp_path)
    assert [s["codec_name"] for s in info["streams"]] == ["h264"]  # copied, not transcoded
    assert got.source == camera.url(h264_stream)


def test_a_clip_of_a_cameras_mjpeg_stream_with_credentials(camera: Camera, results: Results,
                                                           fetchers: list[EvidenceFetcher], tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    need("ffmpeg")
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("CAM3_CREDENTIALS", f"{USER}:{PASSWORD}")
    fetcher(fetchers, results).submit(request(camera.url("/good.jpg"), camera.url("/stream.mjpeg?s=10"),
                                              env="CAM3_CREDENTIALS", clip_s=1.0))
    got = results.wait(2, timeout=30)
    [clip] = [r for r in got if r.kind == "clip"]
    assert_clip(clip, 1.0, tmp_path)
    assert_secret_kept(caplog, results)


def test_a_stream_that_fails_is_reported_without_its_password(camera: Camera, results: Results,
                                                              fetchers: list[EvidenceFetcher],
                                                              caplog: pytest.LogCaptureFixture) -> None:
    need("ffmpeg")
    caplog.set_level(logging.DEBUG)
    url = f"http://{USER}:{PASSWORD.replace('!', '%21')}@127.0.0.1:{camera.port}/no-such-stream"
    fetcher(fetchers, results).submit(request(None, url))
    [got] = results.wait(timeout=30)
    assert isinstance(got, EvidenceFailure) and got.kind == "clip" and got.reason.startswith("ffmpeg failed")
    assert got.tries == 2  # copy, then transcode
    assert got.source == f"http://***@127.0.0.1:{camera.port}/no-such-stream"
    assert_secret_kept(caplog, results)


def test_a_hanging_stream_ends_as_a_failure(camera: Camera, results: Results,
                                            fetchers: list[EvidenceFetcher]) -> None:
    need("ffmpeg")
    fetcher(fetchers, results, timeout_s=0.5).submit(request(None, camera.url(unique("/hang")), clip_s=1.0))
    [got] = results.wait(timeout=30)
    assert isinstance(got, EvidenceFailure) and got.kind == "clip"
    assert got.reason.startswith(("ffmpeg failed", "ffmpeg timed out"))


def test_stop_kills_a_clip_being_recorded(camera: Camera, results: Results, fetchers: list[EvidenceFetcher]) -> None:
    need("ffmpeg")
    evidence = fetcher(fetchers, results)
    evidence.submit(request(None, camera.url("/stream.mjpeg?s=60"), clip_s=30.0))
    wait_until(lambda: camera.hits("/stream.mjpeg?s=60") == 1, 10, "ffmpeg to read the camera's stream")
    started = time.monotonic()
    assert evidence.stop(5.0) is True
    assert time.monotonic() - started < 3.0
    assert results.items == []


def test_evidence_repr_leaves_the_data_out() -> None:
    got = Evidence(1, "cam", "snapshot", datetime.now(UTC) - timedelta(seconds=1), "http://x/s.jpg", "image/jpeg",
                   hashlib.sha256(GOOD_JPEG).hexdigest(), GOOD_JPEG, len(GOOD_JPEG))
    assert "data" not in repr(got) and str(len(GOOD_JPEG)) in repr(got)


def test_an_rtsp_camera_that_refuses_is_reported(results: Results, fetchers: list[EvidenceFetcher]) -> None:
    # The RTSP options (-rtsp_transport tcp, -timeout) reach ffmpeg's RTSP demuxer, which tries to connect.
    need("ffmpeg")
    port = free_port()
    fetcher(fetchers, results).submit(request(None, f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{port}/Streaming/101"))
    [got] = results.wait(timeout=30)
    assert isinstance(got, EvidenceFailure) and got.kind == "clip"
    assert got.reason.startswith("ffmpeg failed") and "Connection refused" in got.reason, got.reason
    assert got.source == f"rtsp://***@127.0.0.1:{port}/Streaming/101" and PASSWORD not in got.reason
