"""Camera snapshots drawn in the terminal: two pixels a cell, colours kept, proportions kept."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from console.picture import PictureError, fit, half_blocks


def png(width: int, height: int, left: tuple[int, int, int], right: tuple[int, int, int]) -> bytes:
    img = Image.new("RGB", (width, height), left)
    img.paste(right, (width // 2, 0, width, height))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def test_each_cell_holds_two_pixels_in_their_colours() -> None:
    lines = half_blocks(png(8, 8, (200, 0, 0), (0, 0, 200)), 8, 4)
    assert len(lines) == 4 and all(len(line) == 8 for line in lines)
    first, last = lines[0].spans[0].style, lines[0].spans[-1].style
    assert str(lines[0])[0] == "▀"
    assert first.color.triplet == first.bgcolor.triplet == (200, 0, 0)  # type: ignore[union-attr]
    assert last.color.triplet == last.bgcolor.triplet == (0, 0, 200)  # type: ignore[union-attr]


def test_a_wide_picture_keeps_its_proportions() -> None:
    assert fit(640, 480, 80, 24) == (64, 48)  # 64 cells wide, 24 rows of two pixels
    assert fit(640, 480, 40, 40) == (40, 30)
    lines = half_blocks(png(640, 480, (10, 10, 10), (250, 250, 250)), 80, 24)
    assert len(lines) == 24 and len(lines[0]) == 64


@given(st.binary(max_size=200))
def test_bytes_that_are_no_image_say_so(data: bytes) -> None:
    with pytest.raises(PictureError, match="not an image"):
        half_blocks(data, 10, 10)
