"""ONNX Runtime access shared by the hooks: the lazy import, provider choice, sessions.

Nothing here imports ``onnxruntime`` at module import; :func:`import_onnxruntime`
does, when a hook is constructed.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["INSTALL_HINT", "import_onnxruntime", "select_providers", "open_session", "describe_signature",
           "check_model_path"]

#: How to get the optional dependency (the ImportError says this).
INSTALL_HINT = "pip install noisestat[onnx] (or onnxruntime-gpu for CUDA)"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def import_onnxruntime() -> Any:
    """The ``onnxruntime`` module, or ImportError naming the install command."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise ImportError(f"the ONNX hooks of noisestat need ONNX Runtime, which is not installed: "
                          f"{INSTALL_HINT}") from exc
    return onnxruntime


def select_providers(providers: Sequence[str] | None = None) -> list[str]:
    """Execution providers to ask ONNX Runtime for.

    ``None``: CUDA then CPU when ``onnxruntime.get_available_providers()``
    lists CUDA (onnxruntime-gpu with a GPU), else CPU only. A given list is
    checked against the available providers (ValueError naming the missing one).
    """
    ort = import_onnxruntime()
    available = list(ort.get_available_providers())
    if providers is None:
        return [CUDA, CPU] if CUDA in available else [CPU]
    if isinstance(providers, str) or not all(isinstance(p, str) for p in providers):
        raise TypeError(f"providers must be a list of provider names, e.g. [{CPU!r}], got {providers!r}")
    out = list(providers)
    if not out:
        raise ValueError(f"providers is empty; use None (automatic) or e.g. [{CPU!r}]")
    for p in out:
        if p not in available:
            raise ValueError(f"providers: {p!r} is not available in this onnxruntime; available: "
                             f"{', '.join(available)} (for CUDA install onnxruntime-gpu)")
    return out


def check_model_path(path: Any, what: str = "path") -> Path:
    """``path`` as an existing file (TypeError / FileNotFoundError otherwise)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{what} must be the path of an .onnx file, got {path!r}")
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{what}={str(p)!r}: no such ONNX model file")
    return p


@functools.lru_cache(maxsize=16)
def _cached_session(path: str, mtime_ns: int, size: int, providers: tuple[str, ...]) -> Any:
    ort = import_onnxruntime()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: no provider-fallback chatter on stderr
    return ort.InferenceSession(path, sess_options=opts, providers=list(providers))


def open_session(path: Path, providers: Sequence[str]) -> Any:
    """An ``InferenceSession`` of ``path`` (cached per file version and providers)."""
    st = path.stat()
    return _cached_session(str(path.resolve()), st.st_mtime_ns, st.st_size, tuple(providers))


def _shape(arg: Any) -> str:
    dims = ["?" if d is None else str(d) for d in (arg.shape or [])]
    return f"{arg.name}: {arg.type} [{', '.join(dims)}]"


def describe_signature(session: Any) -> str:
    """One line with a session's inputs and outputs, for error messages."""
    ins = "; ".join(_shape(a) for a in session.get_inputs())
    outs = "; ".join(_shape(a) for a in session.get_outputs())
    return f"inputs ({ins}), outputs ({outs})"
