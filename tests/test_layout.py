"""pack / unpack / n_params: the flat layout of docs/design.md, C and Octave (F) order; and
scikit-learn's coefs_ / intercepts_ layout (fastbp._sklearn_layout)."""

import numpy as np
import pytest
from hypothesis import given

import fastbp
from fastbp._sklearn_layout import from_sklearn_weights, to_sklearn_weights

from strategies import layer_sizes


@given(sizes=layer_sizes)
def test_round_trip_both_orders(sizes):
    theta = np.arange(fastbp.n_params(sizes), dtype=float)
    for order in ("C", "F"):
        mats = fastbp.unpack(theta, sizes, order=order)
        assert [M.shape for M in mats] == [
            (sizes[i + 1], sizes[i] + 1) for i in range(len(sizes) - 1)
        ]
        assert all(np.shares_memory(M, theta) for M in mats)  # views
        np.testing.assert_array_equal(fastbp.pack(mats, order=order), theta)


def test_c_order_is_row_major_one_after_another():
    Theta1 = np.arange(6.0).reshape(2, 3)
    Theta2 = np.arange(6.0, 9.0).reshape(1, 3)
    np.testing.assert_array_equal(fastbp.pack([Theta1, Theta2]), np.arange(9.0))
    assert fastbp.n_params((2, 2, 1)) == 9


def test_f_order_is_octave_unrolling():
    """[Theta1(:); Theta2(:)] stacks each matrix column by column."""
    Theta1 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    Theta2 = np.array([[7.0, 8.0, 9.0]])
    octave = np.array([1.0, 4.0, 2.0, 5.0, 3.0, 6.0, 7.0, 8.0, 9.0])
    np.testing.assert_array_equal(fastbp.pack([Theta1, Theta2], order="F"), octave)
    A, B = fastbp.unpack(octave, (2, 2, 1), order="F")
    np.testing.assert_array_equal(A, Theta1)
    np.testing.assert_array_equal(B, Theta2)


def test_errors():
    with pytest.raises(ValueError, match="imply"):
        fastbp.unpack(np.zeros(5), (2, 2, 1))
    with pytest.raises(ValueError, match="order"):
        fastbp.unpack(np.zeros(9), (2, 2, 1), order="K")
    with pytest.raises(ValueError, match=r"thetas\[1\]"):
        fastbp.pack([np.zeros((2, 3)), np.zeros((1, 4))])
    with pytest.raises(ValueError, match="layer_sizes"):
        fastbp.n_params((3,))
    with pytest.raises(ValueError, match="layer_sizes"):
        fastbp.n_params((3, 0, 1))
    with pytest.raises(TypeError, match="layer_sizes"):
        fastbp.n_params((3, 2.5))


@given(sizes=layer_sizes)
def test_sklearn_weights_round_trip(sizes):
    theta = np.arange(fastbp.n_params(sizes), dtype=float)
    coefs, intercepts = to_sklearn_weights(theta, sizes)
    assert [W.shape for W in coefs] == [(sizes[i], sizes[i + 1]) for i in range(len(sizes) - 1)]
    assert [b.shape for b in intercepts] == [(s,) for s in sizes[1:]]
    assert all(np.shares_memory(a, theta) for a in coefs + intercepts)  # views
    back = from_sklearn_weights(coefs, intercepts)
    assert not np.shares_memory(back, theta)
    np.testing.assert_array_equal(back, theta)


def test_sklearn_weights_by_hand():
    """coefs_[l] = Θ^(l)[:, 1:]ᵀ (inputs × units), intercepts_[l] = Θ^(l)[:, 0]."""
    Theta1 = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # 2 units over 2 inputs
    Theta2 = np.array([[7.0, 8.0, 9.0]])
    (W1, W2), (b1, b2) = to_sklearn_weights(fastbp.pack([Theta1, Theta2]), (2, 2, 1))
    np.testing.assert_array_equal(W1, [[2.0, 5.0], [3.0, 6.0]])
    np.testing.assert_array_equal(b1, [1.0, 4.0])
    np.testing.assert_array_equal(W2, [[8.0], [9.0]])
    np.testing.assert_array_equal(b2, [7.0])


def test_sklearn_weights_errors():
    W, b = np.zeros((3, 2)), np.zeros(2)
    with pytest.raises(ValueError, match="one array per layer"):
        from_sklearn_weights([W], [])
    with pytest.raises(ValueError, match="one array per layer"):
        from_sklearn_weights([], [])
    with pytest.raises(ValueError, match=r"coefs\[0\] must be 2-D"):
        from_sklearn_weights([np.zeros(3)], [b])
    with pytest.raises(ValueError, match=r"intercepts\[0\] must have shape \(2,\)"):
        from_sklearn_weights([W], [np.zeros(3)])
    with pytest.raises(ValueError, match=r"coefs\[1\] has 3 rows.*do not chain"):
        from_sklearn_weights([W, np.zeros((3, 1))], [b, np.zeros(1)])
