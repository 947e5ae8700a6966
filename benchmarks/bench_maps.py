"""Speed of every registered method and scalar estimator (issue 3 table).

Times each method end to end through ``noisestat.localize(image, method=...)``
and each estimator on one RGB uint8 image (default 2048x1536) after
``noisestat.warmup()``, and prints seconds per megapixel next to the time of
one JPEG encode+decode of the same image (machines differ; ratios hold).
Reports the median of ``--repeat`` runs.

    python benchmarks/bench_maps.py [--size 2048x1536] [--repeat 3] [--methods a,b]
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
from noisestat.synth import clean_texture

ESTIMATORS = ("estimate_noise_pca", "estimate_noise_weak_texture", "estimate_noise_residual",
              "estimate_noise_mad")


def test_image(w: int, h: int) -> np.ndarray:
    base = clean_texture((h // 4, w // 4, 3), seed=1)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    img = img + np.random.default_rng(1).normal(0, 3.0, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def median_time(fn, repeat: int) -> float:
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="2048x1536")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--methods", default="")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    mp = w * h / 1e6
    img = test_image(w, h)
    with tempfile.TemporaryDirectory() as tmp:  # a JPEG input, so that ELA applies
        path = Path(tmp) / "bench.jpg"
        cv2.imwrite(str(path), img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        loaded = noisestat.load_image(path)
    t_warm = noisestat.warmup()
    print(f"image {w}x{h} RGB JPEG Q90 ({mp:.2f} MP); warmup {t_warm:.1f} s; median of {args.repeat} runs")

    def jpeg_roundtrip() -> None:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        cv2.imdecode(buf, cv2.IMREAD_COLOR)

    t_jpeg = median_time(jpeg_roundtrip, max(args.repeat, 5))
    print(f"{'what':34s} {'s':>8s} {'s/MP':>8s} {'x JPEG':>8s}")
    print(f"{'JPEG encode+decode (Q90)':34s} {t_jpeg:8.3f} {t_jpeg / mp:8.4f} {1.0:8.1f}")
    names = [m for m in args.methods.split(",") if m] or noisestat.methods()
    for name in names:
        noisestat.localize(loaded, method=name)  # first call on this size
        t = median_time(lambda n=name: noisestat.localize(loaded, method=n), args.repeat)
        print(f"{'localize ' + name:34s} {t:8.3f} {t / mp:8.4f} {t / t_jpeg:8.1f}")
    for est in ESTIMATORS:
        fn = getattr(noisestat, est)
        fn(loaded)
        t = median_time(lambda f=fn: f(loaded), args.repeat)
        print(f"{est:34s} {t:8.3f} {t / mp:8.4f} {t / t_jpeg:8.1f}")


if __name__ == "__main__":
    main()
