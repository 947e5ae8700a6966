"""Regenerate noisestat/onnx/srm.onnx, the SRM high-pass residual bank (Fridrich & Kodovsky 2012).

    python benchmarks/make_srm_onnx.py [--out noisestat/onnx/srm.onnx]

Needs the ``onnx`` package (``pip install noisestat[onnx]``). The graph is one
Conv with the 30 fixed kernels of ``noisestat.onnx.srm_kernels()``; no weights
are learned. The output is deterministic (same bytes on every run).
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from noisestat.onnx import SRM_NAMES, build_srm_model

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "noisestat" / "onnx" / "srm.onnx"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    data = build_srm_model().SerializeToString()
    args.out.write_bytes(data)
    print(f"wrote {args.out} ({len(data)} bytes, {len(SRM_NAMES)} filters, sha256 "
          f"{hashlib.sha256(data).hexdigest()[:16]})")


if __name__ == "__main__":
    main()
