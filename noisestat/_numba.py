"""One place for Numba settings.

* ``FASTMATH``: the fastmath flags every kernel uses. ``nnan`` and ``ninf``
  are never set, so NaN/inf checks inside kernels stay meaningful.
* :func:`jit` for serial kernels (cached on disk) and :func:`pjit` for
  parallel kernels (``prange``; not cached, since Numba cannot reliably cache
  parallel gufuncs across thread-count changes). Parallel kernels write
  per-row or per-thread buffers that callers merge serially, so results do not
  depend on the number of threads.
* :func:`register_warmup` / :func:`warmup`: kernels register a tiny call that
  compiles them; benchmarks and long-running services call :func:`warmup`
  once before timing.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numba

__all__ = ["FASTMATH", "jit", "pjit", "register_warmup", "warmup"]

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

_WARMUPS: list[Callable[[], object]] = []
_KERNEL_PACKAGES = ("noisestat.noise", "noisestat.segment", "noisestat.maps", "noisestat.localizers")


def jit(func=None, **kwargs):
    """Serial ``@njit`` with the package's flags and ``cache=True``."""
    opts = dict(cache=True, nogil=True, fastmath=set(FASTMATH))
    opts.update(kwargs)
    if func is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(func)


def pjit(func=None, **kwargs):
    """Parallel ``@njit(parallel=True)`` with the package's flags, not cached."""
    opts = dict(cache=False, nogil=True, parallel=True, fastmath=set(FASTMATH))
    opts.update(kwargs)
    if func is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(func)


def register_warmup(func: Callable[[], object]) -> Callable[[], object]:
    """Decorator: register a function that compiles some kernels."""
    _WARMUPS.append(func)
    return func


def warmup() -> float:
    """Compile every registered kernel (imports all method modules first).

    Returns
    -------
    float
        Seconds spent.
    """
    import importlib
    import pkgutil

    from .registry import load_all

    load_all()
    for pkg_name in _KERNEL_PACKAGES:  # estimators and segmenters are not registry methods
        try:
            pkg = importlib.import_module(pkg_name)
        except ImportError:
            continue
        for mod in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"{pkg_name}.{mod.name}")
    t0 = time.perf_counter()
    for f in list(_WARMUPS):
        f()
    return time.perf_counter() - t0
