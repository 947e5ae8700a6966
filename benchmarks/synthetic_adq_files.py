"""The adq map on synthetic double-JPEG splices written as JPEG files (no evaluation data read).

Each case: a 384 x 256 crop of a scikit-image sample photo with sensor noise
N(0, 1.5), saved as JPEG at a first quality q1 (55-89) and decoded; a blob from
another photo (never compressed, 5-30 % of the crop) is pasted into it; the
result is saved as a JPEG FILE at a second quality q2 (70-99), so that ``adq``
reads the file's own quantised coefficients. The same crop saved once at q2 is
the single-compression control. Printed: the mean F1-best, MCC-best and AUC
(better orientation; a not-applicable map counts as blank) over the splices,
how many splices got a map, and on how many splices and singly compressed
controls the image-level trace was found (``params["trace_found"]``; the
controls should have none). The constants of :mod:`noisestat.jpeg.adq` were
chosen on this set (seed 21).

    python benchmarks/synthetic_adq_files.py [--cases 24] [--seed 21] [--keep DIR]

``--keep DIR`` keeps the files (``double<i>.jpg``, ``double<i>.mask.npy``,
``single<i>.jpg``); where a ``double<i>.jpg.peer.npy`` block map of another
implementation lies beside a file (e.g. pyIFD's ADQ2 ``getJmap``, run
separately in its own environment), it is scored the same way (brought to full
size by nearest-neighbour) and printed beside.
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


def run(cases: int, seed: int, folder: Path, first: tuple[int, int] = (55, 89),
        second: tuple[int, int] = (70, 99), area: tuple[float, float] = (0.05, 0.3),
        median: int = 5) -> dict[str, float]:
    """Write the cases into ``folder`` and score ``adq`` on them."""
    import cv2

    rng = np.random.default_rng(seed)
    scores, peer, mapped, traced, singles = [], [], 0, 0, 0
    for i in range(cases):
        h, d = _rgb(HOSTS[i % len(HOSTS)]), _rgb(HOSTS[(i + 5) % len(HOSTS)])
        y0, x0 = int(rng.integers(0, h.shape[0] - 256)), int(rng.integers(0, h.shape[1] - 384))
        host = np.clip(h[y0 : y0 + 256, x0 : x0 + 384].astype(np.float64) + rng.normal(0, 1.5, (256, 384, 3)), 0, 255)
        q1, q2 = int(rng.integers(first[0], first[1] + 1)), int(rng.integers(second[0], second[1] + 1))
        sp = make_splice(_decoded_jpeg(host, q1), d, region="blob", region_fraction=float(rng.uniform(*area)),
                         seed=i)
        path = _save(sp.image, folder / f"double{i}.jpg", q2)
        np.save(folder / f"double{i}.mask.npy", sp.mask)
        hm = adq_map(path, median=median)
        score = hm.values if hm.applicable else np.zeros(sp.mask.shape, np.float32)
        m = evaluate_map(score, sp.mask, orientation="best")
        scores.append((m.f1_best, m.mcc_best, m.auc))
        mapped += hm.applicable
        traced += bool(hm.params.get("trace_found", False))
        singles += bool(adq_map(_save(host, folder / f"single{i}.jpg", q2)).params.get("trace_found", False))
        other = folder / f"double{i}.jpg.peer.npy"
        if other.is_file():
            pm = cv2.resize(np.load(other).astype(np.float32), sp.mask.shape[::-1], interpolation=cv2.INTER_NEAREST)
            m = evaluate_map(pm, sp.mask, orientation="best")
            peer.append((m.f1_best, m.mcc_best, m.auc))
    r = np.nanmean(np.array(scores), axis=0)
    out = {"f1_best": float(r[0]), "mcc_best": float(r[1]), "auc": float(r[2]), "mapped": mapped,
           "traced": traced, "singles_traced": singles}
    if peer:
        p = np.nanmean(np.array(peer), axis=0)
        out.update(peer_n=len(peer), peer_f1_best=float(p[0]), peer_mcc_best=float(p[1]), peer_auc=float(p[2]))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=24)
    p.add_argument("--seed", type=int, default=21)
    p.add_argument("--keep", help="write the files into this folder and keep them")
    p.add_argument("--first", default="55-89", help="range of the first quality (default 55-89)")
    p.add_argument("--second", default="70-99", help="range of the second quality (default 70-99)")
    p.add_argument("--area", default="0.05-0.3", help="range of the pasted share of the crop (default 0.05-0.3)")
    p.add_argument("--median", type=int, default=5, help="adq's median parameter (default 5)")
    args = p.parse_args(argv)
    first, second = (tuple(int(v) for v in a.split("-")) for a in (args.first, args.second))
    area = tuple(float(v) for v in args.area.split("-"))
    t0 = time.perf_counter()
    if args.keep:
        Path(args.keep).mkdir(parents=True, exist_ok=True)
        r = run(args.cases, args.seed, Path(args.keep), first, second, area, args.median)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            r = run(args.cases, args.seed, Path(tmp), first, second, area, args.median)
    print(f"{args.cases} double-JPEG splice files (seed {args.seed}, qualities {args.first} then {args.second}, area {args.area}, median {args.median}): adq mean F1-best {r['f1_best']:.3f} "
          f"MCC-best {r['mcc_best']:.3f} AUC {r['auc']:.3f} (n/a = blank), map on {r['mapped']}/{args.cases}, "
          f"trace found on {r['traced']}/{args.cases}; singly compressed controls with a trace: "
          f"{r['singles_traced']}/{args.cases}  [{time.perf_counter() - t0:.0f} s]")
    if "peer_n" in r:
        print(f"  peer maps (*.peer.npy) on {r['peer_n']}: F1-best {r['peer_f1_best']:.3f} "
              f"MCC-best {r['peer_mcc_best']:.3f} AUC {r['peer_auc']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
