from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

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
    # one timings convention: named stages plus "total" (the whole call), no ambiguous "map" key
    hm = direct if isinstance(direct, Heatmap) else direct.heatmap
    assert "total" in hm.timings and "map" not in hm.timings, hm.timings
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


def test_segmenters_are_built_from_the_code():
    names = registry.segmenters()
    assert {"slic_merge", "felzenszwalb", "watershed", "grid"} <= set(names)
    modules = {registry.get_segmenter(n).module for n in names}
    for pkg_name in registry.SEGMENTER_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                assert f"{pkg_name}.{mod.name}" in modules, f"{pkg_name}.{mod.name} registers no segmenter"
    with pytest.raises(ValueError, match="segmentation backend"):
        registry.get_segmenter("no_such_backend")


def test_unknown_parameter_is_a_value_error_everywhere(noisy_rgb):
    from noisestat.segment import segment

    with pytest.raises(ValueError, match="bogus"):
        noisestat.localize(noisy_rgb, method="median_residual", bogus=1)
    with pytest.raises(ValueError, match="bogus"):
        segment(noisy_rgb, bogus=1)


def test_lazy_public_names_have_static_imports():
    import ast

    tree = ast.parse(Path(noisestat.__file__).read_text(encoding="utf-8"))
    static = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.If)
              and getattr(node.test, "id", "") == "TYPE_CHECKING"
              for imp in node.body if isinstance(imp, ast.ImportFrom) for a in imp.names}
    assert static == set(noisestat._LAZY)
    for name, mod in noisestat._LAZY.items():
        assert getattr(noisestat, name) is getattr(importlib.import_module(mod), name)


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


def test_methods_that_apply_to_some_inputs_say_which():
    for name in noisestat.methods():
        spec = registry.get_method(name)
        if spec.module.startswith("noisestat.jpeg.") or name == "ela":
            assert spec.applies, f"{name} returns applicable=False on some inputs but declares no 'applies'"
    from noisestat.cli import main

    assert main(["methods", "-v"]) == 0


def test_looking_up_one_method_imports_only_its_module():
    """get_method/default_method import the module a name points to; methods() still lists every method."""
    import subprocess
    import sys

    code = (
        "import sys; from noisestat import registry; import noisestat.decisions;"
        "spec = registry.get_method('median_residual');"
        "mods = sorted(m for p in registry.METHOD_PACKAGES for m in sys.modules if m.startswith(p + '.'));"
        "assert mods == ['noisestat.maps.median_residual'], mods;"
        "assert spec.module == 'noisestat.maps.median_residual';"
        "assert registry.get_method('jpeg_ghost').module == 'noisestat.jpeg.ghost';"
        "assert registry.default_method() == registry.DEFAULT_METHOD;"
        "assert 'noisestat.localizers.fusion' not in sys.modules;"
        "assert not any(m == 'sklearn' or m.startswith('sklearn.') for m in sys.modules);"
        "names = registry.methods(); print(','.join(names))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip().split(",") == noisestat.methods()
