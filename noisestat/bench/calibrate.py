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

What is optimised (recorded in the file as ``objective`` and printed by the
CLI): the mean per-image F1 (or MCC) over the run's spliced images, among the
thresholds whose mean per-image false-positive rate over the run's *pristine*
images is at most ``max_pristine_fpr`` (default 0.05). Without pristine rows
the constraint cannot be applied and the document says so (``warnings``).
A method is refused (listed under ``refused`` with the reason, left out of
``thresholds``) when no threshold meets the constraint, when its best mean
is 0 or undefined, or when the chosen threshold is degenerate: it flags at
least 95 % of the spliced images' authentic pixels (pooled FPR >= 0.95, the
"flag everything" threshold) or none of their spliced pixels (pooled TPR 0).
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


#: a threshold is degenerate when it flags this share of the spliced images' authentic pixels (pooled)
DEGENERATE_FPR = 0.95


def calibrate(
    rundir: str | os.PathLike,
    *,
    metric: str = "f1",
    orientation: str = "as_is",
    methods: Sequence[str] | None = None,
    max_pristine_fpr: float = 0.05,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Choose per method the threshold maximising the mean per-image ``metric`` over a run's spliced images,
    subject to a false-positive budget on its pristine images.

    Parameters
    ----------
    rundir : path
        A run folder of ``noisestat bench`` (its current methods are used), with
        spliced and, for the constraint, pristine items.
    metric : {"f1", "mcc"}, default "f1"
    orientation : {"as_is", "best"}, default "as_is"
        Calibrate on the map as returned (the honest setting) or on the
        better-of orientation.
    methods : sequence of str, optional
        Restrict to these configurations.
    max_pristine_fpr : float, default 0.05
        Only thresholds whose mean per-image false-positive rate over the
        pristine images is at most this are candidates (1.0 = no constraint).
    out : path, optional
        Where to write the thresholds JSON (default ``RUNDIR/thresholds.json``).

    Returns
    -------
    dict
        The thresholds document (also written to ``out``): ``objective`` (what
        was optimised, in words), ``thresholds`` maps each configuration to
        ``threshold``, ``mean_<metric>`` at it and at 0.5, ``pristine_fpr``,
        ``pooled_tpr`` and ``pooled_fpr`` at it, ``n``, ``n_pristine`` and
        ``params``; ``refused`` maps configurations without a usable threshold
        to the reason; ``warnings`` lists general caveats; ``calibrated_on``
        identifies the images (spliced and pristine).

    Raises
    ------
    ValueError
        No rows in ``rundir``, an unknown metric, orientation or method, or
        ``max_pristine_fpr`` outside [0, 1].

    Examples
    --------
    ::

        doc = calibrate("runs/columbia", metric="f1")     # writes runs/columbia/thresholds.json
        run_bench("data_manifests/casia1.json", root="/data/casia1", out="runs/casia1-cal",
                  methods=list(doc["thresholds"]), thresholds="runs/columbia/thresholds.json")
    """
    from .._validate import check_float

    if metric not in ("f1", "mcc"):
        raise ValueError(f"metric={metric!r} is not supported; choose 'f1' or 'mcc'")
    if orientation not in ("as_is", "best"):
        raise ValueError(f"orientation={orientation!r}; choose 'as_is' or 'best'")
    max_pristine_fpr = check_float(max_pristine_fpr, "max_pristine_fpr", minimum=0.0, maximum=1.0)
    d = Path(rundir)
    if not (d / "rows.csv").is_file():
        raise ValueError(f"rundir={str(d)!r}: no rows.csv; run run_bench(manifest, root=..., out={str(d)!r}) first")
    cur = current_rows(d)
    rows = [r for r in cur if r["label"] == "spliced" and not r["error"] and (r["n_positive"] or 0) > 0
            and r.get(f"curve_{orientation}")]
    pristine = group_rows([r for r in cur if r["label"] == "pristine" and not r["error"]
                           and r.get(f"curve_{orientation}")])
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
    refused: dict[str, str] = {}
    warnings: list[str] = []
    used: set[str] = set()
    for cfg, rs in groups.items():
        curves = np.array([row_metric_curve(r, metric=metric, orientation=orientation) for r in rs])
        n_def = np.isfinite(curves).sum(axis=0)
        with np.errstate(invalid="ignore"):
            means = np.where(n_def > 0, np.nansum(curves, axis=0) / np.maximum(n_def, 1), np.nan)
        tp = np.sum([parse_curve(r[f"curve_{orientation}"])[0] for r in rs], axis=0)
        fp = np.sum([parse_curve(r[f"curve_{orientation}"])[1] for r in rs], axis=0)
        n_pos = sum(float(r["n_positive"]) for r in rs)
        n_neg = sum(float(r["n_pixels"]) - float(r["n_positive"]) for r in rs)
        pooled_tpr = tp / max(n_pos, 1.0)
        pooled_fpr = fp / max(n_neg, 1.0)
        prs = pristine.get(cfg, [])
        if prs:
            p_fpr = np.mean([parse_curve(r[f"curve_{orientation}"])[1] / max(float(r["n_pixels"]), 1.0)
                             for r in prs], axis=0)
            ok = p_fpr <= max_pristine_fpr + 1e-12
        else:
            p_fpr = np.full(thr.size, np.nan)
            ok = np.ones(thr.size, bool)
            warnings.append(f"{cfg}: no pristine rows in the run, so the false-positive budget on authentic images "
                            f"could not be applied")
        ok &= (pooled_fpr < DEGENERATE_FPR) & (pooled_tpr > 0)
        cand_means = np.where(ok, means, np.nan)
        if not np.isfinite(means).any():
            refused[cfg] = f"mean per-image {metric.upper()} is undefined at every threshold"
            continue
        if not np.isfinite(cand_means).any():
            k_free = int(np.nanargmax(means))
            refused[cfg] = (f"no threshold keeps the mean pristine FPR <= {max_pristine_fpr:g} and flags some but "
                            f"not all pixels (unconstrained best {thr[k_free]:.2f}: mean {metric.upper()} "
                            f"{means[k_free]:.3f}, pristine FPR {p_fpr[k_free]:.2f}, pooled TPR "
                            f"{pooled_tpr[k_free]:.2f} / FPR {pooled_fpr[k_free]:.2f})")
            continue
        best = np.nanmax(cand_means)
        if not best > 0:
            refused[cfg] = (f"the best mean per-image {metric.upper()} within the constraints is {best:.3f}; "
                            f"no threshold finds spliced pixels")
            continue
        cand = np.flatnonzero(cand_means >= best - 1e-12)
        k = int(cand[np.argmin(np.abs(thr[cand] - 0.5))])
        result[cfg] = {"method": rs[0]["method"], "params": json.loads(rs[0]["params"]),
                       "threshold": float(thr[k]), f"mean_{metric}": float(means[k]),
                       f"mean_{metric}_at_0.5": float(means[50]) if math.isfinite(means[50]) else None,
                       "pristine_fpr": float(p_fpr[k]) if prs else None,
                       "pooled_tpr": float(pooled_tpr[k]), "pooled_fpr": float(pooled_fpr[k]),
                       "n": int(n_def[k]), "n_pristine": len(prs), "code_version": rs[0]["code_version"]}
        used.update((r.get("input_sha256") or "")[:16] for r in rs)
        used.update((r.get("input_sha256") or "")[:16] for r in prs)
    meta = json.loads((d / "run.json").read_text()).get("current", {}) if (d / "run.json").is_file() else {}
    n_sp = max((len(v) for v in groups.values()), default=0)
    n_pr = max((len(v) for v in pristine.values()), default=0)
    objective = (f"maximise the mean per-image {metric.upper()} ({orientation}) over {n_sp} spliced images, among "
                 f"thresholds k/100 with mean per-image FPR <= {max_pristine_fpr:g} over {n_pr} pristine images"
                 + ("" if n_pr else " (none in the run: constraint not applied)")
                 + f" and pooled FPR < {DEGENERATE_FPR:g}, TPR > 0 on the spliced images; ties to the threshold "
                   f"nearest 0.5")
    doc = {
        "format": THRESHOLDS_FORMAT,
        "metric": metric,
        "orientation": orientation,
        "max_pristine_fpr": max_pristine_fpr,
        "objective": objective,
        "candidates": "k/100, k = 0..100",
        "calibrated_on": {"rundir": str(d.resolve()), "dataset": meta.get("dataset"),
                          "manifest_digest": meta.get("manifest_digest"), "n_images": len(used),
                          "image_sha256_prefixes": sorted(u for u in used if u)},
        "thresholds": result,
        "refused": refused,
        "warnings": warnings,
    }
    dest = Path(out) if out is not None else d / "thresholds.json"
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    os.replace(tmp, dest)
    return doc
