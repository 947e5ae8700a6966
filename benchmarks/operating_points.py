"""Do the packaged operating points hold on synthetic data they were not fitted on?

The decision models and their offsets (``noisestat/decisions/calibration.json``)
are fitted by ``benchmarks/fit_decisions.py`` so that, on its fitting set, at
most 5 % of the pristine images score >= 0.5 (image offset) and the masks flag
at most 1 % of the pristine pixels (pixel offset). This script makes a
held-out set with the same generator (:func:`fit_decisions.write_dataset`)
but another seed and, by default, the other noise model (``--sensor camera``:
Poisson-Gaussian noise on linear light, demosaicking, in-camera denoising or
sharpening, against the packaged models' ``gaussian``), runs ``noisestat
bench`` on it and prints, per method, what a user gets at 0.5:

* FPR img: share of pristine images with ``score >= 0.5`` (target 0.05);
* TPR img: share of spliced images with ``score >= 0.5``;
* BAcc: their balanced accuracy; AUC img: image-level ROC AUC (ties half, NaN lowest);
* px share: mean fraction of mask pixels over the pristine images (target 0.01);
* F1@0.5: mean over spliced images of the F1 of ``Localization.mask`` (an
  undefined F1 counts 0).

Nothing is fitted here and no evaluation data is read.

    python benchmarks/operating_points.py [--n 100] [--seed 11] [--sensor camera] [--methods a,b]
        [--workers 2] [--work runs/operating_points]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fit_decisions as fd  # noqa: E402
from decisions_casia import image_auc  # noqa: E402

import noisestat  # noqa: E402
from noisestat.bench.rows import current_rows  # noqa: E402
from noisestat.bench.run import run_bench  # noqa: E402


def _num(r: dict, k: str) -> float:
    try:
        return float(r.get(k))
    except (TypeError, ValueError):
        return math.nan


def summary(rows: list[dict], method: str) -> dict[str, float]:
    """The figures printed for one method (see the module docstring)."""
    ok = [r for r in rows if r["method"] == method and not r["error"]]
    sp = [_num(r, "score") for r in ok if r["label"] == "spliced"]
    pr = [_num(r, "score") for r in ok if r["label"] == "pristine"]
    fpr = float(np.mean(np.array(pr) >= 0.5)) if pr else math.nan
    tpr = float(np.mean(np.array(sp) >= 0.5)) if sp else math.nan
    f1 = [_num(r, "mask_f1") for r in ok if r["label"] == "spliced"]
    share = [_num(r, "mask_fpr") for r in ok if r["label"] == "pristine"]
    return {"n_spliced": len(sp), "n_pristine": len(pr), "fpr_img": fpr, "tpr_img": tpr,
            "bacc": 0.5 * (tpr + 1.0 - fpr), "auc_img": image_auc(sp, pr),
            "px_share": float(np.nanmean(share)) if share else math.nan,
            "f1_05": float(np.mean([v if math.isfinite(v) else 0.0 for v in f1])) if f1 else math.nan}


COLS = (("FPR img", "fpr_img"), ("TPR img", "tpr_img"), ("BAcc", "bacc"), ("AUC img", "auc_img"),
        ("px share", "px_share"), ("F1@0.5", "f1_05"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="spliced and (as many) pristine images")
    ap.add_argument("--seed", type=int, default=11, help="not the fitting seed (7)")
    ap.add_argument("--sensor", default="camera", choices=fd.ff.SENSORS)
    ap.add_argument("--methods", help="comma-separated (default: all registered)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default=str(fd.ROOT / "runs" / "operating_points"))
    args = ap.parse_args(argv)
    work = Path(args.work)
    t0 = time.time()
    manifest = fd.ensure_dataset(work, args.n, args.seed, args.sensor)
    data = manifest.parent
    methods = args.methods.split(",") if args.methods else noisestat.methods()
    out = work / f"run-{data.name}"
    run_bench(manifest, root=data, out=out, methods=methods, workers=args.workers, progress=False, summary=False,
              retry_errors=True)
    rows = current_rows(out)
    print(f"held-out synthetic set: {data.name} ({args.n} spliced + {args.n} pristine, sensor {args.sensor}, "
          f"seed {args.seed}); noisestat {noisestat.__version__}; {time.time() - t0:.0f} s")
    print("| method | n sp/pr | " + " | ".join(c for c, _ in COLS) + " |")
    print("|---|---|" + "---|" * len(COLS))
    for m in methods:
        s = summary(rows, m)
        cells = " | ".join("—" if not math.isfinite(s[k]) else f"{s[k]:.3f}" for _, k in COLS)
        print(f"| {m} | {s['n_spliced']}/{s['n_pristine']} | {cells} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
