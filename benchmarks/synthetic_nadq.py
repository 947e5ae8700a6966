"""nadq on synthetic non-aligned double-JPEG splices, and its refusals on single / aligned double JPEGs.

Each case: a scikit-image sample photo (with a little noise, never compressed) is
saved at quality q1, decoded, cropped by a random (dy, dx) != (0, 0) (so the
first grid is shifted), a rectangle is replaced by never-compressed pixels of
another photo, and the result is saved at q2. Reported: grid shift found,
trace declared (``params["trace"]``), F1-best / AUC of the map. Controls: the same crops
saved once (q2) or twice on the same grid (q1 then q2): nadq should declare no trace, except on
``immunohistochemistry``, a sample photo that was JPEG-compressed at its source (its
first grid is found at shift (5, 3) of the full photo, moving with the crop).

    PYTHONPATH=. python benchmarks/synthetic_nadq.py --seeds 3
"""

from __future__ import annotations

import argparse
import io

import numpy as np
from PIL import Image

from noisestat.jpeg.nadq import nadq_map
from noisestat.metrics import evaluate_map
from noisestat.synth import available_sample_images, sample_image

H, W = 256, 384


def _jpeg(a: np.ndarray, q: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(a)).save(buf, format="JPEG", quality=int(q))
    return buf.getvalue()


def _decode(b: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(b)) as im:
        return np.asarray(im.convert("RGB"))


def _photos() -> list[np.ndarray]:
    out = []
    for name in available_sample_images():
        a = sample_image(name)
        if a.dtype != np.uint8 or min(a.shape[:2]) < H + 8 or a.shape[1] < W + 8:
            continue
        out.append(np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3])
    return out


def _case(rng, photos, k):
    host, donor = photos[k], photos[(k + 1 + rng.integers(len(photos) - 1)) % len(photos)]
    i, j = rng.integers(0, host.shape[0] - H - 7), rng.integers(0, host.shape[1] - W - 7)
    crop = np.clip(host[i:i + H + 8, j:j + W + 8] + rng.normal(0, 1.0, (H + 8, W + 8, 3)), 0, 255)
    crop = np.rint(crop).astype(np.uint8)
    q1, q2 = int(rng.choice([50, 60, 70])), int(rng.choice([85, 90, 95]))
    s = rng.integers(0, 8, 2)
    if not s.any():
        s[1] = 1
    img = _decode(_jpeg(crop, q1))[s[0]:s[0] + H, s[1]:s[1] + W].copy()
    mask = np.zeros((H, W), bool)
    h, w = rng.integers(H // 4, H // 2), rng.integers(W // 4, W // 2)
    y0, x0 = rng.integers(0, H - h), rng.integers(0, W - w)
    mask[y0:y0 + h, x0:x0 + w] = True
    img[mask] = donor[: H, : W][mask]
    return crop[:H, :W], img, mask, (int(s[0]), int(s[1])), q1, q2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    photos = _photos()
    rows, refusals = [], {"single": [0, 0], "aligned": [0, 0]}
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        for k in range(len(photos)):
            clean, img, mask, shift, q1, q2 = _case(rng, photos, k)
            hm = nadq_map(_loaded(_jpeg(img, q2)))
            m = evaluate_map(hm.values, mask)
            rows.append((hm.params["shift"] == shift, hm.params["trace"], m.f1_best if hm.applicable else 0.0,
                         m.auc if hm.applicable else 0.5))
            print(f"seed {seed} photo {k:2d} q1={q1} q2={q2} shift={shift} found={hm.params['shift']} "
                  f"ev={hm.params['shift_evidence']:.0f} trace={hm.params['trace']} F1best={rows[-1][2]:.3f}",
                  flush=True)
            for kind, b in (("single", _jpeg(clean, q2)), ("aligned", _jpeg(_decode(_jpeg(clean, q1)), q2))):
                refusals[kind][0] += not nadq_map(_loaded(b)).params["trace"]
                refusals[kind][1] += 1
    r = np.array(rows, float)
    print(f"\nNA-DJPG splices: {len(rows)}; shift found {r[:, 0].mean():.2f}; trace {r[:, 1].mean():.2f}; "
          f"F1-best (n/a = 0) {r[:, 2].mean():.3f}; AUC {r[:, 3].mean():.3f}; "
          f"F1-best where a trace {r[r[:, 1] > 0, 2].mean():.3f}")
    for kind, (na, n) in refusals.items():
        print(f"{kind} compressions: {na}/{n} without a trace")


def _loaded(b: bytes):
    import tempfile

    from noisestat.io import load_image

    with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
        f.write(b)
        f.flush()
        return load_image(f.name)


if __name__ == "__main__":
    main()
