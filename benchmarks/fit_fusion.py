"""Fit the logistic model of the ``fusion`` localizer on synthetic splices only.

Usage::

    python benchmarks/fit_fusion.py [--seed 2024] [--n-images 600] [--workers 2] [--rows-cache rows.pkl]
        [--extra-maps blocking_grid,grid_content] [--out noisestat/localizers/fusion_model.json]

The training set is generated here, reproducibly from ``--seed``, with
:func:`noisestat.synth.make_splice` over the scikit-image sample images
bundled with the installed scikit-image
(:func:`noisestat.synth.available_sample_images`); no evaluation image (CASIA
or other) is read. It follows the usual splicing pipeline:

* host: a random crop (224-520 pixels a side) of one of the natural
  photographs among the sample images (:data:`HOSTS`), downscaled by 0.45-1,
  with its own sensor noise (:func:`sensor_noise`; this script fits on the
  ``gaussian`` model, white noise of sigma 0.5-4, while
  ``benchmarks/fit_decisions.py --sensor camera`` also draws camera-like
  noise) and, half of the time, a
  "camera" JPEG compression (quality 70-98);
* donor: any other sample image, rescaled to a long side of 320-640 pixels,
  its own sensor noise and camera JPEG likewise, then half of the time
  resized by 0.6-1.5 (the pasted object scaled to fit the scene);
* the splice (region: ellipse, rectangle or blob covering 3-30 %) is either
  processed on the pasted region (extra noise sigma 0-8, blur 0.5-2, gamma
  0.8/1.2) or on the whole image with one setting of the robustness
  protocols (:func:`noisestat.synth.protocols`: noise, blur, JPEG, gamma /
  dynamic range, resizing); then most images are JPEG-compressed (quality
  60-100) and some resized;
* a share (:data:`JPEG_SHARE`) of the images follows a JPEG protocol instead
  (``_jpeg_splice``): ``single`` (host never compressed, the composite saved
  once at q2), ``aligned`` (host saved at q1, pasted into, saved at q2 on the
  same grid) or ``nonaligned`` (host saved at q1, cropped by a non-multiple
  of 8, pasted into, saved at q2), q1 60-95, q2 70-100, the pasted region
  half of the time processed as above.

Every final JPEG is written as a file by Pillow and read back with
:func:`noisestat.load_image`, so the JPEG maps see the file's quantised
coefficients and tables as they do on real files.

Per object, the features are computed by ``noisestat.localizers.fusion.
_object_features`` - the same function the localizer uses. An object is a
positive example when at least 75 % of its pixels are spliced and a negative
one when at most 25 % are; objects in between are ambiguous and left out.
Examples are weighted by the object's share of the image's pixels (the
evaluation metrics are per pixel, per image). One model (standardised
features, scikit-learn ``LogisticRegression``, L2, C = 1) is fitted for every
subset of the maps, on the images where all of the subset's maps apply (ELA
and the JPEG maps only on JPEG files, dct_hist only with a
double-compression trace). ``--extra-maps`` are computed too (kept in the
``--rows-cache`` pickle, to assess a candidate map) but not fitted. Held-out object-level AUC (every 5th image
held out) is printed and stored, then each model is refitted on all images.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from noisestat import __version__  # noqa: E402
from noisestat.io import as_image, load_image  # noqa: E402
from noisestat.localizers import fusion  # noqa: E402
from noisestat.synth import available_sample_images, make_splice, protocols, sample_image  # noqa: E402

POS_MIN, NEG_MAX = 0.75, 0.25
#: maps the model is fitted with (fusion's default maps, noisestat.localizers.fusion.FUSED_MAPS)
FIT_MAPS = ",".join(fusion.FUSED_MAPS)
#: natural photographs among the sample images, used as hosts
HOSTS = ("astronaut", "camera", "chelsea", "clock", "coffee", "coins", "moon", "rocket")
C_REG = 1.0
HELD_OUT_EVERY = 5


def _rescale(img: np.ndarray, long_side: float) -> np.ndarray:
    import cv2

    h, w = img.shape[:2]
    s = min(1.0, long_side / max(h, w))
    if s >= 1.0:
        return img.astype(np.float64)
    size = (max(16, round(w * s)), max(16, round(h * s)))
    return cv2.resize(img.astype(np.float32), size, interpolation=cv2.INTER_AREA).astype(np.float64)


def _jpeg_array(img: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    a = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    gray = a.ndim == 2
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as dec:
        return np.asarray(dec.convert("L" if gray else "RGB"), dtype=np.float64)


#: the sensor models of :func:`sensor_noise` (``--sensor``)
SENSORS = ("gaussian", "camera")


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 inverse tone curve, 0-255 in and out."""
    x = np.clip(v / 255.0, 0.0, 1.0)
    return 255.0 * np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(v: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 tone curve, 0-255 in and out."""
    x = np.clip(v / 255.0, 0.0, 1.0)
    return 255.0 * np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055)


def _depth_of_field(lin: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Half of the time, a smooth random part of the scene out of focus (Gaussian blur, sigma 1-3).

    Real photographs are sharp in some places and defocused in others, so
    that the noise a detector measures differs between objects of one
    pristine picture; the blend weight is a random field of a few cells a
    side, upsampled and pushed towards 0 and 1.
    """
    import cv2

    if rng.random() >= 0.5:
        return lin
    h, w = lin.shape[:2]
    cells = int(rng.integers(2, 5))
    field = cv2.resize(rng.normal(0.0, 1.0, (cells, cells)).astype(np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC)
    keep = 1.0 / (1.0 + np.exp(-4.0 * field.astype(np.float64)))
    blur = cv2.GaussianBlur(lin.astype(np.float32), (0, 0), float(rng.uniform(1.0, 3.0))).astype(np.float64)
    if lin.ndim == 3:
        keep = keep[..., None]
    return keep * lin + (1.0 - keep) * blur


def _demosaic_noise(lin: np.ndarray, var: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise drawn per photosite of a random Bayer layout, then bilinear demosaicing (correlated noise)."""
    import cv2

    h, w = lin.shape[:2]
    oy, ox = (int(v) for v in rng.integers(0, 2, 2))
    yy, xx = np.mgrid[0:h, 0:w]
    green = ((yy + xx + oy + ox) % 2) == 0
    red = ~green & ((yy + oy) % 2 == 0)
    blue = ~green & ~red
    k_rb = np.array([[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]], np.float32)
    k_g = np.array([[0.0, 0.25, 0.0], [0.25, 1.0, 0.25], [0.0, 0.25, 0.0]], np.float32)
    out = np.empty_like(lin)
    for c, (site, k) in enumerate(((red, k_rb), (green, k_g), (blue, k_rb))):
        raw = lin[..., c] + rng.normal(0.0, 1.0, (h, w)) * np.sqrt(var[..., c])
        out[..., c] = cv2.filter2D((raw * site).astype(np.float32), -1, k, borderType=cv2.BORDER_REFLECT_101)  # keeps the mosaic parity
    return out


def sensor_noise(img: np.ndarray, rng: np.random.Generator, sensor: str = "gaussian") -> np.ndarray:
    """A picture's sensor noise, 0-255 in and out (float64).

    ``"gaussian"``: white Gaussian noise of sigma 0.5-4, the same at every
    brightness. ``"camera"``: a camera pipeline (chosen before any
    evaluation run, from the physics): the inverse sRGB tone curve to linear
    light; half of the time a smooth part of the scene defocused
    (:func:`_depth_of_field`); clipped Poisson-Gaussian noise of variance a L + b (Foi et al.
    2008, doi:10.1109/TIP.2008.2001399; a log-uniform in 0.02-1, b such that
    black has sigma 0.5-3 after the tone curve), drawn per photosite of a
    random Bayer layout and bilinearly demosaiced for 75 % of colour pictures
    (else per pixel); the forward tone curve; then half of the time a
    bilateral denoise, otherwise an unsharp mask (in-camera processing).
    """
    import cv2

    if sensor == "gaussian":
        return np.clip(img + rng.normal(0.0, rng.uniform(0.5, 4.0), img.shape), 0, 255)
    if sensor not in SENSORS:
        raise ValueError(f"sensor must be one of {SENSORS}, got {sensor!r}")
    lin = _depth_of_field(_srgb_to_linear(np.asarray(img, np.float64)), rng)
    a = float(np.exp(rng.uniform(np.log(0.02), np.log(1.0))))
    b = (float(rng.uniform(0.5, 3.0)) / 12.92) ** 2
    var = a * lin + b
    if lin.ndim == 3 and lin.shape[2] == 3 and rng.random() < 0.75:
        lin = _demosaic_noise(lin, var, rng)
    else:
        lin = lin + rng.normal(0.0, 1.0, lin.shape) * np.sqrt(var)
    out = _linear_to_srgb(np.clip(lin, 0.0, 255.0)).astype(np.float32)
    if rng.random() < 0.5:
        d = float(rng.uniform(2.0, 6.0))
        out = cv2.bilateralFilter(out, 5, d, 2.0)
    else:
        blur = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.8, 1.5)))
        k = float(rng.uniform(0.3, 1.0))
        out = cv2.addWeighted(out, 1.0 + k, blur, -k, 0)
    return np.clip(out.astype(np.float64), 0, 255)


def _camera(img: np.ndarray, rng: np.random.Generator, sensor: str = "gaussian") -> tuple[np.ndarray, int | None]:
    """Sensor noise (:func:`sensor_noise`) and, half of the time, a camera JPEG (quality 70-98)."""
    img = sensor_noise(img, rng, sensor)
    if rng.random() < 0.5:
        q = int(rng.integers(70, 99))
        return _jpeg_array(img, q), q
    return img, None


def _host(name: str, rng: np.random.Generator, *, camera: bool = True,
          sensor: str = "gaussian") -> tuple[np.ndarray, int | None]:
    import cv2

    img = sample_image(name).astype(np.float32)
    h, w = img.shape[:2]
    s = rng.uniform(0.45, 1.0)
    img = cv2.resize(img, (max(16, round(w * s)), max(16, round(h * s))), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    ch, cw = int(rng.integers(224, 400)), int(rng.integers(256, 520))
    if rng.random() < 0.5:
        ch, cw = cw, ch
    ch, cw = min(h, ch), min(w, cw)
    r0, c0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    crop = img[r0 : r0 + ch, c0 : c0 + cw].astype(np.float64)
    return _camera(crop, rng, sensor) if camera else (crop, None)


def _donor(name: str, rng: np.random.Generator, sensor: str = "gaussian") -> tuple[np.ndarray, int | None, float]:
    import cv2

    img, q = _camera(_rescale(sample_image(name), rng.uniform(320, 640)), rng, sensor)
    scale = 1.0
    if rng.random() < 0.5:
        scale = float(rng.uniform(0.6, 1.5))
        h, w = img.shape[:2]
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        img = cv2.resize(img.astype(np.float32), (max(16, round(w * scale)), max(16, round(h * scale))),
                         interpolation=interp).astype(np.float64)
    return np.clip(img, 0, 255), q, scale


#: share of the training images made by the JPEG protocols (single, aligned and non-aligned double JPEG)
JPEG_SHARE = 0.45
JPEG_PROTOCOLS = ("single", "aligned", "nonaligned")


def _splice_kwargs(rng: np.random.Generator) -> dict:
    """Region and processing of the noise/blur/resize protocol splices (final JPEG in ``jpeg_quality``)."""
    kw: dict = {"region": str(rng.choice(["ellipse", "rectangle", "blob"])),
                "region_fraction": float(rng.uniform(0.03, 0.3))}
    if rng.random() < 0.55:
        kw.update(_region_processing(rng))
    else:
        entries = [e for plist in protocols().values() for e in plist]
        kw.update(entries[int(rng.integers(len(entries)))])
    if kw.get("jpeg_quality") is None and rng.random() < 0.6:
        kw["jpeg_quality"] = int(rng.integers(60, 101))
    if kw.get("resize", 1.0) == 1.0 and rng.random() < 0.15:
        kw["resize"] = float(rng.choice([0.8, 0.9, 1.1, 1.2]))
    return kw


def _region_processing(rng: np.random.Generator) -> dict:
    """Noise / blur / gamma on the pasted region only."""
    kw: dict = {"apply_to": "region", "noise_sigma": float(rng.choice([0, 0, 1, 2, 3, 5, 8]))}
    if rng.random() < 0.4:
        kw["blur_sigma"] = float(rng.choice([0.5, 1.0, 1.5, 2.0]))
    if rng.random() < 0.2:
        kw["gamma"] = float(rng.choice([0.8, 1.2]))
    return kw


def _jpeg_splice(rng: np.random.Generator, host_name: str, sensor: str = "gaussian") -> tuple[np.ndarray, dict]:
    """Host of a JPEG protocol splice and its settings.

    ``single``: the host is never compressed (the composite is saved once);
    ``aligned``: the host is saved at q1, pasted into and saved at q2 on the
    same grid; ``nonaligned``: saved at q1, cropped by a non-multiple of 8
    (row and/or column offset 1-7), pasted into and saved at q2. q1 60-95,
    q2 70-100 (q2 != q1).
    """
    kind = JPEG_PROTOCOLS[int(rng.integers(len(JPEG_PROTOCOLS)))]
    host, _ = _host(host_name, rng, camera=False)
    host = sensor_noise(host, rng, sensor)
    q1 = int(rng.integers(60, 96))
    q2 = int(rng.integers(70, 101))
    while q2 == q1:
        q2 = int(rng.integers(70, 101))
    settings: dict = {"jpeg_protocol": kind, "host_jpeg": None if kind == "single" else q1}
    if kind != "single":
        host = _jpeg_array(host, q1)
    if kind == "nonaligned":
        dy, dx = (int(v) for v in rng.integers(0, 8, 2))
        while dy == 0 and dx == 0:
            dy, dx = (int(v) for v in rng.integers(0, 8, 2))
        host = host[dy:, dx:]
        settings["crop"] = (dy, dx)
    kw: dict = {"region": str(rng.choice(["ellipse", "rectangle", "blob"])),
                "region_fraction": float(rng.uniform(0.03, 0.3)), "jpeg_quality": q2}
    if rng.random() < 0.5:
        kw.update(_region_processing(rng))
    settings["kw"] = kw
    return host, settings


def make_example(seed: int, k: int, sensor: str = "gaussian") -> tuple[np.ndarray, np.ndarray, int | None, dict]:
    """The k-th training splice: (image uint8 before the final save, mask, final JPEG quality or None, settings).

    ``sensor``: the noise model of the host and donor pictures (:func:`sensor_noise`).
    """
    rng = np.random.default_rng([seed, k])
    names = available_sample_images()
    hosts = [n for n in HOSTS if n in names]
    host_name = hosts[int(rng.integers(len(hosts)))]
    others = [n for n in names if n != host_name]
    donor_name = others[int(rng.integers(len(others)))]
    if rng.random() < JPEG_SHARE:
        host, jset = _jpeg_splice(rng, host_name, sensor)
        kw = jset.pop("kw")
        settings: dict = {"host": host_name, "donor": donor_name, **jset}
    else:
        host, host_q = _host(host_name, rng, sensor=sensor)
        kw = None
        settings = {"host": host_name, "donor": donor_name, "jpeg_protocol": None, "host_jpeg": host_q}
    donor, donor_q, donor_scale = _donor(donor_name, rng, sensor)
    settings.update(donor_jpeg=donor_q, donor_scale=donor_scale)
    if kw is None:
        kw = _splice_kwargs(rng)
    final_q = kw.pop("jpeg_quality", None)
    sp = make_splice(host.astype(np.float32), donor.astype(np.float32), seed=int(rng.integers(2**31)), **kw)
    settings.update(kw, jpeg_quality=final_q)
    return np.asarray(sp.image), sp.mask, final_q, settings


def _load_example(image: np.ndarray, quality: int | None, tmp: str):
    """The splice as the localizer sees it: a JPEG file written by Pillow at ``quality``, or the array."""
    if quality is None:
        return as_image(image)
    from PIL import Image

    path = Path(tmp) / "splice.jpg"
    Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=quality)
    return load_image(path)


def example_features(seed: int, k: int, maps: tuple[str, ...]) -> dict:
    import tempfile

    image, mask, quality, settings = make_example(seed, k)
    with tempfile.TemporaryDirectory(prefix="fit_fusion_") as tmp:
        img = _load_example(image, quality, tmp)
        f = fusion._object_features(img, maps=maps)
    n = f.x.shape[0]
    lab = f.labels.ravel()
    counts = np.bincount(lab, minlength=n + 1)[1:]
    spliced = np.bincount(lab, weights=mask.ravel().astype(np.float64), minlength=n + 1)[1:]
    overlap = spliced / np.maximum(counts, 1)
    return {"k": k, "names": f.names, "x": f.x[f.valid], "overlap": overlap[f.valid],
            "weight": (counts / max(counts.sum(), 1))[f.valid], "maps_used": f.maps_used, "settings": settings,
            "valid": f.valid, "area": counts, "spliced": spliced,
            "objects_score": np.array([o.score for o in (f.objects.objects or ())])}


def f1_best_objects(values: np.ndarray, area: np.ndarray, spliced: np.ndarray) -> float:
    """Pixel F1 at the best threshold of a map that is constant on each object (exact sweep)."""
    if spliced.sum() <= 0:
        return float("nan")
    o = np.argsort(-values, kind="stable")
    v, tp = values[o], np.cumsum(spliced[o])
    fp = np.cumsum(area[o] - spliced[o])
    last = np.r_[v[1:] != v[:-1], True]
    f1 = 2 * tp[last] / (2 * tp[last] + fp[last] + (spliced.sum() - tp[last]))
    return float(max(0.0, f1.max()))


def _fit(x: np.ndarray, y: np.ndarray, w: np.ndarray):
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale <= 1e-12] = 1.0
    clf = LogisticRegression(C=C_REG, max_iter=10000)
    clf.fit((x - mean) / scale, y, sample_weight=w / w.mean())
    return mean, scale, clf


def fit_models(rows: list[dict], maps: tuple[str, ...]) -> dict:
    from sklearn.metrics import roc_auc_score

    models = {}
    for subset in fusion.map_subsets(maps):
        names = fusion.feature_names(subset)
        xs, ys, ws, ks = [], [], [], []
        for r in rows:
            if not set(subset) <= set(r["maps_used"]) or r["x"].shape[0] == 0:
                continue
            idx = [r["names"].index(c) for c in names]
            keep = (r["overlap"] >= POS_MIN) | (r["overlap"] <= NEG_MAX)
            xs.append(r["x"][keep][:, idx])
            ys.append(r["overlap"][keep] >= POS_MIN)
            ws.append(r["weight"][keep])
            ks.append(np.full(int(keep.sum()), r["k"]))
        x, y, w, k = np.vstack(xs), np.concatenate(ys), np.concatenate(ws), np.concatenate(ks)
        test = k % HELD_OUT_EVERY == 0
        mean, scale, clf = _fit(x[~test], y[~test], w[~test])
        auc = float(roc_auc_score(y[test], clf.decision_function((x[test] - mean) / scale)))
        f1_fusion, f1_objects = [], []
        for r in rows:
            if r["k"] % HELD_OUT_EVERY or not set(subset) <= set(r["maps_used"]):
                continue
            prob = np.zeros(r["valid"].shape[0])
            if r["x"].shape[0]:
                idx = [r["names"].index(c) for c in names]
                prob[r["valid"]] = clf.predict_proba((r["x"][:, idx] - mean) / scale)[:, 1]
            f1_fusion.append(f1_best_objects(prob, r["area"], r["spliced"]))
            f1_objects.append(f1_best_objects(r["objects_score"] * r["valid"], r["area"], r["spliced"]))
        mean, scale, clf = _fit(x, y, w)
        key = fusion.model_key(subset)
        models[key] = {
            "maps": list(subset), "features": list(names),
            "mean": mean.tolist(), "scale": scale.tolist(),
            "coef": clf.coef_[0].tolist(), "intercept": float(clf.intercept_[0]),
            "n_images": int(len(set(k.tolist()))), "n_objects": int(y.size), "n_positive": int(y.sum()),
            "heldout_auc": auc,
            "heldout_f1_best": float(np.nanmean(f1_fusion)),
            "heldout_f1_best_objects": float(np.nanmean(f1_objects)),
        }
        print(f"  maps={key or '(none)':45s} images={models[key]['n_images']:4d} objects={y.size:6d} "
              f"pos={int(y.sum()):5d} held-out: object AUC={auc:.3f}, per-image F1-best "
              f"{np.nanmean(f1_fusion):.3f} (objects localizer alone {np.nanmean(f1_objects):.3f})")
    return models


def _protocol_summary(rows: list[dict]) -> dict:
    """How many training images each protocol made."""
    counts: dict[str, int] = {}
    for r in rows:
        st = r["settings"]
        kind = st.get("jpeg_protocol") or ("noise/blur/resize protocols, final JPEG" if st.get("jpeg_quality")
                                           else "noise/blur/resize protocols, no final JPEG")
        counts[kind] = counts.get(kind, 0) + 1
    return {"share_jpeg_protocols": JPEG_SHARE, "images": counts,
            "jpeg_protocols": " ".join(_jpeg_splice.__doc__.split("\n\n")[1].split())}


def _rows(seed: int, n_images: int, maps: tuple[str, ...], workers: int) -> list[dict]:
    """Per-image feature rows of images 0..n_images-1 (``workers`` processes at most)."""
    import functools
    import multiprocessing

    t0 = time.perf_counter()
    job = functools.partial(example_features, seed, maps=maps)
    rows: list[dict] = []
    with multiprocessing.get_context("spawn").Pool(max(1, workers)) if workers > 1 else _Serial() as pool:
        for row in pool.imap(job, range(n_images)):
            rows.append(row)
            if len(rows) % 20 == 0:
                print(f"{len(rows)}/{n_images} images, {time.perf_counter() - t0:.0f} s", flush=True)
    return rows


class _Serial:
    """The part of a multiprocessing pool used here, in this process."""

    def __enter__(self) -> _Serial:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @staticmethod
    def imap(func, items):
        return map(func, items)


def main(argv: list[str] | None = None) -> int:
    import pickle

    import sklearn

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--n-images", type=int, default=600)
    p.add_argument("--maps", default=FIT_MAPS)
    p.add_argument("--extra-maps", default="", help="maps computed and cached too (to assess them), not fitted")
    p.add_argument("--workers", type=int, default=2, help="processes computing the features (<= 2 here)")
    p.add_argument("--rows-cache", default="", help="pickle of the feature rows: read if present, else written")
    p.add_argument("--out", default=str(ROOT / "noisestat" / "localizers" / fusion.MODEL_FILE))
    args = p.parse_args(argv)
    maps = tuple(sorted({m.strip() for m in args.maps.split(",") if m.strip()}))
    extra = tuple(sorted({m.strip() for m in args.extra_maps.split(",") if m.strip()} - set(maps)))
    t0 = time.perf_counter()
    cache = Path(args.rows_cache) if args.rows_cache else None
    if cache is not None and cache.exists():
        rows = pickle.loads(cache.read_bytes())
    else:
        rows = _rows(args.seed, args.n_images, maps + extra, args.workers)
        if cache is not None:
            cache.write_bytes(pickle.dumps(rows))
    models = fit_models(rows, maps)
    out = {
        "format": fusion.MODEL_FORMAT,
        "maps": list(maps),
        "object_features": list(fusion.OBJECT_FEATURES),
        "map_stats": list(fusion.MAP_STATS),
        "models": models,
        "provenance": {
            "script": "benchmarks/fit_fusion.py",
            "command": " ".join(["python benchmarks/fit_fusion.py", *(argv if argv is not None else sys.argv[1:])]),
            "seed": args.seed,
            "n_images": args.n_images,
            "training_data": ("synthetic splices only (noisestat.synth.make_splice over the scikit-image "
                              "sample images " + ", ".join(available_sample_images()) + "; final JPEGs written "
                              "as files by Pillow and read back with noisestat.load_image); no evaluation "
                              "dataset (CASIA or other) was used"),
            "protocols": _protocol_summary(rows),
            "extra_maps_computed": list(extra),
            "hosts": list(HOSTS),
            "labels": f"object spliced if >= {POS_MIN:.0%} of its pixels are, pristine if <= {NEG_MAX:.0%}; "
                      "objects in between left out; weights = object's share of the image's pixels",
            "classifier": f"sklearn LogisticRegression(C={C_REG}, L2, lbfgs) on standardised features",
            "heldout": (f"every {HELD_OUT_EVERY}th image held out for heldout_auc (objects) and heldout_f1_best "
                        "(mean per-image pixel F1 at the best threshold; *_objects: the objects localizer's "
                        "own values), then refitted on all"),
            "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
            "noisestat_version": __version__,
            "numpy_version": np.__version__,
            "sklearn_version": sklearn.__version__,
            "fit_seconds": round(time.perf_counter() - t0, 1),
        },
    }
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(models)} models) in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
