"""Properties and worked examples of the fixed-point references in model/."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from sorbet_hw.model.bspn import bspn, group_shift
from sorbet_hw.model.if_layer import fire, if_layer, initial_membrane, quantize_activation
from sorbet_hw.model.params import ParameterError
from sorbet_hw.model.ptsoftmax import ptsoftmax, ptsoftmax_of_ceilings, sum_power

rows = st.integers(1, 40).flatmap(
    lambda n: st.lists(st.integers(-2048, 2047), min_size=n, max_size=n))


# ---------------------------------------------------------------- PTsoftmax
def test_ptsoftmax_worked_example():
    # Scores 3.0, 2.25, 0.5, -4 (2 fractional bits): ceilings 3, 3, 1, -4; max 3;
    # numerators 1, 1, 1/4, 2^-7; sum 2.2578 -> rounded up to 4 -> k = 2.
    p = ptsoftmax([12, 9, 2, -16], frac_bits=2, out_frac_bits=8)
    assert p.tolist() == [64, 64, 16, 0]          # 1/4, 1/4, 1/16, 2^-9 underflows
    # Nearest rounding: 2.2578 lies below 3 = 1.5 * 2 -> 2 -> k = 1.
    assert ptsoftmax([12, 9, 2, -16], frac_bits=2, out_frac_bits=8,
                     rounding="nearest").tolist() == [128, 128, 32, 1]


def _online_row(ceilings, prec, rounding):
    """PTsoftmax of one row by the plain loop of its definition (Python integers)."""
    one = 1 << prec
    running, total = ceilings[0], 0
    for c in ceilings:
        if c > running:
            total, running = (total >> (c - running)) + one, c
        else:
            total += one >> (running - c) if running - c <= prec else 0
    k = int(sum_power(np.array([total]), prec, rounding)[0])
    return [one >> (running - c + k) if running - c + k <= prec else 0 for c in ceilings]


@settings(max_examples=300, deadline=None)
@given(rows, st.integers(0, 4), st.integers(1, 10), st.sampled_from(["up", "nearest"]))
def test_ptsoftmax_is_its_one_pass_definition(row, frac, prec, rounding):
    ceil = (-((-np.asarray(row)) >> frac)).tolist()
    p = ptsoftmax(row, frac_bits=frac, out_frac_bits=prec, rounding=rounding)
    assert p.tolist() == _online_row(ceil, prec, rounding)


@settings(max_examples=300, deadline=None)
@given(rows, st.integers(1, 10))
def test_online_sum_is_the_two_pass_sum_plus_what_truncation_keeps(row, prec):
    # The truncating shifts keep the integer part of the numerators that were within P of
    # the running maximum on arrival and are not within P of the final one; when none
    # was, the sum (so every probability) is the two-pass one.
    from fractions import Fraction
    c = np.asarray(row)
    running = np.maximum.accumulate(c)
    M = int(c.max())
    exact = sum(1 << (prec - (M - x)) for x in c.tolist() if M - x <= prec)
    kept = sum(Fraction(2) ** (prec - (M - x)) for x, r in zip(c.tolist(), running.tolist())
               if r - x <= prec and M - x > prec)
    def probabilities(total):
        k = int(sum_power(np.array([total]), prec, "up")[0])
        return [(1 << prec) >> (M - x + k) if M - x + k <= prec else 0 for x in c.tolist()]

    p = ptsoftmax(row, frac_bits=0, out_frac_bits=prec).tolist()
    assert p == probabilities(exact + int(kept))
    if kept == 0:
        assert p == probabilities(exact)


def test_ptsoftmax_online_depends_on_order_only_through_vanished_numerators():
    # P = 2: the two zeros arrive within P of the running maximum 0 and leave the sum
    # 2 ones; the rise to 3 puts them 3 below it, past P, and the truncating shift keeps
    # their quarters' sum 1/2 -> 1 + 1/2 > 1 -> k = 1. In the other order they arrive
    # past P and add nothing.
    assert ptsoftmax([0, 0, 3], frac_bits=0, out_frac_bits=2).tolist() == [0, 0, 2]
    assert ptsoftmax([3, 0, 0], frac_bits=0, out_frac_bits=2).tolist() == [4, 0, 0]
    # Within P of the final maximum, order does not matter.
    assert ptsoftmax([0, 1, 2], frac_bits=0, out_frac_bits=2).tolist() == \
        ptsoftmax([2, 1, 0], frac_bits=0, out_frac_bits=2).tolist()[::-1]


def test_ptsoftmax_skips_invalid_keys_and_torch_agrees():
    import torch
    rng = np.random.default_rng(4)
    c = rng.integers(-12, 12, size=(3, 2, 5, 9))
    valid = rng.random((3, 1, 1, 9)) < 0.7
    valid[..., 0] = True
    p = ptsoftmax_of_ceilings(c, 4, "up", valid)
    assert np.all(p[np.broadcast_to(~valid, p.shape)] == 0)
    for b in range(3):       # a masked key is as if it were not there
        keep = valid[b, 0, 0]
        assert np.array_equal(p[b][..., keep], ptsoftmax_of_ceilings(c[b][..., keep], 4, "up"))
    assert np.array_equal(ptsoftmax_of_ceilings(torch.as_tensor(c), 4, "up", torch.as_tensor(valid)).numpy(), p)


def test_sum_power_rounding():
    one = 1 << 4
    sums = np.array([16, 17, 23, 24, 32, 47, 48])  # 1, 1.06, 1.44, 1.5, 2, 2.94, 3
    assert sum_power(sums, 4, "up").tolist() == [0, 1, 1, 1, 1, 2, 2]
    assert sum_power(sums, 4, "nearest").tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert one == 16


@settings(max_examples=300, deadline=None)
@given(rows, st.integers(0, 4), st.integers(1, 12))
def test_ptsoftmax_outputs_are_powers_of_two_summing_at_most_one(row, frac, prec):
    p = ptsoftmax(row, frac_bits=frac, out_frac_bits=prec)
    nonzero = p[p > 0]
    assert np.all((nonzero & (nonzero - 1)) == 0)       # each a power of two
    assert p.sum() <= 1 << prec                           # rounding up: sum <= 1
    if len(row) <= 1 << prec:                            # then k <= prec: the maximum
        assert p.max() > 0                               # never underflows...
    ceil = -((-np.asarray(row)) >> frac)
    assert np.all(p[ceil == ceil.max()] == p.max())      # ...and ties share it


@settings(max_examples=300, deadline=None)
@given(rows, st.integers(0, 4))
def test_ptsoftmax_sum_above_half_without_underflow(row, frac):
    prec = 16
    p = ptsoftmax(row, frac_bits=frac, out_frac_bits=prec)
    ceil = -((-np.asarray(row)) >> frac)
    k = int(np.ceil(np.log2(np.sum(2.0 ** (ceil - ceil.max())))))
    if np.all(ceil.max() - ceil + k <= prec):            # nothing underflows
        assert p.sum() > 1 << (prec - 1)
        assert np.all(p > 0)


@settings(max_examples=200, deadline=None)
@given(rows, st.integers(0, 4))
def test_ptsoftmax_is_shift_invariant_by_whole_units(row, frac):
    row = np.asarray(row)
    shifted = np.clip(row + (3 << frac), -2048, 2047)
    if np.array_equal(shifted - row, np.full_like(row, 3 << frac)):
        assert np.array_equal(ptsoftmax(row, frac_bits=frac), ptsoftmax(shifted, frac_bits=frac))


def test_ptsoftmax_close_to_softmax_base_two():
    rng = np.random.default_rng(0)
    x = rng.integers(-32, 32, size=(200, 16))
    p = ptsoftmax(x, frac_bits=0, out_frac_bits=16) / 65536
    soft = 2.0 ** x / np.sum(2.0 ** x, axis=-1, keepdims=True)
    # Replacing the sum by a power of two at most doubles each probability's denominator
    # (up to the numerators truncated below 2**-16).
    ratio = p[soft > 1e-3] / soft[soft > 1e-3]
    assert ratio.min() > 0.5 - 1e-9 and ratio.max() <= 1.0 + 16 / 65536


# ---------------------------------------------------------------- BSPN
def test_group_shift_is_ceil_log2_of_mean():
    for n in (1, 3, 4, 7, 16):
        for total in range(0, 64 * n):
            mean = total / n
            want = 0 if mean <= 1 else int(np.ceil(np.log2(mean) - 1e-12))
            assert group_shift(total, n, 12) == want, (n, total)


def test_bspn_worked_example():
    # One group of 4: |x| sums to 40, mean 10 -> shift 4; x << 4 >> 4 = x, then gamma/beta.
    y = bspn([12, -8, 4, -16], groups=1, gamma_shift=[0, 1, -1, 0], beta=[0, 0, 0, 3],
             norm_frac_bits=4, out_width=8)
    assert y.tolist() == [12, -16, 2, -13]
    # Saturation of the 8-bit output.
    assert bspn([100, 0, 0, 0], groups=1, gamma_shift=[3, 0, 0, 0], beta=[0] * 4,
                norm_frac_bits=4, out_width=8).tolist()[0] == 127


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda g: st.tuples(
    st.just(g), st.integers(1, 8),
    st.lists(st.integers(-64, 64), min_size=1, max_size=1))),
    st.integers(0, 6), st.data())
def test_bspn_scale_invariance(shape, k, data):
    groups, size, _ = shape
    c = groups * size
    x = np.asarray(data.draw(st.lists(st.integers(-64, 64), min_size=c, max_size=c)))
    # Invariance holds where every group's mean |x| is above 1 (no clamping of the shift).
    means = np.abs(x).reshape(groups, size).mean(axis=1)
    if np.all(means > 1):
        a = bspn(x, groups=groups, in_width=16, norm_frac_bits=4, out_width=16)
        b = bspn(x << k, groups=groups, in_width=16, norm_frac_bits=4, out_width=16)
        assert np.array_equal(a, b)


def test_bspn_normalizes_mean_into_half_one():
    rng = np.random.default_rng(1)
    x = rng.integers(-2000, 2000, size=(500, 32))
    y = bspn(x, groups=4, in_width=12, norm_frac_bits=8, out_width=16) / 256
    means = np.abs(y).reshape(500, 4, 8).mean(axis=-1)
    big = np.abs(x).reshape(500, 4, 8).mean(axis=-1) > 1
    # Floor shifts move a value by at most one LSB (1/256).
    assert np.all(means[big] <= 1.0 + 1 / 256) and np.all(means[big] > 0.5 - 1 / 256)


# ---------------------------------------------------------------- IF layer
@settings(max_examples=300, deadline=None)
@given(st.integers(-400, 400), st.integers(0, 5), st.integers(1, 4), st.integers(0, 4))
def test_average_if_count_equals_quantized_activation(z, tshift, act_bits, extra_steps):
    steps = (1 << act_bits) - 1 + extra_steps
    spikes = fire(initial_membrane([z], tshift), steps, tshift, act_bits)
    assert spikes.sum() == quantize_activation(z, tshift, act_bits)
    assert spikes.shape == (steps, 1)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 12), st.integers(1, 6), st.integers(0, 3), st.sampled_from(["binary", "ternary"]),
       st.integers(0, 2**31))
def test_if_layer_counts_match_integer_layer(n, m, tshift, kind, seed):
    rng = np.random.default_rng(seed)
    w = rng.choice([-1, 1] if kind == "binary" else [-1, 0, 1], size=(n, m))
    bias = rng.integers(-20, 20, size=m)
    spikes = rng.integers(0, 2, size=(5, 16, n))
    out = if_layer(spikes, w, bias=bias, threshold_shift=tshift, weight_kind=kind)
    z = spikes.sum(axis=1) @ w + bias
    assert np.array_equal(out.sum(axis=1), quantize_activation(z, tshift, 4))


def test_quantize_activation_rounds_half_up_and_clamps():
    assert quantize_activation([-9, -1, 0, 1, 2, 3, 5, 6, 100], 2, 4).tolist() == \
        [0, 0, 0, 0, 1, 1, 1, 2, 15]


@pytest.mark.parametrize("call, name", [
    (lambda: ptsoftmax([1, 2], rounding="down"), "rounding"),
    (lambda: ptsoftmax([1, 2], out_frac_bits=0), "out_frac_bits"),
    (lambda: bspn(np.zeros(6), groups=4), "groups"),
    (lambda: bspn(np.zeros(4), groups=1, gamma_shift=[9, 0, 0, 0]), "gamma_shift"),
    (lambda: bspn(np.full(4, 5000), groups=1), "in_width"),
    (lambda: if_layer(np.zeros((16, 2)), [[1], [2]]), "binary weights"),
    (lambda: if_layer(np.zeros((8, 2)), [[1], [1]]), "act_bits"),
    (lambda: if_layer(np.zeros((16, 2)), [[1], [1]], threshold_shift=-1), "threshold_shift"),
])
def test_reference_parameter_errors_name_the_parameter(call, name):
    with pytest.raises(ParameterError, match=name):
        call()


def test_each_operator_is_one_definition_for_numpy_and_torch():
    """The integer model (numpy) and training (torch) run the same functions: same integers."""
    import torch
    from sorbet_hw.model.ptsoftmax import ptsoftmax_of_ceilings
    rng = np.random.default_rng(3)
    scores = rng.integers(-300, 300, size=(40, 9))
    for rounding in ("up", "nearest"):
        a = ptsoftmax(scores, frac_bits=3, out_frac_bits=6, rounding=rounding)
        b = ptsoftmax(torch.from_numpy(scores), frac_bits=3, out_frac_bits=6, rounding=rounding)
        assert isinstance(b, torch.Tensor) and np.array_equal(a, b.numpy())
    valid = rng.random((40, 9)) < 0.7
    valid[:, 0] = True
    masked = ptsoftmax_of_ceilings(torch.from_numpy(scores), 8, "up", torch.from_numpy(valid))
    assert (masked.numpy()[~valid] == 0).all()
    assert np.array_equal(masked.numpy(), ptsoftmax_of_ceilings(scores, 8, "up", valid))
    row = scores[0][valid[0]]                   # a masked row is the row of its valid keys
    assert np.array_equal(masked.numpy()[0][valid[0]], ptsoftmax_of_ceilings(row, 8, "up"))
    x = rng.integers(-2048, 2048, size=(7, 48))
    g, b = rng.integers(-8, 9, 48), rng.integers(-128, 128, 48)
    assert np.array_equal(bspn(x, groups=4, gamma_shift=g, beta=b),
                          bspn(torch.from_numpy(x), groups=4, gamma_shift=torch.from_numpy(g),
                               beta=torch.from_numpy(b)).numpy())
    z = rng.integers(-500, 500, size=100)
    assert np.array_equal(quantize_activation(z, 3, 4),
                          quantize_activation(torch.from_numpy(z), 3, 4).numpy())
    # On reals (training): the step may be below one; integers scaled alike agree.
    assert np.array_equal(quantize_activation(z, 3, 4, 2),
                          quantize_activation(torch.from_numpy(z / 8.0), 0, 4, 2).numpy())


def test_the_integer_model_imports_no_torch():
    import subprocess
    import sys
    code = ("import sys, numpy as np\n"
            "from sorbet_hw.model.checkpoint import load_packed, shipped_checkpoint\n"
            "from sorbet_hw.model.evaluate import predict_integer\n"
            "from sorbet_hw.model.glue import Examples, get_task\n"
            "m = load_packed(shipped_checkpoint('sst2'), 'sst2')\n"
            "data = Examples(['a charming journey .', 'bleak and desperate'], None, np.array([1, 0]))\n"
            "print(predict_integer(m, get_task('sst2'), data))\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
