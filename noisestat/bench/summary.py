"""Summaries of a run's rows and paired comparisons between methods; CSV and LaTeX export.

Every number says how it was aggregated (column ``aggregation``):

``per_image``
    Mean over spliced images of a per-image metric, with the median, a 95 %
    percentile-bootstrap interval of the mean (``n_boot`` resamples of the
    images, fixed seed) and ``n_defined``, the number of images where the
    metric was defined (undefined values are left out, never counted as 0).
``pooled_spliced``
    Confusion counts at the fixed threshold summed over the pixels of all
    spliced images, then TPR, FPR, precision, F1, MCC of the sums.
``pooled_pristine``
    FPR at the fixed threshold over all pixels of the pristine images (every
    pixel there is authentic).
``image_level``
    Detection from one score per image (spliced = positive, pristine =
    negative): ROC AUC, AP, balanced accuracy, TPR and TNR of ``score >= 0.5``
    (the calibrated decision; a NaN score is not flagged), best balanced
    accuracy, TPR at FPR <= 5 %.
``run``
    Counts (items, errors, not applicable) and speed (seconds per megapixel).

``orientation`` is ``as_is`` (the map as the method returns it) or ``best``
(per image the better of map and inverted map by AUC, chosen with the ground
truth: an optimistic convention some papers use, reported beside, never
instead of, the as-is numbers), or ``mask`` for the method's own binary
decision (``Localization.mask``; for dense maps ``values >= 0.5``).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._task import MASK_METRICS, ORIENT

__all__ = ["SUMMARY_METRICS", "group_rows", "summarize_rows", "paired_comparison", "compare_all",
           "format_table", "to_latex", "write_summaries", "bootstrap_ci"]

SUMMARY_METRICS = ("f1_best", "mcc_best", "iou_best", "auc", "ap", "f1", "mcc", "tpr", "fpr", "precision", "iou")
PAIRED_METRICS = ("f1_best", "mcc_best", "auc", "f1", "mcc")
SUMMARY_COLUMNS = ("config", "method", "params", "aggregation", "orientation", "metric", "value", "median",
                   "ci_low", "ci_high", "n_defined", "n")
PAIRED_COLUMNS = ("config_a", "config_b", "orientation", "metric", "n", "mean_a", "mean_b", "mean_diff",
                  "ci_low", "ci_high", "median_diff", "wins_a", "wins_b", "ties", "wilcoxon_stat", "wilcoxon_p")
NAN = math.nan


def bootstrap_ci(values: np.ndarray, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` (NaN when fewer than 2 values)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size < 2 or n_boot < 1:
        return NAN, NAN
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // v.size)
    for s in range(0, n_boot, chunk):
        k = min(chunk, n_boot - s)
        means[s : s + k] = v[rng.integers(0, v.size, size=(k, v.size))].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return float(lo), float(hi)


def group_rows(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows grouped by method configuration, sorted by key; the key is the method name, or
    ``method[hash]`` when one method appears with several parameter sets."""
    by_method: dict[str, set[str]] = {}
    for r in rows:
        by_method.setdefault(r["method"], set()).add(r["params"])
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        key = r["method"]
        if len(by_method[key]) > 1:
            key = f"{key}[{hashlib.sha256(r['params'].encode()).hexdigest()[:6]}]"
        groups.setdefault(key, []).append(r)
    return dict(sorted(groups.items()))


def _f(r: dict[str, Any], k: str) -> float:
    v = r.get(k)
    try:
        return float(v) if v is not None and v != "" else NAN
    except (TypeError, ValueError):
        return NAN


def _rates(tp: float, fp: float, fn: float, tn: float) -> dict[str, float]:
    def div(a: float, b: float) -> float:
        return a / b if b > 0 else NAN

    d = (tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)
    return {"tpr": div(tp, tp + fn), "fpr": div(fp, fp + tn), "precision": div(tp, tp + fp),
            "f1": div(2 * tp, 2 * tp + fp + fn), "iou": div(tp, tp + fp + fn),
            "mcc": (tp * tn - fp * fn) / math.sqrt(d) if d > 0 else NAN}


def _is_spliced_eval(r: dict[str, Any]) -> bool:
    return r["label"] == "spliced" and not r["error"] and (r.get("n_positive") or 0) > 0


def summarize_rows(rows: Sequence[dict[str, Any]], *, n_boot: int = 2000, seed: int = 0) -> list[dict[str, Any]]:
    """Long-format summary: one record per (config, aggregation, orientation, metric). See the module docstring."""
    from ..metrics import detection_metrics

    out: list[dict[str, Any]] = []
    for cfg, rs in group_rows(rows).items():
        base = {"config": cfg, "method": rs[0]["method"], "params": rs[0]["params"]}

        def rec(aggregation: str, orientation: str, metric: str, value: float, *, median: float = NAN,
                ci: tuple[float, float] = (NAN, NAN), n_defined: int | None = None, n: int | None = None,
                base: dict[str, Any] = base) -> None:
            out.append({**base, "aggregation": aggregation, "orientation": orientation, "metric": metric,
                        "value": value, "median": median, "ci_low": ci[0], "ci_high": ci[1],
                        "n_defined": n_defined, "n": n})

        ok = [r for r in rs if not r["error"]]
        sp = [r for r in rs if _is_spliced_eval(r)]
        pr = [r for r in ok if r["label"] == "pristine"]
        rec("run", "", "n_items", len(rs), n=len(rs))
        rec("run", "", "n_spliced_evaluated", len(sp), n=len(sp))
        rec("run", "", "n_pristine", len(pr), n=len(pr))
        rec("run", "", "n_errors", len(rs) - len(ok), n=len(rs))
        rec("run", "", "n_not_applicable", sum(r.get("applicable") is False for r in ok), n=len(ok))
        spm = np.array([_f(r, "s_per_mp") for r in ok])
        spm = spm[np.isfinite(spm)]
        rec("run", "", "s_per_mp", float(np.mean(spm)) if spm.size else NAN,
            median=float(np.median(spm)) if spm.size else NAN, n_defined=int(spm.size), n=len(ok))
        for o in ORIENT:
            for metric in SUMMARY_METRICS:
                v = np.array([_f(r, f"{o}_{metric}") for r in sp])
                d = v[np.isfinite(v)]
                rec("per_image", o, metric, float(d.mean()) if d.size else NAN,
                    median=float(np.median(d)) if d.size else NAN, ci=bootstrap_ci(d, n_boot=n_boot, seed=seed),
                    n_defined=int(d.size), n=len(sp))
            if sp:
                tot = [sum(float(r.get(f"{o}_{k}") or 0) for r in sp) for k in ("tp", "fp", "fn", "tn")]
                for metric, val in _rates(*tot).items():
                    rec("pooled_spliced", o, metric, val, n=len(sp))
        for metric in MASK_METRICS:  # the method's own binary decision (Localization.mask)
            v = np.array([_f(r, f"mask_{metric}") for r in sp])
            d = v[np.isfinite(v)]
            rec("per_image", "mask", metric, float(d.mean()) if d.size else NAN,
                median=float(np.median(d)) if d.size else NAN, ci=bootstrap_ci(d, n_boot=n_boot, seed=seed),
                n_defined=int(d.size), n=len(sp))
        if pr:
            fp = sum(float(r.get("as_is_fp") or 0) for r in pr)
            tn = sum(float(r.get("as_is_tn") or 0) for r in pr)
            rec("pooled_pristine", "as_is", "fpr", fp / (fp + tn) if fp + tn > 0 else NAN, n=len(pr))
            per = np.array([_f(r, "as_is_fpr") for r in pr])
            per = per[np.isfinite(per)]
            rec("per_image_pristine", "as_is", "fpr", float(per.mean()) if per.size else NAN,
                median=float(np.median(per)) if per.size else NAN, ci=bootstrap_ci(per, n_boot=n_boot, seed=seed),
                n_defined=int(per.size), n=len(pr))
        det = [r for r in ok if r["label"] == "pristine" or r["label"] == "spliced"]
        labels = np.array([r["label"] == "spliced" for r in det])
        if labels.any() and (~labels).any():
            dm = detection_metrics(np.array([_f(r, "score") for r in det]), labels)
            for k in ("auc", "ap", "balanced_accuracy", "tpr", "tnr", "balanced_accuracy_best", "tpr_at_fpr_5"):
                rec("image_level", "as_is", k, dm[k], n_defined=dm["n"], n=dm["n"] + dm["n_undefined"])
    return out


def lookup(summary: Sequence[dict[str, Any]], config: str, aggregation: str, orientation: str,
           metric: str) -> dict[str, Any] | None:
    for s in summary:
        if (s["config"], s["aggregation"], s["orientation"], s["metric"]) == (config, aggregation, orientation, metric):
            return s
    return None


def paired_comparison(rows_a: Sequence[dict[str, Any]], rows_b: Sequence[dict[str, Any]], *, metric: str = "f1_best",
                      orientation: str = "as_is", n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Per-image differences ``a - b`` of one metric on the spliced images both evaluated.

    Returns mean and median difference, a 95 % bootstrap interval of the mean
    difference, wins/ties counts and the two-sided Wilcoxon signed-rank test
    (``scipy.stats.wilcoxon``; zero differences dropped, NaN p-value when
    every difference is zero).
    """
    from scipy import stats

    key = f"{orientation}_{metric}"
    va = {r["item"]: _f(r, key) for r in rows_a if _is_spliced_eval(r)}
    vb = {r["item"]: _f(r, key) for r in rows_b if _is_spliced_eval(r)}
    common = sorted(i for i in va.keys() & vb.keys() if math.isfinite(va[i]) and math.isfinite(vb[i]))
    a = np.array([va[i] for i in common])
    b = np.array([vb[i] for i in common])
    diff = a - b
    out: dict[str, Any] = {"orientation": orientation, "metric": metric, "n": int(diff.size)}
    if diff.size == 0:
        out.update(mean_a=NAN, mean_b=NAN, mean_diff=NAN, ci_low=NAN, ci_high=NAN, median_diff=NAN, wins_a=0,
                   wins_b=0, ties=0, wilcoxon_stat=NAN, wilcoxon_p=NAN)
        return out
    lo, hi = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
    stat = p = NAN
    if np.any(diff != 0):
        with warnings.catch_warnings():  # scipy warns when it falls back to the normal approximation
            warnings.simplefilter("ignore")
            res = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
        stat, p = float(res.statistic), float(res.pvalue)
    out.update(mean_a=float(a.mean()), mean_b=float(b.mean()), mean_diff=float(diff.mean()), ci_low=lo, ci_high=hi,
               median_diff=float(np.median(diff)), wins_a=int((diff > 0).sum()), wins_b=int((diff < 0).sum()),
               ties=int((diff == 0).sum()), wilcoxon_stat=stat, wilcoxon_p=p)
    return out


def compare_all(rows: Sequence[dict[str, Any]], *, metrics: Sequence[str] = PAIRED_METRICS, n_boot: int = 2000,
                seed: int = 0) -> list[dict[str, Any]]:
    """Paired comparisons of every pair of configurations, for each metric and orientation."""
    groups = group_rows(rows)
    names = sorted(groups)
    out = []
    for i, na in enumerate(names):
        for nb in names[i + 1 :]:
            for o in ORIENT:
                for metric in metrics:
                    rec = paired_comparison(groups[na], groups[nb], metric=metric, orientation=o, n_boot=n_boot,
                                            seed=seed)
                    out.append({"config_a": na, "config_b": nb, **rec})
    return out


# --------------------------------------------------------------------------- formatting

_MAIN = (("F1-best", "f1_best"), ("MCC-best", "mcc_best"), ("AUC", "auc"), ("F1@t", "f1"), ("MCC@t", "mcc"),
         ("TPR@t", "tpr"), ("FPR@t", "fpr"))


def _num(v: Any, nd: int = 3) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "-"
    return "-" if not math.isfinite(x) else f"{x:.{nd}f}"


def _table_data(summary: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[list[str]]], list[str], list[list[str]]]:
    configs = list(dict.fromkeys(s["config"] for s in summary))
    head_main = ["method", "orient.", "n"] + [h for h, _ in _MAIN]
    body_main: list[list[list[str]]] = []
    for c in configs:
        block = []
        for o in ORIENT:
            line = [c, o]
            n = lookup(summary, c, "per_image", o, "f1_best")
            line.append(str(n["n"]) if n else "0")
            for _, k in _MAIN:
                s = lookup(summary, c, "per_image", o, k)
                if s is None or not math.isfinite(float(s["value"])):
                    line.append("-")
                    continue
                ci = f" [{_num(s['ci_low'])}, {_num(s['ci_high'])}]" if math.isfinite(s["ci_low"]) else ""
                line.append(_num(s["value"]) + ci)
            block.append(line)
        body_main.append(block)
    head_run = ["method", "spliced", "pristine", "errors", "n/a", "mask F1", "mask MCC", "pooled TPR@t",
                "pooled FPR@t", "pristine FPR@t", "image AUC", "image BAcc@0.5", "s/MP (median)"]
    body_run = []
    for c in configs:
        def g(agg: str, o: str, m: str, field: str = "value", c: str = c) -> str:
            s = lookup(summary, c, agg, o, m)
            if s is None:
                return "-"
            v = s[field]
            return str(int(v)) if agg == "run" and m.startswith("n_") else _num(v)

        body_run.append([c, g("run", "", "n_spliced_evaluated"), g("run", "", "n_pristine"), g("run", "", "n_errors"),
                         g("run", "", "n_not_applicable"), g("per_image", "mask", "f1"),
                         g("per_image", "mask", "mcc"), g("pooled_spliced", "as_is", "tpr"),
                         g("pooled_spliced", "as_is", "fpr"), g("pooled_pristine", "as_is", "fpr"),
                         g("image_level", "as_is", "auc"), g("image_level", "as_is", "balanced_accuracy"),
                         g("run", "", "s_per_mp", "median")])
    return head_main, body_main, head_run, body_run


def format_table(summary: Sequence[dict[str, Any]], *, threshold_note: str = "") -> str:
    """Plain-text tables: per-image means [95 % bootstrap CI] per method and orientation, then pooled/run values."""
    head, body, head2, body2 = _table_data(summary)
    lines = [f"Per-image means over spliced images [95% bootstrap CI]; t = fixed threshold{threshold_note}"]
    flat = [head] + [ln for b in body for ln in b]
    widths = [max(len(r[i]) for r in flat) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    lines.append(fmt.format(*head))
    for b in body:
        for ln in b:
            lines.append(fmt.format(*ln))
    lines.append("")
    lines.append("Medians (n defined) of the same per-image values")
    configs = list(dict.fromkeys(s["config"] for s in summary))
    med = [["method", "orient."] + [h for h, _ in _MAIN]]
    for c in configs:
        for o in ORIENT:
            line = [c, o]
            for _, k in _MAIN:
                x = lookup(summary, c, "per_image", o, k)
                line.append("-" if x is None else f"{_num(x['median'])} ({x['n_defined']})")
            med.append(line)
    wm = [max(len(r[i]) for r in med) for i in range(len(med[0]))]
    fm = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(wm))
    lines.extend(fm.format(*ln) for ln in med)
    lines.append("")
    flat2 = [head2] + body2
    widths2 = [max(len(r[i]) for r in flat2) for i in range(len(head2))]
    fmt2 = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths2))
    lines.append(fmt2.format(*head2))
    for ln in body2:
        lines.append(fmt2.format(*ln))
    return "\n".join(lines)


def _tex(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("[", "{[}"), ("]", "{]}")):
        s = s.replace(a, b)
    return s


def to_latex(summary: Sequence[dict[str, Any]], *, caption: str = "") -> str:
    """The two summary tables as LaTeX (booktabs) source."""
    head, body, head2, body2 = _table_data(summary)
    out = [r"% generated by noisestat bench; needs \usepackage{booktabs}", r"\begin{table}[t]", r"\centering",
           r"\small", r"\begin{tabular}{ll" + "r" * (len(head) - 2) + "}", r"\toprule",
           " & ".join(_tex(h) for h in head) + r" \\", r"\midrule"]
    for b in body:
        for ln in b:
            out.append(" & ".join(_tex(x) for x in ln) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\par\medskip",
            r"\begin{tabular}{l" + "r" * (len(head2) - 1) + "}", r"\toprule",
            " & ".join(_tex(h) for h in head2) + r" \\", r"\midrule"]
    for ln in body2:
        out.append(" & ".join(_tex(x) for x in ln) + r" \\")
    cap = caption or ("Per-image means over spliced images with 95\\% bootstrap intervals (as-is and better-of "
                      "orientation); pooled rates at the fixed threshold; image-level AUC over spliced vs pristine.")
    out += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{cap}}}", r"\end{table}", ""]
    return "\n".join(out)


def paired_to_latex(paired: Sequence[dict[str, Any]]) -> str:
    """Paired comparisons as a LaTeX (booktabs) table."""
    head = ["A", "B", "orient.", "metric", "n", "mean A", "mean B", "A-B [95% CI]", "wins A/B", "Wilcoxon p"]
    out = [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{llllrrrrrr}", r"\toprule",
           " & ".join(_tex(h) for h in head) + r" \\", r"\midrule"]
    for p in paired:
        p_txt = "-" if not math.isfinite(p["wilcoxon_p"]) else f"{p['wilcoxon_p']:.2g}"
        cells = [p["config_a"], p["config_b"], p["orientation"], p["metric"], str(p["n"]), _num(p["mean_a"]),
                 _num(p["mean_b"]), f"{_num(p['mean_diff'])} [{_num(p['ci_low'])}, {_num(p['ci_high'])}]",
                 f"{p['wins_a']}/{p['wins_b']}", p_txt]
        out.append(" & ".join(_tex(str(c)) for c in cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}",
            r"\caption{Paired per-image differences on the spliced images both methods evaluated: mean with 95\% "
            r"bootstrap interval, wins, two-sided Wilcoxon signed-rank test.}", r"\end{table}", ""]
    return "\n".join(out)


def _write_csv(path: Path, records: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    from .rows import format_value

    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for r in records:
            w.writerow([format_value(r.get(c)) for c in columns])
    os.replace(tmp, path)


def write_summaries(rows: Sequence[dict[str, Any]], rundir: str | os.PathLike, *, n_boot: int = 2000,
                    seed: int = 0) -> list[dict[str, Any]]:
    """Write ``summary.csv``, ``summary.tex``, ``summary.txt``, ``paired.csv`` and ``paired.tex``; return the summary."""
    d = Path(rundir)
    summ = summarize_rows(rows, n_boot=n_boot, seed=seed)
    _write_csv(d / "summary.csv", summ, SUMMARY_COLUMNS)
    (d / "summary.tex").write_text(to_latex(summ), encoding="utf-8")
    thr = sorted({float(r["threshold"]) for r in rows if r.get("threshold") is not None})
    note = f" ({', '.join(f'{t:g}' for t in thr)})" if thr else ""
    (d / "summary.txt").write_text(format_table(summ, threshold_note=note) + "\n", encoding="utf-8")
    paired = compare_all(rows, n_boot=n_boot, seed=seed) if len(group_rows(rows)) > 1 else []
    _write_csv(d / "paired.csv", paired, PAIRED_COLUMNS)
    (d / "paired.tex").write_text(paired_to_latex(paired), encoding="utf-8")
    return summ
