"""One place for Numba settings.

* ``FASTMATH``: the fastmath flags every kernel uses. ``nnan`` and ``ninf``
  are never set, so NaN/inf checks inside kernels stay meaningful.
* :func:`jit` for serial kernels and :func:`pjit` for parallel kernels
  (``prange``), both cached on disk (``cache=True``): kernels are compiled
  once per installation (the first call after an install or a change
  compiles and writes the cache beside the module), not in every process.
  A cache written with one thread count loads under another (checked: the
  ``wavelet_mad`` CLI on the sample image, 11.4 s cold before, 1.8 s with the
  cache, same output with ``NUMBA_NUM_THREADS=1``). Parallel kernels write
  per-row or per-thread buffers that callers merge serially, so results do not
  depend on the number of threads.
* :func:`register_warmup`: kernels register a tiny call that compiles them;
  :func:`noisestat.warmup` (defined in :mod:`noisestat.registry`, which can
  import every method) calls them all; benchmarks and long-running services
  call it once before timing.

This module imports numba and the standard library only: it is the ground
layer every kernel file stands on.
"""

from __future__ import annotations

from collections.abc import Callable

import numba

__all__ = ["FASTMATH", "jit", "pjit", "register_warmup", "registered_warmups"]

FASTMATH = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})

_WARMUPS: list[Callable[[], object]] = []


def jit(func=None, **kwargs):
    """Serial ``@njit`` with the package's flags and ``cache=True``."""
    opts = dict(cache=True, nogil=True, fastmath=set(FASTMATH))
    opts.update(kwargs)
    if func is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(func)


def pjit(func=None, **kwargs):
    """Parallel ``@njit(parallel=True)`` with the package's flags and ``cache=True``."""
    opts = dict(cache=True, nogil=True, parallel=True, fastmath=set(FASTMATH))
    opts.update(kwargs)
    if func is None:
        return lambda f: numba.njit(**opts)(f)
    return numba.njit(**opts)(func)


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
