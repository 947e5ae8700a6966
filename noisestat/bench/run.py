"""Run registered methods over a manifest: resumable, serial, local processes or Dask.

:func:`run_bench` writes one row per (item, method configuration) into
``RUNDIR/rows.csv`` as results arrive (see :mod:`noisestat.bench.rows`), then
the summary tables (:mod:`noisestat.bench.summary`).

Resuming. A stored row is reused only when its item, method, full parameter
set, code version, image and mask SHA-256 and fixed threshold all equal the
current ones; anything else is recomputed and the older row superseded
(``run.json`` and the CLI say why rows were computed: new, code changed,
input changed, threshold changed). The *code version* is ``<noisestat
version>+<12 hex digits>`` over the source of the method's module and of every
``noisestat`` module it imports (see :mod:`noisestat.bench._codever`); a
worker whose code differs from the submitting process's writes error rows
instead of mislabelled ones.

Errors. A file that cannot be read, a hash mismatch, a mask of the wrong size
or a method that raises becomes an error row (``error`` = one line), never a
crashed run; error rows are reused on resume unless ``retry_errors``.

Parallelism. ``workers=1`` runs in the calling process; ``workers=N`` uses N
local processes (``spawn`` start method; each gets ``cpu_count // N`` Numba
threads); ``scheduler="local"`` starts a Dask ``LocalCluster`` on loopback and
``scheduler="tcp://host:8786"`` uses an existing cluster. Every path is
resolved to an absolute path before tasks are shipped, so on a multi-node
cluster the dataset root and the run folder must be visible under the same
paths on every node (shared file system). Results are identical whichever
executor runs them: a row depends only on its task.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._version import __version__
from ._codever import code_version, module_closure
from ._task import ItemTask, MethodConfig, row_key, run_item
from .manifest import Manifest, load_manifest, resolve
from .rows import RowWriter, compact, keys_of, latest_rows, read_rows, write_parquet

__all__ = ["code_version", "module_closure", "make_configs", "run_bench", "BenchResult", "parse_method_params", "load_thresholds"]

def parse_method_params(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """``["median_residual.block=16", ...]`` -> ``{"median_residual": {"block": 16}}`` (values parsed as JSON)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--param {item!r}: expected METHOD.NAME=VALUE, e.g. median_residual.block=16")
        k, v = item.split("=", 1)
        meth, name = k.strip().split(".", 1)
        try:
            val = json.loads(v)
        except json.JSONDecodeError:
            val = v
        out.setdefault(meth, {})[name] = val
    return out


def load_thresholds(path: str | os.PathLike) -> dict[str, Any]:
    """Read a thresholds file written by ``noisestat calibrate`` (see :mod:`noisestat.bench.calibrate`)."""
    p = Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"--thresholds {p}: cannot read a thresholds JSON file ({exc})") from None
    if not isinstance(d, dict) or not isinstance(d.get("thresholds"), dict):
        raise ValueError(f"--thresholds {p}: expected an object with a \"thresholds\" mapping (from noisestat calibrate)")
    return d


def make_configs(
    methods: Sequence[str],
    params: Mapping[str, Mapping[str, Any]] | None = None,
    thresholds: Mapping[str, float] | None = None,
) -> list[MethodConfig]:
    """Validate method names and parameters; full parameter sets (defaults merged) as canonical JSON."""
    from ..registry import check_params, get_method

    params = dict(params or {})
    unknown = sorted(set(params) - set(methods))
    if unknown:
        raise ValueError(f"parameters given for {unknown}, which are not among --methods {list(methods)}")
    out = []
    for m in methods:
        spec = get_method(m)
        merged = check_params(spec, params.get(m, {}))
        pj = json.dumps(merged, sort_keys=True, default=repr)
        thr = float((thresholds or {}).get(m, 0.5))
        out.append(MethodConfig(m, json.loads(pj), pj, code_version(m), thr))
    return out


@dataclass
class BenchResult:
    """What :func:`run_bench` did."""

    rundir: Path
    rows: list[dict[str, Any]]  # the current rows of the selected items x methods
    n_tasks: int
    n_computed: int
    n_reused: int
    n_errors: int
    interrupted: bool
    wall_seconds: float
    summary: list[dict[str, Any]]
    why_computed: dict[str, int] = field(default_factory=dict)  # reason -> rows


# --------------------------------------------------------------------------- executors


def _worker_init(numba_threads: int) -> None:  # pragma: no cover - runs in child processes
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    os.environ.setdefault("NUMBA_NUM_THREADS", str(max(1, numba_threads)))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:
        pass


def _serial(tasks: list[ItemTask]) -> Iterator[list[dict[str, Any]]]:
    for t in tasks:
        yield run_item(t)


def _processes(tasks: list[ItemTask], workers: int) -> Iterator[list[dict[str, Any]]]:
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    threads = max(1, (os.cpu_count() or 1) // workers)
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_worker_init, initargs=(threads,))
    finished = False
    try:
        pending = set()
        it = iter(tasks)
        # keep a bounded number of tasks in flight so Ctrl-C stops quickly
        for t in it:
            pending.add(ex.submit(run_item, t))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.add(ex.submit(run_item, nxt))
        finished = True
    finally:
        if not finished:  # interrupted: do not wait for the items in flight
            procs = list((getattr(ex, "_processes", None) or {}).values())
            ex.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.join(timeout=10)
        else:
            ex.shutdown(wait=True)


def _dask(tasks: list[ItemTask], scheduler: Any, workers: int) -> Iterator[list[dict[str, Any]]]:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ImportError("--scheduler needs dask.distributed: pip install noisestat[bench]") from None
    own: list[Any] = []
    if isinstance(scheduler, str):
        if scheduler == "local":
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None)
            own.append(cluster)
            client = Client(cluster)
        else:
            client = Client(scheduler)
        own.insert(0, client)
    else:
        client = scheduler  # a dask.distributed.Client
    try:
        futures = [client.submit(run_item, t, pure=False) for t in tasks]
        for f in as_completed(futures):
            yield f.result()
    finally:
        for obj in own:
            obj.close()


# --------------------------------------------------------------------------- progress


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.total, self.n, self.errors = total, 0, 0
        self.t0 = time.monotonic()
        self._last = 0.0
        self._bar = None
        self.enabled = enabled and total > 0
        if self.enabled:
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, unit="row", desc="bench", dynamic_ncols=True, file=sys.stderr)
            except ImportError:
                self._bar = None

    def update(self, n: int, errors: int) -> None:
        self.n += n
        self.errors += errors
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            self._bar.set_postfix(errors=self.errors, refresh=False)
            return
        now = time.monotonic()
        if now - self._last < 1.0 and self.n < self.total:
            return
        self._last = now
        el = now - self.t0
        rate = self.n / el if el > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else float("nan")
        eta_s = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta == eta else "?"
        print(f"\rbench {self.n}/{self.total} rows, {self.errors} errors, {rate:.2f} rows/s, ETA {eta_s}",
              end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        else:
            print(file=sys.stderr)


# --------------------------------------------------------------------------- the run


def _why(old: dict[str, Any] | None, probe: dict[str, Any]) -> str:
    if old is None:
        return "new"
    if old["code_version"] != probe["code_version"]:
        return "code changed"
    if (old.get("input_sha256") or "") != probe["input_sha256"] or (old.get("mask_sha256") or "") != probe["mask_sha256"]:
        return "input changed"
    return "threshold changed"


def _build_tasks(manifest: Manifest, root: Path, selected: Sequence[Any], configs: list[MethodConfig],
                 stored: list[dict[str, Any]], retry_errors: bool,
                 maps_dir: Path | None) -> tuple[list[ItemTask], int, dict[str, int]]:
    done = keys_of(stored)
    last = {(r["item"], r["method"], r["params"]): r for r in stored}
    tasks: list[ItemTask] = []
    reused = 0
    reasons: dict[str, int] = {}
    for it in selected:
        todo = []
        for cfg in configs:
            probe = {"item": it.id, "method": cfg.method, "params": cfg.params_json,
                     "code_version": cfg.code_version, "input_sha256": it.image_sha256 or "",
                     "mask_sha256": it.mask_sha256 or "", "threshold": cfg.threshold}
            old = done.get(row_key(probe))
            if old is not None and not (retry_errors and old.get("error")):
                reused += 1
            else:
                why = "retry error" if old is not None else _why(last.get((it.id, cfg.method, cfg.params_json)), probe)
                key = why if why in ("new", "retry error") else f"{cfg.method}: {why}"
                reasons[key] = reasons.get(key, 0) + 1
                todo.append(cfg)
        if not todo:
            continue
        level = it.extra.get("level", "")
        tasks.append(ItemTask(
            item=it.id, name=it.name, label=it.label,
            image_path=str(resolve(root, it.image).resolve()), image_sha256=it.image_sha256,
            mask_path=str(resolve(root, it.mask).resolve()) if it.mask else None, mask_sha256=it.mask_sha256,
            mask_convention=manifest.mask_convention, configs=tuple(todo),
            protocol=str(it.extra.get("protocol", "")),
            level=level if isinstance(level, str) else json.dumps(level, sort_keys=True),
            maps_dir=str(maps_dir) if maps_dir is not None else None,
        ))
    return tasks, reused, reasons


def _check_overlap(thr_info: Mapping[str, Any] | None, selected: Sequence[Any], allow: bool) -> None:
    if not thr_info or allow:
        return
    cal = set(thr_info.get("calibrated_on", {}).get("image_sha256_prefixes", []))
    if not cal:
        return
    clash = [it.name for it in selected if (it.image_sha256 or "")[:16] in cal]
    if clash:
        raise ValueError(
            f"--thresholds were calibrated on {len(clash)} of the images being evaluated (e.g. {clash[0]}); "
            f"calibrate on other data, or pass --allow-calibration-overlap to do it anyway"
        )


def run_bench(
    manifest: str | os.PathLike | Manifest,
    *,
    root: str | os.PathLike,
    out: str | os.PathLike,
    methods: Sequence[str] | None = None,
    params: Mapping[str, Mapping[str, Any]] | None = None,
    workers: int = 1,
    scheduler: Any = None,
    every: int = 1,
    limit: int | None = None,
    thresholds: str | os.PathLike | Mapping[str, Any] | None = None,
    allow_calibration_overlap: bool = False,
    save_maps: bool = False,
    retry_errors: bool = False,
    progress: bool = True,
    summary: bool = True,
    n_boot: int = 2000,
    on_rows: Callable[[list[dict[str, Any]]], None] | None = None,
) -> BenchResult:
    """Run methods over the items of a manifest, appending one row per (item, method) to ``out/rows.csv``.

    Parameters
    ----------
    manifest : path or Manifest
        Dataset listing (see :mod:`noisestat.bench.manifest`).
    root : path
        The user's copy of the dataset (manifest paths are relative to it).
    out : path
        Run folder: ``rows.csv`` (+ ``rows.parquet`` with pyarrow), ``run.json``,
        ``summary.csv``, ``summary.tex``, ``paired.csv``, ``paired.tex``, optional ``maps/``.
    methods : sequence of str, optional
        Registered method names; default all.
    params : mapping, optional
        ``{method: {name: value}}`` overrides of method parameters.
    workers : int, default 1
        Local processes (1 = in this process). With ``scheduler``: the number
        of workers of a ``"local"`` cluster.
    scheduler : str or dask.distributed.Client, optional
        ``"local"`` (start a LocalCluster on 127.0.0.1), a scheduler address,
        or a connected Client.
    every : int, default 1
        Take every ``every``-th item of each label, sorted by file name.
    limit : int, optional
        Then only the first ``limit`` items.
    thresholds : path or mapping, optional
        Per-method fixed thresholds from ``noisestat calibrate`` (default 0.5 for all).
        Refused when they were calibrated on any of the images being run.
    allow_calibration_overlap : bool, default False
        Accept thresholds calibrated on the same images (reported in run.json).
    save_maps : bool, default False
        Save each heatmap as float32 ``.npy`` in ``out/maps/<method>-<params hash>/``.
    retry_errors : bool, default False
        Recompute rows that are stored as errors.
    progress : bool, default True
        Progress bar with ETA on stderr (tqdm when installed).
    summary : bool, default True
        Write the summary and paired-comparison tables at the end.
    n_boot : int, default 2000
        Bootstrap resamples for the summary intervals.
    on_rows : callable, optional
        Called with each new batch of rows after they were written (for tests / live displays).

    Returns
    -------
    BenchResult
        ``interrupted`` is True after Ctrl-C or SIGTERM (rows written so far are kept).

    Raises
    ------
    ValueError
        Unknown methods or parameters, a missing root, thresholds calibrated
        on the images being evaluated, an invalid manifest.

    Examples
    --------
    ::

        res = run_bench("data_manifests/casia1.json", root="/data/casia1", out="runs/casia1",
                        methods=["kurtosis", "ela"], workers=2)
        res.n_computed, res.n_errors          # rows computed now, error rows
        print(open("runs/casia1/summary.txt").read())
    """
    from ..registry import methods as all_methods

    t_start = time.time()
    m = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    root_p = Path(root)
    if not root_p.is_dir():
        raise ValueError(f"--root {root_p}: not a directory")
    rundir = Path(out)
    rundir.mkdir(parents=True, exist_ok=True)
    names = list(methods) if methods else all_methods()
    if len(set(names)) != len(names):
        raise ValueError(f"--methods {names}: a method is listed twice")
    thr_info: dict[str, Any] | None = None
    if thresholds is not None:
        thr_info = load_thresholds(thresholds) if isinstance(thresholds, (str, os.PathLike)) else dict(thresholds)
        if "thresholds" not in thr_info:
            thr_info = {"thresholds": thr_info}
    thr_map: dict[str, float] = {}
    for k, v in (thr_info or {}).get("thresholds", {}).items():
        name = v.get("method", k) if isinstance(v, dict) else k
        thr_map[name] = float(v["threshold"] if isinstance(v, dict) else v)
    if thr_info is not None:
        missing = [n for n in names if n not in thr_map]
        if missing:
            raise ValueError(f"--thresholds has no threshold for {missing}; calibrate those methods too "
                             f"(have {sorted(thr_map)})")
    configs = make_configs(names, params, thr_map)
    selected = m.select(every=every, limit=limit)
    _check_overlap(thr_info, selected, allow_calibration_overlap)

    rows_path = rundir / "rows.csv"
    writer = RowWriter(rows_path)  # repairs a torn tail, upgrades the header
    maps_dir = rundir / "maps" if save_maps else None
    tasks, reused, reasons = _build_tasks(m, root_p, selected, configs, read_rows(rows_path), retry_errors,
                                          maps_dir)
    n_rows_todo = sum(len(t.configs) for t in tasks)

    meta_path = rundir / "run.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    run_info = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "noisestat_version": __version__,
        "manifest": str(Path(manifest).resolve()) if not isinstance(manifest, Manifest) else None,
        "dataset": m.dataset, "manifest_digest": m.digest(), "root": str(root_p.resolve()),
        "methods": [{"method": c.method, "params": c.params, "code_version": c.code_version,
                     "threshold": c.threshold} for c in configs],
        "thresholds_from": (str(thresholds) if isinstance(thresholds, (str, os.PathLike)) else
                            ("mapping" if thresholds is not None else None)),
        "calibration_overlap_allowed": bool(allow_calibration_overlap),
        "every": every, "limit": limit, "workers": workers,
        "scheduler": scheduler if isinstance(scheduler, str) or scheduler is None else "client",
        "host": socket.gethostname(), "python": sys.version.split()[0],
        "n_items": len(selected), "n_rows": len(selected) * len(configs), "n_reused": reused,
        "n_to_compute": n_rows_todo, "why_computed": reasons,
    }
    meta.update(current=run_info)
    meta.setdefault("history", []).append(run_info)
    _write_json(meta_path, meta)

    if scheduler is not None:
        stream = _dask(tasks, scheduler, workers)
    elif workers > 1 and len(tasks) > 1:
        stream = _processes(tasks, workers)
    else:
        stream = _serial(tasks)

    prog = _Progress(n_rows_todo, progress)
    computed = 0
    interrupted = False
    restore = _sigterm_as_interrupt()
    try:
        for batch in stream:
            for r in batch:
                writer.write(r)
            computed += len(batch)
            prog.update(len(batch), sum(bool(r["error"]) for r in batch))
            if on_rows is not None:
                on_rows(batch)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            try:
                close()
            except KeyboardInterrupt:  # pragma: no cover
                interrupted = True
        prog.close()
        writer.close()
        restore()

    all_rows = read_rows(rows_path)
    if not interrupted:
        compact(rows_path)
        all_rows = latest_rows(all_rows)
    current_keys = {row_key({"item": it.id, "method": c.method, "params": c.params_json,
                             "code_version": c.code_version, "input_sha256": it.image_sha256 or "",
                             "mask_sha256": it.mask_sha256 or "", "threshold": c.threshold})
                    for it in selected for c in configs}
    cur = [r for r in all_rows if row_key(r) in current_keys]
    n_err = sum(bool(r["error"]) for r in cur)
    wall = time.time() - t_start
    summ: list[dict[str, Any]] = []
    if not interrupted:
        write_parquet(all_rows, rundir / "rows.parquet")
        if summary and cur:
            from .summary import write_summaries

            summ = write_summaries(cur, rundir, n_boot=n_boot)
    run_info.update(finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), wall_seconds=round(wall, 3),
                    n_computed=computed, n_errors=n_err, interrupted=interrupted)
    meta["current"] = run_info
    meta["history"][-1] = run_info
    _write_json(meta_path, meta)
    return BenchResult(rundir, cur, len(selected) * len(configs), computed, reused, n_err, interrupted, wall, summ,
                       reasons)


def _sigterm_as_interrupt() -> Callable[[], None]:
    """During a run, SIGTERM (e.g. ``kill PID``) stops it like Ctrl-C: rows written so far stay valid."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # pragma: no cover - not allowed here
        return lambda: None
    return lambda: signal.signal(signal.SIGTERM, old)


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
