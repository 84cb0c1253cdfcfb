"""Spoken announcements: text to samples with espeak-ng, for a transmitter to key and play.

Why espeak-ng: it is a Debian package (``apt-get install espeak-ng``) that runs offline on a field
gateway with no network and no model files to fetch, speaks Mandarin (voice ``cmn``) as well as English
and some hundred other languages, and renders an announcement in tens of milliseconds.

    text --stdin--> espeak-ng -v VOICE -s WPM --stdout --> WAV (16 bit mono, 22050 Hz) --> float samples

The WAV espeak-ng streams to stdout carries placeholder lengths (it does not know them when it
starts), so the data chunk is read to the end of the output rather than by its length field.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess

import numpy as np

from drivers.audio.base import Samples

ESPEAK = "espeak-ng"
#: espeak-ng voice names: a language code, an optional variant after '+' (``cmn``, ``en-us``, ``en+f3``)
VOICE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*(\+[a-z0-9]{1,8})?")
MAX_TEXT = 2000  # characters: a minute or two of speech, more than any announcement should be


class SpeechError(ValueError):
    """The text cannot be spoken: no espeak-ng, a voice it does not have, an empty text."""


def wav_samples(data: bytes) -> tuple[Samples, int]:
    """Samples (float32, -1..1) and rate of a 16-bit mono PCM WAV, reading its data chunk to the end."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechError(f"espeak-ng gave no WAV: {data[:16].hex(' ')}")
    pos, rate = 12, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8 :]
        if chunk == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body)
            if (fmt, channels, bits) != (1, 1, 16):
                raise SpeechError(f"espeak-ng WAV is format {fmt}, {channels} channels, {bits} bit; expected PCM "
                                  "mono 16 bit")
        elif chunk == b"data":
            pcm = np.frombuffer(body[: len(body) // 2 * 2], "<i2")
            if not rate:
                raise SpeechError("espeak-ng WAV has its data before its format")
            return (pcm / 32768.0).astype(np.float32), rate
        pos += 8 + size + (size & 1)
    raise SpeechError("espeak-ng WAV has no data chunk")


def speak(text: str, voice: str = "en", *, wpm: int = 150, level: float = 0.5, timeout_s: float = 20.0) -> tuple[
        Samples, int]:
    """``text`` spoken by espeak-ng's ``voice``: samples scaled to a peak of ``level``, and their rate."""
    if not text.strip():
        raise SpeechError("nothing to say: the text is empty")
    if len(text) > MAX_TEXT:
        raise SpeechError(f"text: {len(text)} characters, an announcement holds at most {MAX_TEXT}")
    if not VOICE.fullmatch(voice):
        raise SpeechError(f"voice {voice!r}: an espeak-ng voice name such as cmn, en, en-us")
    exe = shutil.which(ESPEAK)
    if exe is None:
        raise SpeechError("espeak-ng is not installed (apt-get install espeak-ng)")
    # The text goes in on stdin (-b 1: UTF-8), never on the command line, where it could read as an option.
    cmd = [exe, "-v", voice, "-s", str(wpm), "-b", "1", "--stdin", "--stdout"]
    try:
        done = subprocess.run(cmd, input=text.encode(), capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise SpeechError(f"espeak-ng took longer than {timeout_s:g} s") from None
    if done.returncode != 0 or not done.stdout:
        why = done.stderr.decode(errors="replace").strip() or f"exit status {done.returncode}"
        raise SpeechError(f"espeak-ng voice {voice!r}: {why}")
    samples, rate = wav_samples(done.stdout)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak == 0.0:
        raise SpeechError(f"espeak-ng voice {voice!r} said nothing for {text[:40]!r}")
    return (samples * (level / peak)).astype(np.float32), rate
