"""Every ``>>>`` example in the package runs and gives the output it shows.

The modules are discovered with ``pkgutil.walk_packages`` (no hand-kept list):
a module that gains an example is tested from then on.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import numpy as np
import pytest

import noisestat


def _modules() -> list[str]:
    names = ["noisestat"]
    for info in pkgutil.walk_packages(noisestat.__path__, prefix="noisestat."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            names.append(info.name)
    return sorted(names)


MODULES = _modules()


def test_discovery_finds_the_packages():
    assert {"noisestat.io", "noisestat.registry", "noisestat.jpeg.adq", "noisestat.blocks.dct"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_examples(name):
    mod = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(mod, name, globs={"np": np, **vars(mod)})
    for t in tests:
        if t.lineno is None and t.filename is None:  # pragma: no cover - re-exported objects
            continue
        runner.run(t)
    res = runner.summarize(verbose=False)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples in {name} failed (see the output above)"
