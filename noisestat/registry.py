"""The method registry: name -> callable + parameter defaults.

Methods register themselves with the :func:`register` decorator next to their
definition. The registry is built from the code: :func:`load_all` imports
every public module of the method subpackages (``noisestat.maps``,
``noisestat.localizers``), so a method module that is added there is found
without editing any list. The CLI and the benchmark run methods only through
this module.

A method is a function ``f(image, **params)`` whose first argument is an
image (array, path or :class:`~noisestat.types.LoadedImage`) and whose other
parameters are keyword-only with defaults. It returns a
:class:`~noisestat.types.Heatmap` or a :class:`~noisestat.types.Localization`.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._numba import registered_warmups
from .types import Heatmap, LoadedImage, Localization

__all__ = ["MethodSpec", "register", "methods", "get_method", "localize", "load_all",
           "DEFAULT_METHOD", "heatmap_to_localization", "SCORE_QUANTILE", "warmup"]

METHOD_PACKAGES = ("noisestat.maps", "noisestat.localizers")
#: packages whose modules hold Numba kernels (estimators and segmenters are not methods)
KERNEL_PACKAGES = ("noisestat.blocks", "noisestat.noise", "noisestat.segment", *METHOD_PACKAGES)
DEFAULT_METHOD = "objects"
#: image-level score of a dense map: this quantile of its heatmap values
SCORE_QUANTILE = 0.99


@dataclass(frozen=True)
class MethodSpec:
    """A registered method."""

    name: str
    func: Callable[..., Any]
    kind: str  # "map" (returns Heatmap) or "localizer" (returns Localization)
    params: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    module: str = ""


_REGISTRY: dict[str, MethodSpec] = {}
_LOADED = False


def register(name: str, *, kind: str = "map", description: str | None = None):
    """Decorator that registers ``func`` under ``name``.

    Parameter defaults are read from the function's keyword-only arguments.
    """
    if kind not in ("map", "localizer"):
        raise ValueError(f"kind={kind!r}; use 'map' or 'localizer'")

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(func)
        params = {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        desc = description
        if desc is None:
            doc = inspect.getdoc(func) or ""
            desc = doc.splitlines()[0] if doc else ""
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            prev = _REGISTRY[name]
            if (prev.module, prev.func.__qualname__) != (func.__module__, func.__qualname__):
                raise RuntimeError(f"method name {name!r} registered twice ({prev.module}, {func.__module__})")
        _REGISTRY[name] = MethodSpec(name, func, kind, params, desc, func.__module__)
        return func

    return deco


def load_all() -> None:
    """Import every public module of the method packages (idempotent)."""
    global _LOADED
    if _LOADED:
        return
    for pkg_name in METHOD_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{mod.name}")
    _LOADED = True


def warmup() -> float:
    """Compile every Numba kernel of the package once.

    Imports every module of the estimator, segmentation and method packages
    (so that their kernels register a warm-up call), then runs each warm-up.
    Call it before timing anything.

    Returns
    -------
    float
        Seconds spent compiling (or loading compiled kernels from the cache).
    """
    load_all()
    for pkg_name in KERNEL_PACKAGES:
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.iter_modules(pkg.__path__):
            importlib.import_module(f"{pkg_name}.{mod.name}")
    t0 = time.perf_counter()
    for f in registered_warmups():
        f()
    return time.perf_counter() - t0


def methods() -> list[str]:
    """Names of all registered methods, sorted."""
    load_all()
    return sorted(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """Return the :class:`MethodSpec` for ``name`` or raise ValueError listing valid names."""
    load_all()
    if not isinstance(name, str):
        raise TypeError(f"method must be a string, got {type(name).__name__}")
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"method={name!r} is not registered; choose one of {', '.join(sorted(_REGISTRY))}"
        ) from None


def default_method() -> str:
    """The default method of :func:`localize` and the CLI."""
    load_all()
    return DEFAULT_METHOD if DEFAULT_METHOD in _REGISTRY else sorted(_REGISTRY)[0]


def heatmap_to_localization(hm: Heatmap, *, params: Mapping[str, Any] | None = None) -> Localization:
    """Wrap a dense map: mask = values >= 0.5; score = 99th percentile of values.

    A map flagged not applicable gets an empty mask and score NaN.
    """
    if not hm.applicable:
        return Localization(hm, np.zeros(hm.shape, bool), float("nan"), hm.method,
                            params=dict(params or hm.params), timings=dict(hm.timings))
    score = float(np.quantile(hm.values, SCORE_QUANTILE))
    return Localization(hm, hm.values >= 0.5, score, hm.method,
                        params=dict(params or hm.params), timings=dict(hm.timings))


def check_params(spec: MethodSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``params`` over the defaults; unknown names raise ValueError."""
    unknown = sorted(set(params) - set(spec.params))
    if unknown:
        raise ValueError(
            f"method {spec.name!r} has no parameter(s) {', '.join(unknown)}; "
            f"valid: {', '.join(spec.params) or '(none)'}"
        )
    merged = dict(spec.params)
    merged.update(params)
    return merged


def localize(image: Any, *, method: str | None = None, **params: Any) -> Localization:
    """Run a registered method on one image.

    Parameters
    ----------
    image : array_like, str, path or LoadedImage
        The image (see :func:`noisestat.load_image`).
    method : str, optional
        A name from :func:`methods`; default ``"objects"``.
    **params
        Method parameters (see ``get_method(name).params`` for the defaults).

    Returns
    -------
    Localization
        Heatmap, binary mask, image-level score and timings.

    Raises
    ------
    ValueError
        Unknown method or parameter, or an input the method cannot use.

    Examples
    --------
    >>> import numpy as np, noisestat
    >>> img = np.random.default_rng(0).normal(128, 5, (64, 64)).clip(0, 255)
    >>> loc = noisestat.localize(img, method="median_residual")
    >>> loc.heatmap.shape
    (64, 64)
    """
    spec = get_method(method if method is not None else default_method())
    merged = check_params(spec, params)
    t0 = time.perf_counter()
    img = image if isinstance(image, LoadedImage) else _load(image)
    t1 = time.perf_counter()
    out = spec.func(img, **merged)
    t2 = time.perf_counter()
    if isinstance(out, Heatmap):
        out = heatmap_to_localization(out, params=merged)
    if not isinstance(out, Localization):  # pragma: no cover - programming error
        raise RuntimeError(f"method {spec.name!r} returned {type(out).__name__}")
    timings = dict(out.timings)
    timings.update(load=t1 - t0, method=t2 - t1, total=t2 - t0)
    return dataclasses.replace(out, timings=timings)


def _load(image: Any) -> LoadedImage:
    from .io import load_image

    return load_image(image)
