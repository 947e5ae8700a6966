"""Command-line subcommands of the benchmark: ``manifest``, ``bench``, ``calibrate``, ``calibrate-maps``,
``synth``, ``report``.

Registered into the main parser by :func:`add_commands` (called from
``noisestat.cli.build_parser``). Thin: parse, call the library, print.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..io import MASK_CONVENTIONS


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the benchmark subcommands to the main ``noisestat`` parser."""
    q = sub.add_parser("manifest", help="build or check a dataset manifest")
    msub = q.add_subparsers(dest="manifest_command", required=True)
    b = msub.add_parser("build", help="write a manifest from folders of images, masks and pristine images")
    b.add_argument("--images", required=True, help="folder of spliced images")
    b.add_argument("--masks", help="folder of masks (same stem as the image, optionally _gt/_mask)")
    b.add_argument("--pristine", help="folder of authentic images")
    b.add_argument("--root", help="dataset root (default: common parent of the folders)")
    b.add_argument("--dataset", help="dataset name (default: root folder name)")
    b.add_argument("--mask-convention", default="nonzero", choices=MASK_CONVENTIONS,
                   help="how mask files mark spliced pixels (default nonzero)")
    b.add_argument("--allow-missing-masks", action="store_true", help="keep spliced images without a mask")
    b.add_argument("--origin", default="", help="where the data comes from")
    b.add_argument("--terms", default="", help="licence / terms of use")
    b.add_argument("--citation", default="", help="how to cite the dataset")
    b.add_argument("--description", default="", help="free text stored in the manifest")
    b.add_argument("--out", "-o", required=True, help="manifest file to write (.json)")
    b.set_defaults(func=_cmd_manifest_build)
    c = msub.add_parser("check", help="verify that files under ROOT match a manifest")
    c.add_argument("manifest", help="manifest JSON to check")
    c.add_argument("--root", required=True, help="your copy of the dataset")
    c.add_argument("--no-hash", action="store_true", help="check existence only")
    c.set_defaults(func=_cmd_manifest_check)

    q = sub.add_parser("bench", help="run methods over a dataset manifest (resumable; rows + summary tables)")
    q.add_argument("manifest", help="manifest JSON (see data_manifests/README.md)")
    q.add_argument("--root", required=True, help="your copy of the dataset (manifest paths are relative to it)")
    q.add_argument("--out", "-o", required=True, help="run folder (rows.csv, summary.csv, summary.tex, run.json)")
    q.add_argument("--methods", "-m", help="comma-separated method names (default: all registered)")
    q.add_argument("--param", "-p", action="append", metavar="METHOD.NAME=VALUE",
                   help="method parameter, e.g. median_residual.block=16 (repeatable)")
    q.add_argument("--workers", "-j", type=int, default=1, help="local worker processes (default 1 = in this process)")
    q.add_argument("--scheduler", help="Dask scheduler address, or 'local' to start a LocalCluster on 127.0.0.1")
    q.add_argument("--every", type=int, default=1, help="take every K-th item of each label, sorted by file name")
    q.add_argument("--offset", type=int, default=0,
                   help="with --every K: start at item OFFSET of each label (0..K-1; default 0 = items 0, K, 2K, ...)")
    q.add_argument("--limit", type=int,
                   help="then at most N items, shared among spliced and pristine in proportion to their numbers "
                        "(evenly spaced by name within each)")
    q.add_argument("--thresholds", help="per-method thresholds from `noisestat calibrate` (default 0.5)")
    q.add_argument("--allow-calibration-overlap", action="store_true",
                   help="accept thresholds calibrated on the images being evaluated")
    q.add_argument("--save-maps", action="store_true", help="save every heatmap as float32 .npy under RUNDIR/maps")
    q.add_argument("--retry-errors", action="store_true",
                   help="recompute every row stored as an error (without it, error rows are recomputed only "
                        "when their input files changed)")
    q.add_argument("--strict", action="store_true", help="exit 1 when any row is an error")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the intervals")
    q.set_defaults(func=_cmd_bench)

    q = sub.add_parser("calibrate", help="per-method threshold maximising mean F1 (or MCC) on a run's spliced "
                                         "images within a false-positive budget on its pristine images")
    q.add_argument("rundir", help="a run folder of `noisestat bench` (the calibration data)")
    q.add_argument("--metric", choices=("f1", "mcc"), default="f1", help="per-image metric to maximise (default f1)")
    q.add_argument("--orientation", choices=("as_is", "best"), default="as_is",
                   help="'as_is' (default): maps as returned; 'best': better of map and inverted map per image")
    q.add_argument("--methods", help="comma-separated subset")
    q.add_argument("--max-pristine-fpr", type=float, default=0.05,
                   help="only thresholds whose mean false-positive rate on the run's pristine images is at most "
                        "this (default 0.05; 1 = no constraint)")
    q.add_argument("--out", "-o", help="thresholds file (default RUNDIR/thresholds.json)")
    q.set_defaults(func=_cmd_calibrate)

    q = sub.add_parser("calibrate-maps", help="refit the decision models (calibrated maps, integrity score) on a run")
    q.add_argument("rundir", help="a `noisestat bench --save-maps` run over spliced and pristine images")
    q.add_argument("--methods", help="comma-separated subset (default: every method in the run)")
    q.add_argument("--pixels-per-image", type=int, default=4096, help="pixels sampled per image (default 4096)")
    q.add_argument("--seed", type=int, default=0, help="seed of the pixel sampling (default 0)")
    q.add_argument("--image-fpr", type=float, default=0.05,
                   help="share of the run's pristine images allowed at score >= 0.5 (default 0.05)")
    q.add_argument("--pixel-fpr", type=float, default=0.01,
                   help="mean share of the pristine images' pixels allowed in the masks (default 0.01)")
    q.add_argument("--out", "-o", help="calibration file (default RUNDIR/calibration.json)")
    q.set_defaults(func=_cmd_calibrate_maps)

    q = sub.add_parser("synth", help="build a robustness dataset + manifest, or post-process a manifest")
    q.add_argument("--out", "-o", help="output dataset root (images/, masks/, pristine/, manifest.json)")
    q.add_argument("--list", action="store_true", help="list the robustness presets and exit")
    g = q.add_argument_group("synthetic splices (noisestat.synth.make_splice)")
    g.add_argument("--hosts", help="folder of host images (default: seeded synthetic textures)")
    g.add_argument("--n-hosts", type=int, help="use the first N hosts (sorted by name)")
    g.add_argument("--protocol", help="robustness preset (see --list); default: unprocessed splices only")
    g.add_argument("--region", default="blob", help="ellipse | rectangle | blob")
    g.add_argument("--fraction", type=float, default=0.1, help="target region fraction (default 0.1)")
    g.add_argument("--region-noise", type=float, default=0.0,
                   help="extra noise sigma (0-255) in the pasted region before pasting")
    g.add_argument("--size", default="96x128", help="HxW of synthetic hosts (default 96x128)")
    g.add_argument("--no-pristine", action="store_true", help="do not write the hosts as pristine items")
    g.add_argument("--seed", type=int, default=0, help="seed of textures, regions and noise (default 0)")
    g = q.add_argument_group("post-process an existing manifest (masks are copied unchanged)")
    g.add_argument("--from-manifest", help="manifest to post-process")
    g.add_argument("--root", help="root of that manifest's dataset")
    g.add_argument("--jpeg", type=int, help="JPEG quality (1-100)")
    g.add_argument("--noise-var", type=float, help="Gaussian noise variance on the [0, 1] scale")
    g.add_argument("--noise-sigma", type=float, help="Gaussian noise sigma (0-255 units)")
    g.add_argument("--blur", type=float, default=0.0, help="Gaussian blur sigma in pixels (default 0 = none)")
    g.add_argument("--gamma", type=float, default=1.0, help="gamma correction exponent (default 1 = none)")
    g.add_argument("--range", help="reduced dynamic range LOW,HIGH, e.g. 16,235")
    q.set_defaults(func=_cmd_synth)

    q = sub.add_parser("report", help="PNG plots and a self-contained HTML page for a run folder")
    q.add_argument("rundir", help="a run folder of `noisestat bench`")
    q.add_argument("--out", "-o", help="output folder (default RUNDIR/report)")
    q.add_argument("--gallery", type=int, default=3, help="best/worst images per method (default 3)")
    q.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the intervals (default 2000)")
    q.set_defaults(func=_cmd_report)


def _cmd_manifest_build(args: argparse.Namespace) -> int:
    from .manifest import build_manifest, save_manifest, unreadable_items

    m = build_manifest(args.images, masks=args.masks, pristine=args.pristine, root=args.root,
                       dataset=args.dataset, mask_convention=args.mask_convention,
                       allow_missing_masks=args.allow_missing_masks, description=args.description,
                       origin=args.origin, terms=args.terms, citation=args.citation)
    save_manifest(m, args.out)
    c = m.counts()
    bad = unreadable_items(m)
    for it in bad:
        print(f"noisestat: warning: {it.image}: {it.extra['unreadable']}; kept as an item (bench reports it as "
              f"an error row)", file=sys.stderr)
    print(f"wrote {args.out}: dataset {m.dataset!r}, {c['spliced']} spliced, {c['pristine']} pristine"
          + (f", {len(bad)} unreadable (listed above)" if bad else ""))
    return 0


def _cmd_manifest_check(args: argparse.Namespace) -> int:
    from .manifest import check_manifest, load_manifest

    m = load_manifest(args.manifest)
    problems = check_manifest(m, args.root, hashes=not args.no_hash)
    for line in problems:
        print(line, file=sys.stderr)
    what = "files exist, inside the root" if args.no_hash else "files exist inside the root and match their hashes"
    if problems:
        print(f"{Path(args.manifest).name}: {len(problems)} problem(s) in {len(m)} items", file=sys.stderr)
        return 1
    print(f"{Path(args.manifest).name}: all {len(m)} items OK ({what}) under {args.root}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .run import BenchConfig, parse_method_params, run_bench

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    try:
        params = parse_method_params(args.param)
    except ValueError as exc:
        raise ValueError(f"--param: {exc}") from None
    try:
        config = BenchConfig(methods=methods, params=params, workers=args.workers, scheduler=args.scheduler,
                             every=args.every, offset=args.offset, limit=args.limit, thresholds=args.thresholds,
                             allow_calibration_overlap=args.allow_calibration_overlap, save_maps=args.save_maps,
                             retry_errors=args.retry_errors, progress=not args.no_progress, n_boot=args.bootstrap)
        res = run_bench(args.manifest, root=args.root, out=args.out, config=config)
    except (TypeError, ValueError) as exc:
        if type(exc) not in (TypeError, ValueError):  # subclasses may take other arguments
            raise
        raise type(exc)(_in_flag_terms(str(exc))) from exc
    print(f"{res.rundir}: {res.n_tasks} rows ({res.n_reused} reused, {res.n_computed} computed, "
          f"{res.n_errors} errors) in {res.wall_seconds:.1f} s")
    if res.why_computed:
        print("computed because: " + "; ".join(f"{k} ({v})" for k, v in sorted(res.why_computed.items())))
    if res.interrupted:
        print("interrupted: the rows written so far are kept; rerun the same command to finish", file=sys.stderr)
        return 130
    txt = Path(res.rundir) / "summary.txt"
    if txt.is_file():
        print(txt.read_text(), end="")
    if res.n_errors:
        errs = [r for r in res.rows if r["error"]][:5]
        for r in errs:
            print(f"error: {r['item']} [{r['method']}]: {r['error']}", file=sys.stderr)
        print(f"{res.n_errors} error row(s); see the 'error' column of {Path(res.rundir) / 'rows.csv'} (an "
              f"error row is recomputed when its files change; --retry-errors recomputes them all)", file=sys.stderr)
        if args.strict:
            return 1
    return 0


# run_bench / BenchConfig parameter -> `noisestat bench` option
_BENCH_FLAGS = {
    "root": "--root", "out": "--out", "methods": "--methods", "params": "--param", "every": "--every",
    "offset": "--offset",
    "limit": "--limit", "workers": "--workers", "scheduler": "--scheduler", "thresholds": "--thresholds",
    "allow_calibration_overlap": "--allow-calibration-overlap", "n_boot": "--bootstrap",
}


def _in_flag_terms(message: str) -> str:
    """Re-word a run_bench error from Python parameters (``BenchConfig(every=0)``, ``root=``) to bench options."""
    text = re.sub(r"BenchConfig\((\w+=.*?)\): ", r"\1: ", message)

    def flag(m: re.Match[str]) -> str:
        option = _BENCH_FLAGS.get(m.group(1))
        if option is None:
            return m.group(0)
        bare = m.group(2) or m.string[m.end() : m.end() + 1] in ("", " ", ";", ",", ")")
        return option if bare else option + " "

    return re.sub(r"\b(\w+)=(True\b)?", flag, text)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .calibrate import calibrate

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    out = args.out or str(Path(args.rundir) / "thresholds.json")
    doc = calibrate(args.rundir, metric=args.metric, orientation=args.orientation, methods=methods,
                    max_pristine_fpr=args.max_pristine_fpr, out=out)
    m = args.metric
    print(f"optimised: {doc['objective']}")
    print(f"{'method':24s} {'threshold':>9s} {'mean@thr':>9s} {'mean@0.5':>9s} {'prisFPR':>8s} {'TPR':>6s} "
          f"{'FPR':>6s} {'n':>5s}")
    for cfg, t in doc["thresholds"].items():
        at5 = t[f"mean_{m}_at_0.5"]
        pf = t["pristine_fpr"]
        print(f"{cfg:24s} {t['threshold']:9.2f} {t[f'mean_{m}']:9.3f} "
              f"{'-' if at5 is None else format(at5, '.3f'):>9s} {'-' if pf is None else format(pf, '.3f'):>8s} "
              f"{t['pooled_tpr']:6.3f} {t['pooled_fpr']:6.3f} {t['n']:5d}")
    for cfg, why in doc["refused"].items():
        print(f"noisestat: warning: {cfg}: no threshold: {why}", file=sys.stderr)
    for w in doc["warnings"]:
        print(f"noisestat: warning: {w}", file=sys.stderr)
    if not doc["thresholds"]:
        print(f"wrote {out} without any threshold (every method refused, see above)", file=sys.stderr)
        return 2
    print(f"wrote {out}; apply it to OTHER data with: noisestat bench MANIFEST ... --thresholds {out}"
          + (" --methods " + ",".join(t["method"] for t in doc["thresholds"].values()) if doc["refused"] else ""))
    return 0


def _cmd_calibrate_maps(args: argparse.Namespace) -> int:
    from .calibrate_maps import calibrate_maps, fit_table

    methods = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    if not 0.0 <= args.image_fpr < 1.0:
        raise SystemExit(f"noisestat calibrate-maps: --image-fpr {args.image_fpr} is not a share in [0, 1)")
    if not 0.0 <= args.pixel_fpr <= 1.0:
        raise SystemExit(f"noisestat calibrate-maps: --pixel-fpr {args.pixel_fpr} is not a share in [0, 1]")
    cal = calibrate_maps(args.rundir, methods=methods, pixels_per_image=args.pixels_per_image, seed=args.seed,
                         image_fpr=args.image_fpr, pixel_fpr=args.pixel_fpr)
    out = cal.save(args.out or Path(args.rundir) / "calibration.json")
    print(fit_table(cal))
    print(f"wrote {out}; use it with: noisestat localize IMAGE --calibration {out}")
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from ..synth import protocols
    from .protocols import build_synthetic, postprocess_manifest

    if args.list:
        for name, levels in sorted(protocols().items()):
            print(f"{name:16s} " + "; ".join(", ".join(f"{k}={v}" for k, v in lv.items() if k != "apply_to")
                                              for lv in levels))
        return 0
    if not args.out:
        raise ValueError("--out is required (the new dataset root)")
    if args.from_manifest:
        if not args.root:
            raise ValueError("--from-manifest needs --root (the source dataset)")
        rng = tuple(float(v) for v in args.range.split(",")) if args.range else None
        if rng is not None and len(rng) != 2:
            raise ValueError(f"--range {args.range!r}: expected LOW,HIGH, e.g. 16,235")
        m = postprocess_manifest(args.from_manifest, root=args.root, out=args.out, jpeg_quality=args.jpeg,
                                 noise_var=args.noise_var, noise_sigma=args.noise_sigma, blur_sigma=args.blur,
                                 gamma=args.gamma, dynamic_range=rng, seed=args.seed)
        for f in m.meta.get("failed_items", []):
            print(f"noisestat: warning: {f['image']}: {f['error']}; skipped (listed under failed_items in the "
                  f"manifest)", file=sys.stderr)
    else:
        try:
            h, w = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise ValueError(f"--size {args.size!r}: expected HxW, e.g. 96x128") from None
        m = build_synthetic(args.out, hosts=args.hosts, n_hosts=args.n_hosts, protocol=args.protocol,
                            region=args.region, region_fraction=args.fraction, region_noise_sigma=args.region_noise,
                            pristine=not args.no_pristine, shape=(h, w), seed=args.seed)
    c = m.counts()
    print(f"wrote {Path(args.out) / 'manifest.json'}: dataset {m.dataset!r}, {c['spliced']} spliced, "
          f"{c['pristine']} pristine; run it with: noisestat bench {Path(args.out) / 'manifest.json'} "
          f"--root {args.out} --out RUNDIR")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    import json

    from .report import make_report, run_state
    from .rows import current_rows

    page = make_report(args.rundir, out=args.out, n_gallery=args.gallery, n_boot=args.bootstrap)
    meta_p = Path(args.rundir) / "run.json"
    meta = json.loads(meta_p.read_text()).get("current", {}) if meta_p.is_file() else {}
    partial, text = run_state(meta, len(current_rows(args.rundir)))
    print(f"wrote {page} (plots beside it); {text}")
    if partial:
        print(f"noisestat: warning: {args.rundir}: {text}", file=sys.stderr)
    return 0
