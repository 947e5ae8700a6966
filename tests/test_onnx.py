"""The optional ONNX hooks without onnxruntime: imports, the ImportError, the SRM kernels.

Every graph is built with onnx.helper in tmp_path (tests/onnx_graphs.py); the only
packaged model is noisestat/onnx/srm.onnx.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from noisestat.onnx import INSTALL_HINT, srm_kernels, srm_model_path, srm_reference


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, env=None)


# --------------------------------------------------------------------------- imports (no onnxruntime needed)


def test_import_noisestat_never_imports_onnxruntime():
    res = _run("""
        import sys
        import noisestat, noisestat.onnx
        from noisestat import registry
        assert "onnx" in registry.segmenters() and "onnx" in registry.feature_sources()
        from noisestat.localizers.objects import objects_localizer
        from noisestat.synth import demo_splice
        objects_localizer(demo_splice().image, segmenter="grid")
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("onnxruntime", "onnx")))
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_hooks_raise_importerror_with_the_install_command_without_onnxruntime(tmp_path):
    res = _run(f"""
        import sys
        sys.modules["onnxruntime"] = None  # hide it: "import onnxruntime" raises ImportError
        import noisestat.onnx as o
        from noisestat.localizers.objects import objects_localizer
        import numpy as np
        calls = [lambda: o.OnnxSegmenter({str(srm_model_path())!r}),
                 lambda: o.OnnxFeatureProvider({str(srm_model_path())!r}),
                 lambda: objects_localizer(np.zeros((32, 32)), feature_maps="onnx:srm")]
        for f in calls:
            try:
                f()
            except ImportError as exc:
                print("ImportError:", exc)
            else:
                print("no error")
    """)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        assert line.startswith("ImportError:") and "pip install noisestat[onnx]" in line
    assert "pip install noisestat[onnx]" in INSTALL_HINT


def test_srm_kernels_are_the_rich_model_residuals():
    k = srm_kernels()
    assert k.shape == (30, 5, 5)
    np.testing.assert_array_equal(k.sum(axis=(1, 2)), 0.0)  # high-pass: constants give 0
    # first order east: X(i, j+1) - X(i, j); third order east: X(j-1) - 3X(j) + 3X(j+1) - X(j+2)
    np.testing.assert_array_equal(k[0, 2], [0, 0, -1, 1, 0])
    np.testing.assert_array_equal(k[12, 2], [0, 1, -3, 3, -1])
    np.testing.assert_array_equal(k[25], [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
                                          [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]])
    assert len({kk.tobytes() for kk in k}) == 30  # all distinct
    # reference against a direct loop on one pixel
    rng = np.random.default_rng(1)
    x = rng.random((9, 9))
    r = srm_reference(x)
    for c in (0, 12, 20, 29):
        assert r[4, 4, c] == pytest.approx(float((k[c] * x[2:7, 2:7]).sum()), abs=1e-12)
