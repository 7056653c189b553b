"""emulator.analysis.metrics: each metric against a straightforward numpy reference and known
values (property tests), the degenerate cases as documented, and the errors (shapes, NaN,
non-numbers). Numpy only: these run in the fast suite, and the module must not pull in
TensorFlow."""
from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from emulator.analysis import (MetricsError, MetricsShapeError, NonFiniteValueError,
                               cosine_similarity, max_abs_error, mean_error, rmse, snr_db,
                               top1_agreement)
from emulator.errors import EmulatorError

# values whose squares and sums stay far from float64 overflow and underflow (the documented
# domain): zero, or a magnitude from 1e-6 to 1e6
FINITE = st.one_of(st.just(0.0), st.floats(1e-6, 1e6), st.floats(-1e6, -1e-6))
SHAPES = hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=6)
DTYPES = st.sampled_from([np.float64, np.float32])


@st.composite
def pairs(draw, shapes=SHAPES):
    """(ref, test) of one shape and one float dtype."""
    shape = draw(shapes)
    dtype = draw(DTYPES)
    ref = draw(hnp.arrays(dtype, shape, elements=FINITE))
    test = draw(hnp.arrays(dtype, shape, elements=FINITE))
    return ref, test


def _f64(*arrays):
    return [np.asarray(a, np.float64) for a in arrays]


# --- against numpy references ----------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(pairs())
def test_snr_matches_the_formula(pair):
    ref, test = _f64(*pair)
    noise, signal = np.sum((ref - test) ** 2), np.sum(ref ** 2)
    got = snr_db(*pair)
    if noise == 0:
        assert got == math.inf
    elif signal == 0:
        assert got == -math.inf
    else:
        assert got == pytest.approx(10 * math.log10(signal / noise), rel=1e-12, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(pairs())
def test_cosine_matches_the_formula_and_stays_in_range(pair):
    a, b = (x.ravel() for x in _f64(*pair))
    na, nb = math.sqrt(np.sum(a * a)), math.sqrt(np.sum(b * b))
    got = cosine_similarity(*pair)
    if na == 0 and nb == 0:
        assert got == 1.0
    elif na == 0 or nb == 0:
        assert got == 0.0
    else:
        assert got == pytest.approx(np.sum(a * b) / (na * nb), rel=1e-9, abs=1e-12)
    assert -1 - 1e-12 <= got <= 1 + 1e-12
    assert got == pytest.approx(cosine_similarity(pair[1], pair[0]), rel=1e-12, abs=1e-15)


@settings(max_examples=300, deadline=None)
@given(pairs())
def test_error_metrics_match_their_formulas_and_order(pair):
    ref, test = _f64(*pair)
    e = test - ref
    bias, worst, root = mean_error(*pair), max_abs_error(*pair), rmse(*pair)
    assert bias == pytest.approx(float(np.sum(e)) / e.size, rel=1e-9, abs=1e-9)
    assert worst == float(max(abs(float(v)) for v in e.ravel()))
    assert root == pytest.approx(math.sqrt(float(np.sum(e * e)) / e.size), rel=1e-9, abs=1e-12)
    # |mean| <= rms <= max, and the bias changes sign with the roles
    assert abs(bias) <= root * (1 + 1e-9) + 1e-12
    assert root <= worst * (1 + 1e-9) + 1e-12
    assert mean_error(pair[1], pair[0]) == pytest.approx(-bias, rel=1e-12, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(pairs(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6)))
def test_top1_agreement_matches_a_loop(pair):
    ref, test = pair
    r = ref.reshape(-1, ref.shape[-1])
    t = test.reshape(-1, test.shape[-1])
    same = [int(np.argmax(r[i])) == int(np.argmax(t[i])) for i in range(len(r))]
    assert top1_agreement(ref, test) == pytest.approx(sum(same) / len(same))
    assert top1_agreement(ref, ref) == 1.0


# --- known values ----------------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.floats(0.01, 100.0), st.floats(0.001, 100.0), st.integers(1, 50))
def test_snr_of_a_signal_plus_noise_of_known_power(amplitude, noise, half):
    """x = a everywhere, e = +-b alternately: signal power a^2, noise power b^2, so
    SNR = 20 log10(a / b); the bias of a balanced noise is 0, its rms and max are b."""
    x = np.full(2 * half, amplitude)
    e = np.tile([noise, -noise], half)
    assert snr_db(x, x + e) == pytest.approx(20 * math.log10(amplitude / noise), abs=1e-9)
    assert mean_error(x, x + e) == pytest.approx(0.0, abs=1e-9 * (amplitude + noise))
    assert rmse(x, x + e) == pytest.approx(noise, rel=1e-9)
    assert max_abs_error(x, x + e) == pytest.approx(noise, rel=1e-12)


def test_known_values():
    ref = np.array([[3.0, 4.0]])
    assert snr_db(ref, ref * 1.1) == pytest.approx(20.0)  # the error is a tenth of the signal
    assert snr_db(ref, ref * 0.9) == pytest.approx(20.0)
    assert snr_db(ref, np.array([[3.0, 4.5]])) == pytest.approx(10 * math.log10(25 / 0.25))
    assert cosine_similarity(ref, 2 * ref) == pytest.approx(1.0)
    assert cosine_similarity(ref, -ref) == pytest.approx(-1.0)
    assert cosine_similarity(ref, np.array([[4.0, -3.0]])) == pytest.approx(0.0)
    assert mean_error(ref, ref + 0.25) == pytest.approx(0.25)
    assert mean_error([1.0, 2.0], [0.0, 0.0]) == pytest.approx(-1.5)
    assert max_abs_error([1.0, -2.0], [1.5, 1.0]) == 3.0
    assert rmse([0.0, 0.0], [3.0, 4.0]) == pytest.approx(math.sqrt(12.5))
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
    flipped = np.array([[0.2, 0.8], [0.1, 0.9], [0.4, 0.6], [0.9, 0.1]])
    assert top1_agreement(scores, flipped) == 0.75
    assert top1_agreement([0.2, 0.5, 0.3], [0.1, 0.8, 0.1]) == 1.0  # a 1-D array: one sample
    assert top1_agreement([[1.0, 1.0]], [[0.0, 1.0]]) == 0.0  # a tie goes to the first class


@settings(max_examples=100, deadline=None)
@given(pairs(), st.floats(1e-3, 1e3))
def test_snr_and_cosine_do_not_depend_on_scale(pair, k):
    ref, test = _f64(*pair)
    assume(np.sum((ref - test) ** 2) > 0 and np.sum(ref ** 2) > 0)
    assert snr_db(k * ref, k * test) == pytest.approx(snr_db(ref, test), abs=1e-6)
    assume(np.linalg.norm(test) > 0)
    assert cosine_similarity(k * ref, k * test) == pytest.approx(cosine_similarity(ref, test),
                                                                 abs=1e-9)


def test_dtypes_give_the_same_result_as_float64():
    rng = np.random.default_rng(0)
    ref = rng.integers(0, 255, (4, 10)).astype(np.uint8)
    test = np.clip(ref.astype(np.int16) + rng.integers(-3, 4, ref.shape), 0, 255).astype(np.uint8)
    f64 = [a.astype(np.float64) for a in (ref, test)]
    for metric in (snr_db, cosine_similarity, mean_error, max_abs_error, rmse, top1_agreement):
        assert metric(ref, test) == metric(*f64), metric.__name__  # no uint8 wrap-around
        assert isinstance(metric(ref, test), float)
    assert snr_db([[3, 4]], [[3, 4]]) == math.inf  # lists too
    assert mean_error(np.array([True, False]), np.array([True, True])) == 0.5


# --- degenerate cases, as documented ----------------------------------------------------------

def test_identical_zero_and_empty_tensors():
    x = np.array([1.0, -2.0, 3.0])
    zero = np.zeros(3)
    assert snr_db(x, x) == math.inf  # no noise
    assert snr_db(zero, zero) == math.inf  # no noise either, whatever the signal
    assert snr_db(zero, x) == -math.inf  # noise, no signal
    assert snr_db(x, zero) == pytest.approx(0.0)  # noise as strong as the signal
    assert cosine_similarity(zero, zero) == 1.0
    assert cosine_similarity(zero, x) == cosine_similarity(x, zero) == 0.0
    for metric in (mean_error, max_abs_error, rmse):
        assert metric(x, x) == 0.0 and metric(zero, zero) == 0.0
    empty = np.zeros((0, 4))
    assert snr_db(empty, empty) == math.inf
    assert cosine_similarity(empty, empty) == 1.0
    assert mean_error(empty, empty) == max_abs_error(empty, empty) == rmse(empty, empty) == 0.0
    assert math.isnan(top1_agreement(empty, empty))  # no samples


def test_a_scalar_is_a_tensor_of_one_value():
    assert snr_db(2.0, 2.0) == math.inf
    assert snr_db(2.0, 1.0) == pytest.approx(10 * math.log10(4.0))
    assert max_abs_error(2.0, -1.0) == 3.0


# --- errors -----------------------------------------------------------------------------------

ALL = (snr_db, cosine_similarity, mean_error, max_abs_error, rmse, top1_agreement)


@pytest.mark.parametrize("metric", ALL)
def test_shapes_that_differ_are_an_error_naming_both(metric):
    with pytest.raises(MetricsShapeError, match=r"ref has shape \(2, 3\) and test has shape "
                                                r"\(3, 2\)"):
        metric(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(MetricsShapeError, match=r"\(1, 2\).*\(2,\)"):
        metric(np.ones((1, 2)), np.ones(2))  # never broadcast


@pytest.mark.parametrize("metric", ALL)
@pytest.mark.parametrize("bad, word", [(math.nan, "NaN"), (math.inf, "infinite"),
                                       (-math.inf, "infinite")])
def test_nan_and_infinite_values_are_an_error_naming_the_argument(metric, bad, word):
    clean = np.ones((2, 3))
    dirty = clean.copy()
    dirty[1, 2] = bad
    with pytest.raises(NonFiniteValueError, match=rf"test holds 1 non-finite value\(s\) \({word} "
                                                  rf"among them\), the first at index \(1, 2\)"):
        metric(clean, dirty)
    with pytest.raises(NonFiniteValueError, match="^ref holds"):
        metric(dirty, clean)


@pytest.mark.parametrize("metric", ALL)
def test_values_that_are_not_real_numbers_are_an_error(metric):
    for junk, word in ((["a", "b"], "dtype <U1"), ([1 + 2j, 3j], "complex"),
                       ([[1.0], [2.0, 3.0]], "not an array of numbers"),
                       (np.array([object(), 1], dtype=object), "not an array of real numbers")):
        with pytest.raises(MetricsError, match=word):
            metric(junk, junk)


def test_top1_needs_a_class_axis():
    with pytest.raises(MetricsShapeError, match="classes on the last axis"):
        top1_agreement(1.0, 1.0)
    with pytest.raises(MetricsShapeError, match=r"shape \(3, 0\)"):
        top1_agreement(np.zeros((3, 0)), np.zeros((3, 0)))


def test_error_classes_belong_to_the_emulator_and_are_value_errors():
    for cls in (MetricsError, MetricsShapeError, NonFiniteValueError):
        assert issubclass(cls, EmulatorError) and issubclass(cls, ValueError)
    with pytest.raises(ValueError):  # an existing `except ValueError` still catches them
        snr_db([1.0], [1.0, 2.0])


def test_the_metrics_import_no_tensorflow():
    code = ("import sys; import emulator.analysis, emulator.analysis.metrics; "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
