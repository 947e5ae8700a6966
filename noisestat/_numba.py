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
from collections.abc import Callable

import numba

__all__ = ["FASTMATH", "jit", "pjit", "fallback_cache_dir", "register_warmup", "registered_warmups"]

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
