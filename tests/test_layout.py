"""pack / unpack / n_params: the flat layout of docs/design.md, C and Octave (F) order."""

import numpy as np
import pytest
from hypothesis import given

import fastbp

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
