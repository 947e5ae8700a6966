"""One place for Numba settings.

* ``FASTMATH``: the fastmath flags every kernel uses. ``nnan`` and ``ninf``
  are never set, so NaN/inf checks inside kernels stay meaningful.
* :func:`jit` for serial kernels and :func:`pjit` for parallel kernels
  (``prange``), both cached on disk (``cache=True``): kernels are compiled
  once per installation (the first call after an install or a change to the
  kernel's source file compiles and writes the cache), not in every process.
  Decision (issue 16): keep numba's own parallel caching rather than serial
  kernels parallelised by the caller; numba (checked: 0.68.1) caches ``parallel=True``
  kernels, and a cache written with one thread count loads under another.
  Measured by ``benchmarks/bench_maps.py --compile-cost IMG`` (a CASIA image,
  fresh processes, empty ``NUMBA_CACHE_DIR``): whole-process ``noisestat
  localize IMG --method wavelet_mad`` 11.9 s the first time (compiles and
  writes the cache), 0.95 s the second; ``warmup()`` 39.8 s, then 0.73 s. Parallel kernels write
  per-row or per-thread buffers that callers merge serially, so results do
  not depend on the number of threads.
* Where the cache goes: numba's own order (``NUMBA_CACHE_DIR`` if set; else
  ``__pycache__`` beside the kernel's source if writable; else the user cache
  directory, ``~/.cache/numba`` or ``$XDG_CACHE_HOME/numba``). Where none of
  them is writable (a read-only install under a user without a home), numba
  would refuse to decorate the kernel and the import would fail; the package
  then caches in ``<tempfile.gettempdir()>/noisestat-numba-<uid>`` (see
  :func:`fallback_cache_dir`), and only if that fails too compiles in every
  process (``cache=False``). Set ``NUMBA_CACHE_DIR`` to choose the place.
* :func:`run_tasks`: independent steps of one method (e.g. the maps that
  ``fusion`` reads) run on ``numba.get_num_threads()`` Python threads when
  numba's threading layer is threadsafe (``omp``, ``tbb``: parallel kernels
  may then be launched from several threads at once), else one after the
  other (``workqueue`` is not threadsafe, and one thread means no overlap).
  Each task computes what it would alone, so results do not depend on it.
* :func:`register_warmup`: kernels register a tiny call that compiles them;
  :func:`noisestat.warmup` (defined in :mod:`noisestat.registry`, which can
  import every method) calls them all; benchmarks and long-running services
  call it once before timing.

This module imports numba and the standard library only: it is the ground
layer every kernel file stands on.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from typing import TypeVar

import numba

__all__ = ["FASTMATH", "jit", "pjit", "fallback_cache_dir", "register_warmup", "registered_warmups",
           "task_threads", "run_tasks", "THREADSAFE_LAYERS"]

#: numba threading layers that allow parallel kernels to be launched from several threads at once
THREADSAFE_LAYERS = frozenset({"omp", "tbb"})

T = TypeVar("T")

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

_WARMUPS: list[Callable[[], object]] = []


def fallback_cache_dir() -> str | None:
    """The cache directory used when numba finds no writable place of its own.

    Returns
    -------
    str or None
        ``<tempfile.gettempdir()>/noisestat-numba-<uid>``, created with mode
        0700; None if it cannot be created or is not owned by this user and
        private to it (a shared temporary directory must not hand one user
        another's compiled code).
    """
    uid = os.getuid() if hasattr(os, "getuid") else None
    path = os.path.join(tempfile.gettempdir(), f"noisestat-numba-{uid if uid is not None else 'user'}")
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        st = os.stat(path)
    except OSError:
        return None
    if uid is not None and (st.st_uid != uid or st.st_mode & 0o022):
        return None
    return path


def _njit(func, opts):
    """``numba.njit(**opts)(func)``; with ``cache=True``, fall back where numba has no cache locator."""
    try:
        return numba.njit(**opts)(func)
    except RuntimeError as exc:
        if not opts.get("cache") or "no locator available" not in str(exc):
            raise
    fallback = fallback_cache_dir()
    if fallback is None:
        return numba.njit(**{**opts, "cache": False})(func)
    old = numba.config.CACHE_DIR
    numba.config.CACHE_DIR = fallback  # read once, when the kernel's cache locator is made
    try:
        return numba.njit(**opts)(func)
    except RuntimeError:
        return numba.njit(**{**opts, "cache": False})(func)
    finally:
        numba.config.CACHE_DIR = old


def _decorate(func, base, kwargs):
    opts = dict(base)
    opts.update(kwargs)
    if func is None:
        return lambda f: _njit(f, opts)
    return _njit(func, opts)


def jit(func=None, **kwargs):
    """Serial ``@njit`` with the package's flags and ``cache=True``."""
    return _decorate(func, dict(cache=True, nogil=True, fastmath=set(FASTMATH)), kwargs)


def pjit(func=None, **kwargs):
    """Parallel ``@njit(parallel=True)`` with the package's flags and ``cache=True``."""
    return _decorate(func, dict(cache=True, nogil=True, parallel=True, fastmath=set(FASTMATH)), kwargs)


def register_warmup(func: Callable[[], object]) -> Callable[[], object]:
    """Decorator: register a function that compiles some kernels."""
    _WARMUPS.append(func)
    return func


def registered_warmups() -> tuple[Callable[[], object], ...]:
    """The functions registered with :func:`register_warmup` so far.

    :func:`noisestat.warmup` (in :mod:`noisestat.registry`) imports every
    kernel module first and then calls them.
    """
    return tuple(_WARMUPS)


def _probe(n):  # pragma: no cover - compiled
    s = 0
    for i in numba.prange(n):
        s += i
    return s


_probe_kernel = None


def _threading_layer() -> str:
    """numba's threading layer, starting it with a tiny parallel kernel if no parallel kernel ran yet."""
    global _probe_kernel
    try:
        return str(numba.threading_layer())
    except ValueError:  # not started yet
        if _probe_kernel is None:
            _probe_kernel = pjit(_probe)
        _probe_kernel(2)
        return str(numba.threading_layer())


def task_threads() -> int:
    """How many Python threads :func:`run_tasks` uses: ``numba.get_num_threads()`` on a threadsafe layer, else 1."""
    n = int(numba.get_num_threads())
    return n if n > 1 and _threading_layer() in THREADSAFE_LAYERS else 1


def run_tasks(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Results of the independent ``tasks``, in order; concurrent on :func:`task_threads` threads.

    Each task runs with the calling thread's ``numba.get_num_threads()``; an
    exception in a task is raised here (the first in task order).
    """
    k = min(task_threads(), len(tasks))
    if k <= 1:
        return [t() for t in tasks]
    from concurrent.futures import ThreadPoolExecutor

    n = int(numba.get_num_threads())

    def call(t: Callable[[], T]) -> T:
        numba.set_num_threads(n)  # a new thread starts from the default
        return t()

    with ThreadPoolExecutor(max_workers=k) as pool:
        futures = [pool.submit(call, t) for t in tasks]
        return [f.result() for f in futures]
