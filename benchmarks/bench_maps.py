"""Speed of every registered method and scalar estimator, as multiples of one JPEG encode+decode.

The benchmark image (default): ``skimage.data.astronaut()`` resized to 2048x1536
with OpenCV, saved at JPEG quality 85 and re-saved at 95 (a double JPEG, so
that the double-compression maps do their full work). The floor: one OpenCV
quality-90 encode+decode of the same pixels. After ``noisestat.warmup()``,
each method is timed end to end through ``noisestat.localize`` interleaved
with the floor over ``--pairs`` pairs; the table gives the median seconds,
s/MP and the median of the per-pair ratios (ratios hold on a loaded machine,
seconds do not).

    python benchmarks/bench_maps.py [--image astronaut|texture] [--size 2048x1536] [--pairs 7] [--methods a,b]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import noisestat
from noisestat.synth import clean_texture, sample_image

ESTIMATORS = ("estimate_noise_pca", "estimate_noise_weak_texture", "estimate_noise_residual",
              "estimate_noise_mad")


def texture_image(w: int, h: int) -> np.ndarray:
    """The older synthetic benchmark: smooth texture plus noise sigma 3."""
    base = clean_texture((h // 4, w // 4, 3), seed=1)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    img = img + np.random.default_rng(1).normal(0, 3.0, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def benchmark_file(folder: Path, kind: str, w: int, h: int) -> Path:
    """Write the benchmark JPEG (RGB): astronaut resized, saved at 85 then 95; texture saved at 90."""
    if kind == "astronaut":
        rgb = cv2.resize(sample_image("astronaut"), (w, h), interpolation=cv2.INTER_LINEAR)
        first = folder / "q85.jpg"
        cv2.imwrite(str(first), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
        bgr = cv2.imread(str(first), cv2.IMREAD_COLOR)
        path = folder / "bench.jpg"
        cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        return path
    path = folder / "bench.jpg"
    cv2.imwrite(str(path), texture_image(w, h)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def paired(fn, floor, pairs: int) -> tuple[float, float]:
    """(median seconds of fn, median of fn/floor over interleaved pairs)."""
    ts, ratios = [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        floor()
        t1 = time.perf_counter()
        fn()
        t2 = time.perf_counter()
        ts.append(t2 - t1)
        ratios.append((t2 - t1) / max(t1 - t0, 1e-9))
    return statistics.median(ts), statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", choices=("astronaut", "texture"), default="astronaut")
    ap.add_argument("--size", default="2048x1536")
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--methods", default="", help="comma-separated (default: every registered method)")
    ap.add_argument("--estimators", action="store_true", help="also time the scalar noise estimators")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    mp = w * h / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        loaded = noisestat.load_image(benchmark_file(Path(tmp), args.image, w, h))
        pixels = np.ascontiguousarray(loaded.pixels.astype(np.uint8)[:, :, ::-1])
        t_warm = noisestat.warmup()

        def floor() -> None:
            ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
            cv2.imdecode(buf, cv2.IMREAD_COLOR)

        t_floor = paired(floor, floor, args.pairs)[0]
        print(f"image: {args.image} {w}x{h} ({mp:.2f} MP, {loaded.info.format} Q{loaded.info.jpeg_quality:g}); "
              f"warmup {t_warm:.1f} s; {args.pairs} interleaved pairs per row")
        print(f"{'what':34s} {'s':>8s} {'s/MP':>8s} {'x floor':>8s}")
        print(f"{'JPEG Q90 encode+decode (floor)':34s} {t_floor:8.3f} {t_floor / mp:8.4f} {1.0:8.1f}")
        names = [m for m in args.methods.split(",") if m] or noisestat.methods()
        for name in names:
            noisestat.localize(loaded, method=name)  # first call on this size
            t, r = paired(lambda n=name: noisestat.localize(loaded, method=n), floor, args.pairs)
            print(f"{'localize ' + name:34s} {t:8.3f} {t / mp:8.4f} {r:8.1f}", flush=True)
        for est in ESTIMATORS if args.estimators else ():
            fn = getattr(noisestat, est)
            fn(loaded)
            t, r = paired(lambda f=fn: f(loaded), floor, args.pairs)
            print(f"{est:34s} {t:8.3f} {t / mp:8.4f} {r:8.1f}", flush=True)


if __name__ == "__main__":
    main()
