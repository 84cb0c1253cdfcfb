"""Camera snapshots in the terminal: an image drawn with half blocks, two pixels to a character cell.

    ▀  the upper half takes the top pixel's colour (foreground), the lower half the bottom one's
       (background), so a W x H cell area shows a W x 2H picture

A terminal cell is about twice as tall as it is wide, so two pixels stacked in a cell keep the picture's
proportions. Decoding (JPEG, PNG) is Pillow's; nothing here touches the screen.
"""

from __future__ import annotations

import io

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text


class PictureError(ValueError):
    """Bytes that are not an image Pillow can read."""


def fit(width: int, height: int, cells_w: int, cells_h: int) -> tuple[int, int]:
    """The picture's size in pixels that fits ``cells_w`` x ``cells_h`` cells, proportions kept."""
    scale = min(cells_w / width, 2 * cells_h / height)
    return max(1, round(width * scale)), max(2, round(height * scale) // 2 * 2)


def half_blocks(data: bytes, cells_w: int, cells_h: int) -> list[Text]:
    """The image as lines of text (one per cell row), at most ``cells_w`` x ``cells_h`` cells."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = fit(img.width, img.height, cells_w, cells_h)
            rgb = img.convert("RGB").resize((w, h), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise PictureError(f"not an image this console can show: {exc}") from exc
    pixels = np.asarray(rgb, dtype=np.uint8)  # (h, w, 3)
    lines = []
    for y in range(0, h, 2):
        line = Text()
        for top, bottom in zip(pixels[y].tolist(), pixels[y + 1].tolist(), strict=True):
            line.append("▀", Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom)))
        lines.append(line)
    return lines
