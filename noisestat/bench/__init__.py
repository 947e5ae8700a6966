"""Batch benchmarking: dataset manifests, resumable (parallel) runs, summaries, reports.

Submodules
----------
manifest
    The manifest format (JSON): build, load, save and check dataset listings.
run
    :func:`run_bench`: one row per (item, method) appended to ``RUNDIR/rows.csv``
    as it goes; resumable; local worker processes or a Dask cluster.
summary
    Per-method summaries (mean, median, bootstrap interval, pooled rates,
    image-level AUC) and paired comparisons; CSV and LaTeX export.
calibrate
    Threshold moving: the per-method threshold maximising mean F1 or MCC.
protocols
    Robustness datasets built with :mod:`noisestat.synth` and post-processing
    of an existing manifest.
report
    PNG plots and a self-contained HTML page.

Only numpy (and the core dependencies) are needed for manifests, runs and
summaries. ``tqdm``, ``matplotlib``, ``dask.distributed`` and ``pyarrow``
(``pip install noisestat[bench]``) are imported lazily where they are used.
"""

from __future__ import annotations

__all__: list[str] = []
