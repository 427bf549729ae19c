"""Property tests: the numpy primitives against a plain-Python reading of docs/numerics.md."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwgen.errors import PlanError
from hwgen.fixed import Fixed, quantize_real, requantize, saturate, shift_round


def py_range(bits, signed):
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)


def py_shift(acc: int, s: int) -> int:
    if s > 0:
        return (acc + 2 ** (s - 1)) // 2 ** s  # floor division == arithmetic shift
    return acc * 2 ** (-s)


def py_requant(acc, acc_frac, bits, frac, signed, act):
    y = py_shift(acc, acc_frac - frac)
    if act in ("relu", "relu6"):
        y = max(y, 0)
    if act == "relu6":
        y = min(y, int(6 * 2 ** frac) if frac >= 0 else 6 // 2 ** (-frac))
    lo, hi = py_range(bits, signed)
    return min(max(y, lo), hi)


formats = st.builds(lambda b, f, s: Fixed(b, f, s) if (b >= 2 or not s) else Fixed(2, f, s),
                    st.integers(1, 32), st.integers(-12, 40), st.booleans())


@settings(max_examples=300, deadline=None)
@given(acc=st.lists(st.integers(-(2 ** 40), 2 ** 40), min_size=1, max_size=20), acc_frac=st.integers(-8, 40),
       fmt=formats, act=st.sampled_from(["none", "relu", "relu6"]))
def test_requantize_matches_python(acc, acc_frac, fmt, act):
    if fmt.frac - acc_frac + 41 > 62:  # left shifts must stay inside int64, as the plan guarantees
        return
    got, sat = requantize(np.array(acc, dtype=np.int64), acc_frac, fmt, act)
    want = [py_requant(a, acc_frac, fmt.bits, fmt.frac, fmt.signed, act) for a in acc]
    assert got.tolist() == want
    unclipped = [py_requant(a, acc_frac, 64, fmt.frac, True, act) for a in acc]
    lo, hi = py_range(fmt.bits, fmt.signed)
    assert sat == sum(1 for u in unclipped if not lo <= u <= hi)


@settings(max_examples=300, deadline=None)
@given(acc=st.integers(-(2 ** 46), 2 ** 46), s=st.integers(-15, 50))
def test_shift_round_is_round_half_up(acc, s):
    assert int(shift_round(np.array([acc]), s)[0]) == py_shift(acc, s)
    if s > 0:  # round half up: exactly halfway rounds toward +inf
        assert int(shift_round(np.array([3 * 2 ** (s - 1)]), s)[0]) == 2


def test_shift_round_per_channel_mixed_signs():
    acc = np.array([[5, 5, 5], [-5, -5, -5]])
    got = shift_round(acc, np.array([1, 0, -2]))
    assert got.tolist() == [[3, 5, 20], [-2, -5, -20]]


@settings(max_examples=300, deadline=None)
@given(x=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20), fmt=formats)
def test_quantize_real_half_even_and_saturate(x, fmt):
    got, sat = quantize_real(np.array(x), fmt)
    lo, hi = py_range(fmt.bits, fmt.signed)
    want = [min(max(round(v * 2.0 ** fmt.frac), lo), hi) for v in x]  # Python round() is half to even
    assert got.tolist() == want
    assert sat == sum(1 for v in x if not lo <= round(v * 2.0 ** fmt.frac) <= hi)


@given(v=st.lists(st.integers(-(2 ** 40), 2 ** 40), max_size=20), fmt=formats)
def test_saturate_counts(v, fmt):
    got, n = saturate(np.array(v, dtype=np.int64), fmt)
    lo, hi = py_range(fmt.bits, fmt.signed)
    assert got.tolist() == [min(max(a, lo), hi) for a in v]
    assert n == sum(1 for a in v if a < lo or a > hi)


def test_round_half_up_and_half_even_examples():
    assert shift_round(np.array([1, 3, -1, -3]), 1).tolist() == [1, 2, 0, -1]  # +0.5->1, 1.5->2, -0.5->0, -1.5->-1
    assert quantize_real(np.array([0.5, 1.5, 2.5, -0.5]), Fixed(8, 0))[0].tolist() == [0, 2, 2, 0]


@pytest.mark.parametrize("bits, signed, msg", [
    (0, True, "bits must be an integer in 1..32, got 0"),
    (33, False, "bits must be an integer in 1..32, got 33"),
    (1, True, "a signed format needs at least 2 bits"),
])
def test_impossible_formats_rejected(bits, signed, msg):
    with pytest.raises(PlanError, match=msg):
        Fixed(bits, 0, signed)
