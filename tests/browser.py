"""A real browser for the tests: Debian's chromium, headless, opening a page from disk as a user
would, and what it shows: a screenshot (decoded here with zlib, the standard library) and the
DOM as the browser built it.

`scripts/bootstrap` installs chromium; a missing browser is a broken setup, not a skip. The
flags keep it from reaching out (this network is closed, and a report must not need it): no
background networking, component updates, sync or QUIC, and a new empty profile each time.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@dataclass(frozen=True)
class Screenshot:
    width: int
    height: int
    pixels: list[bytes]  # one row each, RGB

    def colours(self) -> Counter[tuple[int, int, int]]:
        found: Counter[tuple[int, int, int]] = Counter()
        for row in self.pixels:
            found.update(zip(row[0::3], row[1::3], row[2::3], strict=True))
        return found

    def background(self) -> tuple[int, int, int]:
        return self.colours().most_common(1)[0][0]


@dataclass(frozen=True)
class Opened:
    dom: str
    screenshot: Screenshot
    png: Path


def chromium() -> str:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        raise RuntimeError(
            "chromium is not installed: run scripts/bootstrap (apt-get install chromium)"
        )
    return CHROMIUM


def open_page(
    page: Path, png: Path, *, size: tuple[int, int] = (1280, 2400), dark: bool = False
) -> Opened:
    """Open `page` in headless chromium; the DOM it built, and a screenshot of `size` saved to
    `png` (in dark mode: the page's `prefers-color-scheme: dark`)."""
    extra = ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"] if dark else []
    with tempfile.TemporaryDirectory(prefix="rexctl-chromium-") as profile:
        proc = subprocess.run(
            [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra,
             f"--window-size={size[0]},{size[1]}", f"--screenshot={png}", "--dump-dom",
             page.resolve().as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    assert proc.returncode == 0 and png.is_file(), proc.stderr[-2000:]
    return Opened(proc.stdout, decode_png(png.read_bytes()), png)


def decode_png(data: bytes) -> Screenshot:
    """An 8-bit RGB or RGBA, non-interlaced PNG (what chromium writes) as rows of RGB."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, chunks = 8, []
    width = height = depth = colour = interlace = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks))
    stride = width * bpp
    prev = bytearray(stride)
    rows = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        if kind == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:  # Up
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev, strict=True))
        elif kind == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + (left + prev[i]) // 2) & 0xFF
        elif kind == 4:  # Paeth
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b, c = prev[i], prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        prev = line
        rgb = bytes(line) if bpp == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3)
        rows.append(rgb)
    return Screenshot(width, height, rows)
