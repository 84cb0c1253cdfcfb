"""A road camera's web server for tests, in its own process: snapshots good, slow, hanging, failing,
wrong and too big, behind Basic or Digest authentication, and streams ffmpeg can read.

    python tests/camera_server.py PORT [--auth USER:PASSWORD] [--media DIR]

It prints ``ready`` once it listens. Paths:

    /good.jpg, /good.png      a real image (GOOD_JPEG, GOOD_PNG below)
    /slow.jpg?s=N             the good JPEG after N seconds (default 5)
    /hang                     accepts the connection and never answers
    /fail?n=K                 503 for the first K requests (default 2) to that exact path and query, then good
    /notimage                 an HTML page with status 200, as a camera's login page is
    /big, /big-chunked        a JPEG-looking body of BIG bytes, with and without Content-Length
    /auth.jpg                 the good JPEG behind HTTP Basic (RFC 7617) with --auth
    /digest.jpg               the good JPEG behind HTTP Digest (RFC 7616, MD5, qop=auth) with --auth
    /stream.mjpeg             multipart/x-mixed-replace JPEG frames at 25 per second, as IP cameras serve
    /media/NAME               a file of --media DIR (a video made by the test), sent as fast as asked
    /hits?path=P              how many requests P has had (P with its query), as text
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import secrets
import struct
import sys
import threading
import time
import zlib
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

# An 8x8 mid-grey baseline JPEG, built marker by marker after ITU-T T.81 (JPEG) Annex B:
# - SOI, then a JFIF APP0 (JFIF 1.01: version, no units, 1:1 density, no thumbnail);
# - DQT (B.2.4.1): table 0, 8-bit precision, all 64 quantisers 1;
# - SOF0 (B.2.2, baseline): 8-bit samples, 8 lines, 8 samples per line, one component (id 1,
#   sampling 1x1, quantiser table 0);
# - DHT (B.2.4.2) DC table 0 and AC table 0, each holding a single 1-bit code "0": for DC the symbol 0
#   (difference category 0, no extra bits: F.1.2.1), for AC the symbol 0x00 (EOB: F.1.2.2);
# - SOS (B.2.3): component 1 with tables 0/0, spectral selection 0..63, no approximation;
# - the one block's entropy-coded data: DC "0" (difference 0, so the coefficient is 0) and AC "0"
#   (EOB: all 63 coefficients 0), padded to a byte with 1-bits (F.1.2.3): 0b00111111 = 0x3F;
# - EOI. Every coefficient is 0, so the inverse DCT gives 0 and the level shift (A.3.1) makes 128.
GOOD_JPEG = bytes.fromhex(
    "ffd8"
    "ffe000104a46494600010100000100010000"
    "ffdb004300" + "01" * 64 +
    "ffc0000b080008000801011100"
    "ffc4001400" "01" + "00" * 15 + "00"
    "ffc4001410" "01" + "00" * 15 + "00"
    "ffda0008010100003f00"
    "3f"
    "ffd9"
)


def _png(width: int, height: int, grey: int) -> bytes:
    """A greyscale PNG (ISO/IEC 15948: signature, IHDR, IDAT of filter-0 scanlines, IEND)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = b"".join(b"\x00" + bytes([grey]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


GOOD_PNG = _png(8, 8, 128)
BIG = 6_000_000  # over the fetcher's default limit of 5,000,000 bytes
REALM = "camera"

hits: Counter[str] = Counter()
hits_lock = threading.Lock()


class Camera(BaseHTTPRequestHandler):
    server_version = "TestCamera/1.0"
    auth: tuple[str, str] | None = None
    media: Path | None = None
    nonces: ClassVar[set[str]] = set()  # handed out in challenges, shared by the handler threads

    def log_message(self, format: str, *args: object) -> None:
        pass  # quiet: the test reads stdout

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        with hits_lock:
            hits[self.path] += 1
            count = hits[self.path]
        path = parts.path
        if path == "/good.jpg":
            self.send(200, "image/jpeg", GOOD_JPEG)
        elif path == "/good.png":
            self.send(200, "image/png", GOOD_PNG)
        elif path == "/slow.jpg":
            time.sleep(float(query.get("s", ["5"])[0]))  # a slow camera: answers after s seconds
            self.send(200, "image/jpeg", GOOD_JPEG)
        elif path == "/hang":
            time.sleep(3600)  # a camera that never answers
        elif path == "/fail":
            if count <= int(query.get("n", ["2"])[0]):
                self.send(503, "text/plain", b"busy\n")
            else:
                self.send(200, "image/jpeg", GOOD_JPEG)
        elif path == "/notimage":
            self.send(200, "image/jpeg", b"<!DOCTYPE html><html><body>Please log in</body></html>\n")
        elif path == "/big":
            self.send(200, "image/jpeg", GOOD_JPEG[:4] + bytes(BIG))
        elif path == "/big-chunked":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(GOOD_JPEG[:4])
            for _ in range(BIG // 65536 + 1):
                self.wfile.write(bytes(65536))
        elif path == "/auth.jpg":
            if self.basic_ok():
                self.send(200, "image/jpeg", GOOD_JPEG)
            else:
                self.challenge(f'Basic realm="{REALM}"')
        elif path == "/digest.jpg":
            if self.digest_ok():
                self.send(200, "image/jpeg", GOOD_JPEG)
            else:
                nonce = secrets.token_hex(16)
                Camera.nonces.add(nonce)
                self.challenge(f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5')
        elif path == "/stream.mjpeg":
            self.mjpeg(float(query.get("s", ["60"])[0]))
        elif path.startswith("/media/") and self.media is not None:
            file = self.media / path.removeprefix("/media/")
            if file.is_file() and file.parent == self.media:
                self.send(200, "application/octet-stream", file.read_bytes())
            else:
                self.send(404, "text/plain", b"no such file\n")
        elif path == "/hits":
            with hits_lock:
                self.send(200, "text/plain", str(hits[query["path"][0]]).encode())
        else:
            self.send(404, "text/plain", b"not found\n")

    def send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def challenge(self, header: str) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", header)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def basic_ok(self) -> bool:
        if self.auth is None:
            return False
        expected = base64.b64encode(":".join(self.auth).encode()).decode()
        return self.headers.get("Authorization", "") == f"Basic {expected}"

    def digest_ok(self) -> bool:
        header = self.headers.get("Authorization", "")
        if self.auth is None or not header.startswith("Digest "):
            return False
        fields: dict[str, str] = {}
        for item in header.removeprefix("Digest ").split(","):
            key, _, value = item.strip().partition("=")
            fields[key] = value.strip('"')
        if fields.get("nonce") not in Camera.nonces or fields.get("username") != self.auth[0]:
            return False

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        # RFC 7616 3.4.1: response = H(H(A1):nonce:nc:cnonce:qop:H(A2)).
        ha1 = md5(f"{self.auth[0]}:{REALM}:{self.auth[1]}")
        ha2 = md5(f"GET:{fields.get('uri', '')}")
        expected = md5(f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
        return fields.get("response") == expected

    def mjpeg(self, seconds: float) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.send_header("Connection", "close")
        self.end_headers()
        end = time.monotonic() + seconds
        try:
            while time.monotonic() < end:
                self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n"
                                 % (len(GOOD_JPEG), GOOD_JPEG))
                self.wfile.flush()
                time.sleep(0.04)  # 25 frames per second, the rate ffmpeg assumes for MJPEG
        except (BrokenPipeError, ConnectionResetError):
            pass  # the viewer has what it wanted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--auth", help="USER:PASSWORD for /auth.jpg and /digest.jpg")
    parser.add_argument("--media", type=Path, help="a folder served under /media/")
    args = parser.parse_args()
    if args.auth:
        user, _, password = args.auth.partition(":")
        Camera.auth = (user, password)
    Camera.media = args.media.resolve() if args.media else None
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Camera)
    server.daemon_threads = True  # /hang's threads must not keep the process alive at shutdown
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
