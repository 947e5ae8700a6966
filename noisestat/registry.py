"""The method registry: name -> callable + parameter defaults.

Methods register themselves with the :func:`register` decorator next to their
definition. The registry is built from the code: :func:`load_all` imports
every public module of the method subpackages (``noisestat.maps``,
``noisestat.jpeg``, ``noisestat.localizers``), so a method module that is
added there is found without editing any list. The CLI and the benchmark run
methods only through this module.

Looking one method up (:func:`get_method`, :func:`default_method`) imports
only the module its name points to when there is one (``<package>.<name>``,
or ``<package>.<rest>`` for a name ``<package>_<rest>``: ``jpeg_ghost`` in
``noisestat.jpeg.ghost``) and the name is registered after it; otherwise it
imports them all, as :func:`methods` does. Running one method thus does not
import (and load the Numba kernels of) the others; the registry's content is
the same either way.

A method is a function ``f(image, **params)`` whose first argument is an
image (array, path or :class:`~noisestat.types.LoadedImage`) and whose other
parameters are keyword-only with defaults. It returns a
:class:`~noisestat.types.Heatmap` or a :class:`~noisestat.types.Localization`.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import pkgutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._numba import registered_warmups
from .heatmap import map_quantile
from .types import Heatmap, LoadedImage, Localization

__all__ = ["MethodSpec", "register", "methods", "get_method", "localize", "load_all",
           "DEFAULT_METHOD", "heatmap_to_localization", "SCORE_QUANTILE", "warmup",
           "SegmenterSpec", "register_segmenter", "add_segmenter", "segmenters", "get_segmenter",
           "check_keywords", "register_feature_source", "feature_sources", "get_feature_map",
           "FEATURE_SOURCE_PACKAGES"]

METHOD_PACKAGES = ("noisestat.maps", "noisestat.jpeg", "noisestat.localizers")
#: packages whose public modules register segmentation backends
SEGMENTER_PACKAGES = ("noisestat.segment", "noisestat.onnx")
#: packages whose public modules register feature-map sources (``"scheme:argument"`` specs)
FEATURE_SOURCE_PACKAGES = ("noisestat.onnx",)
#: packages whose modules hold Numba kernels (estimators and segmenters are not methods)
KERNEL_PACKAGES = ("noisestat.blocks", "noisestat.noise", "noisestat.segment", "noisestat.decisions", *METHOD_PACKAGES)
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
    #: what input the method applies to (empty: any image); elsewhere it returns applicable=False
    applies: str = ""


_REGISTRY: dict[str, MethodSpec] = {}
_LOADED = False


def register(name: str, *, kind: str = "map", description: str | None = None, applies: str = ""):
    """Decorator that registers ``func`` under ``name``.

    Parameter defaults are read from the function's keyword-only arguments.
    ``applies`` says in a few words which inputs the method applies to (e.g.
    ``"JPEG input"``; empty = any image); ``noisestat methods -v`` shows it.
    """
    if kind not in ("map", "localizer"):
        raise ValueError(f"kind={kind!r}; use 'map' or 'localizer'")

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        params = _keyword_defaults(func)[0]
        desc = _first_doc_line(func) if description is None else description
        prev = _REGISTRY.get(name)
        if prev is not None and not _same_function(prev.func, func):
            raise RuntimeError(f"method name {name!r} registered twice ({prev.module}, {func.__module__})")
        _REGISTRY[name] = MethodSpec(name, func, kind, params, desc, func.__module__, applies)
        return func

    return deco


def load_all() -> None:
    """Import every public module of the method packages (idempotent)."""
    global _LOADED
    if _LOADED:
        return
    _import_public_modules(METHOD_PACKAGES)
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
    top = importlib.import_module(__name__.rpartition(".")[0])
    for mod in pkgutil.iter_modules(top.__path__):  # top-level kernel modules (luma, robust z)
        if mod.name.endswith("_kernels"):
            importlib.import_module(f"{top.__name__}.{mod.name}")
    t0 = time.perf_counter()
    for f in registered_warmups():
        f()
    return time.perf_counter() - t0


def methods() -> list[str]:
    """Names of all registered methods, sorted."""
    load_all()
    return sorted(_REGISTRY)


def get_method(name: str) -> MethodSpec:
    """Return the :class:`MethodSpec` for ``name`` or raise ValueError listing valid names.

    Imports the module that ``name`` points to first (see the module's
    docstring) and all method modules only if that does not register it.
    """
    if not _find_method(name):
        load_all()
    return _lookup(_REGISTRY, name, "a registered method")


def _find_method(name: Any) -> bool:
    """Whether ``name`` is registered, after importing the module its name points to (if any and not done)."""
    if not isinstance(name, str):
        return False
    if name in _REGISTRY or _LOADED or not name.isidentifier() or name.startswith("_"):
        return name in _REGISTRY
    for pkg_name in METHOD_PACKAGES:
        short = pkg_name.rpartition(".")[2]
        stems = [name] + ([name[len(short) + 1:]] if name.startswith(f"{short}_") else [])
        for stem in stems:
            if stem and not stem.startswith("_") and importlib.util.find_spec(f"{pkg_name}.{stem}") is not None:
                importlib.import_module(f"{pkg_name}.{stem}")
                if name in _REGISTRY:
                    return True
    return False


@dataclass(frozen=True)
class SegmenterSpec:
    """A registered segmentation backend (see :func:`noisestat.segment.segment`)."""

    name: str
    func: Callable[..., Any]
    params: Mapping[str, Any] = field(default_factory=dict)
    var_keyword: bool = False  # the backend takes **params: names are not checked
    description: str = ""
    module: str = ""


_SEGMENTERS: dict[str, SegmenterSpec] = {}
_SEGMENTERS_LOADED = False


def add_segmenter(name: str, func: Callable[..., Any], *, replace: bool = False) -> SegmenterSpec:
    """Register ``func`` as segmentation backend ``name`` (the function form of :func:`register_segmenter`).

    Parameters
    ----------
    name : str
        Backend name (non-empty, no surrounding spaces).
    func : callable
        ``func(image: LoadedImage, **params) -> labels`` or ``-> (labels, info)``;
        parameters keyword-only with defaults.
    replace : bool, default False
        Allow replacing another function registered under the same name.

    Returns
    -------
    SegmenterSpec

    Raises
    ------
    TypeError
        ``name`` is not a string or ``func`` is not callable.
    ValueError
        Empty name, or the name is taken and ``replace`` is False.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {name!r} ({type(name).__name__})")
    if not name or name != name.strip():
        raise ValueError(f"name={name!r} must be a non-empty string without surrounding spaces")
    if not callable(func):
        raise TypeError(f"func must be callable, got {func!r} ({type(func).__name__})")
    prev = _SEGMENTERS.get(name)
    if prev is not None and not replace and not _same_function(prev.func, func):
        raise ValueError(
            f"name={name!r} is already a registered segmentation backend; "
            f"choose another name or pass replace=True"
        )
    params, var_kw = _keyword_defaults(func)
    spec = SegmenterSpec(name, func, params, var_kw, _first_doc_line(func), getattr(func, "__module__", ""))
    _SEGMENTERS[name] = spec
    return spec


def register_segmenter(name: str):
    """Decorator that registers a segmentation backend under ``name`` (see :func:`add_segmenter`)."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        add_segmenter(name, func)
        return func

    return deco


def _load_segmenters() -> None:
    global _SEGMENTERS_LOADED
    if not _SEGMENTERS_LOADED:
        _import_public_modules(SEGMENTER_PACKAGES)
        _SEGMENTERS_LOADED = True


def segmenters() -> list[str]:
    """Names of all registered segmentation backends, sorted."""
    _load_segmenters()
    return sorted(_SEGMENTERS)


def get_segmenter(name: str) -> SegmenterSpec:
    """Return the :class:`SegmenterSpec` for ``name`` or raise ValueError listing valid names."""
    _load_segmenters()
    return _lookup(_SEGMENTERS, name, "a registered segmentation backend")


_FEATURE_SOURCES: dict[str, Callable[[str], Any]] = {}
_FEATURE_SOURCES_LOADED = False


def register_feature_source(scheme: str):
    """Decorator that registers ``factory(argument) -> provider`` for feature-map specs ``"scheme:argument"``.

    A provider is callable as ``provider(image: LoadedImage) -> ndarray (H, W, K) float32``
    (a per-pixel feature map of the image's size) and has a ``name`` (str, a
    short identifier used in feature names) and an ``info`` dict (what the
    results' ``params`` record about it). The object localizer and fusion take
    such maps as extra features (their ``feature_maps`` parameter).
    """

    def deco(factory: Callable[[str], Any]) -> Callable[[str], Any]:
        prev = _FEATURE_SOURCES.get(scheme)
        if prev is not None and not _same_function(prev, factory):
            raise RuntimeError(f"feature source {scheme!r} registered twice")
        _FEATURE_SOURCES[scheme] = factory
        return factory

    return deco


def feature_sources() -> list[str]:
    """Schemes of the registered feature-map sources, sorted."""
    global _FEATURE_SOURCES_LOADED
    if not _FEATURE_SOURCES_LOADED:
        _import_public_modules(FEATURE_SOURCE_PACKAGES)
        _FEATURE_SOURCES_LOADED = True
    return sorted(_FEATURE_SOURCES)


def get_feature_map(spec: Any) -> Any:
    """The feature-map provider of ``spec`` = ``"scheme:argument"`` (e.g. ``"onnx:model.onnx"``).

    Raises
    ------
    TypeError
        ``spec`` is not a string.
    ValueError
        No ``":"`` in ``spec`` or an unknown scheme (the message lists the registered ones).
    """
    if not isinstance(spec, str):
        raise TypeError(f"feature map spec must be a string 'scheme:argument', got {spec!r}")
    schemes = feature_sources()
    scheme, sep, arg = spec.partition(":")
    if not sep or not arg or scheme not in _FEATURE_SOURCES:
        raise ValueError(f"feature map {spec!r} is not 'scheme:argument' with a registered scheme; "
                         f"use one of {', '.join(f'{s}:PATH' for s in schemes) or '(none registered)'}")
    return _FEATURE_SOURCES[scheme](arg)


def _lookup(table: Mapping[str, Any], name: Any, what: str) -> Any:
    if not isinstance(name, str):
        raise TypeError(f"method must be a string, one of {', '.join(sorted(table))}; got {name!r}")
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"method={name!r} is not {what}; choose one of {', '.join(sorted(table))}") from None


def check_keywords(what: str, given: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Raise ValueError naming ``what`` when ``given`` holds a name that ``defaults`` does not.

    The one rule for unknown parameters of methods and segmentation backends.
    """
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ValueError(
            f"{what} has no parameter(s) {', '.join(unknown)}; valid: {', '.join(defaults) or '(none)'}"
        )


def _same_function(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    """The same function, or the same definition imported twice (module reload)."""
    return a is b or (getattr(a, "__module__", None), getattr(a, "__qualname__", None)) == (
        getattr(b, "__module__", None), getattr(b, "__qualname__", None))


def _keyword_defaults(func: Callable[..., Any]) -> tuple[dict[str, Any], bool]:
    """Keyword-only defaults of ``func`` and whether it takes ``**kwargs``."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # pragma: no cover - builtins without signature
        return {}, True
    params = {p.name: p.default for p in sig.parameters.values()
              if p.kind is inspect.Parameter.KEYWORD_ONLY and p.default is not inspect.Parameter.empty}
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.parameters.values())
    return params, var_kw


def _first_doc_line(func: Callable[..., Any]) -> str:
    doc = inspect.getdoc(func) or ""
    return doc.splitlines()[0] if doc else ""


def _import_public_modules(packages: tuple[str, ...]) -> None:
    for pkg_name in packages:
        pkg = importlib.import_module(pkg_name)
        for mod in pkgutil.iter_modules(pkg.__path__):
            if not mod.name.startswith("_"):
                importlib.import_module(f"{pkg_name}.{mod.name}")


def default_method() -> str:
    """The default method of :func:`localize` and the CLI."""
    if _find_method(DEFAULT_METHOD):
        return DEFAULT_METHOD
    load_all()
    return DEFAULT_METHOD if DEFAULT_METHOD in _REGISTRY else sorted(_REGISTRY)[0]


def heatmap_to_localization(hm: Heatmap, *, params: Mapping[str, Any] | None = None) -> Localization:
    """Wrap a dense map: mask = values >= 0.5; score = 99th percentile of values.

    A map flagged not applicable gets an empty mask and score NaN.
    """
    if not hm.applicable:
        return Localization(hm, np.zeros(hm.shape, bool), float("nan"), hm.method,
                            params=dict(params or hm.params), timings=dict(hm.timings))
    score = map_quantile(hm.values, SCORE_QUANTILE)  # = float(np.quantile(values, q)), no sort
    return Localization(hm, hm.values >= 0.5, score, hm.method,
                        params=dict(params or hm.params), timings=dict(hm.timings))


def check_params(spec: MethodSpec, params: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``params`` over the defaults; unknown names raise ValueError."""
    check_keywords(f"method {spec.name!r}", params, spec.params)
    merged = dict(spec.params)
    merged.update(params)
    return merged


def localize(image: Any, *, method: str | None = None, **params: Any) -> Localization:
    """Run a registered method on one image and return its own, uncalibrated result.

    The user-facing :func:`noisestat.localize` (:func:`noisestat.decisions.localize`)
    calls this, then adds the reliability map, the integrity score and the
    calibrated heatmap and mask.

    Parameters
    ----------
    image : array_like, str, path or LoadedImage
        The image (see :func:`noisestat.load_image`).
    method : str, optional
        A name from :func:`methods`; default :func:`default_method`.
    **params
        Method parameters (see ``get_method(name).params`` for the defaults).

    Returns
    -------
    Localization
        The method's heatmap, its own mask and score, and timings (no reliability map).

    Raises
    ------
    ValueError
        Unknown method or parameter, or an input the method cannot use.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.random.default_rng(0).normal(128, 5, (64, 64)).clip(0, 255)
    >>> localize(img, method="median_residual").reliability is None
    True
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
