"""Threshold moving: per method, the fixed threshold that maximises the mean per-image F1 (or MCC).

As in the NoiseSeg evaluation, the threshold is chosen on one dataset
(``noisestat calibrate RUNDIR``) and applied to another (``noisestat bench
--thresholds FILE``); the thresholds file lists (prefixes of) the SHA-256 of
the images it was calibrated on, and ``bench`` refuses to evaluate those
images with it, so a calibrated number is never reported on its own
calibration data.

Candidate thresholds are ``k / 100``, ``k = 0 .. 100``. Each row stores, per
orientation, how many spliced and authentic pixels have a map value ``>= k/100``
(columns ``curve_as_is`` / ``curve_best``), so calibration needs no heatmaps.
Images where the metric is undefined at a threshold are left out of that
threshold's mean (never counted as 0); ties go to the threshold closest to 0.5.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..metrics import metric_curve
from ._task import CURVE_THRESHOLDS
from .rows import current_rows
from .summary import group_rows

__all__ = ["parse_curve", "row_metric_curve", "calibrate", "THRESHOLDS_FORMAT"]

THRESHOLDS_FORMAT = "noisestat.thresholds"


def parse_curve(text: str) -> tuple[np.ndarray, np.ndarray]:
    """``"p0 .. p100;n0 .. n100"`` -> (positives >= t_k, negatives >= t_k) as int64 arrays."""
    pos, neg = text.split(";")
    p = np.array(pos.split(), dtype=np.int64)
    n = np.array(neg.split(), dtype=np.int64)
    if p.size != len(CURVE_THRESHOLDS) or n.size != len(CURVE_THRESHOLDS):
        raise ValueError(f"curve has {p.size}/{n.size} entries; expected {len(CURVE_THRESHOLDS)}")
    return p, n


def row_metric_curve(row: dict[str, Any], *, metric: str = "f1", orientation: str = "as_is") -> np.ndarray:
    """Per-image ``metric`` at each candidate threshold (NaN where undefined)."""
    if metric not in ("f1", "mcc"):
        raise ValueError(f"metric={metric!r} is not supported; choose 'f1' or 'mcc'")
    tp, fp = parse_curve(row[f"curve_{orientation}"])
    n_pos = float(row["n_positive"])
    return metric_curve(tp, fp, n_pos, float(row["n_pixels"]) - n_pos, metric)


def calibrate(
    rundir: str | os.PathLike,
    *,
    metric: str = "f1",
    orientation: str = "as_is",
    methods: Sequence[str] | None = None,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Choose per method the threshold maximising the mean per-image ``metric`` over a run's spliced images.

    Parameters
    ----------
    rundir : path
        A run folder of ``noisestat bench`` (its current methods are used).
    metric : {"f1", "mcc"}, default "f1"
    orientation : {"as_is", "best"}, default "as_is"
        Calibrate on the map as returned (the honest setting) or on the
        better-of orientation.
    methods : sequence of str, optional
        Restrict to these configurations.
    out : path, optional
        Where to write the thresholds JSON (default ``RUNDIR/thresholds.json``).

    Returns
    -------
    dict
        The thresholds document (also written to ``out``): ``thresholds`` maps
        each configuration to ``threshold``, ``mean_<metric>`` at it and at 0.5,
        ``n`` and ``params``; ``calibrated_on`` identifies the images.

    Raises
    ------
    ValueError
        No rows in ``rundir``, an unknown metric, orientation or method.

    Examples
    --------
    ::

        doc = calibrate("runs/columbia", metric="f1")     # writes runs/columbia/thresholds.json
        run_bench("data_manifests/casia1.json", root="/data/casia1", out="runs/casia1-cal",
                  methods=list(doc["thresholds"]), thresholds="runs/columbia/thresholds.json")
    """
    if metric not in ("f1", "mcc"):
        raise ValueError(f"metric={metric!r} is not supported; choose 'f1' or 'mcc'")
    if orientation not in ("as_is", "best"):
        raise ValueError(f"orientation={orientation!r}; choose 'as_is' or 'best'")
    d = Path(rundir)
    if not (d / "rows.csv").is_file():
        raise ValueError(f"rundir={str(d)!r}: no rows.csv; run run_bench(manifest, root=..., out={str(d)!r}) first")
    rows = [r for r in current_rows(d) if r["label"] == "spliced" and not r["error"] and (r["n_positive"] or 0) > 0
            and r.get(f"curve_{orientation}")]
    groups = group_rows(rows)
    if methods:
        missing = sorted(set(methods) - set(groups))
        if missing:
            raise ValueError(f"methods {missing} have no evaluated spliced rows in {d}; have {sorted(groups)}")
        groups = {k: v for k, v in groups.items() if k in methods}
    if not groups:
        raise ValueError(f"{d}: no evaluated spliced rows to calibrate on")
    thr = np.asarray(CURVE_THRESHOLDS)
    result: dict[str, Any] = {}
    used: set[str] = set()
    for cfg, rs in groups.items():
        curves = np.array([row_metric_curve(r, metric=metric, orientation=orientation) for r in rs])
        n_def = np.isfinite(curves).sum(axis=0)
        with np.errstate(invalid="ignore"):
            means = np.where(n_def > 0, np.nansum(curves, axis=0) / np.maximum(n_def, 1), np.nan)
        if not np.isfinite(means).any():
            continue
        best = np.nanmax(means)
        cand = np.flatnonzero(means >= best - 1e-12)
        k = int(cand[np.argmin(np.abs(thr[cand] - 0.5))])
        result[cfg] = {"method": rs[0]["method"], "params": json.loads(rs[0]["params"]),
                       "threshold": float(thr[k]), f"mean_{metric}": float(means[k]),
                       f"mean_{metric}_at_0.5": float(means[50]) if math.isfinite(means[50]) else None,
                       "n": int(n_def[k]), "code_version": rs[0]["code_version"]}
        used.update((r.get("input_sha256") or "")[:16] for r in rs)
    meta = json.loads((d / "run.json").read_text()).get("current", {}) if (d / "run.json").is_file() else {}
    doc = {
        "format": THRESHOLDS_FORMAT,
        "metric": metric,
        "orientation": orientation,
        "candidates": "k/100, k = 0..100",
        "calibrated_on": {"rundir": str(d.resolve()), "dataset": meta.get("dataset"),
                          "manifest_digest": meta.get("manifest_digest"), "n_images": len(used),
                          "image_sha256_prefixes": sorted(u for u in used if u)},
        "thresholds": result,
    }
    dest = Path(out) if out is not None else d / "thresholds.json"
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    os.replace(tmp, dest)
    return doc
