"""The default method's decisions on CASIA v1 under several calibration files, side by side.

For comparing refitted decision models (``benchmarks/fit_decisions.py --out
FILE``, ``noisestat calibrate-maps``) with the packaged one on the same
images, without touching the package: every ``--every``-th spliced and
published pristine item of ``data_manifests/casia1.json`` goes through
``noisestat.localize(img, method=M, calibration=FILE)``. Printed per file:
image-level AUC of ``score`` (ties half, NaN lowest) and balanced accuracy of
``score >= 0.5`` (the functions of ``decisions_casia.py``), the TNR, the mean
F1 of ``Localization.mask`` on the spliced images and the mean mask fraction
on the pristine ones. Nothing is fitted here.

    python benchmarks/calibration_variants.py CAL.json [CAL2.json ...] [--method objects] [--every 4]
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from decisions_casia import DEFAULT_ROOT, MANIFEST, balanced_accuracy, image_auc  # noqa: E402


def _one(item: dict, *, root: str, method: str, calibration: str, convention: str) -> tuple[str, float, float]:
    """(label, score, mask F1 for a spliced item / mask fraction for a pristine one)."""
    import noisestat
    from noisestat.io import load_mask

    img = noisestat.load_image(Path(root) / item["image"])
    loc = noisestat.localize(img, method=method, calibration=calibration)
    m = np.asarray(loc.mask, bool)
    if item["label"] == "spliced":
        gt = load_mask(Path(root) / item["mask"], img.shape, convention=convention)
        return "spliced", float(loc.score), float(2 * (m & gt).sum() / max(int(m.sum() + gt.sum()), 1))
    return "pristine", float(loc.score), float(m.mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("calibrations", nargs="+", help="calibration JSON files")
    ap.add_argument("--method", default="objects")
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--root", default=str(DEFAULT_ROOT))
    args = ap.parse_args(argv)
    if not Path(args.root).is_dir():
        print(f"no CASIA v1 copy at {args.root}; pass --root", file=sys.stderr)
        return 1
    manifest = json.loads(MANIFEST.read_text())
    items = [it for it in manifest["items"] if it["label"] in ("spliced", "pristine")]
    items = items[:: args.every]
    print("| calibration | method | n sp/pr | AUC pub | BAcc pub | TNR pub | F1@0.5 | FPR pub |")
    print("|---|---|---|---|---|---|---|---|")
    with ProcessPoolExecutor(args.workers) as ex:
        for cal in args.calibrations:
            res = list(ex.map(partial(_one, root=args.root, method=args.method, calibration=cal,
                                   convention=manifest.get("mask_convention", "nonzero")), items, chunksize=4))
            sp = [r for r in res if r[0] == "spliced"]
            pr = [r for r in res if r[0] == "pristine"]
            neg = [r[1] for r in pr]
            tnr = float(np.mean(~(np.array(neg) >= 0.5)))
            print(f"| {cal} | {args.method} | {len(sp)}/{len(pr)} | {image_auc([r[1] for r in sp], neg):.3f} | "
                  f"{balanced_accuracy([r[1] for r in sp], neg):.3f} | {tnr:.3f} | "
                  f"{np.mean([r[2] for r in sp]):.3f} | {np.mean([r[2] for r in pr]):.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
