"""Object localizers and the adq map on synthetic double-JPEG splices (no evaluation data read).

Each case: a scikit-image sample photo with sensor noise N(0, 1.5), saved as
JPEG at a first quality q1 (55-89) and decoded; a blob from the next photo
(never compressed, 5-20 % of the image) is pasted into it; the result is saved
at a second quality q2 (70-95), as an image editor would. The pasted region
lacks the double-quantisation trace. Printed: per method, the mean per-image
F1-best and AUC (better orientation) over the cases where ``adq`` found a
trace, and how many cases that was.

    python benchmarks/synthetic_double_jpeg.py [--cases 24] [--seed 7]

``--ghost``: instead, ``jpeg_ghost`` (default parameters) on three kinds of aligned
double-JPEG splice of 320 x 448 crops of every large sample photo (noise N(0, 1)),
last save at q2 = 86-98: "farid" (a region saved at q1 < q2 - 8 in a never-compressed
host), "host" (a never-compressed region in a host saved at q1) and "both" (a region
of another photo saved at its own quality, pasted 0-7 pixels off the grid, into a host
saved at q1); beside it the same map at pyIFD's quality (the first local minimum of
the image-mean difference curve, computed here with ``ghost_differences``).

    python benchmarks/synthetic_double_jpeg.py --ghost [--seeds 6]
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


def _ghost_case(rng: np.random.Generator, photos: list[np.ndarray], k: int, kind: str):
    """One synthetic splice of ``kind`` ("farid", "host", "both"): (JPEG bytes, mask)."""
    from PIL import Image

    def jpeg_roundtrip(a: np.ndarray, *, quality: int) -> np.ndarray:
        return _jpeg(a, quality).astype(np.uint8)

    h, w = 320, 448
    noisy = [np.clip(np.rint(a[:h, :w] + rng.normal(0, 1.0, (h, w, 3))), 0, 255).astype(np.uint8)
             for a in (photos[k], photos[(k + 1 + rng.integers(len(photos) - 1)) % len(photos)])]
    host, donor = noisy
    q2 = int(rng.integers(86, 99))
    mask = np.zeros((h, w), bool)
    mh, mw = rng.integers(h // 5, h // 2), rng.integers(w // 5, w // 2)
    y0, x0 = rng.integers(0, h - mh), rng.integers(0, w - mw)
    mask[y0:y0 + mh, x0:x0 + mw] = True
    q1 = int(rng.integers(55, q2 - 8))
    if kind == "farid":
        img = host.copy()
        img[mask] = jpeg_roundtrip(host, quality=q1)[mask]
    else:
        img = jpeg_roundtrip(host, quality=q1)
        if kind == "host":
            img[mask] = donor[mask]
        else:
            qd = int(rng.integers(55, q2 - 8))
            s = rng.integers(0, 8, 2)
            padded = jpeg_roundtrip(np.pad(donor, ((8, 8), (8, 8), (0, 0)), mode="reflect"), quality=qd)
            img[mask] = padded[s[0]:s[0] + h, s[1]:s[1] + w][mask]
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=q2)
    return buf.getvalue(), mask


def ghost_main(seeds: int) -> int:
    """The ``--ghost`` table: mean F1-best (better orientation) per kind of splice."""
    import tempfile

    from noisestat.jpeg.ghost import ghost_differences, jpeg_ghost_map
    from noisestat.synth import available_sample_images

    photos = [a for a in (sample_image(n) for n in available_sample_images())
              if a.dtype == np.uint8 and a.shape[0] >= 320 and a.shape[1] >= 448]
    photos = [np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3] for a in photos]
    print(f"{'kind':6s} {'n':>3s} {'default':>8s} {'pyIFD q':>8s}  (F1-best, better orientation)")
    for kind in ("farid", "host", "both"):
        res = []
        for seed in range(seeds):
            rng = np.random.default_rng(100 + seed)
            for k in range(len(photos)):
                data, mask = _ghost_case(rng, photos, k, kind)
                with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
                    f.write(data)
                    f.flush()
                    img = noisestat.load_image(f.name)
                hm = jpeg_ghost_map(img)
                qs = hm.params["qualities"]
                c = ghost_differences(img, qualities=qs).reshape(len(qs), -1).mean(axis=1)
                lm = [i for i in range(1, len(qs) - 1) if c[i] < c[i - 1] and c[i] < c[i + 1]]
                alt = jpeg_ghost_map(img, quality=qs[lm[0]]) if lm else hm
                res.append([evaluate_map(m.values, mask, orientation="best").f1_best for m in (hm, alt)])
        r = np.array(res)
        print(f"{kind:6s} {len(r):3d} {r[:, 0].mean():8.3f} {r[:, 1].mean():8.3f}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=24)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--ghost", action="store_true", help="the jpeg_ghost table instead (see the module doc)")
    p.add_argument("--seeds", type=int, default=6, help="--ghost: seeds (cases per kind: 12 per seed)")
    args = p.parse_args(argv)
    if args.ghost:
        return ghost_main(args.seeds)
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
        if not (a.applicable and a.params["trace_found"]):  # the image-level trace
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
