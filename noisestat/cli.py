"""Command-line interface: ``noisestat`` (also ``python -m noisestat``).

Thin layer: parses arguments, calls the library, formats output. Per-image
errors are one line on stderr (no traceback unless ``--debug``); other images
are still processed and the exit code is 2 if any failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .io import LOCALIZE_BYTES_PER_PIXEL, MASK_CONVENTIONS, ImageTooLargeError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


class _CliError(Exception):
    """An error reported on one line, exit code 2."""


def _parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` -> dict; values parsed as JSON when possible."""
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise _CliError(f"--param {item!r}: expected NAME=VALUE, e.g. --param patch_size=8")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = json.loads(v)
        except json.JSONDecodeError:
            out[k.strip()] = v
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist() if x.size <= 4096 else f"<array {x.shape} {x.dtype}>"
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if np.isfinite(v) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "__dataclass_fields__"):
        return _jsonable({k: getattr(x, k) for k in x.__dataclass_fields__})
    return x


def report_dict(loc: Any, info: Any) -> dict[str, Any]:
    """The JSON report of one localisation (top-level key ``score``)."""
    hm = loc.heatmap
    rep: dict[str, Any] = {
        "score": loc.score,
        "method": loc.method,
        "params": dict(loc.params),
        "applicable": hm.applicable,
        "note": hm.note,
        "mask_fraction": float(np.mean(loc.mask)),
        "reliability_mean": None if loc.reliability is None else float(np.mean(loc.reliability)),
        "heatmap": {
            "max": float(hm.values.max()),
            "mean": float(hm.values.mean()),
            "raw_units": hm.units,
            "raw_median": float(np.median(hm.raw)),
        },
        "timings": dict(loc.timings),
        "input": info.to_dict(),
        "input_sha256": info.sha256,
        "noisestat_version": __version__,
    }
    if loc.objects is not None:
        rep["objects"] = [o for o in loc.objects]
    return _jsonable(rep)


def _cmd_methods(args: argparse.Namespace) -> int:
    from .registry import get_method, methods

    for name in methods():
        spec = get_method(name)
        if args.verbose:
            params = ", ".join(f"{k}={v!r}" for k, v in spec.params.items())
            applies = f"\n{'':32s}applies to: {spec.applies}" if spec.applies else ""
            print(f"{name:22s} {spec.kind:9s} {spec.description}{applies}\n{'':32s}{params}")
        else:
            print(f"{name:22s} {spec.description}")
    return 0


OUTPUT_SUFFIXES = (".heatmap.png", ".heatmap.npy", ".mask.png", ".reliability.png", ".overlay.png", ".json")


def _unique_stems(paths: Sequence[str]) -> list[str]:
    """Output stems of one call: a repeated stem gets ``~2``, ``~3``, ... (in command-line order)."""
    used: set[str] = set()
    out = []
    for path in paths:
        base = Path(path).stem
        stem, n = base, 1
        while stem in used:
            n += 1
            stem = f"{base}~{n}"
        used.add(stem)
        out.append(stem)
    return out


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def _request(method: str, params: dict[str, Any], calibration: str | None) -> dict[str, Any]:
    """What an output set was made from, besides the input's hash (recorded in ``<stem>.json``)."""
    from .registry import check_params, get_method

    merged = check_params(get_method(method), params)
    return _jsonable({"method": method, "params": merged, "calibration": calibration or "packaged"})


def _check_outputs(targets: dict[str, Path], input_ids: set[tuple[int, int]], sha: str,
                   request: dict[str, Any], overwrite: bool) -> None:
    """Refuse (ValueError) to replace an input file, or outputs made from another input or request."""
    for path in targets.values():
        fid = _file_id(path)
        if fid is not None and fid in input_ids and not path.is_symlink():
            raise ValueError(f"output {path} would replace an input file; pass another --out")
    if overwrite:
        return
    existing = [p for p in targets.values() if p.exists() or p.is_symlink()]
    if not existing:
        return
    js = targets[".json"]
    same = False
    if js.is_file() and not js.is_symlink():
        try:
            old = json.loads(js.read_text())
            same = (old.get("input_sha256") == sha and old.get("request") == request)
        except (OSError, ValueError, AttributeError):
            same = False
    if not same:
        raise ValueError(f"{existing[0]} exists and was not made from this input with this method and "
                         f"parameters; pass --overwrite to replace it, or another --out")


def _write_atomic(path: Path, write: Any, *args: Any) -> Any:
    """``write(fh, *args)`` into a fresh temporary file beside ``path``, then rename it over ``path``.

    A symlink at ``path`` is replaced by the file, never written through
    (``mkstemp`` creates the file with ``O_EXCL``; ``os.replace`` renames over the link itself).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            result = write(fh, *args)
        os.replace(tmp, path)
        return result
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_json_bytes(fh: Any, text: bytes) -> None:
    fh.write(text)


def _write_outputs(targets: dict[str, Path], img: Any, loc: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Write one image's output set (each file atomically); return its JSON report."""
    from .io import overlay, save_gray_png, save_heatmap_png, save_mask_png, save_rgb_png

    values = np.asarray(loc.heatmap.values, dtype=np.float32)
    _write_atomic(targets[".heatmap.npy"], np.save, values)
    png_mapping = _write_atomic(targets[".heatmap.png"], save_heatmap_png, values)
    _write_atomic(targets[".mask.png"], save_mask_png, loc.mask)
    _write_atomic(targets[".reliability.png"], save_gray_png, loc.reliability)
    _write_atomic(targets[".overlay.png"], save_rgb_png, overlay(img, values))
    if ".panel.png" in targets:
        from .panel import object_panel

        _write_atomic(targets[".panel.png"], save_rgb_png, object_panel(img, loc))
    rep = report_dict(loc, img.info)
    rep["heatmap"]["png"] = png_mapping
    rep["request"] = request
    _write_atomic(targets[".json"], _write_json_bytes, json.dumps(rep, indent=2).encode())
    return rep


def _max_pixels(requested: int | None) -> tuple[int, str]:
    """The pixel limit of this call and how it was set (said in a refusal)."""
    from .io import auto_max_pixels, available_memory

    if requested is not None:
        if requested < 1:
            raise _CliError(f"--max-pixels {requested}: must be >= 1")
        return requested, "set by --max-pixels; pass a larger --max-pixels to raise it"
    avail = available_memory()
    limit = auto_max_pixels(available=avail)
    if avail is None:
        return limit, "the default limit; pass --max-pixels N to raise it"
    return limit, (f"derived from {avail / 2**30:.1f} GiB available memory at {LOCALIZE_BYTES_PER_PIXEL} bytes "
                   f"per pixel; pass --max-pixels N to raise it")


def _cmd_localize(args: argparse.Namespace) -> int:
    from .decisions import localize, resolve_calibration
    from .io import load_image
    from .registry import default_method

    params = _parse_params(args.param)
    if args.segmenter:
        params["segmenter"] = args.segmenter
    if args.features:
        params["feature_maps"] = ",".join(args.features)
    method = args.method or default_method()
    try:
        request = _request(method, params, args.calibration)
    except (TypeError, ValueError) as exc:
        raise _CliError(_one_line(exc)) from None
    calibration = resolve_calibration(False if args.calibration == "none" else args.calibration)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    max_pixels, limit_note = _max_pixels(args.max_pixels)
    input_ids = {fid for fid in (_file_id(Path(p)) for p in args.images) if fid is not None}
    suffixes = OUTPUT_SUFFIXES + ((".panel.png",) if args.panel else ())
    failed = 0
    summary = []
    for path, stem in zip(args.images, _unique_stems(args.images)):
        t0 = time.perf_counter()
        targets = {suf: out_dir / f"{stem}{suf}" for suf in suffixes}
        try:
            with _warnings_as_lines(path):
                img = load_image(path, max_pixels=max_pixels)
                _check_outputs(targets, input_ids, img.info.sha256, request, args.overwrite)
                loc = localize(img, method=method, calibration=calibration, **params)
                rep = _write_outputs(targets, img, loc, request)
            secs = time.perf_counter() - t0
            summary.append({"image": str(path), "score": rep["score"], "method": method,
                            "applicable": rep["applicable"], "seconds": secs,
                            "outputs": {suf.lstrip("."): str(p) for suf, p in targets.items()}})
            if not args.json:
                print(_summary_line(path, rep, out_dir / stem, secs))
        except ImageTooLargeError as exc:
            failed += 1
            what = f"{exc.size[0]}x{exc.size[1]} = {exc.pixels} pixels" if exc.size else "too many pixels"
            msg = f"image of {what} exceeds the limit of {exc.limit} pixels ({limit_note})"
            print(f"noisestat: error: {path}: {msg}", file=sys.stderr)
            summary.append({"image": str(path), "error": msg})
        except Exception as exc:  # one bad image never stops the others (MemoryError included)
            failed += 1
            _report_error(path, exc, args.debug)
            summary.append({"image": str(path), "error": _one_line(exc)})
    if args.json:
        print(json.dumps(_jsonable({"results": summary, "failed": failed}), indent=2))
    elif len(args.images) > 1 or failed:
        print(f"{len(args.images) - failed} of {len(args.images)} image(s) done with {method}"
              + (f", {failed} refused or failed (see stderr)" if failed else "") + f"; outputs in {out_dir}")
    return 2 if failed else 0


def _summary_line(path: Any, rep: dict[str, Any], stem: Path, secs: float) -> str:
    """One line per image on stdout: score and mask share, or why the method did not apply."""
    if not rep["applicable"]:
        note = (rep.get("note") or "").strip().splitlines()
        return f"{path}: not applicable ({note[0] if note else 'no reason given'}); wrote {stem}.* ({secs:.1f} s)"
    score = rep["score"]
    s = "n/a" if score is None else f"{score:.2f}"
    return (f"{path}: score {s}, mask {100 * rep['mask_fraction']:.1f} % of the pixels; wrote {stem}.* "
            f"({secs:.1f} s)")


class _warnings_as_lines:
    """Collect Python warnings of one image and print each once as ``noisestat: warning: ...``."""

    def __init__(self, item: Any):
        self.item = item

    def __enter__(self) -> None:
        self._cm = warnings.catch_warnings(record=True)
        self._log = self._cm.__enter__()
        warnings.simplefilter("always")

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)
        seen = set()
        for w in self._log:
            text = str(w.message).strip().splitlines()
            msg = text[0] if text else w.category.__name__
            if msg not in seen:
                seen.add(msg)
                where = "" if str(self.item) in msg else f"{self.item}: "
                print(f"noisestat: warning: {where}{msg}", file=sys.stderr)


def _find_by_stem(folder: Path, stem: str) -> Path | None:
    for suf in IMAGE_SUFFIXES:
        for cand in (folder / f"{stem}{suf}", folder / f"{stem}_gt{suf}", folder / f"{stem}_mask{suf}"):
            if cand.is_file():
                return cand
    return None


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .io import load_image, load_mask
    from .metrics import evaluate_map, summarize

    pred_dir, mask_dir = Path(args.pred), Path(args.masks)
    for d, flag in ((pred_dir, "--pred"), (mask_dir, "--masks")):
        if not d.is_dir():
            raise _CliError(f"{flag} {d}: not a directory")
    maps = sorted(pred_dir.glob("*.heatmap.png"))
    if not maps:
        raise _CliError(f"--pred {pred_dir}: no *.heatmap.png files (write them with `noisestat localize`)")
    rows, failed = [], 0
    for mp in maps:
        stem = mp.name[: -len(".heatmap.png")]
        try:
            mpath = _find_by_stem(mask_dir, stem)
            if mpath is None:
                raise ValueError(f"no mask named {stem}.* in {mask_dir}")
            npy = mp.with_name(f"{stem}.heatmap.npy")  # the lossless values when localize wrote them
            heat = np.load(npy, allow_pickle=False) if npy.is_file() else load_image(mp).pixels[:, :, 0] / 255.0
            gt = load_mask(mpath, heat.shape, convention=args.mask_convention)
            m = evaluate_map(heat, gt, threshold=args.threshold, orientation=args.orientation)
            rows.append((stem, m))
        except Exception as exc:
            failed += 1
            _report_error(mp, exc, args.debug)
    cols = ["auc", "ap", "f1_best", "mcc_best", "f1", "mcc", "tpr", "fpr"]
    print(f"orientation: {args.orientation}; fixed threshold {args.threshold}; per-image values")
    print(f"{'image':32s} " + " ".join(f"{c:>8s}" for c in cols))
    for stem, m in rows:
        d = m.to_dict()
        print(f"{stem[:32]:32s} " + " ".join(f"{d[c]:8.3f}" for c in cols))
    if rows:
        for agg in ("per_image", "pooled"):
            s = summarize([m for _, m in rows], aggregation=agg)
            label = "mean (per image)" if agg == "per_image" else "pooled pixels"
            print(f"{label:32s} " + " ".join(
                f"{s[c]:8.3f}" if c in s and s[c] is not None else f"{'-':>8s}" for c in cols))
    return 2 if failed else 0


def _cmd_sample(args: argparse.Namespace) -> int:
    from .io import save_mask_png, save_rgb_png
    from .synth import demo_splice

    out = Path(args.out)
    (out / "truth").mkdir(parents=True, exist_ok=True)
    sp = demo_splice()
    save_rgb_png(out / "sample.png", sp.image)
    save_mask_png(out / "truth" / "sample.png", sp.mask)
    print(f"wrote {out / 'sample.png'} and its true mask {out / 'truth' / 'sample.png'}")
    return 0


def _one_line(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    text = msg[0] if msg else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _report_error(item: Any, exc: BaseException, debug: bool) -> None:
    print(f"noisestat: error: {item}: {_one_line(exc)}", file=sys.stderr)
    if debug:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="noisestat", description="Classical statistical image-splicing forensics.")
    p.add_argument("--version", action="version", version=f"noisestat {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("methods", help="list registered methods")
    q.add_argument("-v", "--verbose", action="store_true", help="show parameters")
    q.set_defaults(func=_cmd_methods)

    q = sub.add_parser("localize", help="localize spliced regions in images")
    q.add_argument("images", nargs="+", help="image files (symlinks are followed)")
    q.add_argument("--method", "-m", default=None,
                   help="method name (see `noisestat methods`; default: the package's default method)")
    q.add_argument("--param", "-p", action="append", metavar="NAME=VALUE", help="method parameter (repeatable)")
    q.add_argument("--out", "-o", default="noisestat-output",
                   help="output folder, flat: <stem>.heatmap.png, .heatmap.npy, .mask.png, .reliability.png, "
                        ".overlay.png, .json (default noisestat-output)")
    q.add_argument("--json", action="store_true", help="print a JSON summary to stdout")
    q.add_argument("--overwrite", action="store_true",
                   help="replace existing outputs made from another input, method or parameters "
                        "(default: such an image is refused; outputs of the same request are replaced)")
    q.add_argument("--max-pixels", type=int, default=None, metavar="N",
                   help="refuse images with more pixels, before decoding them (default: what fits in the "
                        f"available memory at {LOCALIZE_BYTES_PER_PIXEL} bytes per pixel, at most 250 million)")
    q.add_argument("--calibration", default=None, metavar="FILE|none",
                   help="decision models from `noisestat calibrate-maps` (default: the packaged ones; "
                        "'none': the method's own values, mask and score)")
    q.add_argument("--segmenter", default=None, metavar="NAME|onnx:PATH[:layout]",
                   help="segmentation backend of the object methods: a built-in NAME (e.g. slic_merge, grid) "
                        "or a Mask R-CNN ONNX model, layout auto|torchvision|maskrcnn10 (needs noisestat[onnx])")
    q.add_argument("--features", action="append", default=None, metavar="onnx:PATH",
                   help="extra feature map of the object methods from an image-to-map ONNX model (repeatable; "
                        "onnx:srm = the packaged SRM residual bank; needs noisestat[onnx])")
    q.add_argument("--panel", action="store_true",
                   help="also write <stem>.panel.png: image with object outlines, heatmap, dissimilarity matrix")
    q.set_defaults(func=_cmd_localize)

    q = sub.add_parser("evaluate", help="score saved heatmaps against ground-truth masks")
    q.add_argument("--pred", required=True, help="folder with <stem>.heatmap.png")
    q.add_argument("--masks", required=True, help="folder with <stem>.png masks")
    q.add_argument("--threshold", type=float, default=0.5, help="fixed threshold on the heatmap (default 0.5)")
    q.add_argument("--orientation", choices=("as_is", "best"), default="as_is",
                   help="'as_is' (default): the map as written; 'best': the better of map and inverted map per "
                        "image (by AUC, optimistic)")
    q.add_argument("--mask-convention", default="nonzero", choices=MASK_CONVENTIONS,
                   help="how mask files mark spliced pixels (default nonzero)")
    q.set_defaults(func=_cmd_evaluate)

    q = sub.add_parser("sample", help="write the bundled synthetic sample splice and its mask")
    q.add_argument("--out", "-o", default="demo-output", help="output folder (default demo-output)")
    q.set_defaults(func=_cmd_sample)

    from .bench import cli as bench_cli

    bench_cli.add_commands(sub)
    _debug_everywhere(sub)
    return p


def _debug_everywhere(sub: argparse._SubParsersAction) -> None:
    """Accept ``--debug`` after any subcommand too (it is also accepted before it)."""
    for parser in set(sub.choices.values()):
        parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                            help="show tracebacks on errors")
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                _debug_everywhere(action)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except _CliError as exc:
        print(f"noisestat: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("noisestat: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        _report_error(args.command, exc, args.debug)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
