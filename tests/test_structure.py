"""The package's import structure: layers as the README's Layout lists them, no cycles.

Every static ``import`` / ``from ... import`` anywhere in a module counts (inside
functions and ``TYPE_CHECKING`` blocks too); imports by ``importlib`` strings
do not. A module may import modules of its own layer or of the layers below.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "noisestat"


def read_layers(readme: Path = ROOT / "README.md") -> list[tuple[str, tuple[str, ...]]]:
    """(name, module prefixes) per layer, bottom first, from the README's layer block."""
    text = readme.read_text(encoding="utf-8")
    block = re.search(r"<!-- layers:.*?-->(.*?)<!-- end layers -->", text, re.S)
    assert block, "README.md has no <!-- layers: ... --> block"
    layers = []
    for line in block.group(1).strip().splitlines():
        m = re.match(r"\s*(\d+)\.\s*([^:]+):\s*(.+)$", line)
        assert m, f"cannot read layer line {line!r}"
        assert int(m.group(1)) == len(layers) + 1, f"layer numbers out of order at {line!r}"
        layers.append((m.group(2).strip(), tuple(x.strip() for x in m.group(3).split(","))))
    return layers


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_edges(mods: dict[str, Path]) -> set[tuple[str, str]]:
    """(importer, imported) pairs between modules of the package."""
    edges = set()
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(mod, is_pkg, node)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            for t in targets:
                while t and t not in mods and "." in t:
                    t = t.rsplit(".", 1)[0]
                if t in mods and t != mod:
                    edges.add((mod, t))
    return edges


def layer_of(mod: str, layers) -> int:
    best, best_len = -1, -1
    for i, (_, prefixes) in enumerate(layers):
        for p in prefixes:
            if (mod == p or mod.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def find_cycle(edges: set[tuple[str, str]]) -> list[str] | None:
    graph: dict[str, list[str]] = {}
    for a, b in sorted(edges):
        graph.setdefault(a, []).append(b)
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in graph.get(n, []):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (c := visit(m)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


LAYERS = read_layers()
MODS = modules()
EDGES = import_edges(MODS)


def test_every_module_has_a_layer():
    missing = [m for m in MODS if layer_of(m, LAYERS) < 0]
    assert not missing, f"modules in no layer of README.md's Layout: {missing}"


def test_no_import_from_a_lower_layer_to_a_higher_one():
    bad = [(a, LAYERS[layer_of(a, LAYERS)][0], b, LAYERS[layer_of(b, LAYERS)][0])
           for a, b in sorted(EDGES) if layer_of(b, LAYERS) > layer_of(a, LAYERS)]
    assert not bad, "imports from a lower layer to a higher one: " + "; ".join(
        f"{a} ({la}) imports {b} ({lb})" for a, la, b, lb in bad)


def test_no_import_cycle():
    assert find_cycle(EDGES) is None, f"import cycle: {' -> '.join(find_cycle(EDGES) or [])}"


def test_ground_modules_import_nothing_of_the_package_above_them():
    ground = LAYERS[0][1]
    for a, b in EDGES:
        if layer_of(a, LAYERS) == 0:
            assert layer_of(b, LAYERS) == 0, f"{a} imports {b}"
    numba_settings = MODS["noisestat._numba"].read_text(encoding="utf-8")
    assert not any(a == "noisestat._numba" for a, _ in EDGES), "_numba imports only numba and the stdlib"
    assert "noisestat._numba" in ground and "import numba" in numba_settings


def private_owner(src: str, name: str) -> str | None:
    """The package that owns a private name (``_x``) or private module on the path, else None.

    A private module or name is for its own package and that package's subpackages.
    """
    parts = src.split(".")
    for i, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    if name.startswith("_") and not name.startswith("__"):
        return src if (ROOT / src.replace(".", "/") / "__init__.py").exists() else src.rsplit(".", 1)[0]
    return None


def test_no_private_name_imported_across_packages():
    bad = []
    for mod, path in MODS.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            src = _resolve(mod, path.name == "__init__.py", node)
            for a in node.names:
                owner = private_owner(src, a.name)
                if owner is not None and mod != owner and not mod.startswith(owner + "."):
                    bad.append(f"{mod}: from {src} import {a.name}")
    assert not bad, "private names imported from another package: " + "; ".join(bad)


# --------------------------------------------------------------------------- #
# the checker itself: it must be able to fail
# --------------------------------------------------------------------------- #


def test_private_owner():
    assert private_owner("noisestat._validate", "check_int") == "noisestat"
    assert private_owner("noisestat.maps._kurtosis_kernels", "kurtosis_stats") == "noisestat.maps"
    assert private_owner("noisestat.noise.pca", "_channel_center") == "noisestat.noise"
    assert private_owner("noisestat.noise.pca", "estimate_noise_pca") is None
    assert private_owner("noisestat._version", "__version__") == "noisestat"


def test_checker_finds_cycles_and_upward_imports(tmp_path):
    assert find_cycle({("a", "b"), ("b", "c"), ("c", "a")}) == ["a", "b", "c", "a"]
    assert find_cycle({("a", "b"), ("b", "c")}) is None
    layers = [("low", ("p.low",)), ("high", ("p.high", "p"))]
    assert layer_of("p.low.x", layers) == 0 and layer_of("p.high", layers) == 1 and layer_of("p", layers) == 1
    assert layer_of("q", layers) == -1


def test_edges_count_imports_inside_functions_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "noisestat"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "__init__.py").write_text("from ..a import f\n")
    (pkg / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .. import a\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    mods = {module_name(p): p for p in sorted(pkg.rglob("*.py"))}
    assert import_edges(mods) == {("noisestat.a", "noisestat.sub.b"), ("noisestat.sub", "noisestat.a"),
                                  ("noisestat.sub.b", "noisestat.a")}


@pytest.mark.parametrize("line", ["1. x: a, b"])
def test_layer_block_format(tmp_path, line):
    readme = tmp_path / "README.md"
    readme.write_text(f"<!-- layers: -->\n    {line}\n<!-- end layers -->\n")
    assert read_layers(readme) == [("x", ("a", "b"))]
