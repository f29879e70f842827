#!/usr/bin/env python3
"""Renders a report.html in headless Chromium and checks what a reader would
see: the page logs nothing on the console (no script error, no blocked load,
no Content-Security-Policy violation), and its screenshot is not blank and
shows the figures' colours (the first curve's blue, the heat map's shades).

usage: render.py REPORT.html SCREENSHOT.png [--no-figures]  (--no-figures: only the console and blank checks)
Exit 0 when all holds, 1 when a check fails, 2 when Chromium is missing."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib


def read_png(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, head = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = head
    assert depth == 8 and ctype in (2, 6) and not interlace, f"unsupported PNG {head}"
    bpp = 3 if ctype == 2 else 4
    raw, stride, prev, rows = zlib.decompress(idat), w * bpp, bytearray(w * bpp), []
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    page, shot = os.path.abspath(args[0]), os.path.abspath(args[1])
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not chromium:
        print("render.py: no chromium (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
                            "--enable-logging=stderr", "--v=0", "--hide-scrollbars", "--window-size=1200,2400",
                            f"--screenshot={shot}", "file://" + page], capture_output=True, text=True, timeout=180)
    problems = [line for line in r.stderr.splitlines() if ":CONSOLE" in line]
    if r.returncode != 0 or not os.path.exists(shot):
        problems.append(f"chromium exit {r.returncode}: {r.stderr[-500:]}")
        w = h = 0
        rows = []
    else:
        w, h, rows = read_png(shot)
    pixels = [p for row in rows for p in row]
    ink = sum(1 for p in pixels if p != (255, 255, 255))
    colours = len(set(pixels))
    near = lambda p, q: all(abs(x - y) <= 12 for x, y in zip(p, q))
    blue = sum(1 for p in pixels if near(p, (0x1f, 0x77, 0xb4)))
    shaded = sum(1 for p in pixels if p[2] > p[0] + 60 and p[2] > 120)  # the heat map's blues
    share = ink / max(len(pixels), 1)
    print(f"render.py: {w}x{h} screenshot, {share:.1%} non-white pixels, {colours} colours, {blue} curve-blue and "
          f"{shaded} blue-shaded pixels, {len([l for l in problems if ':CONSOLE' in l])} console messages")
    if share < 0.01 or colours < 8:
        problems.append("the screenshot is blank")
    if "--no-figures" not in sys.argv and blue < 50:
        problems.append("no divergence curve drawn (curve blue missing)")
    if "--no-figures" not in sys.argv and shaded < 500:
        problems.append("no heat map shading drawn")
    for p in problems:
        print(f"FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
