"""The consolidated row table of a run: ``RUNDIR/rows.csv``.

One row per (item, method configuration), appended as results arrive, one
complete line per ``write`` followed by a flush, so that an interrupted run
leaves a valid file. A torn last line (the process was killed while writing)
is cut off when the file is opened again. Numbers are written with ``repr``
(exact round trip), NaN as ``nan``, missing values as an empty field.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ._task import COLUMNS, FLOAT_COLS, INT_COLS, row_key

__all__ = ["RowWriter", "read_rows", "latest_rows", "current_rows", "compact", "write_parquet", "format_value"]


def format_value(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return "nan" if math.isnan(v) else repr(v)
    if isinstance(v, np.integer):
        return str(int(v))
    if hasattr(v, "item") and not isinstance(v, str):  # numpy scalar
        return format_value(v.item())
    return str(v)


def _parse(col: str, text: str) -> Any:
    if col in FLOAT_COLS:
        return float(text) if text != "" else math.nan
    if col in INT_COLS:
        return int(text) if text != "" else None
    if col == "applicable":
        return None if text == "" else text == "true"
    return text


def _line(row: dict[str, Any], columns: Iterable[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([format_value(row.get(c)) for c in columns])
    return buf.getvalue()


def _repair_tail(path: Path) -> None:
    """Cut a torn last line (no trailing newline) off the file."""
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        block = min(size, 1 << 20)
        fh.seek(size - block)
        tail = fh.read(block)
        cut = tail.rfind(b"\n")
        fh.truncate(size - block + cut + 1 if cut >= 0 else 0)


def read_rows(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a rows file written by :class:`RowWriter` (typed values; unknown columns kept as text)."""
    p = Path(path)
    if not p.is_file():
        return []
    with open(p, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return []
        rows = []
        for rec in reader:
            if len(rec) != len(header):  # torn line
                continue
            rows.append({c: _parse(c, t) for c, t in zip(header, rec)})
    return rows


class RowWriter:
    """Append rows to ``rows.csv`` (creates it with a header; upgrades an older header)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_file() and self.path.stat().st_size > 0:
            _repair_tail(self.path)
            with open(self.path, newline="", encoding="utf-8") as fh:
                header = next(csv.reader(fh), None)
            if header != list(COLUMNS):
                _rewrite(self.path, read_rows(self.path))
        if not self.path.is_file() or self.path.stat().st_size == 0:
            self.path.write_text(",".join(COLUMNS) + "\n", encoding="utf-8")
        self._fh = open(self.path, "a", encoding="utf-8", newline="")

    def write(self, row: dict[str, Any]) -> None:
        self._fh.write(_line(row, COLUMNS))
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rewrite(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(COLUMNS) + "\n")
        for r in rows:
            fh.write(_line(r, COLUMNS))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def latest_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The last row of each (item, method, params), in first-seen order."""
    last: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        last[(r["item"], r["method"], r["params"])] = r
    return list(last.values())


def compact(path: str | os.PathLike) -> int:
    """Drop superseded rows (keep the last row of each (item, method, params)); return rows dropped."""
    p = Path(path)
    rows = read_rows(p)
    keep = latest_rows(rows)
    if len(keep) != len(rows):
        _rewrite(p, keep)
    return len(rows) - len(keep)


def keys_of(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, ...], dict[str, Any]]:
    return {row_key(r): r for r in rows}


def current_rows(rundir: str | os.PathLike) -> list[dict[str, Any]]:
    """The latest rows of a run folder, restricted to the method configurations of its last run (``run.json``)."""
    import json

    d = Path(rundir)
    rows = latest_rows(read_rows(d / "rows.csv"))
    meta_p = d / "run.json"
    if meta_p.is_file():
        cur = json.loads(meta_p.read_text()).get("current", {})
        want = {(m["method"], json.dumps(m["params"], sort_keys=True), m["code_version"])
                for m in cur.get("methods", [])}
        if want:
            rows = [r for r in rows if (r["method"], r["params"], r["code_version"]) in want]
    return rows


def write_parquet(rows: list[dict[str, Any]], path: str | os.PathLike) -> bool:
    """Write the rows as Parquet when pyarrow is installed; return whether it was written."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    cols: dict[str, list[Any]] = {c: [r.get(c) for r in rows] for c in COLUMNS}
    arrays = {}
    for c, vals in cols.items():
        if c in FLOAT_COLS:
            arrays[c] = pa.array([math.nan if v is None else float(v) for v in vals], pa.float64())
        elif c in INT_COLS:
            arrays[c] = pa.array(vals, pa.int64())
        elif c == "applicable":
            arrays[c] = pa.array(vals, pa.bool_())
        else:
            arrays[c] = pa.array(["" if v is None else str(v) for v in vals], pa.string())
    tmp = Path(str(path) + ".tmp")
    pq.write_table(pa.table(arrays), tmp)
    os.replace(tmp, path)
    return True
