from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

import noisestat
import noisestat.registry
from noisestat.localizers._object_features import _floor_features, _white_noise_quantile
from noisestat.localizers.objects import object_features, objects_localizer
from noisestat.metrics import evaluate_map
from noisestat.segment import segment
from noisestat.synth import make_splice, sample_image
from noisestat.types import LoadedImage


def _splice(host: str, donor: str, sigma: float, seed: int):
    rng = np.random.default_rng(seed)
    h = sample_image(host).astype(np.float64)
    h = np.clip(h + rng.normal(0, 2.0, h.shape), 0, 255)  # a host with uniform sensor noise
    return make_splice(h.astype(np.float32), sample_image(donor), region="blob", region_fraction=0.12,
                       noise_sigma=sigma, seed=seed)


def _naive_floor(px, labels, boxes, block, q, white, mode="mean"):
    """Tile floor of the finest diagonal db4 coefficients, written out coefficient by coefficient.

    ``mode="mean"``: mean over the tile's coefficients and channels of the squares;
    ``"decorrelated"``: smallest eigenvalue of the 3 x 3 colour covariance of the
    tile's coefficients. Returns the un-normalised percentiles of the tile RMS.
    """
    from noisestat.blocks.wavelets import daubechies_filters

    g = daubechies_filters("db4")[1]
    gg = np.outer(g, g)
    h, w, nc = px.shape
    x = px.astype(np.float64)

    luma = x.mean(axis=2) if nc == 1 else x @ np.array([0.299, 0.587, 0.114])
    tiles = []
    for by in range(h // block):
        for bx in range(w // block):
            sl = (slice(by * block, (by + 1) * block), slice(bx * block, (bx + 1) * block))
            lab, lum = labels[sl], luma[sl]
            if lab.min() != lab.max() or lum.min() <= 0 or lum.max() >= white:
                continue
            coef = []  # the tile's coefficients (one per 2x2 block), a row per block, a column per channel
            for b in range(by * block // 2, (by + 1) * block // 2):
                for c in range(bx * block // 2, (bx + 1) * block // 2):
                    k, m = b - 1, c - 1
                    if k < 0 or m < 0 or 2 * k + 8 > h or 2 * m + 8 > w:
                        coef.append([float("nan")] * nc)  # no full coefficient at the border: tile skipped
                        continue
                    coef.append([float(np.sum(gg * x[2 * k : 2 * k + 8, 2 * m : 2 * m + 8, ch]))
                                 for ch in range(nc)])
            coef = np.array(coef)
            if not np.all(np.isfinite(coef)):
                continue
            if mode == "mean":
                v = float(np.mean(coef**2))
            else:
                cov = np.zeros((nc, nc))
                for row in coef:
                    cov += np.outer(row, row)
                v = max(float(np.linalg.eigvalsh(cov / len(coef))[0]), 0.0)
            tiles.append((by * block + block // 2, bx * block + block // 2, int(lab[0, 0]), math.sqrt(v)))
    n = boxes.shape[0]
    fg, bg = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(n):
        own = [t[3] for t in tiles if t[2] == i + 1]
        r0, c0, r1, c1 = boxes[i]
        other = [t[3] for t in tiles if t[2] != i + 1 and r0 <= t[0] < r1 and c0 <= t[1] < c1]
        if len(own) >= 4:
            fg[i] = np.percentile(own, q)
        if len(other) >= 4:
            bg[i] = np.percentile(other, q)
    return fg, bg


@pytest.mark.parametrize(("seed", "channels", "mode"),
                         [(0, 1, "mean"), (1, 3, "mean"), (2, 3, "mean"), (3, 3, "decorrelated"),
                          (4, 3, "decorrelated")])
def test_floor_features_match_naive(seed, channels, mode):
    rng = np.random.default_rng(seed)
    h, w = 99 + seed * 5, 130 + seed * 3  # odd sizes, partial tiles dropped
    px = rng.normal(120, 6, (h, w, channels)).astype(np.float32)
    px[:10, :20] = 255.0  # clipped tiles are skipped
    px[30:40, 50:70] = 80.0  # a constant patch
    img = LoadedImage(px, noisestat.load_image(px if channels == 3 else px[:, :, 0]).info)
    seg = segment(img, method="grid", rows=2, cols=3)
    q = 10.0 if mode == "mean" else 50.0
    fg, bg, allv, tiles = _floor_features(img, img.gray(), seg, block=8, q=q, min_blocks=4, mode=mode)
    assert tiles.mode == mode
    nfg, nbg = _naive_floor(px, seg.labels, seg.boxes, 8, q, 255.0, mode)
    k = _white_noise_quantile(mode, q, 16, channels)
    assert np.isfinite(nfg).sum() >= 4  # the reference is not vacuous
    np.testing.assert_allclose(fg, nfg / k, rtol=1e-6)
    np.testing.assert_allclose(bg, nbg / k, rtol=1e-6)
    assert np.isfinite(allv)


@pytest.mark.parametrize(("channels", "mode", "expect_mode"),
                         [(3, "auto", "decorrelated"), (3, "mean", "mean"), (3, "decorrelated", "decorrelated"),
                          (1, "auto", "mean")])
def test_floor_recovers_per_channel_sigma(channels, mode, expect_mode):
    # flat image, i.i.d. noise of sigma 4 per channel: either tile measure, divided by its
    # white-noise quantile (chi2 for the channel mean, a Wishart eigenvalue for the
    # decorrelated one), reads sigma
    rng = np.random.default_rng(5)
    base = np.array([120.0, 90.0, 60.0])[:channels]
    img = np.clip(base + rng.normal(0, 4.0, (256, 256, channels)), 0, 255)
    img = img if channels == 3 else img[:, :, 0]
    seg = segment(img, method="grid", rows=1, cols=2)
    f = object_features(noisestat.load_image(img), seg, features=("sigma_floor",), floor_mode=mode)
    assert f["sigma_floor_fg"] == pytest.approx([4.0] * 2, rel=0.04)
    assert f["floor_decorrelated"][0] == float(expect_mode == "decorrelated")
    if channels == 3:
        assert f["channel_independence"][0] > 0.3  # about 0.4 for independent channels
    else:
        assert np.isnan(f["channel_independence"][0])


def test_white_noise_quantile_matches_closed_form_and_simulation():
    from scipy.stats import chi2

    assert _white_noise_quantile("mean", 10.0, 16, 3) == pytest.approx(math.sqrt(chi2.ppf(0.1, 48) / 48))
    # an independent simulation of the decorrelated tile: 3 channels x 16 coefficients of N(0, 1)
    rng = np.random.default_rng(99)
    lam = []
    for _ in range(20000):
        z = rng.standard_normal((3, 16))
        lam.append(np.linalg.eigvalsh(z @ z.T / 16)[0])
    assert _white_noise_quantile("decorrelated", 50.0, 16, 3) == pytest.approx(
        math.sqrt(np.percentile(lam, 50)), rel=0.01)


def _textured_scene(seed: int) -> np.ndarray:
    """Three colour bands with i.i.d. noise sigma 2; the left band carries strong luminance texture."""
    rng = np.random.default_rng(seed)
    h, w = 192, 288
    img = np.empty((h, w, 3))
    img[:, :96] = (140.0, 110.0, 80.0)
    img[:, 96:192] = (90.0, 120.0, 150.0)
    img[:, 192:] = (120.0, 140.0, 100.0)
    tex = cv2.GaussianBlur(rng.normal(0, 1, (h, 96)), (0, 0), 0.7)
    img[:, :96] += (25.0 / tex.std()) * tex[:, :, None] * np.array([1.0, 0.9, 0.8])  # the same in every channel
    return img + rng.normal(0, 2.0, img.shape)


def test_decorrelated_floor_ignores_luminance_texture():
    img = noisestat.load_image(np.clip(_textured_scene(0), 0, 255))
    seg = segment(img, method="grid", rows=1, cols=3)
    dec = object_features(img, seg, features=("sigma_floor",), floor_mode="decorrelated")["sigma_floor_fg"]
    mean = object_features(img, seg, features=("sigma_floor",), floor_mode="mean")["sigma_floor_fg"]
    # under strong texture the smallest eigenvalue is that of the 2-D noise left across the
    # texture's colour direction, a little larger than the smallest of three: up to ~11 % high
    assert dec == pytest.approx([2.0] * 3, rel=0.15)
    assert mean[0] > 2.5 * mean[1]  # the channel mean reads the texture as noise (5.7 against 2.0)


def test_textured_object_is_not_flagged_but_a_noisy_one_is():
    img = _textured_scene(1)
    rng = np.random.default_rng(2)
    img[:, 192:] += rng.normal(0, 8.0, (192, 96, 3))  # the "spliced" band: extra noise
    img = np.clip(img, 0, 255)
    auto = objects_localizer(img, segmenter="grid", n_objects=9)
    assert auto.extras["floor"]["mode"] == "decorrelated"
    band = np.zeros(img.shape[:2], bool)
    band[:, 192:] = True
    assert np.array_equal(auto.mask, band)
    mean = objects_localizer(img, segmenter="grid", n_objects=9, floor_mode="mean")
    assert mean.mask[:, :96].all()  # with the channel mean, the textured band is flagged too


def test_jpeg_colour_image_uses_the_channel_mean():
    from noisestat.synth import _jpeg

    img = _jpeg(np.rint(np.clip(_textured_scene(3), 0, 255)).astype(np.uint8), 90)
    loc = objects_localizer(img, segmenter="grid", n_objects=9)
    assert loc.extras["floor"]["mode"] == "mean"
    assert loc.extras["floor"]["channel_independence"] < 0.2


def test_floor_mode_validation():
    with pytest.raises(ValueError, match="floor_mode"):
        objects_localizer(np.zeros((64, 64, 3)), floor_mode="chroma")
    gray = np.random.default_rng(0).normal(120, 4, (96, 96))
    with pytest.raises(ValueError, match="3-channel"):
        objects_localizer(gray, segmenter="grid", floor_mode="decorrelated")


def test_sigma_r_feature_matches_naive(rng):
    gray = rng.normal(100, 5, (64, 96)).astype(np.float32)
    img = noisestat.load_image(gray)
    seg = segment(img, method="grid", rows=2, cols=2)
    f = object_features(img, seg, features=("sigma_r",), min_pixels=16)
    r = gray - cv2.medianBlur(gray, 3)
    sm = cv2.GaussianBlur(gray, (0, 0), 2.0)
    gm = np.hypot(cv2.Sobel(sm, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(sm, cv2.CV_32F, 0, 1, ksize=3))
    w = gm <= np.percentile(gm, 50)
    for i in range(seg.n_objects):
        m = (seg.labels == i + 1) & w
        assert f["sigma_r_fg"][i] == pytest.approx(np.sqrt(np.mean(r[m].astype(np.float64) ** 2)), rel=1e-5)


def test_known_noise_floor_is_recovered():
    # flat gray + Gaussian noise: the 10th percentile of 8x8 tile RMS sits a little below
    # sigma * sqrt(E r^2)/sigma; check the ratio between two regions instead of an absolute value
    rng = np.random.default_rng(3)
    img = np.full((128, 256), 120.0) + rng.normal(0, 2.0, (128, 256))
    img[:, 128:] += rng.normal(0, 6.0, (128, 128))
    seg = segment(img, method="grid", rows=1, cols=2)
    f = object_features(noisestat.load_image(img), seg, features=("sigma_floor",))
    ratio = f["sigma_floor_fg"][1] / f["sigma_floor_fg"][0]
    assert ratio == pytest.approx(np.sqrt(2.0**2 + 6.0**2) / 2.0, rel=0.12)


def test_noisier_splice_is_found_on_natural_images():
    aucs, f1s = [], []
    for host, donor in (("chelsea", "rocket"), ("astronaut", "coffee")):
        for seed in (0, 1):
            sp = _splice(host, donor, 8.0, seed)
            loc = objects_localizer(sp.image)
            m = evaluate_map(loc.heatmap.values, sp.mask)
            aucs.append(m.auc)
            f1s.append(m.f1_best)
    assert np.mean(aucs) > 0.8 and np.mean(f1s) > 0.6


def _synthetic_benchmark():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "synthetic_objects.py"
    spec = importlib.util.spec_from_file_location("synthetic_objects", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("sigma", [5.0, 8.0])
def test_mask_f1_bar_on_held_out_synthetic_splices(sigma):
    # the bar: mask F1 >= 0.8 at sigma >= 5, on the benchmark's hosts and noise model
    # but seeds 3..5 (the method was developed on seeds 0..2): 4 hosts x 3 seeds, the
    # localizer's own mask (no threshold chosen on the truth)
    from noisestat.metrics import confusion

    mod = _synthetic_benchmark()
    f1 = [confusion(objects_localizer(sp.image).mask, sp.mask).f1
          for _, _, sp in mod.cases(mod.DEFAULT_HOSTS.split(","), range(3, 6), sigma, 2.0, 0.12)]
    assert len(f1) == 12
    assert np.mean(f1) >= 0.8, np.round(f1, 3)


def test_result_structure_and_determinism():
    sp = _splice("chelsea", "rocket", 8.0, 0)
    a = noisestat.registry.localize(sp.image, method="objects")
    b = noisestat.registry.localize(sp.image, method="objects")
    np.testing.assert_array_equal(a.heatmap.values, b.heatmap.values)
    n = len(a.objects)
    dm = a.extras["dissimilarity"]
    assert dm.shape == (n, n) and a.extras["labels"].shape == sp.mask.shape
    ok = np.isfinite(dm)
    assert np.allclose(dm[ok], dm.T[ok]) and np.all(dm[ok] >= 0)
    assert a.mask.any() and 0 <= a.score <= 1
    sel = [o for o in a.objects if o.selected]
    assert all(o.score >= 0.5 for o in sel)
    top = objects_localizer(sp.image, select="top")
    assert sum(o.selected for o in top.objects) == 1
    paper = objects_localizer(sp.image, mode="paper")
    assert sum(o.selected for o in paper.objects) == 1
    assert paper.params["features"] == "sigma_p,sigma_r"
    assert paper.extras["chosen"] in paper.extras["pair"]


def test_bad_inputs():
    with pytest.raises(ValueError, match="smaller"):
        objects_localizer(np.zeros((8, 8)))
    with pytest.raises(ValueError, match="NaN"):
        objects_localizer(np.full((64, 64), np.nan))
    flat = objects_localizer(np.full((64, 64), 90.0))
    assert not flat.applicable and math.isnan(flat.score) and not flat.mask.any()
    img = np.random.default_rng(0).normal(120, 3, (64, 64))
    with pytest.raises(ValueError, match="mode"):
        objects_localizer(img, mode="nope")
    with pytest.raises(ValueError, match="features"):
        objects_localizer(img, features="sigma_x")
    with pytest.raises(ValueError, match="z_scale"):
        objects_localizer(img, z_scale=0)
    with pytest.raises(TypeError, match="brightness_correction"):
        objects_localizer(img, brightness_correction="yes")


def test_ela_feature_needs_jpeg(tmp_path):
    sp = _splice("chelsea", "rocket", 0.0, 0)
    with pytest.raises(ValueError, match="JPEG"):
        objects_localizer(sp.image, features="sigma_floor,ela")
    path = tmp_path / "s.jpg"
    cv2.imwrite(str(path), np.ascontiguousarray(sp.image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    loc = objects_localizer(noisestat.load_image(path), features="sigma_floor,ela")
    assert loc.applicable and "ela_fg" in loc.objects[0].features


def test_synthetic_benchmark_script(capsys):
    """benchmarks/synthetic_objects.py: the oracle F1 and one small run of the table."""
    mod = _synthetic_benchmark()
    truth = np.zeros((8, 8), bool)
    truth[:4] = True
    labels = np.ones((8, 8), np.int32)
    labels[:4, :4] = 2
    labels[:4, 4:] = 3
    assert mod.oracle_f1(labels, truth) == pytest.approx(1.0)
    labels[:3, 4:] = 1  # object 1 (3/4 pristine) stays out; object 3 loses 3 of its 4 rows
    assert mod.oracle_f1(labels, truth) == pytest.approx(2 * 20 / (2 * 20 + 0 + 12))
    assert mod.main(["--methods", "objects", "--hosts", "chelsea,rocket", "--sigmas", "8", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    row = [ln for ln in out.splitlines() if ln.startswith("objects")]
    assert len(row) == 1 and row[0].split()[1:3] == ["8", "2"]


def _jpeg_file(tmp_path, name, img, quality):
    from PIL import Image

    path = tmp_path / name
    Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)).save(path, format="JPEG", quality=quality)
    return path


def test_auto_features_use_the_double_jpeg_trace(tmp_path):
    from PIL import Image

    from noisestat.metrics import confusion

    rng = np.random.default_rng(4)
    host = np.clip(sample_image("chelsea") + rng.normal(0, 1.0, (300, 451, 3)), 0, 255)
    first = np.asarray(Image.open(_jpeg_file(tmp_path, "first.jpg", host, 60))).astype(np.float64)
    sp = make_splice(first, sample_image("coffee"), region="blob", region_fraction=0.12, seed=3)
    path = _jpeg_file(tmp_path, "double.jpg", sp.image, 90)
    loc = objects_localizer(path)
    assert loc.params["features"] == "adq"
    assert "adq_fg" in loc.objects[0].features
    assert evaluate_map(loc.heatmap.values, sp.mask).f1_best > 0.8
    assert confusion(loc.mask, sp.mask).f1 > 0.7
    # a single compression has no image-level trace: the noise floor is used (the adq map
    # still applies to the JPEG file, so asking for it explicitly is honoured)
    single = _jpeg_file(tmp_path, "single.jpg", host, 85)
    assert objects_localizer(single).params["features"] == "sigma_floor"
    assert objects_localizer(single, features="adq").params["features"] == "adq"
    # arrays are not known to be JPEG: the noise floor, and asking for adq is refused
    arr = np.asarray(Image.open(path))
    assert objects_localizer(arr).params["features"] == "sigma_floor"
    with pytest.raises(ValueError, match="'adq' does not apply"):
        objects_localizer(arr, features="adq")


def test_adq_feature_matches_region_means(tmp_path):
    from PIL import Image

    from noisestat.jpeg.adq import adq_map

    rng = np.random.default_rng(5)
    host = np.clip(sample_image("astronaut")[:256, :320] + rng.normal(0, 1.0, (256, 320, 3)), 0, 255)
    first = np.asarray(Image.open(_jpeg_file(tmp_path, "a.jpg", host, 55))).astype(np.float64)
    path = _jpeg_file(tmp_path, "b.jpg", first, 85)
    img = noisestat.load_image(path)
    seg = segment(img, method="grid", rows=2, cols=2)
    f = object_features(img, seg, features=("adq",), min_pixels=16)
    p = adq_map(img).values.astype(np.float64)
    for i in range(4):
        m = seg.labels == i + 1
        r0, c0, r1, c1 = seg.boxes[i]
        box = np.zeros_like(m)
        box[r0:r1, c0:c1] = True
        assert f["adq_fg"][i] == pytest.approx(max(p[m].mean(), 0.01), rel=1e-9)
        bg = box & ~m
        if bg.sum() >= 16:
            assert f["adq_bg"][i] == pytest.approx(max(p[bg].mean(), 0.01), rel=1e-9)
    assert f["adq_all"][0] == pytest.approx(max(p.mean(), 0.01))


def _slow_noise_curve(logs, bright, area):
    """noise_curve_stats from its definition: Theil-Sen slope (median of pairwise slopes, flat below 6
    objects), residuals about their area-weighted median, 1.4826 x weighted median of |residual|."""
    n = logs.size
    slope = 0.0
    if n >= 6:
        slope = float(np.median([(logs[j] - logs[i]) / (bright[j] - bright[i])
                                 for i in range(n) for j in range(i + 1, n) if bright[j] != bright[i]]))

    def wmedian(v, w):  # first value whose cumulative weight reaches half of the total
        o = sorted(range(n), key=lambda k: v[k])
        c = 0.0
        for k in o:
            c += w[k]
            if c >= 0.5 * sum(w):
                return v[k]

    x = logs - slope * (bright - np.median(bright))
    e = x - wmedian(x, area)
    return float(np.max(np.abs(e))), float(1.4826 * wmedian(np.abs(e), area))


def test_noise_curve_stats_match_the_slow_reference_and_find_the_object_off_the_curve():
    from noisestat.localizers.objects import CURVE_MIN_OBJECTS, noise_curve_stats

    rng = np.random.default_rng(3)
    n = 12
    bright = rng.uniform(30, 220, n)
    logs = 0.5 + 0.006 * bright + rng.normal(0, 0.03, n)  # one camera: log noise rises with brightness
    logs[4] += 0.8  # a pasted object, 2.2x noisier than the trend says
    area = rng.integers(300, 5000, n).astype(float)
    valid = np.ones(n, bool)
    f = {"sigma_floor_fg": np.exp(logs), "brightness": bright, "area": area}
    got = noise_curve_stats(f, valid)
    res, spread = _slow_noise_curve(logs, bright, area)
    assert got["curve_residual"] == pytest.approx(res, rel=1e-9)
    assert got["curve_spread"] == pytest.approx(spread, rel=1e-9)
    # known truth: the trend is removed, the pasted object stands out by about its offset
    assert got["curve_residual"] == pytest.approx(0.8, abs=0.1) and got["curve_spread"] < 0.1
    # without the brightness trend, the brightest pristine objects would stray as far
    naive = np.abs(logs - np.median(logs))
    naive[4] = 0.0
    assert naive.max() > 0.3
    # invalid objects are left out; too few valid ones give nothing
    valid[4] = False
    assert noise_curve_stats(f, valid)["curve_residual"] < 0.15
    few = np.zeros(n, bool)
    few[: CURVE_MIN_OBJECTS - 1] = True
    assert noise_curve_stats(f, few) == {}


def test_objects_reports_its_noise_curve_statistics_on_the_noise_path():
    sp = _splice("astronaut", "coffee", 6.0, 0)
    loc = objects_localizer(sp.image)
    assert loc.params["features"] == "sigma_floor"
    assert loc.params["curve_residual"] >= loc.params["curve_spread"] / 1.4826 >= 0.0
    assert "curve_residual" not in objects_localizer(sp.image, mode="paper").params


def test_theil_sen_slope_is_scipys_and_objects_never_imports_scipy_stats():
    import subprocess
    import sys

    from scipy.stats import theilslopes

    from noisestat.localizers.objects import _theil_sen_slope

    rng = np.random.default_rng(4)
    for n in (2, 6, 17, 40):
        x = np.round(rng.normal(size=n), 1)  # ties in x: those pairs are left out
        y = 0.7 * x + rng.standard_t(2, size=n)
        assert _theil_sen_slope(y, x) == theilslopes(y, x).slope
    # a fresh process: objects (and fusion, its first step) must not pay scipy.stats' import (~0.5 s)
    code = ("import sys, noisestat\n"
            "from noisestat.synth import sample_image\n"
            "loc = noisestat.localize(sample_image('astronaut')[:256, :256], method='objects',\n"
            "                         brightness_correction=True)\n"
            "print('curve_residual' in loc.params, 'scipy.stats' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"], out.stdout + out.stderr
