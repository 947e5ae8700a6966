from __future__ import annotations

import importlib
import pkgutil

import numpy as np
import pytest

import noisestat
from noisestat import registry
from noisestat.types import Heatmap, Localization


def test_methods_listed_and_every_module_registers():
    names = noisestat.methods()
    assert names == sorted(names) and len(names) >= 1
    modules = {registry.get_method(n).module for n in names}
    for pkg_name in registry.METHOD_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                assert f"{pkg_name}.{mod.name}" in modules, f"{pkg_name}.{mod.name} registers no method"


@pytest.mark.parametrize("name", noisestat.methods())
def test_every_method_runs_on_a_tiny_image(name, noisy_rgb):
    spec = registry.get_method(name)
    # every method is also importable as a plain function with keyword-only params
    direct = spec.func(noisy_rgb)
    assert isinstance(direct, (Heatmap, Localization))
    loc = noisestat.localize(noisy_rgb, method=name)
    assert isinstance(loc, Localization)
    assert loc.heatmap.shape == noisy_rgb.shape[:2] == loc.mask.shape
    v = loc.heatmap.values
    assert v.dtype == np.float32 and np.all(np.isfinite(v)) and v.min() >= 0 and v.max() <= 1
    assert np.all(np.isfinite(loc.heatmap.raw))
    assert loc.method == name
    assert "total" in loc.timings
    if loc.applicable:
        assert 0.0 <= loc.score <= 1.0
    # deterministic
    again = noisestat.localize(noisy_rgb, method=name)
    np.testing.assert_array_equal(again.heatmap.values, loc.heatmap.values)


def test_unknown_method_and_parameter(noisy_rgb):
    with pytest.raises(ValueError, match="not a registered method"):
        noisestat.localize(noisy_rgb, method="nope")
    name = noisestat.methods()[0]
    with pytest.raises(ValueError, match="no parameter"):
        noisestat.localize(noisy_rgb, method=name, not_a_param=3)
    with pytest.raises(TypeError):
        noisestat.localize(noisy_rgb, method=3)


def test_localize_rejects_nan():
    img = np.full((64, 64), 100.0)
    img[3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        noisestat.localize(img, method=noisestat.methods()[0])


def test_import_has_no_side_effects():
    import subprocess
    import sys

    code = (
        "import warnings, logging, sys, numpy; f=list(warnings.filters); h=list(logging.root.handlers);"
        "import noisestat; assert warnings.filters==f; assert logging.root.handlers==h;"
        "assert 'numba' not in sys.modules, 'import noisestat must not import numba'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
