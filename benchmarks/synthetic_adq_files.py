"""The adq map on synthetic double-JPEG splices written as JPEG files (no evaluation data read).

Each case: a 384 x 256 crop of a scikit-image sample photo with sensor noise
N(0, 1.5), saved as JPEG at a first quality q1 (55-89) and decoded; a blob from
another photo (never compressed, 5-30 % of the crop) is pasted into it; the
result is saved as a JPEG FILE at a second quality q2 (70-99), so that ``adq``
reads the file's own quantised coefficients. The same crop saved once at q2 is
the single-compression control. Printed: the mean F1-best (better orientation;
a not-applicable map counts as blank) over the splices, how many splices got a
map, and how many singly compressed controls did (they should not). The
constants of :mod:`noisestat.jpeg.adq` were chosen on this set (seed 21).

    python benchmarks/synthetic_adq_files.py [--cases 24] [--seed 21]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from noisestat.jpeg.adq import adq_map  # noqa: E402
from noisestat.metrics import evaluate_map  # noqa: E402
from noisestat.synth import make_splice, sample_image  # noqa: E402

HOSTS = ("astronaut", "coffee", "chelsea", "immunohistochemistry", "retina", "hubble_deep_field",
         "rocket", "brick", "grass", "gravel", "camera", "moon")


def _rgb(name: str) -> np.ndarray:
    a = sample_image(name)
    return np.stack([a] * 3, -1) if a.ndim == 2 else a


def _decoded_jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im).astype(np.float32)


def _save(a: np.ndarray, path: Path, quality: int) -> Path:
    from PIL import Image

    Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8)).save(path, quality=int(quality))
    return path


def run(cases: int, seed: int, folder: Path) -> dict[str, float]:
    """Write the cases into ``folder`` and score ``adq`` on them."""
    rng = np.random.default_rng(seed)
    f1, mapped, singles = [], 0, 0
    for i in range(cases):
        h, d = _rgb(HOSTS[i % len(HOSTS)]), _rgb(HOSTS[(i + 5) % len(HOSTS)])
        y0, x0 = int(rng.integers(0, h.shape[0] - 256)), int(rng.integers(0, h.shape[1] - 384))
        host = np.clip(h[y0 : y0 + 256, x0 : x0 + 384].astype(np.float64) + rng.normal(0, 1.5, (256, 384, 3)), 0, 255)
        q1, q2 = int(rng.integers(55, 90)), int(rng.integers(70, 100))
        sp = make_splice(_decoded_jpeg(host, q1), d, region="blob", region_fraction=float(rng.uniform(0.05, 0.3)),
                         seed=i)
        hm = adq_map(_save(sp.image, folder / f"double{i}.jpg", q2))
        score = hm.values if hm.applicable else np.zeros(sp.mask.shape, np.float32)
        f1.append(evaluate_map(score, sp.mask, orientation="best").f1_best)
        mapped += hm.applicable
        singles += adq_map(_save(host, folder / f"single{i}.jpg", q2)).applicable
    return {"f1_best": float(np.mean(f1)), "mapped": mapped, "singles_mapped": singles}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=24)
    p.add_argument("--seed", type=int, default=21)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        r = run(args.cases, args.seed, Path(tmp))
    print(f"{args.cases} double-JPEG splice files (seed {args.seed}): adq mean F1-best {r['f1_best']:.3f} "
          f"(n/a = blank), map on {r['mapped']}/{args.cases}; singly compressed controls with a map: "
          f"{r['singles_mapped']}/{args.cases}  [{time.perf_counter() - t0:.0f} s]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
