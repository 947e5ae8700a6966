"""The JPEG/CFA toolbox on CASIA v1, scored from the files ``noisestat localize`` writes.

For every method, ``noisestat localize IMAGE... --method M --out DIR`` (default
parameters) is run on the spliced CASIA v1 images that ``../shared/peers`` scored
(every 4th spliced image sorted by name: 115), and each ``<stem>.heatmap.png`` is
read back as grey / 255 and scored against its mask exactly like the peers:
per image, F1 at the best threshold, MCC at the best threshold and ROC AUC in
the better orientation (map or 1 - map, the one with the higher AUC), and the
as-is F1-best beside it. A method that declares an image not applicable writes
a blank map, which is scored as such. The same scoring is applied to a map with
no forensic content, ``|gray - mean(gray)|``, and the peers' per-image figures
for the same images are printed beside ours.

    python benchmarks/jpeg_toolbox.py [--methods adq,jpeg_ghost,...] [--workers 2] [--out runs/jpeg_toolbox]

Nothing is fitted or tuned here; the script only measures.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from noisestat.bench.manifest import load_manifest, resolve
from noisestat.io import load_image, load_mask
from noisestat.metrics import evaluate_map

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import DEFAULT_PEERS, DEFAULT_ROOT, REPO, read_peers  # noqa: E402

#: our method -> its pyIFD counterpart in ../shared/peers
COUNTERPART = {"adq": "ADQ2", "jpeg_ghost": "GHOST", "dct_hist": "DCT", "grid_content": "CAGI",
               "blocking_grid": "BLK", "nadq": "NADQ", "cfa": "CFA2", "ela": "ELA"}
DEFAULT_METHODS = ("adq", "nadq", "jpeg_ghost", "dct_hist", "blocking_grid", "grid_content", "cfa")
METRICS = ("best_f1", "best_mcc", "best_auc", "as_is_f1")


def _localize_chunk(args: tuple[str, list[str], str]) -> int:
    """``noisestat localize`` on a chunk of images; its per-image lines go to ``<out>/localize.log``."""
    import contextlib

    from noisestat.cli import main

    method, paths, out = args
    Path(out).mkdir(parents=True, exist_ok=True)
    with open(Path(out) / "localize.log", "a") as log, contextlib.redirect_stdout(log):
        return main(["localize", *paths, "--method", method, "--out", out])


def run_method(method: str, paths: list[Path], out: Path, workers: int) -> float:
    """Write the files of ``method`` for ``paths`` into ``out``; returns wall seconds."""
    out.mkdir(parents=True, exist_ok=True)
    chunks = [[str(p) for p in paths[i::workers]] for i in range(workers)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers) as ex:
        list(ex.map(_localize_chunk, [(method, c, str(out)) for c in chunks if c]))
    return time.perf_counter() - t0


def score(values: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    best = evaluate_map(values, truth, orientation="best")
    as_is = evaluate_map(values, truth, orientation="as_is")
    return {"best_f1": best.f1_best, "best_mcc": best.mcc_best, "best_auc": best.auc, "as_is_f1": as_is.f1_best}


def score_files(out: Path, items: list[tuple[Path, Path]]) -> list[dict[str, float]]:
    rows = []
    for img_path, mask_path in items:
        png = out / f"{img_path.stem}.heatmap.png"
        truth = load_mask(mask_path)
        if png.is_file():
            values = np.asarray(Image.open(png).convert("L"), dtype=np.float64) / 255.0
        else:  # the method failed on this image: a blank map
            values = np.zeros(truth.shape)
        rows.append(score(values, truth))
    return rows


def content_only(items: list[tuple[Path, Path]]) -> list[dict[str, float]]:
    rows = []
    for img_path, mask_path in items:
        gray = load_image(img_path).gray().astype(np.float64)
        rows.append(score(np.abs(gray - gray.mean()), load_mask(mask_path)))
    return rows


def _mean(rows: list[dict[str, float]], key: str) -> float:
    v = np.array([r[key] for r in rows if r[key] is not None and math.isfinite(r[key])])
    return float(v.mean()) if v.size else math.nan


def _line(name: str, rows: list[dict[str, float]], extra: str = "") -> str:
    cells = " ".join(f"{_mean(rows, k):7.3f}" for k in METRICS)
    return f"{name:30s} {len(rows):4d} {cells}  {extra}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    ap.add_argument("--root", default=str(DEFAULT_ROOT))
    ap.add_argument("--manifest", default=str(REPO / "data_manifests" / "casia1.json"))
    ap.add_argument("--peers", default=str(DEFAULT_PEERS))
    ap.add_argument("--out", default=str(REPO / "runs" / "jpeg_toolbox"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--limit", type=int, help="first N images only (a quick check, not for tables)")
    args = ap.parse_args(argv)
    root, peers_dir = Path(args.root), Path(args.peers)
    if not root.is_dir() or not peers_dir.is_dir():
        print(f"need the dataset ({root}) and the peers' results ({peers_dir}); pass --root / --peers",
              file=sys.stderr)
        return 2
    peers = read_peers(peers_dir)
    names = set.intersection(*(set(v) for v in peers.values() if len(v) >= 100))
    manifest = load_manifest(args.manifest)
    items = sorted((resolve(root, it.image), resolve(root, it.mask)) for it in manifest.items
                   if it.label == "spliced" and it.mask and it.name in names)
    items = items[: args.limit] if args.limit else items
    print(f"{len(items)} spliced CASIA v1 images (the peers' every-4th selection), scored from the PNG files")
    head = f"{'method':30s} {'n':>4s} {'F1best':>7s} {'MCCb':>7s} {'AUC':>7s} {'F1b as-is':>9s}  (better orientation)"
    print(head + "\n" + "-" * len(head))
    print(_line("content-only |gray - mean|", content_only(items)))
    for method in args.methods.split(","):
        out = Path(args.out) / method
        wall = run_method(method, [p for p, _ in items], out, args.workers)
        rows = score_files(out, items)
        peer = COUNTERPART.get(method)
        ref = ""
        if peer in peers:
            recs = [peers[peer][p.name] for p, _ in items if p.name in peers[peer]]
            ref = (f"| pyIFD {peer}: {_mean(recs, 'f1_best'):.3f} {_mean(recs, 'mcc_best'):.3f} "
                   f"{_mean(recs, 'auc'):.3f} (n={len(recs)})")
        print(_line(f"noisestat {method}", rows, f"{ref}  [{wall:.0f} s wall]"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
