"""The batched symmetric eigenvalue solver against LAPACK (numpy) and known spectra."""

import numpy as np
import pytest

from noisestat.blocks.eigen import LANES, eigvalsh_batch, eigvalsh_lanes, tridiagonal_eigenvalues


def _close(got, want):
    scale = max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12 * scale)


def _structured(rng, n):
    """Matrices that stress the solver: known, repeated, split, rank-deficient, wide dynamic range."""
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    out = [np.zeros((n, n)), np.eye(n) * 3.0, np.diag(rng.normal(size=n)),
           np.outer(np.arange(n), np.arange(n)) * 1.0,
           q @ np.diag(np.logspace(-8, 8, n)) @ q.T,  # condition 1e16
           q @ np.diag(np.repeat([1.0, 2.0], (n + 1) // 2)[:n]) @ q.T]  # two repeated eigenvalues
    if n >= 4:
        b = np.zeros((n, n))  # block diagonal: an exact split in the middle
        b[:2, :2] = [[2.0, 1.0], [1.0, 2.0]]
        b[2:, 2:] = np.eye(n - 2) * 5.0
        out.append(b)
    return np.stack(out)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 25, 48])
def test_batch_matches_numpy_on_random_and_structured_matrices(rng, n):
    a = rng.normal(size=(2 * LANES + 5, n, n + 10))
    mats = np.concatenate([a @ a.transpose(0, 2, 1), _structured(rng, n)])
    sym = rng.normal(size=(9, n, n))
    mats = np.concatenate([mats, sym + sym.transpose(0, 2, 1)])  # indefinite too
    got = eigvalsh_batch(mats)
    want = np.linalg.eigvalsh(mats)
    for g, w in zip(got, want, strict=True):
        _close(g, w)
    assert np.all(np.diff(got, axis=1) >= 0)


def test_known_spectra(rng):
    q, _ = np.linalg.qr(rng.normal(size=(10, 10)))
    lam = np.array([0.5, 0.5, 1.0, 2.0, 3.0, 3.0, 3.0, 7.0, 11.0, 1e4])
    got = eigvalsh_batch((q @ np.diag(lam) @ q.T)[None])[0]
    np.testing.assert_allclose(got, lam, rtol=1e-12, atol=1e-11)


def test_only_the_lower_triangle_is_read(rng):
    a = rng.normal(size=(3, 6, 6))
    s = a + a.transpose(0, 2, 1)
    junk = np.tril(s) + np.triu(rng.normal(size=(3, 6, 6)), 1)
    np.testing.assert_array_equal(eigvalsh_batch(junk), eigvalsh_batch(s))


def test_a_lane_does_not_depend_on_its_neighbours(rng):
    a = rng.normal(size=(LANES, 12, 20))
    mats = a @ a.transpose(0, 2, 1)
    alone = np.stack([eigvalsh_batch(m[None])[0] for m in mats])
    np.testing.assert_array_equal(eigvalsh_batch(mats), alone)
    lanes = np.ascontiguousarray(mats[:5].transpose(1, 2, 0))
    out = np.empty((5, 12))
    eigvalsh_lanes(lanes, out)  # a lane count other than LANES
    np.testing.assert_array_equal(out, alone[:5])


def test_serial_tridiagonal_solver(rng):
    for n in (1, 2, 5, 30):
        d = rng.normal(size=n)
        e = rng.normal(size=n)
        e[n // 2] = 0.0  # a split
        t = np.diag(d) + np.diag(e[:-1], 1) + np.diag(e[:-1], -1)
        dd, ee = d.copy(), e.copy()
        assert tridiagonal_eigenvalues(dd, ee)
        _close(dd, np.linalg.eigvalsh(t))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="shape"):
        eigvalsh_batch(np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        eigvalsh_batch(np.full((1, 2, 2), np.nan))
