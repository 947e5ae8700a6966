"""``noisestat calibrate-maps RUNDIR``: refit the decision models on a benchmark run of your own data.

The run must have been made with ``noisestat bench ... --save-maps`` over a
manifest with spliced *and* pristine items: each row's
``maps/<config>/<item>.decision.npz`` holds the method's uncalibrated
heatmap, its reliability map, the true mask and the method's global
numeric parameters (:func:`noisestat.bench._task.run_item`). Results that do not
apply are left out (they get no score). The fitted models
(:func:`noisestat.decisions.fit.fit_methods`; ``fusion``'s integrity
model also reads the out-of-fold scores of its maps when the run has them)
are written as one
calibration JSON file, which ``noisestat localize --calibration FILE`` and
``noisestat.localize(..., calibration=FILE)`` read.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..decisions.calibration import Calibration, MethodCalibration
from ..decisions.fit import IMAGE_FPR, PIXEL_FPR, PIXELS_PER_IMAGE, FitItem, fit_methods, read_fit_item
from .rows import current_rows

__all__ = ["calibrate_maps", "fit_table"]


def fit_table(cal: Calibration) -> str:
    """One line per fitted method: images, spliced images, pixel AUC, out-of-fold image AUC, slopes, the image
    offset and the out-of-fold image TPR and FPR at ``score >= 0.5`` (NaN for a file fitted before they were
    recorded)."""
    lines = [f"{'method':22s} {'images':>6s} {'spliced':>7s} {'pixel AUC':>9s} {'image AUC (5-fold)':>18s}"
             f" {'a1':>6s} {'a':>6s} {'c':>6s} {'offset':>7s} {'TPR@0.5':>7s} {'FPR@0.5':>7s}"]
    nan = float("nan")
    for name, mc in cal.methods.items():
        f = mc.fit
        lines.append(f"{name:22s} {f['n_images']:6d} {f['n_spliced_images']:7d} {f['pixel_auc']:9.3f} "
                     f"{f['image_auc_out_of_fold']:18.3f} {mc.stage1[0]:6.3f} {mc.pixel[0]:6.3f} {mc.pixel[2]:6.3f}"
                     f" {mc.image_offset:7.3f} {f.get('image_tpr_out_of_fold', nan):7.3f}"
                     f" {f.get('image_fpr_out_of_fold', nan):7.3f}")
    return "\n".join(lines)


def _rows_by_method(rundir: Path, methods: Sequence[str] | None) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in current_rows(rundir):
        if r["error"] or not r.get("map_file") or r["label"] not in ("spliced", "pristine"):
            continue
        if methods and r["method"] not in methods:
            continue
        out.setdefault(r["method"], []).append(r)
    return out


def _items(rundir: Path, rows: list[dict[str, Any]]) -> Iterator[FitItem]:
    for r in rows:
        p = rundir / "maps" / str(r["map_file"]).replace(".npy", ".decision.npz")
        if not p.is_file():
            raise ValueError(f"{p}: missing; rerun `noisestat bench ... --save-maps` with this noisestat version")
        it = read_fit_item(p, method=str(r["method"]), key=str(r["item"]), spliced=r["label"] == "spliced")
        if it is not None:
            yield it


def calibrate_maps(rundir: str | os.PathLike, *, methods: Sequence[str] | None = None,
                   pixels_per_image: int = PIXELS_PER_IMAGE, seed: int = 0, image_fpr: float = IMAGE_FPR,
                   pixel_fpr: float = PIXEL_FPR, provenance: Mapping[str, Any] | None = None) -> Calibration:
    """Fit every method of a ``--save-maps`` run (see the module docstring).

    Parameters
    ----------
    rundir : path
        The run folder.
    methods : sequence of str, optional
        Only these methods (default: every method in the run).
    pixels_per_image : int, default 4096
    seed : int, default 0
    image_fpr : float, default 0.05
        Share of the run's pristine images allowed at ``score >= 0.5``
        (:func:`noisestat.decisions.fit.image_offset`).
    pixel_fpr : float, default 0.01
        Mean share of the pristine images' pixels allowed at ``p >= 0.5``
        (:func:`noisestat.decisions.fit.pixel_offset`).
    provenance : mapping, optional
        Merged into the file's provenance (e.g. what the data are).

    Returns
    -------
    Calibration

    Raises
    ------
    ValueError
        No usable rows, or a method whose rows lack spliced or pristine images.
    """
    d = Path(rundir)
    groups = _rows_by_method(d, methods)
    if not groups:
        raise ValueError(f"rundir={str(rundir)!r}: no rows with saved maps (run `noisestat bench ... --save-maps`)")
    fitted: dict[str, MethodCalibration] = fit_methods(
        {method: (lambda rows=rows: _items(d, rows)) for method, rows in sorted(groups.items())},
        pixels_per_image=pixels_per_image, seed=seed, image_fpr=image_fpr,
        pixel_fpr=pixel_fpr)
    run = json.loads((d / "run.json").read_text()) if (d / "run.json").is_file() else {}
    prov = {"fitted_by": "noisestat calibrate-maps", "noisestat_version": __version__,
            "date": _dt.date.today().isoformat(), "run": {k: run.get(k) for k in ("manifest", "dataset") if k in run},
            **dict(provenance or {})}
    return Calibration(fitted, prov, str(d))
