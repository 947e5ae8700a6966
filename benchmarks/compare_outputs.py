"""Before/after output comparison: do two checkouts give the same maps and decisions?

Dump every method's outputs with each checkout, then compare the dumps::

    PYTHONPATH=/path/to/before python benchmarks/compare_outputs.py dump /tmp/before.npz
    PYTHONPATH=/path/to/after  python benchmarks/compare_outputs.py dump /tmp/after.npz
    python benchmarks/compare_outputs.py diff /tmp/before.npz /tmp/after.npz

The diff prints the largest |difference| per method, kind and field, then
every discrete difference (masks, selected objects, labels) and every heatmap
that differs by more than 1e-6.

Seeded images: splices of scikit-image sample images (plain, JPEG q80 in memory,
and double JPEG files q70 -> q90 / q85 -> q95), every registered method, both the
method's own result (registry.localize) and the calibrated one (noisestat.localize).
"""
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np


def images(tmp: Path):
    from noisestat.synth import make_splice, sample_image
    out = []
    for k, (name, size) in enumerate([("astronaut", (384, 512)), ("coffee", (320, 480)),
                                      ("chelsea", (300, 451)), ("camera", (256, 256)),
                                      ("rocket", (427, 640))]):
        host = sample_image(name)
        donor = sample_image("brick" if k % 2 else "grass")
        host = cv2.resize(host, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        s = make_splice(host, donor, noise_sigma=4.0 if k % 2 == 0 else None, seed=10 + k,
                        region="blob" if k % 2 else "ellipse")
        out.append((f"{name}-plain", s.image))
        s2 = make_splice(host, None, jpeg_quality=80, seed=20 + k, region="rectangle")
        out.append((f"{name}-jpeg80", s2.image))
        # double JPEG file with a spliced region
        q1, q2 = [(70, 90), (85, 95)][k % 2]
        img = s.image if s.image.ndim == 3 else np.repeat(s.image[:, :, None], 3, 2)
        p1 = tmp / f"{name}_a.jpg"
        cv2.imwrite(str(p1), np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, q1])
        first = cv2.imread(str(p1), cv2.IMREAD_COLOR)
        r = np.random.default_rng(k)
        y0, x0 = int(r.integers(0, size[0] // 2)), int(r.integers(0, size[1] // 2))
        first[y0:y0 + size[0] // 3, x0:x0 + size[1] // 3] = cv2.resize(
            img, (size[1], size[0]))[y0:y0 + size[0] // 3, x0:x0 + size[1] // 3, ::-1]
        p2 = tmp / f"{name}_dj.jpg"
        cv2.imwrite(str(p2), first, [cv2.IMWRITE_JPEG_QUALITY, q2])
        out.append((f"{name}-dj{q1}-{q2}", str(p2)))
    return out


def dump(path: str) -> None:
    import noisestat
    from noisestat import registry
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for iname, img in images(Path(tmp)):
            loaded = noisestat.load_image(img)
            for m in noisestat.methods():
                for kind, fn in (("own", registry.localize), ("cal", noisestat.localize)):
                    try:
                        loc = fn(loaded, method=m)
                    except Exception as exc:  # noqa: BLE001
                        res[f"{iname}|{m}|{kind}|error"] = np.array(repr(exc))
                        continue
                    key = f"{iname}|{m}|{kind}"
                    res[key + "|values"] = np.asarray(loc.heatmap.values, np.float32)
                    res[key + "|raw"] = np.asarray(loc.heatmap.raw, np.float32)
                    res[key + "|mask"] = np.asarray(loc.mask)
                    res[key + "|score"] = np.array(loc.score)
                    if loc.objects is not None:
                        res[key + "|selected"] = np.array([o.selected for o in loc.objects])
                        res[key + "|labels"] = np.array([o.label for o in loc.objects])
            print(iname, flush=True)
    np.savez_compressed(path, **res)


def diff(a: str, b: str) -> None:
    A, B = np.load(a), np.load(b)
    keys = sorted(set(A.files) | set(B.files))
    worst: dict[str, float] = {}
    flips = []
    for k in keys:
        if k not in A.files or k not in B.files:
            flips.append(f"missing in one: {k}")
            continue
        x, y = A[k], B[k]
        field = k.rsplit("|", 1)[1]
        if x.shape != y.shape:
            flips.append(f"shape {k}: {x.shape} vs {y.shape}")
            continue
        if field in ("values", "raw", "score"):
            xf, yf = x.astype(np.float64), y.astype(np.float64)
            both_nan = np.isnan(xf) & np.isnan(yf)
            d = np.where(both_nan, 0.0, np.abs(xf - yf))
            dm = float(np.nanmax(d)) if d.size else 0.0
            if np.any(np.isnan(xf) != np.isnan(yf)):
                dm = float("inf")
            m = k.split("|")[1] + "|" + k.split("|")[2] + "|" + field
            worst[m] = max(worst.get(m, 0.0), dm)
            if field == "values" and dm > 1e-6:
                flips.append(f"values differ {k}: max {dm:.3g}")
        else:
            if not np.array_equal(x, y):
                n = int(np.sum(x != y)) if x.dtype != object else -1
                flips.append(f"{field} differs {k}: {n} entries")
    print(f"{'method|kind|field':40s} max |diff|")
    for m in sorted(worst):
        print(f"{m:40s} {worst[m]:.3g}")
    print("\n".join(flips) if flips else "no discrete differences; all heatmaps within 1e-6")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "dump":
        dump(sys.argv[2])
    elif len(sys.argv) == 4 and sys.argv[1] == "diff":
        diff(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
