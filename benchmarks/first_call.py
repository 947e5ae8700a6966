"""Where a fresh process's first call of a method goes: numba's set-up and cached kernel loads.

For each method, a fresh interpreter imports noisestat, loads IMG, and times
``noisestat.localize`` twice; numba's ``Cache.load_overload`` is wrapped to
count the cached kernels loaded during the first call and their load times
(the first load also sets up numba's CPU target). Caches must be warm (run
the method once first, e.g. ``noisestat localize IMG --method M``); a
compilation during the first call shows up as extra time, not as a load.

    python benchmarks/first_call.py IMG [--methods median_residual,objects,fusion]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

#: run in a fresh interpreter: argv = image, method; prints one JSON line
_CHILD = r"""
import json, sys, time
import numba.core.caching as caching
loads = []
_orig = caching.Cache.load_overload
def _timed(self, sig, target_context):
    t = time.perf_counter()
    out = _orig(self, sig, target_context)
    loads.append(time.perf_counter() - t)
    return out
caching.Cache.load_overload = _timed
import noisestat
from noisestat.io import load_image
img = load_image(sys.argv[1])
t0 = time.perf_counter(); noisestat.localize(img, method=sys.argv[2]); t1 = time.perf_counter()
first_loads = list(loads)
noisestat.localize(img, method=sys.argv[2]); t2 = time.perf_counter()
print(json.dumps({"first": t1 - t0, "second": t2 - t1, "loads": first_loads}))
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("image")
    ap.add_argument("--methods", default="median_residual,objects,dct_hist,fusion")
    args = ap.parse_args(argv)
    print(f"{'method':<20} {'1st call s':>10} {'2nd call s':>10} {'loads':>6} {'1st load s':>10} "
          f"{'other loads ms':>15} {'all loads s':>11}")
    for method in [m for m in args.methods.split(",") if m]:
        out = subprocess.run([sys.executable, "-c", _CHILD, args.image, method], check=True,
                             capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        loads = r["loads"]
        rest = loads[1:]
        span = f"{1e3 * min(rest):.1f}-{1e3 * max(rest):.1f}" if rest else "-"
        print(f"{method:<20} {r['first']:>10.3f} {r['second']:>10.3f} {len(loads):>6} "
              f"{(loads[0] if loads else float('nan')):>10.3f} {span:>15} {sum(loads):>11.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
