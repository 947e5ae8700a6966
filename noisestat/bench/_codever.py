"""The code version recorded in every benchmark row.

``<noisestat version>+<12 hex digits>``: a SHA-256 over the source of the
method's module and of every ``noisestat`` module it imports (transitively,
found by parsing the import statements, including imports inside
functions), plus the modules that load images and compute the row
(``io``, ``metrics``, ``registry``, ``_validate``, ``types``,
``bench/_task``, this module), and the JSON model files beside them (the
fitted fusion model and decision calibration). Editing any of them changes the version of
exactly the methods whose rows could change. Third-party library versions
are not part of it.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
from collections.abc import Iterable
from pathlib import Path

from .._version import __version__

__all__ = ["code_version", "module_closure"]

_ALWAYS = ("noisestat.io", "noisestat.metrics", "noisestat.registry", "noisestat._validate",
           "noisestat.types", "noisestat.bench._task", "noisestat.bench._codever")
_CODE_CACHE: dict[str, str] = {}


def _module_file(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def _imports_of(name: str, path: Path) -> set[str]:
    """Names of ``noisestat`` modules imported anywhere in a module (also inside functions)."""
    is_pkg = path.name == "__init__.py"
    pkg_parts = name.split(".") if is_pkg else name.split(".")[:-1]
    out: set[str] = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "noisestat")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg_parts[: len(pkg_parts) - (node.level - 1)] if node.level > 1 else list(pkg_parts)
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "noisestat":
                continue
            out.add(mod)
            for a in node.names:  # `from . import x` may name a submodule
                out.add(f"{mod}.{a.name}")
    return out


def module_closure(roots: Iterable[str]) -> dict[str, Path]:
    """The given modules and every noisestat module they import, transitively: name -> file."""
    seen: dict[str, Path] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        path = _module_file(name)
        if path is None:
            continue
        seen[name] = path
        todo.extend(n for n in _imports_of(name, path) if n not in seen)
    return seen


def code_version(method: str) -> str:
    """``<noisestat version>+<hash of the sources the method's rows depend on>`` (see the module docstring)."""
    if method in _CODE_CACHE:
        return _CODE_CACHE[method]
    from ..registry import get_method

    spec = get_method(method)
    files = module_closure([spec.module, *_ALWAYS])
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].read_bytes() + b"\0")
    for data in sorted({p for f in files.values() for p in f.parent.glob("*.json")}):
        h.update(data.name.encode() + b"\0" + data.read_bytes() + b"\0")  # fitted models are code too
    v = f"{__version__}+{h.hexdigest()[:12]}"
    _CODE_CACHE[method] = v
    return v
