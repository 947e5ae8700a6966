"""Fit the packaged decision models (calibrated maps, integrity scores) on synthetic data only.

Usage::

    python benchmarks/fit_decisions.py [--n 300] [--seed 7] [--workers 2] [--work runs/fit_decisions]
        [--sensor gaussian] [--methods all] [--out noisestat/decisions/calibration.json]

1. **Data** (``--work``/``data-s<seed>-n<n>-<sensor>-<hash>``, the hash
   that of the generating code, :func:`data_version`): ``--n`` spliced
   and ``--n`` pristine images, reproducible from ``--seed``, with the noise
   model ``--sensor`` (:func:`fit_fusion.sensor_noise`: ``gaussian`` adds
   white Gaussian noise; ``camera`` a brightness-dependent Poisson-Gaussian
   noise on linear light, a Bayer mosaic and demosaicking, and in-camera
   denoising or sharpening). The spliced ones are the training splices
   of ``benchmarks/fit_fusion.py`` (:func:`fit_fusion.make_example`: hosts
   among scikit-image's *bundled* sample images, donors likewise, camera
   noise and JPEG, region processing, the single / aligned / non-aligned
   double-JPEG protocols, a final JPEG or PNG). The pristine ones go
   through the same host, camera and compression steps without a paste
   (:func:`make_pristine`), so that compression history alone does not tell
   the two apart. A share of both (:data:`EXPOSURE_SHARE`) gets blown
   highlights or a flat area before the final save (what the reliability
   map is for). No evaluation image (CASIA or other) is read.
2. **Results** (``--work``/``cache/<data dir>``): every method's own (uncalibrated) result
   on every image, as ``noisestat calibrate-maps`` reads them from a
   ``bench --save-maps`` run: the uncalibrated map, the reliability map
   (:func:`noisestat.decisions.decision_inputs`) and the numeric params,
   cached per method under the hash of the method's code and of the
   reliability module (editing the decision models re-fits in seconds).
3. **Fit**: :func:`noisestat.decisions.fit.fit_methods`, the code behind
   ``noisestat calibrate-maps RUNDIR`` (``fusion``'s integrity model also
   reads its maps' out-of-fold scores, so those maps are fitted first); the
   result is written with its provenance (this command, the seed, the data,
   the priors).

The prior that sets where 0.5 falls in the heatmaps is the fitting set's: half
of the images spliced, the spliced area 3-30 % of a spliced image (the printed
``spliced_pixel_share`` is the pooled share over all images). The integrity
score is reported at each method's operating prior: the image offset puts
``score >= 0.5`` at no more than ``--image-fpr`` (5 %) of the fitting set's
pristine images, out-of-fold (:func:`noisestat.decisions.fit.image_offset`;
the table prints the offset and the out-of-fold TPR and FPR at 0.5). The
heatmaps are shifted by each method's pixel offset: the best mean mask F1 on
the fitting set's spliced images with at most ``--pixel-fpr`` (1 %) of its
pristine pixels flagged (:func:`noisestat.decisions.fit.pixel_offset`).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import inspect
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(ROOT), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import fit_fusion as ff  # noqa: E402

from noisestat.bench._codever import module_closure  # noqa: E402
from noisestat.bench.calibrate_maps import fit_table  # noqa: E402
from noisestat.bench.manifest import build_manifest, load_manifest, resolve, save_manifest  # noqa: E402
from noisestat.decisions import Calibration, decision_inputs  # noqa: E402
from noisestat.decisions.fit import IMAGE_FPR, PIXEL_FPR, fit_methods, read_fit_item, write_decision_inputs  # noqa: E402
from noisestat.decisions.integrity import STACKED  # noqa: E402
from noisestat.registry import get_method  # noqa: E402
from noisestat.registry import methods as all_methods  # noqa: E402
from noisestat.synth import available_sample_images  # noqa: E402

#: share of images (spliced and pristine) given blown highlights or a flat area before the final save
EXPOSURE_SHARE = 0.2


def _exposure(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str | None]:
    """Blown highlights (gain 1.4-2.2, clipped) or a flat rectangle (10-35 % of the image), or nothing."""
    if rng.random() >= EXPOSURE_SHARE:
        return img, None
    if rng.random() < 0.5:
        return np.clip(img * rng.uniform(1.4, 2.2), 0, 255), "highlights"
    h, w = img.shape[:2]
    fh, fw = (int(v) for v in (h * rng.uniform(0.3, 0.6), w * rng.uniform(0.3, 0.6)))
    r0, c0 = int(rng.integers(0, h - fh + 1)), int(rng.integers(0, w - fw + 1))
    out = img.copy()
    out[r0 : r0 + fh, c0 : c0 + fw] = float(rng.choice([0.0, 255.0, rng.uniform(20, 235)]))
    return out, "flat"


def _global_processing(img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Whole-image processing of a pristine image (as the robustness protocols do to splices)."""
    import cv2

    info: dict = {}
    if rng.random() < 0.25:
        info["noise_sigma"] = float(rng.uniform(1, 5))
        img = np.clip(img + rng.normal(0, info["noise_sigma"], img.shape), 0, 255)
    if rng.random() < 0.15:
        info["blur_sigma"] = float(rng.choice([0.5, 1.0, 1.5]))
        img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), info["blur_sigma"]).astype(np.float64)
    if rng.random() < 0.15:
        s = float(rng.choice([0.8, 0.9, 1.1, 1.2]))
        h, w = img.shape[:2]
        img = cv2.resize(img.astype(np.float32), (round(w * s), round(h * s)),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC).astype(np.float64)
        info["resize"] = s
    return img, info


def make_pristine(seed: int, k: int, sensor: str = "gaussian") -> tuple[np.ndarray, int | None, dict]:
    """The k-th pristine image: (pixels before the final save, final JPEG quality or None, settings)."""
    rng = np.random.default_rng([seed, k, 1])
    names = available_sample_images()
    hosts = [n for n in ff.HOSTS if n in names]
    host_name = hosts[int(rng.integers(len(hosts)))]
    if rng.random() < ff.JPEG_SHARE:
        img, jset = ff._jpeg_splice(rng, host_name, sensor)
        q = jset.pop("kw")["jpeg_quality"]
        return img, q, {"host": host_name, **jset}
    img, host_q = ff._host(host_name, rng, sensor=sensor)
    img, info = _global_processing(img, rng)
    q = int(rng.integers(60, 101)) if rng.random() < 0.6 else None
    return img, q, {"host": host_name, "jpeg_protocol": None, "host_jpeg": host_q, **info}


def _save(path: Path, img: np.ndarray, quality: int | None) -> Path:
    from PIL import Image

    a = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    path = path.with_suffix(".jpg" if quality is not None else ".png")
    if quality is not None:
        Image.fromarray(a).save(path, format="JPEG", quality=int(quality))
    else:
        Image.fromarray(a).save(path, format="PNG")
    return path


def write_dataset(root: Path, n: int, seed: int, sensor: str = "gaussian") -> Path:
    """Write ``n`` spliced and ``n`` pristine images under ``root`` and their manifest; return it."""
    for sub in ("images", "masks", "pristine"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for k in range(n):
        img, mask, q, _ = ff.make_example(seed, k, sensor)
        img, _ = _exposure(img, np.random.default_rng([seed, k, 2]))
        _save(root / "images" / f"s{k:04d}", img, q)
        _save(root / "masks" / f"s{k:04d}", mask.astype(np.uint8) * 255, None)
        img, q, _ = make_pristine(seed, k, sensor)
        img, _ = _exposure(img, np.random.default_rng([seed, k, 3]))
        _save(root / "pristine" / f"p{k:04d}", img, q)
    m = build_manifest(root / "images", masks=root / "masks", pristine=root / "pristine", root=root,
                       dataset="noisestat-synthetic-decisions",
                       description=f"fit_decisions.py --seed {seed} --n {n} --sensor {sensor}: synthetic splices "
                                   f"and pristine images",
                       origin="generated from scikit-image's bundled sample images", terms="as scikit-image's data")
    save_manifest(m, root / "manifest.json")
    return root / "manifest.json"


def ensure_dataset(work: Path, n: int, seed: int, sensor: str = "gaussian") -> Path:
    """The manifest of ``work/data-s<seed>-n<n>-<sensor>-<data_version()>``, written first if absent."""
    data = Path(work) / f"data-s{seed}-n{n}-{sensor}-{data_version()}"
    manifest = data / "manifest.json"
    return manifest if manifest.is_file() else write_dataset(data, n, seed, sensor)


def data_version() -> str:
    """Hash of the code that generates the data (``fit_fusion.py`` and :func:`make_pristine`).

    Part of the data directory's name, so that editing the generator makes a
    new data set (and a new results cache) instead of reusing a stale one.
    """
    h = hashlib.sha256(Path(ff.__file__).read_bytes())
    h.update(inspect.getsource(make_pristine).encode())
    return h.hexdigest()[:8]


#: the decision models' own modules: a cached result does not depend on them (only on
#: :func:`~noisestat.decisions.decision_inputs`, whose source is hashed instead)
FITTING_MODULES = frozenset({"noisestat.decisions", "noisestat.decisions.calibration", "noisestat.decisions.decide",
                             "noisestat.decisions.fit"})


def cache_key(method: str) -> str:
    """Hash of the method's code, of the reliability module and of ``decision_inputs``: a cached result
    is reused while they hold (editing the decision models, :data:`FITTING_MODULES`, keeps the cache)."""
    from noisestat.decisions import decision_inputs

    files = module_closure([get_method(method).module, "noisestat.decisions.reliability",
                            "noisestat.decisions.integrity", "noisestat.io"])
    h = hashlib.sha256(inspect.getsource(decision_inputs).encode())
    for name in sorted(set(files) - FITTING_MODULES):
        h.update(name.encode() + b"\0" + files[name].read_bytes())
    for data in sorted({p for f in files.values() for p in f.parent.glob("*.json")} - {CALIBRATION}):
        h.update(data.read_bytes())
    return h.hexdigest()[:12]


CALIBRATION = ROOT / "noisestat" / "decisions" / "calibration.json"


def _compute(task: tuple[str, str, str, str | None]) -> str:
    """Run one method on one image (uncalibrated) and cache its decision inputs; returns the cache file."""
    from noisestat.io import load_image, load_mask
    from noisestat.registry import localize as run_method

    method, path, cache, mask_path = task
    if Path(cache).is_file():
        return cache
    img = load_image(path)
    loc = run_method(img, method=method)
    u, rel, nums = decision_inputs(img, loc)
    truth = load_mask(mask_path, img.shape) if mask_path else None
    tmp = Path(cache).with_suffix(".tmp.npz")
    write_decision_inputs(tmp, uncalibrated=u, reliability=rel, truth=truth, applicable=loc.applicable,
                          params=nums)
    tmp.replace(cache)
    return cache


def compute_all(manifest: Path, data: Path, cache: Path, names: list[str],
                workers: int) -> dict[str, list[tuple[str, bool]]]:
    """Cache every method's result on every item (in parallel); return (cache file, spliced) per method."""
    from concurrent.futures import ProcessPoolExecutor

    m = load_manifest(manifest)
    tasks, files = [], {}
    for name in names:
        d = cache / f"{name}-{cache_key(name)}"
        d.mkdir(parents=True, exist_ok=True)
        files[name] = []
        for it in m.items:
            f = str(d / f"{it.id.replace('/', '_')}.npz")
            files[name].append((f, it.label == "spliced"))
            tasks.append((name, str(resolve(data, it.image)), f, str(resolve(data, it.mask)) if it.mask else None))
    todo = [t for t in tasks if not Path(t[2]).is_file()]
    print(f"results: {len(tasks) - len(todo)} cached, {len(todo)} to compute", flush=True)
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            for i, _ in enumerate(ex.map(_compute, todo, chunksize=4)):
                if i % 200 == 0:
                    print(f"  {i}/{len(todo)}", flush=True)
    else:
        for t in todo:
            _compute(t)
    return files


def fit_items(method: str, files: list[tuple[str, bool]]):
    """The :class:`FitItem` of every applicable cached result of ``method``."""
    for f, spliced in files:
        it = read_fit_item(f, method=method, key=Path(f).stem, spliced=spliced)
        if it is not None:
            yield it


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=300, help="spliced and (as many) pristine images")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--work", default=str(ROOT / "runs" / "fit_decisions"))
    ap.add_argument("--methods", default="all")
    ap.add_argument("--sensor", default="gaussian", choices=ff.SENSORS,
                    help="noise model of the pictures (fit_fusion.sensor_noise)")
    ap.add_argument("--image-fpr", type=float, default=IMAGE_FPR,
                    help="share of the fitting set's pristine images allowed at score >= 0.5 (default 0.05)")
    ap.add_argument("--pixel-fpr", type=float, default=PIXEL_FPR,
                    help="mean share of the fitting set's pristine pixels allowed in the masks (default 0.01)")
    ap.add_argument("--out", default=str(ROOT / "noisestat" / "decisions" / "calibration.json"))
    args = ap.parse_args(argv)
    work = Path(args.work)
    t0 = time.time()
    manifest = ensure_dataset(work, args.n, args.seed, args.sensor)
    data = manifest.parent
    print(f"data: {data} ({time.time() - t0:.0f} s)", flush=True)
    names = all_methods() if args.methods == "all" else [m.strip() for m in args.methods.split(",")]
    # a stacked method (fusion) learns from its maps' out-of-fold scores: those maps are computed too
    inputs = sorted(set(names) | {m for n in names for m in STACKED.get(n, ())})
    cache = work / "cache" / data.name  # one cache per data set (item ids repeat across them)
    files = compute_all(manifest, data, cache, inputs, args.workers)
    print(f"results: {cache} ({time.time() - t0:.0f} s)", flush=True)
    prov = {"fitted_on": f"synthetic: {args.n} spliced + {args.n} pristine images generated by "
                         f"benchmarks/fit_decisions.py --seed {args.seed} --sensor {args.sensor} from "
                         f"scikit-image's bundled sample "
                         f"images (no evaluation data)",
            "command": "python benchmarks/fit_decisions.py " + " ".join(argv or sys.argv[1:]),
            "prior": "half of the images spliced; spliced area 3-30 % of a spliced image; integrity scores at "
                     f"the operating prior that leaves <= {args.image_fpr:g} of the pristine images at score >= 0.5 "
                     "(out-of-fold; per method: fit.operating_prior, image.offset); heatmaps shifted by the "
                     f"pixel offset with the best mask F1 that leaves <= {args.pixel_fpr:g} of the pristine "
                     "pixels at p >= 0.5 (fit.pixel_offset)",
            "date": _dt.date.today().isoformat()}
    # e.g. a map that applies to no fitting image: left uncalibrated, said here
    fitted = fit_methods({m: lambda m=m: fit_items(m, files[m]) for m in inputs}, targets=names,
                         image_fpr=args.image_fpr, pixel_fpr=args.pixel_fpr, on_error=lambda m, exc: print(f"{m}: not fitted: {exc}"))
    cal = Calibration(fitted, prov)
    if Path(args.out).is_file() and args.methods != "all":  # refit some methods, keep the others
        from noisestat.decisions import load_calibration

        old = load_calibration(args.out)
        if old.provenance.get("command"):  # keep how the other methods were fitted
            prov["command"] = f"{old.provenance['command']}; then {prov['command']}"
        cal = Calibration({**old.methods, **fitted}, {**old.provenance, **prov})
    cal.save(args.out)
    print(fit_table(cal))
    print(f"wrote {args.out} ({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
