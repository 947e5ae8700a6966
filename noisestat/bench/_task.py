"""One benchmark task: run the methods on one item and turn each result into a row.

Everything a row contains is computed here, in a pure function of the task
(:func:`run_item`) that runs unchanged in the calling process, in a local
worker process or on a Dask worker. The source of this module is part of the
code version recorded in every row (see :mod:`noisestat.bench.run`).
"""

from __future__ import annotations

import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["MethodConfig", "ItemTask", "COLUMNS", "METRICS", "ORIENT", "CURVE_THRESHOLDS", "run_item",
           "row_key", "safe_name", "input_state"]

#: per-orientation metric columns, ``<orientation>_<metric>``
METRICS = ("auc", "ap", "f1_best", "mcc_best", "iou_best", "threshold_f1_best",
           "f1", "mcc", "tpr", "fpr", "precision", "iou", "tp", "fp", "fn", "tn")
ORIENT = ("as_is", "best")
#: metrics of the method's own binary decision (``Localization.mask``), columns ``mask_<metric>``
MASK_METRICS = ("f1", "mcc", "tpr", "fpr", "precision", "iou")
#: thresholds k/100, k = 0..100, at which the per-row curves count pixels with score >= t
CURVE_THRESHOLDS = tuple(k / 100 for k in range(101))

COLUMNS = (
    "item", "name", "label", "method", "params", "code_version", "input_sha256", "mask_sha256",
    "threshold", "error", "read_sha256", "seconds", "megapixels", "s_per_mp", "height", "width",
    "applicable", "note", "score", "n_pixels", "n_positive", "best_orientation",
    *(f"{o}_{m}" for o in ORIENT for m in METRICS),
    *(f"mask_{m}" for m in MASK_METRICS),
    "curve_as_is", "curve_best", "protocol", "level", "map_file", "worker", "finished",
)
INT_COLS = frozenset({"height", "width", "n_pixels", "n_positive",
                      *(f"{o}_{m}" for o in ORIENT for m in ("tp", "fp", "fn", "tn"))})
FLOAT_COLS = frozenset({"threshold", "seconds", "megapixels", "s_per_mp", "score",
                        *(f"mask_{m}" for m in MASK_METRICS),
                        *(f"{o}_{m}" for o in ORIENT for m in METRICS if m not in ("tp", "fp", "fn", "tn"))})
#: columns that depend on where/when a row was computed, not on its inputs
VOLATILE = frozenset({"seconds", "s_per_mp", "worker", "finished"})


@dataclass(frozen=True)
class MethodConfig:
    """A method with its full parameter set, code version and fixed threshold."""

    method: str
    params: dict[str, Any]
    params_json: str
    code_version: str
    threshold: float = 0.5


@dataclass(frozen=True)
class ItemTask:
    """One item and the method configurations still to run on it (picklable)."""

    item: str
    name: str
    label: str
    image_path: str
    image_sha256: str | None
    mask_path: str | None
    mask_sha256: str | None
    mask_convention: str
    configs: tuple[MethodConfig, ...]
    protocol: str = ""
    level: str = ""
    maps_dir: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _save_decision_inputs(path: Path, loc: Any, truth: np.ndarray | None) -> None:
    """What ``noisestat calibrate-maps`` refits from: uncalibrated map, reliability, truth, numeric params."""
    from ..decisions.fit import write_decision_inputs
    from ..decisions.integrity import numeric_params

    u = loc.extras.get("uncalibrated", loc.heatmap.values)
    rel = loc.reliability if loc.reliability is not None else np.ones(np.shape(u), np.float32)
    hm_params = {k: v for k, v in loc.heatmap.params.items() if k != "calibration"}
    write_decision_inputs(path, uncalibrated=u, reliability=rel, truth=truth, applicable=loc.applicable,
                          params=numeric_params({**loc.params, **hm_params}))


def safe_name(text: str) -> str:
    """A file-name-safe version of an item id or method label."""
    return "".join(c if (c.isalnum() or c in "-_.") else "__" if c == "/" else "_" for c in text)


def config_label(cfg: MethodConfig) -> str:
    """``<method>-<8 hex digits of the parameters' hash>``: names a method configuration in file names."""
    import hashlib

    return f"{safe_name(cfg.method)}-{hashlib.sha256(cfg.params_json.encode()).hexdigest()[:8]}"


def row_key(row: dict[str, Any]) -> tuple[str, ...]:
    """What must match for a stored row to be reused."""
    thr = row.get("threshold")
    thr_s = "" if thr is None or (isinstance(thr, float) and np.isnan(thr)) else repr(float(thr))
    return (str(row["item"]), str(row["method"]), str(row["params"]), str(row["code_version"]),
            str(row.get("input_sha256") or ""), str(row.get("mask_sha256") or ""), thr_s)


def _file_sha(path: str | None) -> str:
    if path is None:
        return ""
    from .manifest import sha256_file

    try:
        return sha256_file(path)[0]
    except OSError:
        return "missing"


def input_state(image_path: str, mask_path: str | None, *, image_sha: str | None = None) -> str:
    """``"<image sha256>:<mask sha256>"`` of the files as they are now (``missing`` when unreadable).

    Recorded in every row (``read_sha256``); an error row is recomputed when it changes.
    """
    return f"{image_sha or _file_sha(image_path)}:{_file_sha(mask_path)}"


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    text = msg[0] if msg else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _curve(score: np.ndarray, truth: np.ndarray) -> str:
    """Counts of positive / negative pixels with ``score >= k/100`` (k = 0..100): ``"p0 .. p100;n0 .. n100"``."""
    thr = np.asarray(CURVE_THRESHOLDS)
    out = []
    for sel in (truth, ~truth):
        s = np.sort(score[sel].ravel())
        out.append(" ".join(str(int(v)) for v in s.size - np.searchsorted(s, thr, side="left")))
    return ";".join(out)


def _metrics_into(row: dict[str, Any], values: np.ndarray, truth: np.ndarray, threshold: float) -> None:
    from ..metrics import evaluate_map

    for o in ORIENT:
        m = evaluate_map(values, truth, threshold=threshold, orientation=o)
        d = m.to_dict()
        for k in METRICS:
            row[f"{o}_{k}"] = d[k]
        oriented = values if m.orientation == "as_is" else 1.0 - values
        row[f"curve_{o}"] = _curve(oriented.astype(np.float64), truth)
        if o == "best":
            row["best_orientation"] = m.orientation
        row["n_pixels"], row["n_positive"] = m.n_pixels, m.n_positive


def _base_row(task: ItemTask, cfg: MethodConfig) -> dict[str, Any]:
    row: dict[str, Any] = {c: None for c in COLUMNS}
    row.update(item=task.item, name=task.name, label=task.label, method=cfg.method, params=cfg.params_json,
               code_version=cfg.code_version, input_sha256=task.image_sha256 or "",
               mask_sha256=task.mask_sha256 or "", threshold=float(cfg.threshold), error="",
               protocol=task.protocol, level=task.level, worker=f"{os.uname().nodename}:{os.getpid()}")
    return row


def _check_code_version(cfg: MethodConfig) -> None:
    """The code this process runs must be the code the row will claim (catches edits during a run and
    cluster nodes with another installation)."""
    from ._codever import code_version

    here = code_version(cfg.method)
    if cfg.code_version and here != cfg.code_version:
        raise RuntimeError(f"code version {here} here differs from {cfg.code_version} of the submitting process "
                           f"(source edited during the run, or another installation on this node); rerun")


def run_item(task: ItemTask) -> list[dict[str, Any]]:
    """Run every configuration of ``task`` on its image; one row per configuration.

    Never raises for a bad input: loading, hashing, mask and method failures
    become the row's ``error`` text (one line).
    """
    from ..decisions import localize
    from ..io import load_image, load_mask
    from ..metrics import confusion

    rows = [_base_row(task, cfg) for cfg in task.configs]
    t0 = time.perf_counter()
    img_sha = None
    try:
        if task.extra.get("error"):  # refused when the task was built (e.g. a path leaving the root)
            raise ValueError(str(task.extra["error"]).removeprefix("ValueError: "))
        img = load_image(task.image_path)
        img_sha = img.info.sha256
        if task.image_sha256 and img.info.sha256 != task.image_sha256:
            raise ValueError(f"{task.image_path}: sha256 {img.info.sha256[:12]}... differs from the manifest's "
                             f"{task.image_sha256[:12]}...; the file changed (run `noisestat manifest check`)")
        truth = None
        if task.mask_path is not None:
            msha = _file_sha(task.mask_path)
            if task.mask_sha256 and msha not in ("missing", task.mask_sha256):
                raise ValueError(f"{task.mask_path}: sha256 {msha[:12]}... differs from the manifest's "
                                 f"{task.mask_sha256[:12]}...; the file changed (run `noisestat manifest check`)")
            truth = load_mask(task.mask_path, img.shape, convention=task.mask_convention)
        elif task.label == "pristine":
            truth = np.zeros(img.shape, dtype=bool)
    except Exception as exc:
        err = _one_line(exc)
        state = input_state(task.image_path, task.mask_path, image_sha=img_sha)
        for r in rows:
            r["error"] = err
            r["read_sha256"] = state
            r["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return rows
    state = input_state(task.image_path, task.mask_path, image_sha=img_sha)
    load_s = time.perf_counter() - t0
    h, w = img.shape
    mp = h * w / 1e6
    for row, cfg in zip(rows, task.configs):
        row.update(height=h, width=w, megapixels=mp, read_sha256=state)
        try:
            _check_code_version(cfg)
            t1 = time.perf_counter()
            loc = localize(img, method=cfg.method, **cfg.params)
            secs = load_s + (time.perf_counter() - t1)
            values = np.asarray(loc.heatmap.values, dtype=np.float32)
            row.update(seconds=secs, s_per_mp=secs / mp, applicable=bool(loc.applicable),
                       note=loc.heatmap.note.replace("\n", " "), score=float(loc.score))
            if truth is not None:
                _metrics_into(row, values.astype(np.float64), truth, cfg.threshold)
                conf = confusion(np.asarray(loc.mask), truth)
                for k in MASK_METRICS:
                    row[f"mask_{k}"] = getattr(conf, k)
            if task.maps_dir is not None:
                d = Path(task.maps_dir) / config_label(cfg)
                d.mkdir(parents=True, exist_ok=True)
                fname = d / f"{safe_name(task.item)}.npy"
                np.save(fname, values)
                _save_decision_inputs(d / f"{safe_name(task.item)}.decision.npz", loc, truth)
                row["map_file"] = f"{d.name}/{fname.name}"
        except Exception as exc:  # one bad image / method never stops the run
            row["error"] = _one_line(exc)
            if os.environ.get("NOISESTAT_BENCH_DEBUG"):
                traceback.print_exc()
        row["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return rows
