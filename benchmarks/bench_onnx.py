"""Seconds per megapixel of the packaged SRM feature provider (noisestat.onnx), on CPU and GPU when present.

    python benchmarks/bench_onnx.py [--sizes 512 1024 2048] [--repeats 3] [--tile 512] [--overlap 32]

Needs ``pip install noisestat[onnx]``. Times ``OnnxFeatureProvider(srm.onnx)(image)``
(input conversion, tiled inference, blending) on seeded random gray images of
``size x size`` pixels; each row is the median over ``--repeats`` runs after one
warm-up run. The CUDA row appears only when onnxruntime lists
CUDAExecutionProvider.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from noisestat.onnx import OnnxFeatureProvider, srm_model_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024, 2048])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--overlap", type=int, default=32)
    args = ap.parse_args()
    import onnxruntime as ort

    provider_sets = [["CPUExecutionProvider"]]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        provider_sets.append(["CUDAExecutionProvider", "CPUExecutionProvider"])
    print(f"onnxruntime {ort.__version__}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} logical CPUs; tile {args.tile}, overlap {args.overlap}; median of {args.repeats}")
    print(f"{'provider':24s} {'size':>11s} {'MP':>6s} {'seconds':>9s} {'s/MP':>8s}")
    rng = np.random.default_rng(0)
    for providers in provider_sets:
        prov = OnnxFeatureProvider(srm_model_path(), tile=args.tile, overlap=args.overlap, providers=providers)
        for size in args.sizes:
            img = (rng.random((size, size)) * 255).astype(np.uint8)
            prov(img)  # warm-up
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                prov(img)
                times.append(time.perf_counter() - t0)
            t = float(np.median(times))
            mp = size * size / 1e6
            print(f"{prov.provider:24s} {f'{size}x{size}':>11s} {mp:6.2f} {t:9.3f} {t / mp:8.3f}")


if __name__ == "__main__":
    main()
