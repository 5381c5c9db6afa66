"""Check that a browser's screenshot of the audit page shows it drawn, not a blank page.

    python .ci/check_screenshot.py plan.png plan.html

Reads the PNG with the standard library only (zlib and the chunk layout; 8-bit RGB or RGBA, as
Chromium writes them) and fails unless the picture has text and rules on it, and marks in the
page's keep and delete colours (read from its inline CSS), so a page that never rendered, or
rendered without its styles, fails.
"""

from __future__ import annotations

import re
import struct
import sys
import zlib
from collections import Counter
from pathlib import Path

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type: RGB, RGBA
MIN_INKED = 0.01  # of the pixels: not the background
MIN_COLOURS = 16
MIN_MARK_PIXELS = 200
TOLERANCE = 6  # per channel, for antialiasing


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    png, page = Path(argv[0]), Path(argv[1])
    width, height, pixels = read_png(png.read_bytes())
    counts = Counter(pixels)
    background, _ = counts.most_common(1)[0]
    inked = 1 - counts[background] / len(pixels)
    print(
        f"{png}: {width}x{height}, {png.stat().st_size} bytes, {len(counts)} colours, "
        f"{inked:.1%} not background"
    )
    problems = []
    if inked < MIN_INKED or len(counts) < MIN_COLOURS:
        problems.append("the screenshot is (nearly) blank: did the page render?")
    for name, colour in page_colours(page.read_text(encoding="utf-8")).items():
        found = sum(n for pixel, n in counts.items() if near(pixel, colour))
        print(f"  {name} #{bytes(colour).hex()}: {found} pixels")
        if found < MIN_MARK_PIXELS:
            problems.append(f"too few {name} marks ({found} pixels): are the timelines drawn?")
    for problem in problems:
        print(f"  FAIL: {problem}", file=sys.stderr)
    return 1 if problems else 0


def page_colours(html: str) -> dict[str, tuple[int, int, int]]:
    """The keep and delete colours of the page's inline CSS (`--keep: #0072b2`)."""
    colours = {}
    for name in ("keep", "delete"):
        match = re.search(rf"--{name}:\s*#([0-9a-fA-F]{{6}})", html)
        if match is None:
            raise SystemExit(f"the page defines no --{name} colour")
        red, green, blue = bytes.fromhex(match.group(1))
        colours[name] = (red, green, blue)
    return colours


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= TOLERANCE for a, b in zip(pixel, colour, strict=False))


def read_png(data: bytes) -> tuple[int, int, list[tuple[int, ...]]]:
    """Width, height and the RGB(A) pixels, row by row."""
    if not data.startswith(SIGNATURE):
        raise SystemExit("not a PNG file")
    offset, header, compressed = len(SIGNATURE), b"", bytearray()
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        offset += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
        elif kind == b"IEND":
            break
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in CHANNELS or interlace:
        raise SystemExit(f"unsupported PNG: depth {depth}, colour type {colour_type}")
    channels = CHANNELS[colour_type]
    rows = unfilter(zlib.decompress(bytes(compressed)), width * channels, height, channels)
    pixels = [
        tuple(row[x : x + channels][:3]) for row in rows for x in range(0, len(row), channels)
    ]
    return width, height, pixels


def unfilter(raw: bytes, stride: int, height: int, bpp: int) -> list[bytes]:
    """The scanlines with each one's filter undone (PNG spec, section 9)."""
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, previous, strict=True))
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + (left + previous[i]) // 2) & 0xFF
        elif kind == 4:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                upper_left = previous[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + paeth(left, previous[i], upper_left)) & 0xFF
        rows.append(bytes(line))
        previous = line
    return rows


def paeth(left: int, up: int, upper_left: int) -> int:
    estimate = left + up - upper_left
    to_left, to_up, to_corner = abs(estimate - left), abs(estimate - up), abs(estimate - upper_left)
    if to_left <= to_up and to_left <= to_corner:
        return left
    return up if to_up <= to_corner else upper_left


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
