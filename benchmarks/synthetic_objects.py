"""Object localizers on synthetic noise splices: the issue's "F1 >= 0.8 at sigma >= 5" table.

Each case is a natural photograph among the scikit-image sample images (the
host) with Gaussian "sensor" noise of ``--host-sigma`` added everywhere, into
which :func:`noisestat.synth.make_splice` pastes a blob-shaped region
(``--fraction`` of the image) from the next host in the list (the donor),
with extra Gaussian noise of ``sigma`` on the pasted pixels only. No JPEG, no
resizing: the only forensic cue is the noise level.

Printed per method and ``sigma`` (mean and median over hosts x seeds):

* ``mask F1``: F1 of the localizer's own binary mask (``Localization.mask``);
* ``F1-best``: pixel F1 of the heatmap at its best threshold, and its AUC;
* ``oracle F1``: F1 of the best mask the segmentation allows if selection
  were perfect (the objects that are more than half spliced), so that the
  loss due to segmentation and the loss due to selection can be told apart.

    python benchmarks/synthetic_objects.py [--methods objects,fusion] [--sigmas 3,5,8] [--seeds 3] [--first-seed 0] [--cases]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import noisestat  # noqa: E402
from noisestat.metrics import confusion, evaluate_map  # noqa: E402
from noisestat.synth import make_splice, sample_image  # noqa: E402

DEFAULT_HOSTS = "astronaut,coffee,chelsea,rocket"


def oracle_f1(labels: np.ndarray, truth: np.ndarray) -> float:
    """F1 of the union of the objects that are more than half spliced."""
    lab = np.asarray(labels).ravel()
    n = int(lab.max()) + 1
    area = np.bincount(lab, minlength=n)
    spliced = np.bincount(lab, weights=truth.ravel().astype(np.float64), minlength=n)
    take = spliced > 0.5 * area
    take[0] = False  # label 0 is "no object"
    return float(confusion(take[lab].reshape(truth.shape), truth).f1)


def cases(hosts: list[str], seeds: int | range, sigma: float, host_sigma: float, fraction: float):
    """Yield (host name, seed, Splice) for every host and seed at one donor noise level.

    ``seeds``: a count (seeds ``0 .. seeds - 1``) or a range of seeds.
    """
    seeds = range(seeds) if isinstance(seeds, int) else seeds
    for i, name in enumerate(hosts):
        donor = sample_image(hosts[(i + 1) % len(hosts)])
        clean = sample_image(name).astype(np.float64)
        for seed in seeds:
            rng = np.random.default_rng(seed)
            host = np.clip(clean + rng.normal(0.0, host_sigma, clean.shape), 0, 255).astype(np.float32)
            yield name, seed, make_splice(host, donor, region="blob", region_fraction=fraction,
                                          noise_sigma=sigma, seed=seed)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="objects,fusion")
    p.add_argument("--hosts", default=DEFAULT_HOSTS)
    p.add_argument("--sigmas", default="3,5,8")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first .. first + seeds - 1")
    p.add_argument("--host-sigma", type=float, default=2.0)
    p.add_argument("--fraction", type=float, default=0.12)
    p.add_argument("--cases", action="store_true", help="also print one line per case")
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    sigmas = [float(s) for s in args.sigmas.split(",") if s.strip()]
    for m in methods:
        if noisestat.get_method(m).kind != "localizer":
            p.error(f"--methods: {m!r} is not an object localizer (no mask of its own)")
    noisestat.warmup()
    t0 = time.perf_counter()
    print(f"hosts {', '.join(hosts)} (+ N(0, {args.host_sigma:g}) noise), donor blob {args.fraction:.0%} "
          f"of the image with extra noise sigma, seeds {args.first_seed}..{args.first_seed + args.seeds - 1}")
    header = (f"{'method':10s} {'sigma':>5s} {'n':>3s} | {'mask F1 mean':>12s} {'median':>6s} | "
              f"{'F1-best':>7s} {'AUC':>6s} | {'oracle F1':>9s}")
    print(header)
    print("-" * len(header))
    for method in methods:
        for sigma in sigmas:
            f1, f1b, auc, orc = [], [], [], []
            seeds = range(args.first_seed, args.first_seed + args.seeds)
            for name, seed, sp in cases(hosts, seeds, sigma, args.host_sigma, args.fraction):
                loc = noisestat.localize(sp.image, method=method)
                f1.append(confusion(loc.mask, sp.mask).f1)
                ev = evaluate_map(loc.heatmap.values, sp.mask)
                f1b.append(ev.f1_best)
                auc.append(ev.auc)
                labels = (loc.extras or {}).get("labels")
                orc.append(oracle_f1(labels, sp.mask) if labels is not None else float("nan"))
                if args.cases:
                    print(f"    {method} sigma={sigma:g} {name}/{seed}: mask F1 {f1[-1]:.3f}, "
                          f"F1-best {f1b[-1]:.3f}, AUC {auc[-1]:.3f}, oracle F1 {orc[-1]:.3f}")
            print(f"{method:10s} {sigma:5g} {len(f1):3d} | {np.nanmean(f1):12.3f} {np.nanmedian(f1):6.3f} | "
                  f"{np.nanmean(f1b):7.3f} {np.nanmean(auc):6.3f} | {np.nanmean(orc):9.3f}", flush=True)
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
