"""Kernel caching: every kernel is cached on disk, with a fallback where numba has no writable place."""

from __future__ import annotations

import importlib.util
import os
import stat
import sys
from pathlib import Path

import numba
import numba.core.caching as caching
import pytest

from noisestat import _numba

KERNEL_SOURCE = """
from numba import prange

from noisestat._numba import jit, pjit


@jit
def add_one(x):
    return x + 1


@pjit
def total(a):
    out = a.copy()
    for i in prange(a.shape[0]):
        out[i] = 2.0 * a[i]
    return out.sum()
"""


def _public_or_private(name: str):
    """numba >= 0.60 dropped the leading underscore of its caching classes."""
    return getattr(caching, name, None) or getattr(caching, "_" + name)


def _import_kernels(folder: Path, name: str, source: str = KERNEL_SOURCE):
    folder.mkdir()
    path = folder / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    finally:
        del sys.modules[name]
    return mod


@pytest.fixture
def no_locator(monkeypatch, tmp_path):
    """numba sees only NUMBA_CACHE_DIR, which is unset: without the fallback, decoration would fail."""
    monkeypatch.setattr(_public_or_private("CacheImpl"), "_locator_classes",
                        [_public_or_private("UserProvidedCacheLocator")])
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    monkeypatch.setattr(_numba.tempfile, "gettempdir", lambda: str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return tmp_path


def test_numba_alone_refuses_to_cache_without_a_locator(no_locator):
    with pytest.raises(RuntimeError, match="no locator available"):
        _import_kernels(no_locator / "raw", "raw_kernels", "import numba\n\n\n@numba.njit(cache=True)\n"
                        "def f(x):\n    return x\n")


def test_kernels_cache_in_the_private_temp_fallback(no_locator):
    import numpy as np

    mod = _import_kernels(no_locator / "mod", "fallback_kernels")
    assert mod.add_one(1) == 2
    assert mod.total(np.arange(4.0)) == 12.0
    fallback = Path(_numba.fallback_cache_dir())
    assert fallback.parent == no_locator / "tmp"
    assert stat.S_IMODE(fallback.stat().st_mode) & 0o077 == 0
    written = sorted(p.name for p in fallback.rglob("*.nbi"))
    assert len(written) == 2 and all(n.startswith("fallback_kernels.") for n in written)
    assert numba.config.CACHE_DIR == "", "the fallback does not leak into numba's global config"
    assert not list((no_locator / "mod").rglob("*.nbi"))


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="ownership checks need POSIX uids")
def test_a_shared_fallback_directory_is_not_used(no_locator):
    import numpy as np

    shared = no_locator / "tmp" / f"noisestat-numba-{os.getuid()}"
    shared.mkdir()
    shared.chmod(0o777)
    assert _numba.fallback_cache_dir() is None
    mod = _import_kernels(no_locator / "mod", "shared_kernels")  # compiles per process, still works
    assert mod.add_one(2) == 3 and mod.total(np.ones(3)) == 6.0
    assert not list(shared.rglob("*.nbi"))


def test_every_kernel_is_cached():
    """Every numba dispatcher in the package was made with cache=True (through _numba.jit/pjit)."""
    import importlib
    import pkgutil

    import noisestat

    dispatchers = []
    for mod_info in pkgutil.walk_packages(noisestat.__path__, "noisestat."):
        if mod_info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(mod_info.name)
        for obj in vars(mod).values():
            if isinstance(obj, numba.core.registry.CPUDispatcher) and obj.__module__ == mod.__name__:
                dispatchers.append(obj)
    assert len(dispatchers) >= 20
    uncached = [d.py_func.__qualname__ for d in dispatchers if not d._cache.__class__.__name__ == "FunctionCache"]
    assert not uncached
