"""Speed of every registered method and scalar estimator, as multiples of one JPEG encode+decode.

The benchmark image (default): ``skimage.data.astronaut()`` resized to 2048x1536
with OpenCV, saved at JPEG quality 85 and re-saved at 95 (a double JPEG, so
that the double-compression maps do their full work). The floor: one OpenCV
quality-90 encode+decode of the same pixels. After ``noisestat.warmup()``,
each method is timed end to end, its own map through ``registry.localize``
and the calibrated result through ``noisestat.localize``, interleaved with the
floor over ``--pairs`` pairs; the table gives the median seconds and s/MP of
the own map and the medians of the per-pair ratios (ratios hold on a loaded
machine, seconds do not).

With ``--pyifd PYTHON`` (the interpreter of a pyIFD environment, see
``../shared/peers/README.md``), the counterparts (wavelet_mad-NOI1,
kurtosis-NOI2, median_residual-NOI4, block_pca-NOI5, ela-ELA, adq-ADQ2) run
on the same file in that interpreter, interleaved with the same floor there;
the ``pyIFD /`` column is the peer's multiple of the floor over ours (>1:
noisestat faster). ``--cold-start IMG`` times whole ``noisestat localize``
processes (caches warm: one untimed run per method first; median of
``--cold-runs``) and gives each as a multiple of ``median_residual``'s.
``--rss 3,12`` gives each method's peak resident memory in a fresh process
on the benchmark image resized to those megapixels. ``--scaling 1,3,12`` times
each own map at those sizes and fits the exponent ``k`` of ``t ~ MP^k``.

    python benchmarks/bench_maps.py [--image astronaut|texture] [--size 2048x1536] [--pairs 7] [--methods a,b]
        [--pyifd /tmp/pyifd/bin/python [--run-peer ../shared/peers/run_peer.py]] [--cold-start IMG] [--compile-cost IMG] [--rss 3,12]
        [--scaling 1,3,12]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

import noisestat
from noisestat import registry
from noisestat.synth import clean_texture, sample_image

#: noisestat method -> pyIFD counterpart (../shared/peers/run_peer.py names)
PYIFD = {"wavelet_mad": "NOI1", "kurtosis": "NOI2", "median_residual": "NOI4", "block_pca": "NOI5",
         "ela": "ELA", "adq": "ADQ2"}
RUN_PEER = Path(__file__).resolve().parents[2] / "shared" / "peers" / "run_peer.py"

#: run inside the pyIFD interpreter: argv = run_peer.py, image, pairs, algos...; prints JSON
_PYIFD_TIMER = r"""
import importlib.util, json, statistics, sys, time
import cv2, numpy as np
spec = importlib.util.spec_from_file_location("run_peer", sys.argv[1]); rp = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rp)
path, pairs = sys.argv[2], int(sys.argv[3])
px = cv2.imread(path, cv2.IMREAD_COLOR)
def floor():
    ok, buf = cv2.imencode(".jpg", px, [cv2.IMWRITE_JPEG_QUALITY, 90]); cv2.imdecode(buf, cv2.IMREAD_COLOR)
for _ in range(3):
    floor()
out = {}
for algo in sys.argv[4:]:
    t0 = time.perf_counter(); rp.run_algo(algo, path); first = time.perf_counter() - t0
    ratios, ts = [], []
    for _ in range(pairs if first < 20 else 1):
        t0 = time.perf_counter(); floor(); t1 = time.perf_counter(); rp.run_algo(algo, path); t2 = time.perf_counter()
        ts.append(t2 - t1); ratios.append((t2 - t1) / max(t1 - t0, 1e-9))
    out[algo] = [statistics.median(ts), statistics.median(ratios)]
print(json.dumps(out))
"""

ESTIMATORS = ("estimate_noise_pca", "estimate_noise_weak_texture", "estimate_noise_residual",
              "estimate_noise_mad")


def texture_image(w: int, h: int) -> np.ndarray:
    """The older synthetic benchmark: smooth texture plus noise sigma 3."""
    base = clean_texture((h // 4, w // 4, 3), seed=1)
    img = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC)
    img = img + np.random.default_rng(1).normal(0, 3.0, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def benchmark_file(folder: Path, kind: str, w: int, h: int) -> Path:
    """Write the benchmark JPEG (RGB): astronaut resized, saved at 85 then 95; texture saved at 90."""
    if kind == "astronaut":
        rgb = cv2.resize(sample_image("astronaut"), (w, h), interpolation=cv2.INTER_LINEAR)
        first = folder / "q85.jpg"
        cv2.imwrite(str(first), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 85])
        bgr = cv2.imread(str(first), cv2.IMREAD_COLOR)
        path = folder / "bench.jpg"
        cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        return path
    path = folder / "bench.jpg"
    cv2.imwrite(str(path), texture_image(w, h)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def paired(fn, floor, pairs: int) -> tuple[float, float]:
    """(median seconds of fn, median of fn/floor over interleaved pairs)."""
    ts, ratios = [], []
    for _ in range(pairs):
        t0 = time.perf_counter()
        floor()
        t1 = time.perf_counter()
        fn()
        t2 = time.perf_counter()
        ts.append(t2 - t1)
        ratios.append((t2 - t1) / max(t1 - t0, 1e-9))
    return statistics.median(ts), statistics.median(ratios)


def pyifd_ratios(python: str, run_peer: Path, path: Path, methods: list[str],
                 pairs: int) -> dict[str, tuple[float, float]]:
    """{method: (peer seconds, peer multiple of the floor)} for the methods with a pyIFD counterpart."""
    algos = [PYIFD[m] for m in methods if m in PYIFD]
    if not algos:
        return {}
    res = subprocess.run([python, "-W", "ignore", "-c", _PYIFD_TIMER, str(run_peer), str(path), str(pairs), *algos],
                         capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"pyIFD timing failed:\n{res.stderr[-2000:]}")
    got = json.loads(res.stdout.strip().splitlines()[-1])
    return {m: tuple(got[PYIFD[m]]) for m in methods if m in PYIFD}


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(noisestat.__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def cold_start(image: str, methods: list[str], runs: int) -> dict[str, float]:
    """Median wall seconds of a whole ``python -m noisestat localize IMAGE --method M`` process."""
    env = _child_env()
    out: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        # one output folder per method: localize refuses to overwrite another method's files
        cmd = {m: [sys.executable, "-m", "noisestat", "localize", image, "--out", str(Path(tmp) / m), "--method", m]
               for m in methods}
        for m in methods:  # caches warm
            subprocess.run(cmd[m], env=env, check=True, capture_output=True)
        for _ in range(runs):  # interleaved over methods: load drifts hit all alike
            for m in methods:
                t0 = time.perf_counter()
                subprocess.run(cmd[m], env=env, check=True, capture_output=True)
                out[m].append(time.perf_counter() - t0)
    return {m: statistics.median(v) for m, v in out.items()}


_WARMUP_CHILD = "import time, noisestat; t = time.perf_counter(); noisestat.warmup(); print(time.perf_counter() - t)"


def compile_cost(image: str, method: str) -> dict[str, float]:
    """What the on-disk kernel cache saves, in fresh processes with an empty ``NUMBA_CACHE_DIR``.

    Wall seconds of ``noisestat localize IMAGE --method M`` the first time (compiles and fills the
    cache) and the second time (loads it), and of ``noisestat.warmup()`` likewise (all kernels).
    """
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for what, cmd in (("localize", [sys.executable, "-m", "noisestat", "localize", image, "--out", tmp,
                                        "--method", method, "--overwrite"]),
                          ("warmup", [sys.executable, "-c", _WARMUP_CHILD])):
            env = {**_child_env(), "NUMBA_CACHE_DIR": str(Path(tmp) / f"cache-{what}")}
            for run in ("first", "second"):
                t0 = time.perf_counter()
                res = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
                wall = time.perf_counter() - t0
                out[f"{what} {run}"] = float(res.stdout.strip().splitlines()[-1]) if what == "warmup" else wall
    return out


#: VmHWM of the child's own address space: ru_maxrss survives execve on Linux, so a child of a large
#: benchmark process would report the parent's peak instead of its own
_RSS_CHILD = r"""
import sys, noisestat
img = noisestat.load_image(sys.argv[1])
noisestat.localize(img, method=sys.argv[2])
with open("/proc/self/status") as f:
    print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")))
"""


def peak_rss(path: Path, method: str) -> float:
    """Peak resident set size (MB) of a fresh process that loads ``path`` and localizes it once."""
    res = subprocess.run([sys.executable, "-W", "ignore", "-c", _RSS_CHILD, str(path), method],
                         env=_child_env(), capture_output=True, text=True, check=True)
    return int(res.stdout.strip().splitlines()[-1]) / 1024.0  # VmHWM is in kB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", choices=("astronaut", "texture"), default="astronaut")
    ap.add_argument("--size", default="2048x1536")
    ap.add_argument("--pairs", type=int, default=7)
    ap.add_argument("--methods", default="", help="comma-separated (default: every registered method)")
    ap.add_argument("--estimators", action="store_true", help="also time the scalar noise estimators")
    ap.add_argument("--pyifd", default="", help="python interpreter of a pyIFD environment")
    ap.add_argument("--pyifd-pairs", type=int, default=3)
    ap.add_argument("--run-peer", type=Path, default=RUN_PEER, help=f"the peers' run_peer.py (default {RUN_PEER})")
    ap.add_argument("--cold-start", default="", metavar="IMG", help="also time whole localize processes on IMG")
    ap.add_argument("--cold-runs", type=int, default=3)
    ap.add_argument("--compile-cost", default="", metavar="IMG",
                    help="also time a first and a second fresh process with an empty kernel cache on IMG")
    ap.add_argument("--rss", default="", metavar="MP,MP", help="peak RSS in fresh processes at these sizes")
    ap.add_argument("--scaling", default="", metavar="MP,MP", help="time the own maps at these sizes, fit the exponent")
    ap.add_argument("--skip-timing", action="store_true", help="only the --cold-start / --rss tables")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    mp = w * h / 1e6
    names = [m for m in args.methods.split(",") if m] or noisestat.methods()
    with tempfile.TemporaryDirectory() as tmp:
        bench_path = benchmark_file(Path(tmp), args.image, w, h)
        loaded = noisestat.load_image(bench_path)
        pixels = np.ascontiguousarray(loaded.pixels.astype(np.uint8)[:, :, ::-1])
        t_warm = noisestat.warmup()

        def floor() -> None:
            ok, buf = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 90])
            cv2.imdecode(buf, cv2.IMREAD_COLOR)

        if not args.skip_timing:
            peers = pyifd_ratios(args.pyifd, args.run_peer, bench_path, names, args.pyifd_pairs) if args.pyifd else {}
            t_floor = paired(floor, floor, args.pairs)[0]
            print(f"image: {args.image} {w}x{h} ({mp:.2f} MP, {loaded.info.format} "
                  f"Q{loaded.info.jpeg_quality:g}); warmup {t_warm:.1f} s; {args.pairs} interleaved pairs per row")
            print("own = the method's own map (registry.localize); calibrated = noisestat.localize "
                  "(plus reliability map, integrity score, calibrated heatmap)")
            print(f"{'what':34s} {'s':>8s} {'s/MP':>8s} {'x floor':>8s} {'calibrated':>10s}"
                  + (f" {'pyIFD x floor':>14s} {'pyIFD /':>8s}" if peers else ""))
            print(f"{'JPEG Q90 encode+decode (floor)':34s} {t_floor:8.3f} {t_floor / mp:8.4f} {1.0:8.1f}")
            for name in names:
                noisestat.localize(loaded, method=name)  # first call on this size
                t, r = paired(lambda n=name: registry.localize(loaded, method=n), floor, args.pairs)
                _, rc = paired(lambda n=name: noisestat.localize(loaded, method=n), floor, args.pairs)
                row = f"{name:34s} {t:8.3f} {t / mp:8.4f} {r:8.1f} {rc:10.1f}"
                if name in peers:
                    row += f" {PYIFD[name] + ' ' + format(peers[name][1], '.1f'):>14s} {peers[name][1] / r:8.1f}"
                print(row, flush=True)
            for est in ESTIMATORS if args.estimators else ():
                fn = getattr(noisestat, est)
                fn(loaded)
                t, r = paired(lambda f=fn: f(loaded), floor, args.pairs)
                print(f"{est:34s} {t:8.3f} {t / mp:8.4f} {r:8.1f}", flush=True)
        if args.cold_start:
            cold_names = names if "median_residual" in names else ["median_residual", *names]
            secs = cold_start(args.cold_start, cold_names, args.cold_runs)
            print(f"\nwhole-process `noisestat localize {Path(args.cold_start).name} --method M` "
                  f"(caches warm, median of {args.cold_runs})")
            print(f"{'method':22s} {'s':>7s} {'x median_residual':>18s}")
            for m in cold_names:
                print(f"{m:22s} {secs[m]:7.2f} {secs[m] / secs['median_residual']:18.2f}", flush=True)
        if args.compile_cost:
            cc = compile_cost(args.compile_cost, "wavelet_mad")
            print(f"\nkernel cache, fresh processes, empty NUMBA_CACHE_DIR (`localize` wall s on "
                  f"{Path(args.compile_cost).name} with wavelet_mad; `warmup()` s in-process)")
            for k, v in cc.items():
                print(f"{k:18s} {v:7.2f}", flush=True)
        if args.rss:
            sizes = [float(v) for v in args.rss.split(",") if v]
            files = {}
            for size in sizes:
                s_ = (size * 1e6 / (w * h)) ** 0.5
                sub = Path(tmp) / f"mp{size:g}"
                sub.mkdir()
                files[size] = benchmark_file(sub, args.image, int(round(w * s_)), int(round(h * s_)))
            print("\npeak RSS (MB) of a fresh process: load the benchmark image at this size, localize once")
            print(f"{'method':22s}" + "".join(f" {format(sz, 'g') + ' MP':>9s}" for sz in sizes))
            for m in names:
                print(f"{m:22s}" + "".join(f" {peak_rss(files[sz], m):9.0f}" for sz in sizes), flush=True)
        if args.scaling:
            scaling(Path(tmp), args.image, w, h, [float(v) for v in args.scaling.split(",") if v], names)

def scaling(folder: Path, kind: str, w: int, h: int, sizes: list[float], names: list[str], runs: int = 3) -> None:
    """Seconds of each own map at several sizes and the exponent of a log-log fit (1 = linear in pixels)."""
    files = {}
    for size in sizes:
        s_ = (size * 1e6 / (w * h)) ** 0.5
        sub = folder / f"scale{size:g}"
        sub.mkdir(exist_ok=True)
        files[size] = noisestat.load_image(benchmark_file(sub, kind, int(round(w * s_)), int(round(h * s_))))
    print(f"\nscaling of the own maps (median of {runs} after one untimed call; exponent of t ~ MP^k)")
    print(f"{'method':22s}" + "".join(f" {format(sz, 'g') + ' MP s':>10s}" for sz in sizes) + f" {'exponent':>9s}")
    for m in names:
        secs = []
        for size in sizes:
            registry.localize(files[size], method=m)
            ts = []
            for _ in range(runs):
                t0 = time.perf_counter()
                registry.localize(files[size], method=m)
                ts.append(time.perf_counter() - t0)
            secs.append(statistics.median(ts))
        mps = [files[sz].shape[0] * files[sz].shape[1] / 1e6 for sz in sizes]
        k = float(np.polyfit(np.log(mps), np.log(secs), 1)[0])
        print(f"{m:22s}" + "".join(f" {t:10.3f}" for t in secs) + f" {k:9.2f}", flush=True)


if __name__ == "__main__":
    main()
