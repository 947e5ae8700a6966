"""Object-level localizers and fusion; each public module registers its method(s).

The maps that fusion fuses (:data:`FUSED_MAPS`, with their transforms) are
defined here, not in :mod:`noisestat.localizers.fusion`, so that the
decisions layer can read their names without importing fusion's code and
kernels (:mod:`noisestat.localizers.fusion` re-exports them).
"""

from __future__ import annotations

__all__ = ["FUSED_MAPS", "LOG", "LOGIT", "LINEAR"]

#: How a map's ``raw`` becomes the value whose robust z is pooled per object:
#: ``("log", floor)`` - ``log(max(raw, floor))`` for positive scales (``floor``
#: None: 1e-3 of the 8-bit level, scaled to the image's white level);
#: ``("logit", floor)`` - ``logit(clip(raw, floor, 1 - floor))`` for
#: probabilities; ``("linear", None)`` - ``raw`` itself for signed statistics
#: (log-ratios, differences).
LOG: tuple[str, float | None] = ("log", None)
LOGIT: tuple[str, float | None] = ("logit", 1e-4)
LINEAR: tuple[str, float | None] = ("linear", None)
#: The maps fusion is fitted with and uses by default, with their transform
#: (one entry per map: adding a map, e.g. ``"nadq": LINEAR`` - its raw is a
#: per-block log-odds -, is one entry here and a refit with
#: ``benchmarks/fit_fusion.py``; seven maps double the subset models to 128).
#: The JPEG maps apply only to JPEG files with a trace; on other images they
#: are left out and the model without them is used. Chosen on the synthetic
#: training splices (held-out object AUC of the noise maps + ELA, then with the
#: map added, on the images where it applies): adq 0.76 -> 0.92, dct_hist
#: 0.73 -> 0.92, jpeg_ghost 0.73 -> 0.79 (0.5-0.8 s per 3 MP each). Not fused
#: (six maps keep it at 2^6 = 64 subset models): grid_content 0.73 -> 0.77,
#: blocking_grid 0.74 -> 0.76 (1.8 s per 3 MP), kurtosis 0.73 -> 0.75 (1.3 s).
FUSED_MAPS: dict[str, tuple[str, float | None]] = {
    "median_residual": LOG,
    "wavelet_mad": LOG,
    "ela": LOG,
    "adq": LOGIT,
    "jpeg_ghost": LINEAR,
    "dct_hist": ("log", 1e-2),
}
