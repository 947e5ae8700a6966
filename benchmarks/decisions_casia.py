"""The decisions a user gets, on CASIA v1: masks at 0.5, pristine false alarms, integrity scores.

For every method, ``noisestat bench`` runs on ``data_manifests/casia1.json``
(root ``../shared/data/casia1``; ``--every 4`` by default: 115 spliced + 200
pristine images, ``--every 1`` for the full manifest), and on the pristine
images **re-saved at JPEG quality 93** (made here once with
:func:`noisestat.bench.protocols.postprocess_manifest`, so that they are
double-compressed like the spliced images; CASIA's spliced images are all
quality 93 or 99 and its pristine ones mostly 80-90). Printed per method:

* F1-best: mean per-image F1 at the best threshold, better orientation;
* F1@0.5: mean over spliced images of the F1 of ``Localization.mask``, as is;
* FPR pub / FPR q93: mean fraction of mask pixels over the pristine images,
  as published / re-saved at 93;
* AUC pub / AUC q93: image-level ROC AUC of ``Localization.score``, spliced
  against each pristine set (an image whose score is NaN, because the method
  does not apply, ranks lowest);
* BAcc pub / BAcc q93: balanced accuracy of ``score >= 0.5`` (NaN = not flagged).

Nothing is fitted here: the decision models in the package were fitted on
synthetic data (``benchmarks/fit_decisions.py``). The script only uses APIs
that existed before the decisions work, so it also measures older commits
(run it with ``PYTHONPATH=<old checkout>`` for the "before" table).

    python benchmarks/decisions_casia.py [--methods a,b] [--every 4] [--workers 2] [--out runs/decisions_casia]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

import noisestat
from noisestat.bench.protocols import postprocess_manifest
from noisestat.bench.rows import current_rows
from noisestat.bench.run import run_bench

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "casia1"
MANIFEST = REPO / "data_manifests" / "casia1.json"


def _f(r: dict, k: str) -> float:
    v = r.get(k)
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _mean(v: list[float]) -> float:
    a = np.array([x for x in v if math.isfinite(x)], dtype=float)
    return float(a.mean()) if a.size else math.nan


def image_auc(pos: list[float], neg: list[float]) -> float:
    """ROC AUC with ties counted half; NaN scores rank lowest."""
    p = np.nan_to_num(np.array(pos, float), nan=-np.inf)
    n = np.nan_to_num(np.array(neg, float), nan=-np.inf)
    if not p.size or not n.size:
        return math.nan
    gt = (p[:, None] > n[None, :]).sum()
    eq = (p[:, None] == n[None, :]).sum()
    return float((gt + 0.5 * eq) / (p.size * n.size))


def balanced_accuracy(pos: list[float], neg: list[float]) -> float:
    """Mean of TPR and TNR of ``score >= 0.5`` (NaN = not flagged)."""
    p = np.array(pos, float)
    n = np.array(neg, float)
    if not p.size or not n.size:
        return math.nan
    return float(0.5 * (np.mean(p >= 0.5) + np.mean(~(n >= 0.5))))


def table(rows: list[dict], rows_q93: list[dict], methods: list[str]) -> list[dict]:
    out = []
    for m in methods:
        sp = [r for r in rows if r["method"] == m and r["label"] == "spliced" and not r["error"]]
        pr = [r for r in rows if r["method"] == m and r["label"] == "pristine" and not r["error"]]
        pq = [r for r in rows_q93 if r["method"] == m and r["label"] == "pristine" and not r["error"]]
        s_sp = [_f(r, "score") for r in sp]
        out.append({
            "method": m, "n_spliced": len(sp), "n_pristine": len(pr), "n_q93": len(pq),
            "f1_best": _mean([_f(r, "best_f1_best") for r in sp]),
            "auc_px": _mean([_f(r, "best_auc") for r in sp]),
            "f1_05": _mean([_f(r, "mask_f1") if math.isfinite(_f(r, "mask_f1")) else 0.0 for r in sp]),
            "fpr_pub": _mean([_f(r, "mask_fpr") for r in pr]), "fpr_q93": _mean([_f(r, "mask_fpr") for r in pq]),
            "auc_pub": image_auc(s_sp, [_f(r, "score") for r in pr]),
            "auc_q93": image_auc(s_sp, [_f(r, "score") for r in pq]),
            "bacc_pub": balanced_accuracy(s_sp, [_f(r, "score") for r in pr]),
            "bacc_q93": balanced_accuracy(s_sp, [_f(r, "score") for r in pq]),
        })
    return out


COLS = (("F1-best", "f1_best"), ("AUCpx", "auc_px"), ("F1@0.5", "f1_05"), ("FPR pub", "fpr_pub"),
        ("FPR q93", "fpr_q93"), ("AUC pub", "auc_pub"), ("AUC q93", "auc_q93"), ("BAcc pub", "bacc_pub"),
        ("BAcc q93", "bacc_q93"))


def print_table(tab: list[dict]) -> None:
    print("| method | n sp/pr/q93 | " + " | ".join(c for c, _ in COLS) + " |")
    print("|---|---|" + "---|" * len(COLS))
    for t in tab:
        cells = " | ".join("—" if not math.isfinite(t[k]) else f"{t[k]:.3f}" for _, k in COLS)
        print(f"| {t['method']} | {t['n_spliced']}/{t['n_pristine']}/{t['n_q93']} | {cells} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", help="comma-separated (default: all registered)")
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--root", default=str(DEFAULT_ROOT))
    ap.add_argument("--out", default=str(REPO / "runs" / "decisions_casia"))
    args = ap.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        print(f"no CASIA v1 copy at {root}; pass --root", file=sys.stderr)
        return 1
    out = Path(args.out)
    methods = args.methods.split(",") if args.methods else noisestat.methods()
    q93 = out / "pristine_q93"
    if not (q93 / "manifest.json").is_file():
        postprocess_manifest(MANIFEST, root=root, out=q93, jpeg_quality=93, labels=("pristine",))
    t0 = time.time()
    noisestat.warmup()
    common = dict(methods=methods, every=args.every, workers=args.workers, progress=False, summary=False)
    run_bench(MANIFEST, root=root, out=out / f"run-every{args.every}", **common)
    run_bench(q93 / "manifest.json", root=q93, out=out / f"run-q93-every{args.every}", **common)
    rows = current_rows(out / f"run-every{args.every}")
    rows_q = current_rows(out / f"run-q93-every{args.every}")
    print(f"CASIA v1 every {args.every}th image per label; noisestat {noisestat.__version__}; "
          f"{time.time() - t0:.0f} s")
    print_table(table(rows, rows_q, methods))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
