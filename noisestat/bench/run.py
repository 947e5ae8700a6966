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
crashed run. On resume an error row is recomputed when the files it read changed (their SHA-256 is
recorded in ``read_sha256``: a restored or replaced file is retried automatically), or always with
``retry_errors``; otherwise it is reused.

Parallelism. ``workers=1`` runs in the calling process; ``workers=N`` uses N
local processes (``spawn`` start method; each gets ``cpu_count // N`` Numba
threads, at least 1, and single-threaded BLAS and OpenCV, so N workers never
use more threads than cores while N <= cores; each exits when the parent dies, ``kill -9``
included: ``PR_SET_PDEATHSIG`` on Linux and a parent-pid watchdog thread everywhere; the
resource tracker then ends with them); ``scheduler="local"`` starts a Dask ``LocalCluster`` on loopback and
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
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .._version import __version__
from ._codever import code_version, module_closure
from ._task import ItemTask, MethodConfig, input_state, row_key, run_item
from .manifest import Manifest, load_manifest, resolve
from .rows import RowWriter, compact, keys_of, latest_rows, read_rows, write_parquet

__all__ = [
    "code_version", "module_closure", "make_configs", "run_bench", "BenchConfig", "BenchResult",
    "parse_method_params", "load_thresholds",
]


def parse_method_params(items: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """``["median_residual.block=16", ...]`` -> ``{"median_residual": {"block": 16}}`` (values parsed as JSON)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or ():
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"parse_method_params: {item!r} is not METHOD.NAME=VALUE; write e.g. "
                             f"'median_residual.block=16'")
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
        raise ValueError(f"thresholds={str(p)!r}: cannot read a thresholds JSON file ({exc}); pass the "
                         f"thresholds.json written by noisestat.bench.calibrate.calibrate") from None
    if not isinstance(d, dict) or not isinstance(d.get("thresholds"), dict):
        raise ValueError(f"thresholds={str(p)!r}: expected an object with a \"thresholds\" mapping; pass the "
                         f"thresholds.json written by noisestat.bench.calibrate.calibrate")
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
        raise ValueError(f"params= has entries for {unknown}, which are not among methods={list(methods)}; add them to "
                         f"methods= or drop them from params=")
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


def _die_with_parent(parent_pid: int) -> None:  # pragma: no cover - runs in child processes
    """End this worker when its parent dies, SIGKILL included.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGKILL)``. Everywhere: a daemon thread
    that polls the parent pid every 0.5 s (and covers a parent that died
    before the prctl call).
    """
    import signal
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)
            time.sleep(0.5)

    if os.getppid() != parent_pid:
        os._exit(1)
    threading.Thread(target=watch, name="noisestat-parent-watch", daemon=True).start()


def _threads_per_worker(workers: int) -> int:
    """Numba threads per worker process: the cores divided among the workers (at least 1)."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def _worker_env(threads: int) -> dict[str, str]:
    """Environment of a worker process: ``threads`` Numba threads, single-threaded BLAS/OpenMP."""
    return {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1"}


def _worker_init(numba_threads: int, parent_pid: int | None = None) -> None:  # pragma: no cover - child processes
    import signal

    if parent_pid is not None:
        _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    for k, v in _worker_env(numba_threads).items():
        os.environ.setdefault(k, v)
    # unpickling this initializer may already have imported numpy and numba, which read
    # the variables above at import: numba re-reads its environment whenever it compiles
    # and refuses a changed thread count once its threads run (every compiled kernel
    # would fail in a worker with an empty cache), so re-read it now, before they start
    import numba
    import numba.core.config

    numba.core.config.reload_config()
    numba.set_num_threads(max(1, min(int(os.environ["NUMBA_NUM_THREADS"]), numba.config.NUMBA_NUM_THREADS)))
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)
    except Exception:
        pass
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

    threads = _threads_per_worker(workers)
    ex = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                             initializer=_worker_init, initargs=(threads, os.getpid()))
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
        raise ImportError("scheduler= needs dask.distributed: pip install noisestat[bench], or pass scheduler=None") from None
    own: list[Any] = []
    if isinstance(scheduler, str):
        if scheduler == "local":
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None,
                                   env=_worker_env(_threads_per_worker(workers)))
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
        state: list[str] = []  # the item's files as they are now, computed once when an error row needs it
        for cfg in configs:
            probe = {"item": it.id, "method": cfg.method, "params": cfg.params_json,
                     "code_version": cfg.code_version, "input_sha256": it.image_sha256 or "",
                     "mask_sha256": it.mask_sha256 or "", "threshold": cfg.threshold}
            old = done.get(row_key(probe))
            changed = False
            if old is not None and old.get("error") and not retry_errors:
                if not state:
                    state.append(_state_now(root, it))
                changed = (old.get("read_sha256") or "") != state[0]
            if old is not None and not (retry_errors and old.get("error")) and not changed:
                reused += 1
            else:
                why = ("error, input files changed" if changed else "retry error" if old is not None
                       else _why(last.get((it.id, cfg.method, cfg.params_json)), probe))
                key = why if why in ("new", "retry error", "error, input files changed") else f"{cfg.method}: {why}"
                reasons[key] = reasons.get(key, 0) + 1
                todo.append(cfg)
        if not todo:
            continue
        level = it.extra.get("level", "")
        try:  # a path that leaves the root (symlinks followed) becomes error rows naming it
            image_path = str(resolve(root, it.image).resolve())
            mask_path = str(resolve(root, it.mask).resolve()) if it.mask else None
            extra: dict[str, Any] = {}
        except ValueError as exc:
            image_path, mask_path, extra = str(root / it.image), None, {"error": f"ValueError: {exc}"}
        tasks.append(ItemTask(
            item=it.id, name=it.name, label=it.label, extra=extra,
            image_path=image_path, image_sha256=it.image_sha256,
            mask_path=mask_path, mask_sha256=it.mask_sha256,
            mask_convention=manifest.mask_convention, configs=tuple(todo),
            protocol=str(it.extra.get("protocol", "")),
            level=level if isinstance(level, str) else json.dumps(level, sort_keys=True),
            maps_dir=str(maps_dir) if maps_dir is not None else None,
        ))
    return tasks, reused, reasons


def _state_now(root: Path, it: Any) -> str:
    """:func:`~noisestat.bench._task.input_state` of an item's files now ("" when its path is refused)."""
    try:
        image = str(resolve(root, it.image).resolve())
        mask = str(resolve(root, it.mask).resolve()) if it.mask else None
    except ValueError:
        return ""
    return input_state(image, mask)


def _check_overlap(thr_info: Mapping[str, Any] | None, selected: Sequence[Any], allow: bool) -> None:
    if not thr_info or allow:
        return
    cal = set(thr_info.get("calibrated_on", {}).get("image_sha256_prefixes", []))
    if not cal:
        return
    clash = [it.name for it in selected if (it.image_sha256 or "")[:16] in cal]
    if clash:
        raise ValueError(
            f"thresholds= were calibrated on {len(clash)} of the images being evaluated (e.g. {clash[0]}); "
            f"calibrate on other data, or pass allow_calibration_overlap=True to do it anyway"
        )


@dataclass(frozen=True)
class BenchConfig:
    """The options of a :func:`run_bench` run (everything but the manifest, the dataset root and the run folder).

    Parameters
    ----------
    methods : sequence of str, optional
        Registered method names; default (``None`` or empty) all registered methods.
    params : mapping, optional
        ``{method: {name: value}}`` overrides of method parameters.
    every : int, default 1
        Take every ``every``-th item of each label, sorted by file name.
    offset : int, default 0
        Start at this item of each label (``0 <= offset < every``): items
        ``offset, offset + every, ...``; offset 0 is the classic every-K subset.
    limit : int, optional
        Then at most ``limit`` items, shared among the labels in proportion to
        their sizes, evenly spaced within each (see :meth:`Manifest.select`).
    workers : int, default 1
        Local processes (1 = in this process). With ``scheduler``: the number
        of workers of a ``"local"`` cluster.
    scheduler : str or dask.distributed.Client, optional
        ``"local"`` (start a LocalCluster on 127.0.0.1), a scheduler address,
        or a connected Client.
    thresholds : path or mapping, optional
        Per-method fixed thresholds from :func:`noisestat.bench.calibrate.calibrate`
        (a ``thresholds.json`` path or its content; default 0.5 for all).
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
        Bootstrap resamples for the summary intervals (0 = no intervals).
    on_rows : callable, optional
        Called with each new batch of rows after they were written (for tests / live displays).

    Raises
    ------
    TypeError
        An option of the wrong type (e.g. ``methods="ela"`` instead of ``methods=["ela"]``).
    ValueError
        An option out of range (``every < 1``, ``limit < 0``, ``workers < 1``,
        ``n_boot < 0``) or a method listed twice.

    Examples
    --------
    ::

        cfg = BenchConfig(methods=["kurtosis", "ela"], every=4, workers=2)
        run_bench("data_manifests/casia1.json", root="/data/casia1", out="runs/casia1", config=cfg)
    """

    methods: Sequence[str] | None = None
    params: Mapping[str, Mapping[str, Any]] | None = None
    every: int = 1
    offset: int = 0
    limit: int | None = None
    workers: int = 1
    scheduler: Any = None
    thresholds: str | os.PathLike | Mapping[str, Any] | None = None
    allow_calibration_overlap: bool = False
    save_maps: bool = False
    retry_errors: bool = False
    progress: bool = True
    summary: bool = True
    n_boot: int = 2000
    on_rows: Callable[[list[dict[str, Any]]], None] | None = None

    def __post_init__(self) -> None:
        self._check_methods()
        if self.params is not None and not (
            isinstance(self.params, Mapping) and all(isinstance(v, Mapping) for v in self.params.values())
        ):
            raise TypeError(f"BenchConfig(params={self.params!r}): expected a mapping {{method: {{name: value}}}}, "
                            f"e.g. params={{'median_residual': {{'block': 16}}}}")
        _check_count("every", self.every, 1, "every=1 takes every item")
        _check_count("offset", self.offset, 0, "offset=0 starts at the first item")
        if self.offset >= self.every:
            raise ValueError(f"BenchConfig(offset={self.offset!r}): must be < every={self.every} (items offset, "
                             f"offset + every, ...)")
        if self.limit is not None:
            _check_count("limit", self.limit, 0, "limit=None takes all selected items")
        _check_count("workers", self.workers, 1, "workers=1 runs in this process")
        _check_count("n_boot", self.n_boot, 0, "n_boot=0 skips the bootstrap intervals")
        if self.scheduler is not None and not isinstance(self.scheduler, str) and not hasattr(self.scheduler, "submit"):
            raise TypeError(f"BenchConfig(scheduler={self.scheduler!r}): expected None, 'local', a scheduler "
                            f"address such as 'tcp://host:8786', or a dask.distributed.Client")
        if self.thresholds is not None and not isinstance(self.thresholds, (str, os.PathLike, Mapping)):
            raise TypeError(f"BenchConfig(thresholds={self.thresholds!r}): expected the path of a thresholds.json "
                            f"written by noisestat.bench.calibrate.calibrate, or its content as a mapping")
        for name in ("allow_calibration_overlap", "save_maps", "retry_errors", "progress", "summary"):
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise TypeError(f"BenchConfig({name}={value!r}): expected True or False")
        if self.on_rows is not None and not callable(self.on_rows):
            raise TypeError(f"BenchConfig(on_rows={self.on_rows!r}): expected None or a function of a list of rows")

    def _check_methods(self) -> None:
        if self.methods is None:
            return
        if isinstance(self.methods, str) or not all(isinstance(m, str) for m in self.methods):
            raise TypeError(f"BenchConfig(methods={self.methods!r}): expected a list of method names, "
                            f"e.g. methods=['ela', 'kurtosis']")
        names = tuple(self.methods)
        if len(set(names)) != len(names):
            raise ValueError(f"BenchConfig(methods={list(names)!r}): a method is listed twice; list each once")
        object.__setattr__(self, "methods", names)


def _check_count(name: str, value: Any, minimum: int, hint: str) -> None:
    """An integer option (not a bool) >= ``minimum``; errors name ``BenchConfig(<name>=...)``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"BenchConfig({name}={value!r}): expected an integer >= {minimum} ({hint})")
    if value < minimum:
        raise ValueError(f"BenchConfig({name}={value!r}): must be >= {minimum} ({hint})")


@dataclass(frozen=True)
class _Plan:
    """What a run is about: the manifest, folders, configurations and selected items."""

    manifest: Manifest
    manifest_path: str | None
    root: Path
    rundir: Path
    configs: list[MethodConfig]
    selected: tuple[Any, ...]
    thr_info: dict[str, Any] | None


def _thresholds(thresholds: Any, names: Sequence[str]) -> tuple[dict[str, Any] | None, dict[str, float]]:
    """The thresholds document (or None) and method -> threshold; every method of ``names`` must have one."""
    if thresholds is None:
        return None, {}
    thr_info = load_thresholds(thresholds) if isinstance(thresholds, (str, os.PathLike)) else dict(thresholds)
    if "thresholds" not in thr_info:
        thr_info = {"thresholds": thr_info}
    thr_map: dict[str, float] = {}
    for k, v in thr_info["thresholds"].items():
        name = v.get("method", k) if isinstance(v, dict) else k
        thr_map[name] = float(v["threshold"] if isinstance(v, dict) else v)
    missing = [n for n in names if n not in thr_map]
    if missing:
        raise ValueError(f"thresholds= has no threshold for {missing} (has {sorted(thr_map)}); calibrate those "
                         f"methods too, or leave them out of methods=")
    return thr_info, thr_map


def _plan(manifest: str | os.PathLike | Manifest, root: str | os.PathLike, out: str | os.PathLike,
          cfg: BenchConfig) -> _Plan:
    """Load and check everything the run needs; create the run folder."""
    from ..registry import methods as all_methods

    m = manifest if isinstance(manifest, Manifest) else load_manifest(manifest)
    root_p = Path(root)
    if not root_p.is_dir():
        raise ValueError(f"root={str(root_p)!r}: not a directory; pass root= your copy of the dataset "
                         f"(the folder the manifest's paths are relative to)")
    rundir = Path(out)
    rundir.mkdir(parents=True, exist_ok=True)
    names = list(cfg.methods) if cfg.methods else all_methods()
    thr_info, thr_map = _thresholds(cfg.thresholds, names)
    configs = make_configs(names, cfg.params, thr_map)
    selected = m.select(every=cfg.every, offset=cfg.offset, limit=cfg.limit)
    _check_overlap(thr_info, selected, cfg.allow_calibration_overlap)
    manifest_path = str(Path(manifest).resolve()) if not isinstance(manifest, Manifest) else None
    return _Plan(m, manifest_path, root_p, rundir, configs, selected, thr_info)


def _run_info(plan: _Plan, cfg: BenchConfig, t_start: float, reused: int, n_to_compute: int,
              reasons: dict[str, int]) -> dict[str, Any]:
    """The ``run.json`` record of this run (before it runs)."""
    thresholds = cfg.thresholds
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t_start)),
        "noisestat_version": __version__,
        "manifest": plan.manifest_path,
        "dataset": plan.manifest.dataset, "manifest_digest": plan.manifest.digest(),
        "root": str(plan.root.resolve()),
        "methods": [{"method": c.method, "params": c.params, "code_version": c.code_version,
                     "threshold": c.threshold} for c in plan.configs],
        "thresholds_from": (str(thresholds) if isinstance(thresholds, (str, os.PathLike)) else
                            ("mapping" if thresholds is not None else None)),
        "calibration_overlap_allowed": bool(cfg.allow_calibration_overlap),
        "every": cfg.every, "offset": cfg.offset, "limit": cfg.limit, "workers": cfg.workers,
        "scheduler": cfg.scheduler if isinstance(cfg.scheduler, str) or cfg.scheduler is None else "client",
        "host": socket.gethostname(), "python": sys.version.split()[0],
        "n_items": len(plan.selected), "n_rows": len(plan.selected) * len(plan.configs), "n_reused": reused,
        "n_to_compute": n_to_compute, "why_computed": reasons,
    }


def _stream(tasks: list[ItemTask], cfg: BenchConfig) -> Iterator[list[dict[str, Any]]]:
    """The executor's stream of row batches: Dask, local processes or this process."""
    if cfg.scheduler is not None:
        return _dask(tasks, cfg.scheduler, cfg.workers)
    if cfg.workers > 1 and len(tasks) > 1:
        return _processes(tasks, cfg.workers)
    return _serial(tasks)


def _consume(stream: Iterator[list[dict[str, Any]]], writer: RowWriter, n_rows: int,
             cfg: BenchConfig) -> tuple[int, bool]:
    """Write the rows as they arrive; return (rows computed, interrupted by Ctrl-C / SIGTERM)."""
    prog = _Progress(n_rows, cfg.progress)
    computed = 0
    interrupted = False
    restore = _sigterm_as_interrupt()
    try:
        for batch in stream:
            for r in batch:
                writer.write(r)
            computed += len(batch)
            prog.update(len(batch), sum(bool(r["error"]) for r in batch))
            if cfg.on_rows is not None:
                cfg.on_rows(batch)
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
    return computed, interrupted


def _current_rows(plan: _Plan, interrupted: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """All stored rows (compacted unless interrupted) and those of the selected items x configurations."""
    rows_path = plan.rundir / "rows.csv"
    all_rows = read_rows(rows_path)
    if not interrupted:
        compact(rows_path)
        all_rows = latest_rows(all_rows)
    current_keys = {row_key({"item": it.id, "method": c.method, "params": c.params_json,
                             "code_version": c.code_version, "input_sha256": it.image_sha256 or "",
                             "mask_sha256": it.mask_sha256 or "", "threshold": c.threshold})
                    for it in plan.selected for c in plan.configs}
    return all_rows, [r for r in all_rows if row_key(r) in current_keys]


def run_bench(
    manifest: str | os.PathLike | Manifest,
    *,
    root: str | os.PathLike,
    out: str | os.PathLike,
    config: BenchConfig | None = None,
    **options: Any,
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
    config : BenchConfig, optional
        The run options (methods, params, every, limit, workers, scheduler,
        thresholds, ...; see :class:`BenchConfig` for each and its default).
    **options
        The same options as keywords (``methods=["ela"], workers=2``); with
        ``config`` they replace its fields.

    Returns
    -------
    BenchResult
        ``interrupted`` is True after Ctrl-C or SIGTERM (rows written so far are kept).

    Raises
    ------
    TypeError
        An unknown option, or an option of the wrong type (see :class:`BenchConfig`).
    ValueError
        Unknown methods or parameters, a missing root, thresholds calibrated
        on the images being evaluated, an invalid manifest, an option out of range.

    Examples
    --------
    ::

        res = run_bench("data_manifests/casia1.json", root="/data/casia1", out="runs/casia1",
                        methods=["kurtosis", "ela"], workers=2)
        res.n_computed, res.n_errors          # rows computed now, error rows
        print(open("runs/casia1/summary.txt").read())
    """
    cfg = _config(config, options)
    t_start = time.time()
    plan = _plan(manifest, root, out, cfg)
    rows_path = plan.rundir / "rows.csv"
    writer = RowWriter(rows_path)  # repairs a torn tail, upgrades the header
    maps_dir = plan.rundir / "maps" if cfg.save_maps else None
    tasks, reused, reasons = _build_tasks(plan.manifest, plan.root, plan.selected, plan.configs,
                                          read_rows(rows_path), cfg.retry_errors, maps_dir)
    n_rows_todo = sum(len(t.configs) for t in tasks)
    meta_path = plan.rundir / "run.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    run_info = _run_info(plan, cfg, t_start, reused, n_rows_todo, reasons)
    meta.update(current=run_info)
    meta.setdefault("history", []).append(run_info)
    _write_json(meta_path, meta)

    computed, interrupted = _consume(_stream(tasks, cfg), writer, n_rows_todo, cfg)

    all_rows, cur = _current_rows(plan, interrupted)
    n_err = sum(bool(r["error"]) for r in cur)
    wall = time.time() - t_start
    summ: list[dict[str, Any]] = []
    if not interrupted:
        write_parquet(all_rows, plan.rundir / "rows.parquet")
        if cfg.summary and cur:
            from .summary import write_summaries

            summ = write_summaries(cur, plan.rundir, n_boot=cfg.n_boot)
    run_info.update(finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), wall_seconds=round(wall, 3),
                    n_computed=computed, n_errors=n_err, interrupted=interrupted)
    meta["current"] = run_info
    meta["history"][-1] = run_info
    _write_json(meta_path, meta)
    n_rows = len(plan.selected) * len(plan.configs)
    return BenchResult(plan.rundir, cur, n_rows, computed, reused, n_err, interrupted, wall, summ, reasons)


def _config(config: BenchConfig | None, options: dict[str, Any]) -> BenchConfig:
    """``config`` with ``options`` replacing its fields (a default config when None)."""
    if config is not None and not isinstance(config, BenchConfig):
        raise TypeError(f"config={config!r}: expected a BenchConfig, e.g. config=BenchConfig(methods=['ela'])")
    unknown = sorted(set(options) - {f.name for f in fields(BenchConfig)})
    if unknown:
        raise TypeError(f"run_bench() got unknown option(s) {unknown}; the options are the fields of BenchConfig: "
                        f"{[f.name for f in fields(BenchConfig)]}")
    return replace(config, **options) if config is not None else BenchConfig(**options)


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
