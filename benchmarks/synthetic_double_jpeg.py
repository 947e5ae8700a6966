"""Object localizers and the adq map on synthetic double-JPEG splices (no evaluation data read).

Each case: a scikit-image sample photo with sensor noise N(0, 1.5), saved as
JPEG at a first quality q1 (55-89) and decoded; a blob from the next photo
(never compressed, 5-20 % of the image) is pasted into it; the result is saved
at a second quality q2 (70-95), as an image editor would. The pasted region
lacks the double-quantisation trace. Printed: per method, the mean per-image
F1-best and AUC (better orientation) over the cases where ``adq`` found a
trace, and how many cases that was.

    python benchmarks/synthetic_double_jpeg.py [--cases 24] [--seed 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import noisestat  # noqa: E402
from noisestat.jpeg.adq import adq_map  # noqa: E402
from noisestat.localizers.objects import objects_localizer  # noqa: E402
from noisestat.metrics import evaluate_map  # noqa: E402
from noisestat.synth import make_splice, sample_image  # noqa: E402

HOSTS = ("astronaut", "coffee", "chelsea", "immunohistochemistry", "retina", "hubble_deep_field")


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).astype(np.float32)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=24)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)
    noisestat.warmup()
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    res: dict[str, list[tuple[float, float]]] = {"objects (noise floor)": [], "objects (default)": [],
                                                 "fusion": [], "adq map": []}
    found = 0
    for i in range(args.cases):
        host = sample_image(HOSTS[i % len(HOSTS)]).astype(np.float64)
        donor = sample_image(HOSTS[(i + 1) % len(HOSTS)])
        host = np.clip(host + rng.normal(0, 1.5, host.shape), 0, 255)
        q1, q2 = int(rng.integers(55, 90)), int(rng.integers(70, 96))
        sp = make_splice(_jpeg(host, q1), donor, region="blob", region_fraction=float(rng.uniform(0.05, 0.2)),
                         jpeg_quality=q2, seed=i)
        img = noisestat.load_image(sp.image)  # decoded pixels of a q2 JPEG: say so
        img = dataclasses.replace(img, info=dataclasses.replace(img.info, is_jpeg=True, jpeg_quality=float(q2)))
        a = adq_map(img)
        if not a.applicable:
            continue
        found += 1
        maps = {"objects (noise floor)": objects_localizer(img, features="sigma_floor").heatmap.values,
                "objects (default)": objects_localizer(img).heatmap.values,
                "fusion": noisestat.localize(img, method="fusion").heatmap.values,
                "adq map": a.values}
        for k, v in maps.items():
            m = evaluate_map(v, sp.mask, orientation="best")
            res[k].append((m.f1_best, m.auc))
    print(f"{args.cases} double-JPEG splices (seed {args.seed}); adq found a trace in {found}")
    print(f"{'method':24s} {'F1-best':>8s} {'AUC':>6s}")
    for k, v in res.items():
        arr = np.array(v) if v else np.full((1, 2), np.nan)
        print(f"{k:24s} {np.nanmean(arr[:, 0]):8.3f} {np.nanmean(arr[:, 1]):6.3f}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
