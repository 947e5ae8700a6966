"""Accuracy of the registered methods on CASIA v1, beside the peers' numbers on the same images.

Runs ``noisestat.bench`` on ``data_manifests/casia1.json`` (root
``../shared/data/casia1``) for the given methods (default: all registered),
after ``noisestat.warmup()``, into a resumable run folder (default
``runs/casia1``, git-ignored; a rerun only computes what is missing), then
prints per method the mean per-image F1-best, F1@0.5, MCC-best and AUC, as-is
and better-of orientation, and the median seconds per megapixel.

The peers (``../shared/peers/*.tsv``: pyIFD 0.0.3 and a Splicebuster port)
were scored on every 4th spliced image sorted by name, per image in the better
orientation, F1/MCC at 0.5 after min-max normalising each map. The second table
compares on exactly the images both have: our better-orientation numbers
beside theirs (our F1@0.5 uses the fixed, un-normalised map).

    python benchmarks/accuracy.py [--methods a,b] [--every 4] [--workers 2] [--out runs/casia1]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import time
from pathlib import Path

import numpy as np

import noisestat
from noisestat.bench.run import BenchConfig, run_bench
from noisestat.bench.summary import group_rows

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "casia1"
DEFAULT_PEERS = REPO.parent / "shared" / "peers"
PEER_COLS = {"F1best": "f1_best", "F1@t": "f1", "MCCb": "mcc_best", "AUC": "auc"}


def _mean(v) -> float:
    a = np.asarray([x for x in v if x is not None and math.isfinite(x)], dtype=float)
    return float(a.mean()) if a.size else math.nan


def _fmt(x: float) -> str:
    return "  -  " if not math.isfinite(x) else f"{x:.3f}"


def read_peers(folder: Path) -> dict[str, dict[str, dict[str, float]]]:
    """algo -> image name -> {f1_best, f1, mcc_best, auc, s_per_mp} from the peers' TSV files."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for f in sorted(folder.glob("*.tsv")):
        with open(f, newline="") as fh:
            for r in csv.DictReader(fh, delimiter="\t"):
                name = r.get("image") or ""
                if not name.lower().endswith((".jpg", ".png", ".tif")):
                    continue
                rec = {}
                for col, key in (*PEER_COLS.items(), ("s/MP", "s_per_mp")):
                    try:
                        rec[key] = float(r[col])
                    except (KeyError, TypeError, ValueError):
                        rec[key] = math.nan
                out.setdefault(r["algo"], {})[name] = rec
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", help="comma-separated (default: all registered)")
    ap.add_argument("--root", default=str(DEFAULT_ROOT))
    ap.add_argument("--manifest", default=str(REPO / "data_manifests" / "casia1.json"))
    ap.add_argument("--out", default=str(REPO / "runs" / "casia1"))
    ap.add_argument("--peers", default=str(DEFAULT_PEERS))
    ap.add_argument("--every", type=int, default=1, help="every K-th image (the peers used 4)")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scheduler")
    args = ap.parse_args(argv)
    if not Path(args.root).is_dir():
        print(f"dataset root {args.root} not found; pass --root", file=sys.stderr)
        return 2
    methods = args.methods.split(",") if args.methods else noisestat.methods()
    t0 = time.perf_counter()
    warm = noisestat.warmup()
    print(f"warmup {warm if isinstance(warm, float) else time.perf_counter() - t0:.1f} s")
    config = BenchConfig(methods=methods, workers=args.workers, scheduler=args.scheduler, every=args.every,
                         limit=args.limit)
    res = run_bench(args.manifest, root=args.root, out=args.out, config=config)
    print(f"{res.rundir}: {res.n_tasks} rows, {res.n_computed} computed, {res.n_reused} reused, "
          f"{res.n_errors} errors, wall {res.wall_seconds:.1f} s")
    groups = group_rows(res.rows)
    print("\nPer-image means over the spliced images (n = images evaluated); s/MP median over all images")
    head = f"{'method':26s} {'n':>4s} | {'F1best':>6s} {'F1@.5':>6s} {'MCCb':>6s} {'AUC':>6s} (as is) | " \
           f"{'F1best':>6s} {'F1@.5':>6s} {'MCCb':>6s} {'AUC':>6s} (best orient.) | {'s/MP':>6s}"
    print(head)
    print("-" * len(head))
    for cfg, rs in groups.items():
        sp = [r for r in rs if r["label"] == "spliced" and not r["error"]]
        cells = []
        for o in ("as_is", "best"):
            cells.append(" ".join(f"{_fmt(_mean(r[f'{o}_{k}'] for r in sp)):>6s}"
                                  for k in ("f1_best", "f1", "mcc_best", "auc")))
        spm = [r["s_per_mp"] for r in rs if not r["error"]]
        print(f"{cfg:26s} {len(sp):4d} | {cells[0]}         | {cells[1]}               | "
              f"{_fmt(float(np.median(spm)) if spm else math.nan):>6s}")
    txt = Path(res.rundir) / "summary.txt"
    if txt.is_file():
        print("\n" + txt.read_text())

    peers_dir = Path(args.peers)
    if not peers_dir.is_dir():
        return 0
    peers = read_peers(peers_dir)
    if not peers:
        return 0
    common_names = set.intersection(*(set(v) for v in peers.values() if len(v) >= 100)) if peers else set()
    print(f"On the peers' images ({len(common_names)} spliced images; better orientation per image):")
    head = f"{'method':26s} {'n':>4s} {'F1best':>6s} {'F1@.5':>6s} {'MCCb':>6s} {'AUC':>6s} {'s/MP':>6s}"
    print(head)
    print("-" * len(head))
    for cfg, rs in groups.items():
        sp = [r for r in rs if r["label"] == "spliced" and not r["error"] and r["name"] in common_names]
        if not sp:
            continue
        vals = " ".join(f"{_fmt(_mean(r[f'best_{k}'] for r in sp)):>6s}" for k in ("f1_best", "f1", "mcc_best", "auc"))
        spm = float(np.median([r["s_per_mp"] for r in sp]))
        print(f"{'noisestat ' + cfg:26s} {len(sp):4d} {vals} {_fmt(spm):>6s}")
    for algo, by_img in sorted(peers.items()):
        recs = [v for k, v in by_img.items() if k in common_names]
        if not recs:
            continue
        vals = " ".join(f"{_fmt(_mean(r[k] for r in recs)):>6s}" for k in ("f1_best", "f1", "mcc_best", "auc"))
        spm = float(np.nanmedian([r["s_per_mp"] for r in recs]))
        print(f"{'peer ' + algo:26s} {len(recs):4d} {vals} {_fmt(spm):>6s}")
    print("(peers: F1@.5 after per-image min-max normalisation; ours: the fixed map at 0.5)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
