"""Small parameter checks shared by every public function.

Image and mask intake (``as_image``, ``as_region_mask``) lives in
:mod:`noisestat.io`; this module sits in the ground layer and imports nothing
of the package.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_int", "check_float", "check_choice", "check_bool"]


def check_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as int, or raise TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name}={v} is too small; use a value >= {minimum}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name}={v} is too large; use a value <= {maximum}")
    return v


def check_float(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_min: bool = False,
) -> float:
    """Return ``value`` as a finite float, or raise TypeError / ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name}={v} must be finite")
    if minimum is not None and (v < minimum or (exclusive_min and v == minimum)):
        op = ">" if exclusive_min else ">="
        raise ValueError(f"{name}={v} is out of range; use a value {op} {minimum}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name}={v} is out of range; use a value <= {maximum}")
    return v


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {choices}, got {value!r}")
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not supported; choose one of {choices}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """Return ``value`` as bool if it is True or False (numpy bools included), else raise TypeError."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)
