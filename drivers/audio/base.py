"""The contract of an audio decoder: blocks of samples in, events out, no devices and no clock inside.

    decoder = DtmfDecoder(rate=8000)
    for item in decoder.feed(block, start):   # block: 1-D float32 numpy array in -1..1, any length
        ...                                    # start: the UTC time of block[0]

An event's ``time`` is ``start`` plus the offset of the sample where it was recognised, so a file
decoded faster than real time still gets the times at which things were said. ``feed`` must give the
same result however the audio is cut into blocks (tests check it), and ``flush(now)`` ends whatever is
pending (the end of a file, or a channel going quiet).

Decoders are vectorised with numpy; a per-sample Python loop only where a state machine truly needs it.
A decoder states the sample rate it runs at (``rate``); the audio driver resamples to it.

A decoder of a digital signal that fills a whole transmission (DMR) also says where it recognised that
signal (:meth:`AudioDecoder.heard`), so that the transmission is recorded whatever its level does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from drivers.base import Output

Samples = npt.NDArray[np.float32]
_Floats = TypeVar("_Floats", bound=npt.NDArray[np.floating[Any]])


def mended(x: _Floats) -> _Floats:
    """A decoder's own copy of its audio, made safe for its filters, in place: NaN is silence, and anything
    far beyond full scale (infinities too) is clipped to +-4, since a float overflow in a filter's state
    would never decay."""
    if not np.isfinite(x).all():  # (rare: the check costs less than nan_to_num's own)
        np.nan_to_num(x, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    np.clip(x, -4.0, 4.0, out=x)
    return x


@dataclass(frozen=True, slots=True)
class Heard:
    """Audio from ``start`` to ``end`` in which a decoder recognised its signal (e.g. DMR bursts that
    passed their checks): the channel is busy there, however loud or steady it is."""

    start: datetime
    end: datetime


class AudioTap(Protocol):
    """Hears a radio's receive audio as it comes, at the device's ``rate`` (the gateway's live voice
    stream): the audio driver hands it every block on its own thread; ``feed`` must not block."""

    def feed(self, block: Samples, start: datetime, rate: int) -> None: ...


class AudioDecoder(ABC):
    """A sans-I/O decoder of one mono audio channel at ``rate`` samples per second."""

    name: ClassVar[str]
    #: Sample rates the decoder is designed for; the first is what the driver resamples to by default.
    rates: ClassVar[tuple[int, ...]] = (8000,)

    def __init__(self, rate: int | None = None, **options: Any) -> None:
        if options:
            raise TypeError(f"decoder {self.name!r} takes no option {', '.join(sorted(options))}")
        self.rate = rate or self.rates[0]
        if self.rate not in self.rates:
            raise ValueError(f"decoder {self.name!r} runs at {', '.join(map(str, self.rates))} Hz, not {self.rate}")

    @classmethod
    def rate_for(cls, input_rate: int) -> int:
        """The rate to run at on audio sampled at ``input_rate``: the first of :attr:`rates`, unless that
        is above the input, then the highest rate not above it (the lowest there is, if none). Resampling
        up adds nothing to decode and multiplies the work: DMR at 48 kHz on a 22050 Hz channel did 2.2
        times the samples of DMR at 22050 Hz, after an upsampler that cost as much again."""
        if cls.rates[0] <= input_rate:
            return cls.rates[0]
        below = [r for r in cls.rates if r <= input_rate]
        return max(below) if below else min(cls.rates)

    @abstractmethod
    def feed(self, block: Samples, start: datetime) -> list[Output]:
        """Consume ``block`` (any length), whose first sample was heard at ``start``."""

    def flush(self, now: datetime) -> list[Output]:
        """End what is pending (the end of a recording, or the channel gone quiet)."""
        return []

    def heard(self) -> list[Heard]:
        """Where the decoder recognised its signal in the audio fed since it was last asked (it forgets
        them then). The call recorder counts them as activity: a steady digital signal such as DMR's 4FSK
        has no pauses for a level-based noise floor to fall in, so by its level alone it becomes the
        floor. Decoders of signalling that comes inside speech (the level shows it) need not say."""
        return []

    def at(self, start: datetime, index: int) -> datetime:
        """The time of sample ``index`` of a block that started at ``start``."""
        return start + timedelta(seconds=index / self.rate)
