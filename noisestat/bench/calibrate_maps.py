"""``noisestat calibrate-maps RUNDIR``: refit the decision models on a benchmark run of your own data.

The run must have been made with ``noisestat bench ... --save-maps`` over a
manifest with spliced *and* pristine items: each row's
``maps/<config>/<item>.decision.npz`` holds the method's uncalibrated
heatmap, its reliability map, the true mask and the method's global
numeric parameters (:func:`noisestat.bench._task.run_item`). Results that do not
apply are left out (they get no score). The fitted models
(:func:`noisestat.decisions.fit.fit_method`) are written as one
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

import numpy as np

from .._version import __version__
from ..decisions.calibration import Calibration, MethodCalibration
from ..decisions.fit import PIXELS_PER_IMAGE, FitItem, fit_method
from ..decisions.integrity import method_stats
from .rows import current_rows

__all__ = ["calibrate_maps", "read_fit_item"]


def read_fit_item(path: str | os.PathLike, *, method: str, key: str, spliced: bool) -> FitItem | None:
    """The :class:`FitItem` of one saved ``.decision.npz`` (None when the method did not apply)."""
    with np.load(path, allow_pickle=False) as z:
        if not bool(z["applicable"]):
            return None
        shape = tuple(int(v) for v in z["shape"])
        truth = np.unpackbits(z["truth"], count=shape[0] * shape[1]).reshape(shape).astype(bool)
        return FitItem(key=key, u=z["uncalibrated"], reliability=z["reliability"].astype(np.float32),
                       truth=truth, spliced=spliced,
                       stats=method_stats(method, json.loads(str(z["params"]))))


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
                   pixels_per_image: int = PIXELS_PER_IMAGE, seed: int = 0,
                   provenance: Mapping[str, Any] | None = None) -> Calibration:
    """Fit every method of a ``--save-maps`` run (see the module docstring).

    Parameters
    ----------
    rundir : path
        The run folder.
    methods : sequence of str, optional
        Only these methods (default: every method in the run).
    pixels_per_image : int, default 4096
    seed : int, default 0
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
    fitted: dict[str, MethodCalibration] = {}
    for method, rows in sorted(groups.items()):
        fitted[method] = fit_method(method, lambda rows=rows: _items(d, rows), pixels_per_image=pixels_per_image,
                                    seed=seed)
    run = json.loads((d / "run.json").read_text()) if (d / "run.json").is_file() else {}
    prov = {"fitted_by": "noisestat calibrate-maps", "noisestat_version": __version__,
            "date": _dt.date.today().isoformat(), "run": {k: run.get(k) for k in ("manifest", "dataset") if k in run},
            **dict(provenance or {})}
    return Calibration(fitted, prov, str(d))
