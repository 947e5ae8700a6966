"""noisestat._numba.run_tasks: independent steps of one method, in order, concurrent where safe."""

import threading

import numba
import numpy as np
import pytest

import noisestat
from noisestat import _numba
from noisestat.registry import localize as run_method
from noisestat.synth import make_splice, sample_image


def test_results_come_back_in_task_order_and_errors_propagate():
    assert _numba.run_tasks([lambda k=k: k * k for k in range(7)]) == [k * k for k in range(7)]
    assert _numba.run_tasks([]) == []

    def boom():
        raise ValueError("task 1 failed")

    with pytest.raises(ValueError, match="task 1 failed"):
        _numba.run_tasks([lambda: 0, boom, lambda: 2])


def test_tasks_run_on_several_threads_only_on_a_threadsafe_layer(monkeypatch):
    def names():
        return set(_numba.run_tasks([lambda: threading.current_thread().name for _ in range(8)]))

    monkeypatch.setattr(_numba, "_threading_layer", lambda: "workqueue")  # not threadsafe
    assert _numba.task_threads() == 1 and names() == {threading.current_thread().name}
    monkeypatch.setattr(_numba, "_threading_layer", lambda: "omp")
    if numba.config.NUMBA_NUM_THREADS > 1:
        assert _numba.task_threads() == numba.get_num_threads()


def test_a_task_keeps_the_callers_numba_thread_count(monkeypatch):
    monkeypatch.setattr(_numba, "_threading_layer", lambda: "omp")
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("one numba thread: nothing runs concurrently")
    old = numba.get_num_threads()
    try:
        numba.set_num_threads(2)
        assert set(_numba.run_tasks([numba.get_num_threads] * 4)) == {2}
    finally:
        numba.set_num_threads(old)


@pytest.mark.parametrize("method", ["objects", "fusion"])
def test_the_same_result_with_concurrent_and_sequential_steps(tmp_path, monkeypatch, method):
    import cv2

    sp = make_splice(sample_image("astronaut")[::2, ::2], seed=1, noise_sigma=6.0)
    first = tmp_path / "a.jpg"
    cv2.imwrite(str(first), sp.image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 70])
    path = tmp_path / "b.jpg"
    cv2.imwrite(str(path), cv2.imread(str(first)), [cv2.IMWRITE_JPEG_QUALITY, 90])  # double JPEG: adq runs
    img = noisestat.load_image(path)
    monkeypatch.setattr(_numba, "_threading_layer", lambda: "workqueue")
    seq = run_method(img, method=method)
    monkeypatch.setattr(_numba, "_threading_layer", lambda: "omp")
    par = run_method(img, method=method)
    np.testing.assert_array_equal(seq.heatmap.values, par.heatmap.values)
    np.testing.assert_array_equal(seq.mask, par.mask)
    assert seq.score == par.score or (np.isnan(seq.score) and np.isnan(par.score))
    assert seq.params == par.params
