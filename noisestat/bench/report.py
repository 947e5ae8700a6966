"""``noisestat report RUNDIR``: PNG plots and one self-contained HTML page.

Writes into ``RUNDIR/report/``:

``bars.png``
    Per-method mean per-image F1-best, MCC-best, AUC and F1 / MCC at the
    fixed threshold with their 95 % bootstrap intervals, as-is and
    better-of orientation.
``roc.png``
    Pixel ROC (TPR against FPR) pooled over the spliced images, from the
    per-row counts at thresholds k/100, as-is orientation; the dot marks the
    fixed threshold.
``robustness.png``
    Only for runs on a robustness dataset (items with ``protocol`` /
    ``level``): mean F1-best and AUC against the protocol level.
``index.html``
    The summary tables, paired comparisons, the plots and a gallery of the
    three best and three worst spliced images per method (by as-is F1-best):
    image, ground truth, heatmap. Everything is embedded (``data:`` URIs);
    the page loads nothing from elsewhere.

Heatmaps for the gallery come from ``RUNDIR/maps`` when the run saved them
(``--save-maps``), otherwise they are recomputed for those few images from
the manifest and root recorded in ``run.json``. Needs matplotlib
(``pip install noisestat[bench]``).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ._task import CURVE_THRESHOLDS, ORIENT, config_label
from .rows import current_rows
from .summary import compare_all, format_table, group_rows, lookup, summarize_rows

__all__ = ["make_report"]

_BAR_METRICS = (("F1-best", "f1_best"), ("MCC-best", "mcc_best"), ("AUC", "auc"), ("F1@t", "f1"), ("MCC@t", "mcc"))


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("noisestat report needs matplotlib: pip install noisestat[bench]") from None
    return plt


def _png(fig: Any, path: Path | None = None) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    data = buf.getvalue()
    if path is not None:
        path.write_bytes(data)
    return data


def _uri(data: bytes) -> str:
    kind = "jpeg" if data[:2] == b"\xff\xd8" else "png"
    return f"data:image/{kind};base64," + base64.b64encode(data).decode("ascii")


def _bars(summary: list[dict[str, Any]], path: Path) -> bytes:
    plt = _plt()
    configs = list(dict.fromkeys(s["config"] for s in summary))
    fig, axes = plt.subplots(1, len(ORIENT), figsize=(5.5 * len(ORIENT), 3.6), sharey=True, squeeze=False)
    width = 0.8 / max(1, len(configs))
    x = np.arange(len(_BAR_METRICS))
    for ax, o in zip(axes[0], ORIENT):
        for i, c in enumerate(configs):
            vals, lo, hi = [], [], []
            for _, k in _BAR_METRICS:
                s = lookup(summary, c, "per_image", o, k)
                v = float(s["value"]) if s else math.nan
                vals.append(v)
                lo.append(v - s["ci_low"] if s and math.isfinite(s["ci_low"]) else 0.0)
                hi.append(s["ci_high"] - v if s and math.isfinite(s["ci_high"]) else 0.0)
            ax.bar(x + (i - (len(configs) - 1) / 2) * width, vals, width, yerr=[lo, hi], capsize=2, label=c)
        ax.set_xticks(x, [h for h, _ in _BAR_METRICS])
        ax.set_title(f"per-image means, orientation: {o}")
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("mean over spliced images (95% CI)")
    axes[0][-1].legend(fontsize=8, loc="best")
    data = _png(fig, path)
    plt.close(fig)
    return data


def _roc(groups: dict[str, list[dict[str, Any]]], path: Path) -> bytes:
    from .calibrate import parse_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    thr = np.asarray(CURVE_THRESHOLDS)
    for c, rs in groups.items():
        sp = [r for r in rs if r["label"] == "spliced" and not r["error"] and r.get("curve_as_is")]
        if not sp:
            continue
        tp = np.zeros(thr.size)
        fp = np.zeros(thr.size)
        n_pos = n_neg = 0.0
        for r in sp:
            p, n = parse_curve(r["curve_as_is"])
            tp += p
            fp += n
            n_pos += r["n_positive"]
            n_neg += r["n_pixels"] - r["n_positive"]
        tpr, fpr = np.r_[tp / n_pos, 0.0], np.r_[fp / n_neg, 0.0]
        line = ax.plot(fpr, tpr, label=c)[0]
        t = float(sp[0]["threshold"])
        k = int(np.argmin(np.abs(thr - t)))
        ax.plot(fpr[k], tpr[k], "o", color=line.get_color())
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set_xlabel("FPR (pooled pixels of spliced images)")
    ax.set_ylabel("TPR")
    ax.set_title("pixel ROC, as-is orientation (dot: fixed threshold)")
    ax.legend(fontsize=8)
    data = _png(fig, path)
    plt.close(fig)
    return data


def _robustness(groups: dict[str, list[dict[str, Any]]], path: Path) -> bytes | None:
    protos = sorted({r["protocol"] for rs in groups.values() for r in rs if r.get("protocol")})
    if not protos:
        return None
    plt = _plt()
    fig, axes = plt.subplots(2, len(protos), figsize=(4.2 * len(protos), 6.0), squeeze=False)
    for j, p in enumerate(protos):
        for c, rs in groups.items():
            sp = [r for r in rs if r["label"] == "spliced" and not r["error"] and r.get("protocol") == p]
            levels = list(dict.fromkeys(r["level"] for r in sorted(sp, key=lambda r: r["item"])))
            for i, key in enumerate(("as_is_f1_best", "as_is_auc")):
                ys = []
                for lv in levels:
                    v = np.array([r[key] for r in sp if r["level"] == lv], dtype=float)
                    v = v[np.isfinite(v)]
                    ys.append(v.mean() if v.size else math.nan)
                axes[i][j].plot(range(len(levels)), ys, "o-", label=c)
                axes[i][j].set_xticks(range(len(levels)), levels, rotation=30, ha="right", fontsize=7)
                axes[i][j].set_ylabel(key.replace("as_is_", "mean ") + " (as is)")
        axes[0][j].set_title(f"protocol {p}")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    data = _png(fig, path)
    plt.close(fig)
    return data


def _thumb(arr: np.ndarray, max_side: int = 220, *, jpeg: bool = False) -> bytes:
    from PIL import Image

    a = np.asarray(arr)
    if a.dtype != np.uint8:
        a = np.clip(np.round(a.astype(np.float64)), 0, 255).astype(np.uint8)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    im = Image.fromarray(a)
    im.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    if jpeg:
        im.save(buf, format="JPEG", quality=85)
    else:
        im.save(buf, format="PNG")
    return buf.getvalue()


def _item_paths(rundir: Path) -> tuple[dict[str, tuple[Path, Path | None, str]], str]:
    """item id -> (image path, mask path, mask convention) from run.json's manifest and root."""
    from .manifest import load_manifest, resolve

    meta_p = rundir / "run.json"
    if not meta_p.is_file():
        return {}, "no run.json"
    cur = json.loads(meta_p.read_text()).get("current", {})
    man, root = cur.get("manifest"), cur.get("root")
    if not man or not root or not Path(man).is_file() or not Path(root).is_dir():
        return {}, f"manifest {man} or root {root} not available"
    m = load_manifest(man)
    return ({it.id: (resolve(root, it.image), resolve(root, it.mask) if it.mask else None, m.mask_convention)
             for it in m.items}, "")


def _gallery(rundir: Path, groups: dict[str, list[dict[str, Any]]], n: int) -> tuple[str, str]:
    from ..decisions import localize
    from ..io import load_image, load_mask
    from ._task import MethodConfig

    paths, why = _item_paths(rundir)
    if not paths:
        return "", f"gallery skipped: {why}"
    parts = []
    notes = []
    for c, rs in groups.items():
        sp = [r for r in rs if r["label"] == "spliced" and not r["error"] and math.isfinite(r["as_is_f1_best"])]
        if not sp:
            continue
        sp.sort(key=lambda r: (-r["as_is_f1_best"], r["item"]))
        picks = [("best", r) for r in sp[:n]] + [("worst", r) for r in sp[-n:][::-1] if r not in sp[:n]]
        cells = []
        for tag, r in picks:
            if r["item"] not in paths:
                continue
            ip, mp, conv = paths[r["item"]]
            try:
                img = load_image(ip)
                truth = load_mask(mp, img.shape, convention=conv) if mp else np.zeros(img.shape, bool)
                mfile = rundir / "maps" / r["map_file"] if r.get("map_file") else None
                if mfile is not None and mfile.is_file():
                    heat = np.load(mfile)
                else:
                    heat = localize(img, method=r["method"], **json.loads(r["params"])).heatmap.values
                    cfg = MethodConfig(r["method"], json.loads(r["params"]), r["params"], r["code_version"])
                    notes.append(f"{config_label(cfg)}: heatmap of {r['name']} recomputed (run saved no maps)")
            except Exception as exc:  # a missing file must not stop the report
                notes.append(f"{r['name']}: {type(exc).__name__}: {exc}")
                continue
            scale = 255.0 / max(img.info.white_level, 1e-12)
            px = np.asarray(img.pixels) * scale
            trip = "".join(f'<img alt="{a}" src="{_uri(_thumb(x, jpeg=j))}">' for a, x, j in (
                ("image", px, True), ("ground truth", truth.astype(np.uint8) * 255, False),
                ("heatmap", np.asarray(heat) * 255, False)))
            cap = (f"{tag}: {html.escape(r['name'])}<br>F1-best {r['as_is_f1_best']:.3f}, AUC {r['as_is_auc']:.3f}, "
                   f"F1@{r['threshold']:g} {r['as_is_f1']:.3f}")
            cells.append(f'<figure>{trip}<figcaption>{cap}</figcaption></figure>')
        parts.append(f"<h3>{html.escape(c)}</h3><div class=gallery>{''.join(cells)}</div>")
    return "".join(parts), "; ".join(notes[:5]) + (f" (+{len(notes) - 5} more)" if len(notes) > 5 else "")


def _html_table(head: list[str], body: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(x)}</th>" for x in head)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


_CSS = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.85em}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:right}th{background:#f1f1f1}td:first-child,th:first-child{text-align:left}
pre{background:#f7f7f7;padding:0.6em;overflow-x:auto;font-size:0.8em}.gallery{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;border:1px solid #ddd;padding:4px}figure img{margin-right:3px;vertical-align:top}
figcaption{font-size:0.8em}img.plot{max-width:100%}.note{color:#666;font-size:0.85em}
.warn{color:#a00;font-weight:bold}"""


def run_state(meta: dict[str, Any], n_present: int) -> tuple[bool, str]:
    """``(partial, sentence)`` about the last run of a folder (``run.json``'s ``current``) and its rows."""
    want = meta.get("n_rows")
    of = f"{n_present} of {want} rows" if want is not None else f"{n_present} rows"
    rerun = "rerun the same `noisestat bench` command to finish it; the figures below cover these rows only"
    if meta.get("interrupted"):
        return True, f"PARTIAL RUN: interrupted with {of} ({rerun})"
    if meta and "finished" not in meta:
        return True, f"PARTIAL RUN: started {meta.get('started', '?')} and never finished (killed, or still " \
                     f"running), {of} ({rerun})"
    if want is not None and n_present < want:
        return True, f"PARTIAL RUN: {of} ({rerun})"
    return False, f"complete: {of}, finished {meta.get('finished', '?')}"


def make_report(rundir: str | os.PathLike, *, out: str | os.PathLike | None = None, n_gallery: int = 3,
                n_boot: int = 2000) -> Path:
    """Write the plots and ``index.html`` for a run folder; return the path of ``index.html``.

    Parameters
    ----------
    rundir : path
        A run folder of ``noisestat bench``.
    out : path, optional
        Output folder (default ``RUNDIR/report``).
    n_gallery : int, default 3
        Best and worst images shown per method.
    n_boot : int, default 2000
        Bootstrap resamples for the intervals.

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install noisestat[bench]``).
    ValueError
        No rows in ``rundir``.

    Examples
    --------
    ::

        page = make_report("runs/casia1")   # runs/casia1/report/index.html, bars.png, roc.png
    """
    _plt()
    d = Path(rundir)
    rows = current_rows(d)
    if not rows:
        raise ValueError(f"rundir={str(d)!r}: no rows; run run_bench(manifest, root=..., out={str(d)!r}) first")
    dest = Path(out) if out is not None else d / "report"
    dest.mkdir(parents=True, exist_ok=True)
    summary = summarize_rows(rows, n_boot=n_boot)
    groups = group_rows(rows)
    plots = [("Per-image means with 95% bootstrap intervals", _bars(summary, dest / "bars.png")),
             ("Pooled pixel ROC", _roc(groups, dest / "roc.png"))]
    rob = _robustness(groups, dest / "robustness.png")
    if rob is not None:
        plots.append(("Metric against robustness level", rob))
    paired = compare_all(rows, n_boot=n_boot) if len(groups) > 1 else []
    gallery, gnote = _gallery(d, groups, n_gallery)
    meta = json.loads((d / "run.json").read_text()).get("current", {}) if (d / "run.json").is_file() else {}
    thr = sorted({float(r["threshold"]) for r in rows})
    ptab = _html_table(
        ["A", "B", "orientation", "metric", "n", "mean A", "mean B", "A-B", "95% CI", "wins A/B", "Wilcoxon p"],
        [[p["config_a"], p["config_b"], p["orientation"], p["metric"], p["n"], f"{p['mean_a']:.3f}",
          f"{p['mean_b']:.3f}", f"{p['mean_diff']:+.3f}", f"[{p['ci_low']:.3f}, {p['ci_high']:.3f}]",
          f"{p['wins_a']}/{p['wins_b']}", "-" if not math.isfinite(p["wilcoxon_p"]) else f"{p['wilcoxon_p']:.2g}"]
         for p in paired]) if paired else "<p class=note>one method configuration: no paired comparison</p>"
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>noisestat report</title>',
        f"<style>{_CSS}</style></head><body>",
        f"<h1>noisestat benchmark: {html.escape(str(meta.get('dataset', d.name)))}</h1>",
        f"<p class=note>run folder {html.escape(str(d.resolve()))}; noisestat {html.escape(str(meta.get('noisestat_version', '')))}; "
        f"{len(rows)} rows; fixed threshold(s) {', '.join(f'{t:g}' for t in thr)}</p>",
        f"<p class={'warn' if run_state(meta, len(rows))[0] else 'note'}>"
        f"{html.escape(run_state(meta, len(rows))[1])}</p>",
        "<h2>Summary</h2>",
        "<p class=note>Per-image means over spliced images (undefined values left out, <i>n</i> = images), "
        "95% percentile-bootstrap intervals. <b>as_is</b>: maps as returned; <b>best</b>: per image the better "
        "of map and inverted map by AUC (chosen with the ground truth, optimistic). Pooled rates sum the pixels "
        "of all images; image AUC separates spliced from pristine images by the image score.</p>",
        f"<pre>{html.escape(format_table(summary))}</pre>",
        "<h2>Paired comparisons</h2>", ptab,
        "<h2>Plots</h2>",
        *(f'<h3>{html.escape(t)}</h3><img class=plot alt="{html.escape(t)}" src="{_uri(b)}">' for t, b in plots),
        f"<h2>Gallery: best and worst {n_gallery} images per method (as-is F1-best)</h2>",
        f"<p class=note>image | ground truth | heatmap. {html.escape(gnote)}</p>" if gnote else
        "<p class=note>image | ground truth | heatmap</p>",
        gallery,
        "</body></html>",
    ]
    page = dest / "index.html"
    page.write_text("\n".join(body), encoding="utf-8")
    return page
