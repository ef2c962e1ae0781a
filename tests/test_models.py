"""Hidden activations, outputs and sample weights (docs/design.md, "Models"): every combination
against the plain reference and central differences, scikit-learn's definition of weights,
saturation, and bad input."""

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastbp

import reference
from strategies import ACTIVATIONS, OUTPUTS, model_problems, model_targets

TOL = {np.float64: 1e-12, np.float32: 1e-4}
TINY = {np.float64: 0.0, np.float32: 1e-30}
# how far from ReLU's kink z must be for both sides to round alike (float32 rounds z at ~1e-7)
KINK_MARGIN = {np.float64: 1e-9, np.float32: 1e-3}


def assert_matches_reference(p, dtype, kernel="auto"):
    p = p.astype(dtype)  # the reference is fed the same rounded inputs
    assume(reference.relu_margin(p.theta, p.X, p.layer_sizes, p.activation) > KINK_MARGIN[dtype])
    obj = fastbp.Objective(p.X, p.y, p.layer_sizes, p.lam, kernel=kernel, **p.kwargs())
    J, g = obj(p.theta)
    J_ref, g_ref = reference.cost_and_grad(*p.args(), **p.kwargs())
    # float32 has no digits for a cost or gradient below its normal range: the kernels flush
    # e^x below e^-87 to 0 (a saturated net's J of 1e-283 is 0 there)
    assume(min(abs(J_ref), np.abs(g_ref).max()) > TINY[dtype])
    assert g.dtype == dtype
    assert abs(J - J_ref) <= TOL[dtype] * abs(J_ref)
    assert reference.max_rel(g, g_ref) <= TOL[dtype]
    J_alone = fastbp.cost(*p.args(), **p.kwargs())
    assert math.isclose(J_alone, J, rel_tol=TOL[dtype], abs_tol=TOL[dtype] * abs(J_ref))


@pytest.mark.parametrize("kernel", ["tiled", "literal"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@given(problem=model_problems())
def test_every_model_matches_reference(problem, dtype, kernel):
    assert_matches_reference(problem, dtype, kernel)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=8)
@given(problem=model_problems(m=st.integers(2000, 5000)))
def test_every_model_over_several_blocks(problem, dtype):
    assert fastbp.kernels.block_count(problem.X.shape[0], problem.layer_sizes, dtype) > 1
    assert_matches_reference(problem, dtype)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_central_differences(activation, output, rng):
    sizes = (3, 5, 4, 3)
    m = 20
    X = rng.uniform(-1, 1, (m, 3))
    y = model_targets(rng, output, "targets" if output == "identity" else "labels", m, 3)
    weights = rng.uniform(0.0, 2.0, m)
    while True:  # weights with every ReLU unit at least 0.01 from its kink (ε = 1e-5)
        theta = rng.normal(scale=0.5, size=fastbp.n_params(sizes))
        if reference.relu_margin(theta, X, sizes, activation) > 1e-2:
            break
    kwargs = {"activation": activation, "output": output, "sample_weight": weights}
    _, g = fastbp.cost_and_grad(theta, X, y, sizes, 0.7, **kwargs)
    # ε = 1e-5, not the course's 1e-4: tanh'''(0) = −2 is 16 times the sigmoid's, and at 1e-4
    # the differences' own truncation error, ε² g'''/6, reaches 1e-9 (measured: 7.8e-10 for
    # tanh-identity at 1e-4, 4.1e-11 at 1e-5); their rounding error stays below 2e-10.
    n = reference.numerical_gradient(
        lambda t: fastbp.cost(t, X, y, sizes, 0.7, **kwargs), theta, eps=1e-5
    )
    assert np.linalg.norm(g - n) / np.linalg.norm(g + n) < 1e-9


def test_activation_per_hidden_layer(rng):
    sizes = (4, 6, 5, 3)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.normal(size=(50, 4))
    y = rng.integers(0, 3, 50)
    J, g = fastbp.cost_and_grad(theta, X, y, sizes, activation=("relu", "tanh"), output="softmax")
    J_ref, g_ref = reference.cost_and_grad(theta, X, y, sizes, 0.0, ("relu", "tanh"), "softmax")
    assert abs(J - J_ref) <= 1e-12 * J_ref
    assert reference.max_rel(g, g_ref) <= 1e-12
    obj = fastbp.Objective(X, y, sizes, activation=["relu", "tanh"], output="softmax")
    assert obj.activation == ("relu", "tanh")
    assert obj.output == "softmax"


@pytest.mark.parametrize("output", OUTPUTS)
def test_predict_proba_is_the_output(output, rng):
    sizes = (3, 6, 4)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.normal(size=(70, 3))
    h = fastbp.predict_proba(theta, X, sizes, activation="tanh", output=output)
    Thetas = reference.split(theta, sizes)
    a = np.tanh(np.hstack([np.ones((70, 1)), X]) @ Thetas[0].T)
    z = np.hstack([np.ones((70, 1)), a]) @ Thetas[1].T
    expected = {
        "sigmoid": reference.sigmoid(z),
        "softmax": np.exp(z) / np.exp(z).sum(axis=1, keepdims=True),
        "identity": z,
    }[output]
    np.testing.assert_allclose(h, expected, rtol=1e-13, atol=1e-15)


# ----------------------------------------------------------------------------- sample weights


@pytest.mark.parametrize("kernel", ["tiled", "literal"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("output", OUTPUTS)
def test_unit_weights_give_the_unweighted_bits(output, dtype, kernel, rng):
    sizes = (5, 7, 3)
    m = 300
    X = rng.normal(size=(m, 5)).astype(dtype)
    y = model_targets(rng, output, "targets" if output == "identity" else "labels", m, 3)
    theta = rng.normal(size=fastbp.n_params(sizes)).astype(dtype)
    kwargs = {"output": output, "activation": "relu"}
    J, g = fastbp.Objective(X, y, sizes, 0.5, kernel=kernel, **kwargs)(theta)
    ones = np.ones(m)
    J_1, g_1 = fastbp.Objective(X, y, sizes, 0.5, kernel=kernel, sample_weight=ones, **kwargs)(
        theta
    )
    assert J_1 == J
    assert np.array_equal(g_1, g)


@pytest.mark.parametrize("output", OUTPUTS)
def test_integer_weights_equal_repeated_rows(output, rng):
    sizes = (4, 6, 3)
    m = 200
    X = rng.normal(size=(m, 4))
    y = model_targets(rng, output, "targets" if output == "identity" else "labels", m, 3)
    theta = rng.normal(size=fastbp.n_params(sizes))
    counts = rng.integers(0, 4, m)  # zero drops a row
    counts[0] = 2
    kwargs = {"output": output, "activation": "tanh"}
    J, g = fastbp.cost_and_grad(theta, X, y, sizes, 1.3, sample_weight=counts, **kwargs)
    rows = np.repeat(np.arange(m), counts)
    J_rep, g_rep = fastbp.cost_and_grad(theta, X[rows], y[rows], sizes, 1.3, **kwargs)
    assert abs(J - J_rep) <= 1e-13 * abs(J_rep)
    assert reference.max_rel(g, g_rep) <= 1e-13


def test_weighted_partial_sums_combine_to_the_whole(rng):
    sizes = (4, 6, 3)
    m = 500
    X = rng.normal(size=(m, 4))
    y = rng.integers(0, 3, m)
    w = rng.uniform(0, 3, m)
    theta = rng.normal(size=fastbp.n_params(sizes))
    kwargs = {"activation": "relu", "output": "softmax"}
    J, g = fastbp.cost_and_grad(theta, X, y, sizes, 0.4, sample_weight=w, **kwargs)
    parts = [
        fastbp.partial_sums(theta, X[s], y[s], sizes, sample_weight=w[s], **kwargs)
        for s in (slice(0, 130), slice(130, 131), slice(131, m))
    ]
    assert all(isinstance(count, float) for _, _, count in parts)
    J_c, g_c = fastbp.combine(parts, theta, sizes, 0.4)
    assert abs(J_c - J) <= 1e-14 * J
    assert reference.max_rel(g_c, g) <= 1e-14
    whole = fastbp.partial_sums(theta, X, y, sizes, sample_weight=w, **kwargs)
    assert fastbp.combine([whole], theta, sizes, 0.4)[0] == J


def test_weights_in_a_file_stream_like_in_memory(tmp_path, rng):
    sizes = (3, 5, 1)
    m = 3000
    X = rng.normal(size=(m, 3))
    y = rng.normal(size=m)
    w = rng.uniform(0, 1, m)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "X.npy", X.astype(np.float32))  # not the compute dtype: streamed
    theta = rng.normal(size=fastbp.n_params(sizes))
    mapped = np.load(tmp_path / "w.npy", mmap_mode="r")
    X_mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    kwargs = {"activation": "tanh", "output": "identity"}
    J, g = fastbp.cost_and_grad(theta, X_mapped, y, sizes, sample_weight=mapped, **kwargs)
    J_mem, g_mem = fastbp.cost_and_grad(
        theta, X.astype(np.float32).astype(np.float64), y, sizes, sample_weight=w, **kwargs
    )
    assert abs(J - J_mem) <= 1e-13 * J_mem
    assert reference.max_rel(g, g_mem) <= 1e-13


# ----------------------------------------------------------------------------------- saturation


@pytest.mark.parametrize("kernel", ["tiled", "literal"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_saturated_stays_finite_and_exact(dtype, kernel, rng):
    """|z| ≈ 1e3 over 300 outputs: labels at the argmax (a gradient of e^-hundreds, kept) and
    random labels."""
    sizes = (6, 8, 300)
    m = 100
    X = rng.uniform(-1, 1, (m, 6)).astype(dtype)
    theta = rng.normal(size=fastbp.n_params(sizes))
    _Theta1, Theta2 = fastbp.unpack(theta, sizes)
    Theta2 *= 150.0
    theta = theta.astype(dtype)
    z = fastbp.predict_proba(theta, X, sizes, activation="tanh", output="identity")
    assert 300 < np.abs(z).max() < 3e3
    for y in (np.argmax(z, axis=1), rng.integers(0, 300, m)):
        obj = fastbp.Objective(X, y, sizes, kernel=kernel, activation="tanh", output="softmax")
        J, g = obj(theta)
        J_ref, g_ref = reference.cost_and_grad(theta, X, y, sizes, 0.0, "tanh", "softmax")
        assert np.isfinite(J)
        assert np.isfinite(g).all()
        assert abs(J - J_ref) <= TOL[dtype] * J_ref
        assert reference.max_rel(g, g_ref) <= TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dead_relu_units_give_exact_zeros(dtype, rng):
    sizes = (4, 6, 5, 2)
    X = rng.normal(size=(400, 4)).astype(dtype)
    y = rng.integers(0, 2, 400)
    Thetas = fastbp.unpack(rng.normal(size=fastbp.n_params(sizes)), sizes)
    Thetas[1][:, 0] = -1e3  # the second hidden layer is dead for every example
    theta = fastbp.pack(Thetas).astype(dtype)
    _, g = fastbp.cost_and_grad(theta, X, y, sizes, activation="relu", output="softmax")
    G1, G2, G3 = fastbp.unpack(g, sizes)
    assert np.isfinite(g).all()
    assert not G1.any()
    assert not G2.any()
    assert not G3[:, 1:].any()  # its activations are exact zeros


# ------------------------------------------------------------------------------------ bad input


def test_bad_model_arguments_are_named(rng):
    sizes = (3, 4, 2)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.normal(size=(10, 3))
    y = rng.integers(0, 2, 10)
    args = (theta, X, y, sizes)
    with pytest.raises(ValueError, match="activation must be one of"):
        fastbp.cost_and_grad(*args, activation="softplus")
    with pytest.raises(ValueError, match="activation has 2 names, but"):
        fastbp.cost_and_grad(*args, activation=("relu", "tanh"))
    with pytest.raises(TypeError, match="activation must be a name"):
        fastbp.cost_and_grad(*args, activation=3)
    with pytest.raises(ValueError, match="output must be one of"):
        fastbp.cost_and_grad(*args, output="tanh")
    with pytest.raises(ValueError, match="output='softmax' needs at least 2 output units"):
        fastbp.cost_and_grad(theta[:-5], X, y % 2, (3, 4, 1), output="softmax")
    with pytest.raises(TypeError, match="output='identity' fits float targets"):
        fastbp.cost_and_grad(*args, output="identity")
    with pytest.raises(ValueError, match="probability rows summing to 1"):
        fastbp.cost_and_grad(theta, X, np.full((10, 2), 0.3), sizes, output="softmax")
    with pytest.raises(ValueError, match="must lie in"):
        fastbp.cost_and_grad(theta, X, np.full((10, 2), 1.5), sizes, output="sigmoid")


@pytest.mark.parametrize(
    ("weights", "error", "message"),
    [
        (-np.ones(10), ValueError, r"sample_weight must be >= 0, but sample_weight\[0\]"),
        (np.r_[np.ones(9), np.nan], ValueError, r"sample_weight must be finite.*\[9\]"),
        (np.zeros(10), ValueError, "sample_weight is all zeros"),
        (np.ones(9), ValueError, r"expected shape \(10,\), got shape \(9,\)"),
        (np.ones((10, 1)), ValueError, "sample_weight must have one weight per example"),
        (np.ones(10, complex), TypeError, "sample_weight must hold real numbers"),
    ],
)
def test_bad_sample_weights_are_named(weights, error, message, rng):
    sizes = (3, 4, 2)
    theta = rng.normal(size=fastbp.n_params(sizes))
    X = rng.normal(size=(10, 3))
    y = rng.integers(0, 2, 10)
    with pytest.raises(error, match=message):
        fastbp.cost_and_grad(theta, X, y, sizes, sample_weight=weights)
    with pytest.raises(error, match=message):
        fastbp.Objective(X, y, sizes, sample_weight=weights)


def test_nothing_the_user_passes_is_written(rng):
    sizes = (3, 4, 3)
    theta = rng.normal(size=fastbp.n_params(sizes)).astype(np.float32)
    X = rng.normal(size=(300, 3))
    Y = rng.dirichlet(np.ones(3), size=300)
    w = rng.uniform(0, 1, 300)
    copies = [a.copy() for a in (theta, X, Y, w)]
    for a in (theta, X, Y, w):
        a.setflags(write=False)
    fastbp.cost_and_grad(theta, X, Y, sizes, 0.3, output="softmax", sample_weight=w)
    fastbp.Objective(X, Y, sizes, output="softmax", sample_weight=w, dtype=np.float32)(theta)
    for a, before in zip((theta, X, Y, w), copies, strict=True):
        assert np.array_equal(a, before)
