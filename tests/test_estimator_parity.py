"""BackpropClassifier/Regressor against scikit-learn's MLP on its bundled data sets: from the same
initial weights, with the same stopping rules, both reach the same final cost within 1%.

bench/estimators.py runs the fits (and times them; only the costs are asserted here): θ₀ from
fastbp.init_weights, put into both estimators after a one-iteration set-up fit, then a
warm-started L-BFGS-B fit of at most 200 iterations with scipy's ftol and gtol = 1e-5 on both.
"""

import numpy as np
import pytest

import fastbp

pytest.importorskip("sklearn", minversion="1.6")

from bench.estimators import DATASETS, fit_both, table


@pytest.mark.parametrize("dataset", list(DATASETS))
def test_same_final_cost_as_sklearns_mlp_from_the_same_start(dataset):
    result = fit_both(dataset)
    assert result.relative_difference < 0.01, result
    # Both report J: scikit-learn's loss_ is fastbp's cost at scikit-learn's final weights.
    X, y = DATASETS[dataset][0]()
    output = result.output
    target = y.astype(float) if output == "identity" else y
    J = fastbp.cost(result.sklearn_theta, X, target, result.layer_sizes, 1.0, output=output)
    assert J == pytest.approx(result.sklearn_cost, rel=1e-10)
    # Each optimizer did the work: far below the cost at θ₀.
    theta0 = fastbp.init_weights(result.layer_sizes, seed=0)
    J0 = fastbp.cost(theta0, X, target, result.layer_sizes, 1.0, output=output)
    assert max(result.fastbp_cost, result.sklearn_cost) < 0.5 * J0
    assert not np.array_equal(result.fastbp_theta, theta0)


def test_table_of_a_short_run():
    result = fit_both("breast_cancer", max_iter=5, one_blas_thread=True)
    assert result.fastbp_iterations == result.sklearn_iterations == 5
    assert result.sklearn_one_thread_seconds is not None
    header, rule, row = table([result]).splitlines()
    assert header.count("|") == rule.count("|") == row.count("|") == 14
    assert row.startswith("| breast_cancer | 569 | 30-25-1 | sigmoid |")
