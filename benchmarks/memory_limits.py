"""Peak memory of ``noisestat localize`` per method and image size, under an address-space cap.

For each size (megapixels) a photo-like RGB JPEG (smooth texture plus noise, quality 90, so the JPEG
methods do their full work) is written once; then every method runs as its own process

    prlimit --as=CAP python -m noisestat localize IMG -m METHOD --max-pixels N --out TMP

(``--max-pixels`` = the image's pixels, so the memory-derived default limit does not refuse it) and
the table gives the exit code, the peak resident memory (``ru_maxrss`` of the child), the peak per
pixel and the seconds. A process that needs more address space than the cap gets a MemoryError,
which the CLI reports as one line with exit code 2; the cap keeps the machine safe. Last, the
issue-17 case: a 15000x15000 PNG (225 MP, a few hundred KB) through ``noisestat localize -m ela``
under an 8 GiB cap *without* ``--max-pixels``: it must finish within the cap or be refused in one
line with exit code 2.

``noisestat.io.LOCALIZE_BYTES_PER_PIXEL`` (the per-pixel budget of the CLI's default pixel limit)
should be at least the largest ``B/px`` of the 12 MP rows.

    python benchmarks/memory_limits.py [--sizes 12,100] [--methods a,b] [--cap-gib 8] [--skip-225]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import noisestat
from noisestat.io import LOCALIZE_BYTES_PER_PIXEL
from noisestat.synth import clean_texture

REPO = Path(__file__).resolve().parents[1]


def photo_jpeg(path: Path, megapixels: float, seed: int = 0) -> tuple[int, int]:
    """Write a (H, W) = (3k, 4k)-shaped textured RGB JPEG of about ``megapixels``; return (h, w)."""
    w = int(round(np.sqrt(megapixels * 1e6 * 4 / 3)))
    h = int(round(megapixels * 1e6 / w))
    base = clean_texture((max(8, h // 8), max(8, w // 8), 3), seed=seed)
    img = cv2.resize(base.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(seed)
    out = np.empty((h, w, 3), np.uint8)
    for r in range(0, h, 512):  # noise by row blocks, no whole-image float64
        blk = img[r : r + 512] + rng.normal(0, 3.0, img[r : r + 512].shape).astype(np.float32)
        out[r : r + 512] = np.clip(np.round(blk), 0, 255)
    del img
    cv2.imwrite(str(path), out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return h, w


def run_capped(cmd: list[str], cap_bytes: int, timeout: float) -> tuple[int, int, float, str]:
    """(exit code, peak RSS bytes, seconds, last stderr line) of ``cmd`` under ``prlimit --as``.

    The peak is measured by GNU ``/usr/bin/time`` (a small process that forks the command), not by
    ``wait4`` from this process: a forked child inherits its parent's RSS high-water mark, which
    would add this script's own memory to every row.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    full = ["prlimit", f"--as={cap_bytes}", *cmd] if shutil.which("prlimit") else cmd
    gnu_time = Path("/usr/bin/time")
    with tempfile.TemporaryDirectory() as tmp:
        rss_file = Path(tmp) / "rss"
        if gnu_time.is_file():
            full = [str(gnu_time), "-f", "%M", "-o", str(rss_file), *full]
        t0 = time.perf_counter()
        with open(Path(tmp) / "err", "w+") as err:
            proc = subprocess.Popen(full, stdout=subprocess.DEVNULL, stderr=err, env=env)
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
            secs = time.perf_counter() - t0
            err.seek(0)
            lines = [ln for ln in err.read().splitlines() if ln.strip() and not ln.startswith("Command exited")]
        text = rss_file.read_text().split() if rss_file.is_file() else []
        peak = int(text[-1]) * 1024 if text and text[-1].isdigit() else -1
    return rc, peak, secs, (lines[-1] if lines else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="12,100", help="megapixels, comma-separated (default 12,100)")
    ap.add_argument("--methods", help="comma-separated subset (default: every registered method)")
    ap.add_argument("--cap-gib", type=float, default=8.0, help="address-space cap per process (default 8 GiB)")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per run (default 3600)")
    ap.add_argument("--skip-225", action="store_true", help="skip the 225 MP PNG case")
    args = ap.parse_args()
    methods = args.methods.split(",") if args.methods else noisestat.methods()
    cap = int(args.cap_gib * 2**30)
    print(f"prlimit --as={args.cap_gib:g} GiB per process; budget of the CLI's default pixel limit: "
          f"{LOCALIZE_BYTES_PER_PIXEL} B/px")
    worst: dict[float, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        tiny = t / "tiny.jpg"
        photo_jpeg(tiny, 0.004)
        _, base, _, _ = run_capped([sys.executable, "-m", "noisestat", "localize", str(tiny), "-m", "median_residual",
                                    "--out", str(t / "tiny")], cap, args.timeout)
        print(f"baseline (interpreter, imports, a 64x64 image): {base / 2**30:.2f} GiB; 'B/px' = peak / pixels, "
              f"'above' = (peak - baseline) / pixels")
        print(f"{'MP':>5s} {'method':20s} {'exit':>4s} {'peak GiB':>8s} {'B/px':>6s} {'above':>6s} {'s':>7s}  note")
        for mp in (float(v) for v in args.sizes.split(",")):
            img = t / f"photo_{mp:g}mp.jpg"
            h, w = photo_jpeg(img, mp)
            for m in methods:
                out = t / "out" / f"{m}-{mp:g}"
                cmd = [sys.executable, "-m", "noisestat", "localize", str(img), "-m", m, "--max-pixels", str(h * w),
                       "--out", str(out), "--overwrite"]
                rc, peak, secs, last = run_capped(cmd, cap, args.timeout)
                bpp = peak / (h * w)
                if rc == 0:
                    worst[mp] = max(worst.get(mp, 0.0), bpp)
                note = "" if rc == 0 else last[-110:]
                above = (peak - base) / (h * w)
                print(f"{h * w / 1e6:5.1f} {m:20s} {rc:4d} {peak / 2**30:8.2f} {bpp:6.0f} {above:6.0f} {secs:7.1f}  "
                      f"{note}", flush=True)
                shutil.rmtree(out, ignore_errors=True)
            img.unlink()
        for mp, b in sorted(worst.items()):
            print(f"largest peak per pixel among the methods that finished at {mp:g} MP: {b:.0f} B/px")
        if not args.skip_225:
            from PIL import Image

            png = t / "flat_225mp.png"
            Image.new("RGB", (15000, 15000), (120, 130, 140)).save(png)
            cap8 = 8 * 2**30
            rc, peak, secs, last = run_capped([sys.executable, "-m", "noisestat", "localize", str(png), "-m", "ela",
                                               "--out", str(t / "out225")], cap8, args.timeout)
            verdict = ("finished within 8 GiB" if rc == 0 else
                       "refused in one line, exit 2" if rc == 2 and "limit of" in last else "FAILED")
            print(f"\n225 MP PNG ({png.stat().st_size / 1e3:.0f} kB), ela, prlimit --as=8 GiB, default limit: "
                  f"exit {rc}, peak {peak / 2**30:.2f} GiB, {secs:.1f} s: {verdict}\n  {last}")
            if verdict == "FAILED":
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
