"""The bad-input corpus through the CLI and the API for every registered method: tracebacks and silent wrong answers.

Builds a corpus of files and arrays in a temporary folder: every kind the README's *Inputs* section
names (JPEG, PNG, TIFF, BMP, WebP; grayscale, RGB, palette, alpha, CMYK, 16-bit, 32-bit float,
EXIF-rotated, symlinked), the cases of issue 17 (1x1, 7x7 and 2x5000 JPEGs, a 1-bit PNG, [0, 1]
float arrays, a float32 RGB TIFF, an animated GIF, a 256-megapixel PNG bomb) and broken inputs
(empty, junk, truncated, missing, a folder, NaN/inf, wrong dtypes and shapes). Each case has an
expectation:

* ``ok``: a valid input; any result counts (applicable or "not applicable"), a refusal is a
  *refusal of a valid input*;
* ``warn``: a valid input that must come with a warning (the result without it is silent);
* ``refuse``: a refusal (one-line ``ValueError``/``TypeError``, CLI exit 2) or "not applicable" is
  due; an applicable result is a *silent wrong answer*;
* ``clean``: a constant image: a refusal, "not applicable" or a mask of at most 5 % of the pixels.

Then every registered method runs on every case through ``noisestat.localize`` (files and
arrays) and through ``noisestat localize`` (one subprocess per method with all the files and
``--json``). A *traceback* is any exception other than ValueError/TypeError in the API, and
any ``Traceback`` or exit code other than 0/2 in the CLI.

    python benchmarks/bad_inputs.py [--methods a,b] [--size 144x176] [--no-cli] [--verbose]

Prints one line per problem and a table of counts per method; exit code 1 when any
traceback or silent wrong answer was found.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

import noisestat
from noisestat.synth import clean_texture

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Case:
    name: str
    source: Any  # a path (str) or an array / object for the API only
    expect: str  # ok | warn | refuse | clean
    api_only: bool = False


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    img = clean_texture((h, w, 3), seed=seed) + np.random.default_rng(seed).normal(0, 3.0, (h, w, 3))
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def build_corpus(folder: Path, h: int, w: int) -> list[Case]:
    """Write the corpus files into ``folder``; return the cases (files and arrays)."""
    import cv2

    f = folder
    rgb = _photo(h, w)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    cases: list[Case] = []

    def add(name: str, expect: str, save: Any) -> None:
        p = f / name
        save(p)
        cases.append(Case(name, str(p), expect))

    # --- valid kinds of the README's Inputs section
    add("rgb.jpg", "ok", lambda p: Image.fromarray(rgb).save(p, quality=90))
    add("gray.jpg", "ok", lambda p: Image.fromarray(gray).save(p, quality=90))
    add("rgb444_q75.jpg", "ok", lambda p: Image.fromarray(rgb).save(p, quality=75, subsampling=0))
    add("progressive.jpg", "ok", lambda p: Image.fromarray(rgb).save(p, quality=85, progressive=True))
    add("cmyk.jpg", "ok", lambda p: Image.fromarray(rgb).convert("CMYK").save(p, quality=90))

    def rotated(p: Path) -> None:
        im = Image.fromarray(rgb)
        exif = im.getexif()
        exif[0x0112] = 6
        im.save(p, quality=90, exif=exif)

    add("exif_rotated.jpg", "ok", rotated)
    add("rgb.png", "ok", lambda p: Image.fromarray(rgb).save(p))
    add("gray.png", "ok", lambda p: Image.fromarray(gray).save(p))
    add("palette.png", "ok", lambda p: Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE).save(p))
    add("rgba.png", "ok", lambda p: Image.fromarray(np.dstack([rgb, np.full((h, w), 200, np.uint8)])).save(p))
    add("la.png", "ok", lambda p: Image.fromarray(np.dstack([gray, np.full((h, w), 200, np.uint8)]), "LA").save(p))
    add("rgb16.png", "ok", lambda p: cv2.imwrite(str(p), (rgb[:, :, ::-1].astype(np.uint16) * 257)))
    add("gray16.png", "ok", lambda p: cv2.imwrite(str(p), gray.astype(np.uint16) * 257))
    add("rgb.tif", "ok", lambda p: Image.fromarray(rgb).save(p))
    add("rgb16.tif", "ok", lambda p: cv2.imwrite(str(p), (rgb[:, :, ::-1].astype(np.uint16) * 257)))
    add("f32rgb.tif", "ok", lambda p: cv2.imwrite(str(p), np.ascontiguousarray(rgb[:, :, ::-1], np.float32)))
    add("f32gray.tif", "ok", lambda p: Image.fromarray(gray.astype(np.float32), "F").save(p))
    add("rgb.bmp", "ok", lambda p: Image.fromarray(rgb).save(p))
    add("rgb.webp", "ok", lambda p: Image.fromarray(rgb).save(p, quality=90))
    os.symlink(f / "rgb.jpg", f / "symlink.jpg")
    cases.append(Case("symlink.jpg", str(f / "symlink.jpg"), "ok"))
    # --- valid, with a warning due
    frames = [Image.fromarray(_photo(h, w, s)).convert("P") for s in range(3)]
    add("animated.gif", "warn", lambda p: frames[0].save(p, save_all=True, append_images=frames[1:]))
    add("multipage.tif", "warn", lambda p: Image.fromarray(rgb).save(p, save_all=True,
                                                                    append_images=[Image.fromarray(rgb[::-1])]))
    add("f32unit.tif", "warn", lambda p: cv2.imwrite(str(p), np.ascontiguousarray(rgb[:, :, ::-1], np.float32) / 255))
    # --- a refusal (or "not applicable") is due
    add("empty.png", "refuse", lambda p: p.write_bytes(b""))
    add("junk.png", "refuse", lambda p: p.write_bytes(b"this is not an image\n" * 10))
    data_j = (f / "rgb.jpg").read_bytes()
    add("truncated.jpg", "refuse", lambda p: p.write_bytes(data_j[: len(data_j) // 3]))
    data_p = (f / "rgb.png").read_bytes()
    add("truncated.png", "refuse", lambda p: p.write_bytes(data_p[: len(data_p) // 3]))
    cases.append(Case("missing.png", str(f / "missing.png"), "refuse"))
    (f / "folder.png").mkdir()
    cases.append(Case("folder.png", str(f / "folder.png"), "refuse"))
    add("tiny1.jpg", "refuse", lambda p: Image.fromarray(rgb[:1, :1]).save(p, quality=90))
    add("tiny7.jpg", "refuse", lambda p: Image.fromarray(rgb[:7, :7]).save(p, quality=90))
    add("thin2x5000.jpg", "refuse", lambda p: Image.fromarray(np.tile(rgb[:2], (1, 5000 // w + 1, 1))[:, :5000])
        .save(p, quality=90))
    add("bilevel.png", "refuse", lambda p: Image.fromarray(gray > 128).convert("1").save(p))
    add("nan_f32.tif", "refuse", lambda p: cv2.imwrite(str(p), np.full((h, w, 3), np.nan, np.float32)))
    add("bomb_256mp.png", "refuse", lambda p: Image.new("L", (16000, 16001)).save(p, optimize=False))
    # --- a constant image: nothing to find
    add("constant.png", "clean", lambda p: Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(p))

    # --- arrays (API only)
    rng = np.random.default_rng(0)
    arrays = [
        ("array_uint8_rgb", rgb, "ok"), ("array_uint16", gray.astype(np.uint16) * 257, "ok"),
        ("array_float_0_255", rgb.astype(np.float64), "ok"), ("array_rgba", np.dstack([rgb, rgb[:, :, :1]]), "ok"),
        ("array_float_unit", rgb.astype(np.float32) / 255, "warn"),
        ("array_nan", np.where(rng.random((h, w)) < 0.01, np.nan, gray.astype(np.float64)), "refuse"),
        ("array_inf", np.where(rng.random((h, w)) < 0.01, np.inf, gray.astype(np.float64)), "refuse"),
        ("array_bool", gray > 128, "refuse"), ("array_5ch", np.dstack([rgb, rgb[:, :, :2]]), "refuse"),
        ("array_1d", gray.ravel(), "refuse"), ("array_negative_int", gray.astype(np.int32) - 300, "refuse"),
        ("array_complex", gray.astype(np.complex64), "refuse"), ("array_str", np.array([["a", "b"]]), "refuse"),
        ("array_empty", np.zeros((0, 0), np.uint8), "refuse"), ("bytes", data_j, "refuse"),
        ("array_1x1", rgb[:1, :1], "refuse"),
    ]
    cases += [Case(n, a, e, api_only=True) for n, a, e in arrays]
    return cases


def _judge(expect: str, outcome: str, warned: bool, mask_fraction: float | None) -> str | None:
    """None if the outcome is right, else the kind of problem."""
    if outcome == "crash":
        return "traceback"
    if expect == "ok" and outcome == "refused":
        return "refusal of a valid input"
    if expect == "warn":
        if outcome == "refused":
            return "refusal of a valid input"
        if not warned:
            return "silent: no warning"
    if expect == "refuse" and outcome == "applicable":
        return "silent wrong answer: result where a refusal was due"
    if expect == "clean" and outcome == "applicable" and (mask_fraction or 0.0) > 0.05:
        return f"silent wrong answer: {100 * mask_fraction:.0f} % mask on a constant image"
    return None


def run_api(cases: list[Case], method: str) -> list[tuple[str, str, str]]:
    problems = []
    for c in cases:
        with warnings.catch_warnings(record=True) as log:
            warnings.simplefilter("always")
            mask_fraction = None
            try:
                loc = noisestat.localize(c.source, method=method)
                outcome = "applicable" if loc.applicable else "not applicable"
                mask_fraction = float(np.mean(loc.mask))
                detail = f"score {loc.score:.2f}"
            except (ValueError, TypeError) as exc:
                outcome, detail = "refused", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            except Exception as exc:  # noqa: BLE001 - what this script counts
                outcome, detail = "crash", f"{type(exc).__name__}: {exc}"
        warned = any(issubclass(w.category, UserWarning) for w in log)
        why = _judge(c.expect, outcome, warned, mask_fraction)
        if why:
            problems.append((c.name, why, f"{outcome}: {detail}"))
    return problems


def run_cli(cases: list[Case], method: str, out: Path) -> tuple[list[tuple[str, str, str]], float]:
    files = [c for c in cases if not c.api_only]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "noisestat", "localize", *[c.source for c in files], "-m", method,
           "--out", str(out / method), "--json", "--overwrite"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=3600)
    secs = time.perf_counter() - t0
    problems = []
    if proc.returncode not in (0, 2) or "Traceback" in proc.stderr:
        problems.append(("(cli call)", "traceback", f"exit {proc.returncode}; {proc.stderr.strip()[-300:]}"))
        return problems, secs
    for line in proc.stderr.splitlines():
        if not line.startswith("noisestat: "):
            problems.append(("(cli stderr)", "not one line", line[:200]))
    results = json.loads(proc.stdout)["results"]
    for c, r in zip(files, results):
        if "error" in r:
            outcome, detail, mf = "refused", r["error"], None
        else:
            outcome = "applicable" if r["applicable"] else "not applicable"
            rep = json.loads(Path(r["outputs"]["json"]).read_text())
            mf, detail = rep["mask_fraction"], f"score {r['score']}"
        warned = any(line.startswith("noisestat: warning:") and c.source in line for line in proc.stderr.splitlines())
        why = _judge(c.expect, outcome, warned, mf)
        if why:
            problems.append((c.name, why, f"{outcome}: {detail}"))
    return problems, secs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", help="comma-separated subset (default: every registered method)")
    ap.add_argument("--size", default="144x176", help="HxW of the valid images (default 144x176)")
    ap.add_argument("--no-cli", action="store_true", help="API only")
    ap.add_argument("--verbose", action="store_true", help="also list each case's expectation")
    args = ap.parse_args()
    h, w = (int(v) for v in args.size.split("x"))
    methods = args.methods.split(",") if args.methods else noisestat.methods()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        cases = build_corpus(corpus, h, w)
        n_files = sum(not c.api_only for c in cases)
        print(f"corpus: {len(cases)} cases ({n_files} files, {len(cases) - n_files} arrays/objects); "
              f"expectations: " + ", ".join(f"{e} {sum(c.expect == e for c in cases)}"
                                            for e in ("ok", "warn", "refuse", "clean")))
        if args.verbose:
            for c in cases:
                print(f"  {c.name:22s} {c.expect}")
        rows = []
        for m in methods:
            t0 = time.perf_counter()
            api = run_api(cases, m)
            api_s = time.perf_counter() - t0
            cli, cli_s = ([], 0.0) if args.no_cli else run_cli(cases, m, Path(tmp) / "out")
            for where, probs in (("api", api), ("cli", cli)):
                for name, why, detail in probs:
                    print(f"{m:20s} {where} {name:22s} {why}: {detail[:160]}")
            rows.append((m, api, cli, api_s, cli_s))
    print()
    print(f"{'method':20s} {'api tb':>6s} {'api silent':>10s} {'api valid refused':>17s} {'cli tb':>6s} "
          f"{'cli silent':>10s} {'cli valid refused':>17s} {'api s':>6s} {'cli s':>6s}")
    tot = np.zeros(6, int)

    def count(probs: list[tuple[str, str, str]]) -> tuple[int, int, int]:
        tb = sum(p[1] in ("traceback", "not one line") for p in probs)
        valid = sum(p[1] == "refusal of a valid input" for p in probs)
        return tb, len(probs) - tb - valid, valid

    for m, api, cli, api_s, cli_s in rows:
        c = (*count(api), *count(cli))
        tot += np.array(c)
        print(f"{m:20s} {c[0]:6d} {c[1]:10d} {c[2]:17d} {c[3]:6d} {c[4]:10d} {c[5]:17d} {api_s:6.1f} {cli_s:6.1f}")
    print(f"{'total':20s} {tot[0]:6d} {tot[1]:10d} {tot[2]:17d} {tot[3]:6d} {tot[4]:10d} {tot[5]:17d}")
    print(f"\n{len(methods)} methods x {len(cases)} cases (API) and x {n_files} files (CLI): "
          f"{tot[0] + tot[3]} tracebacks, {tot[1] + tot[4]} silent wrong answers, "
          f"{tot[2] + tot[5]} refusals of valid inputs")
    return 1 if tot.sum() else 0


if __name__ == "__main__":
    sys.exit(main())
