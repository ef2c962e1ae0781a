"""fastbp and its peers, each computing the same J(θ) and gradient for a :class:`Problem`.

Every implementation turns a problem into a :class:`Prepared` evaluation: the data converted once
(as an optimizer would use it), θ in the implementation's own layout, a ``call`` that is timed,
and the conversion of its gradient back to fastbp's flat layout for the agreement check. All of
them compute docs/design.md's cost for the case's network,

    J = (1/m) Σ_i cost_i + (λ/2m) Σ (non-bias Θ)²,   with cost_i, for the case's output,
    sigmoid:  Σ_k [−y_k log h_k − (1 − y_k) log(1 − h_k)] = Σ_k softplus(z_k) − y_k z_k
    softmax:  Σ_k y_k (logsumexp(z) − z_k) = −Σ_k y_k log softmax(z)_k
    identity: ½ Σ_k (z_k − y_k)²

(z the output layer's input, h its output; one-hot targets for the integer labels), and its
gradient, with the case's activation g in every hidden layer: sigmoid, tanh, relu or identity.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

import fastbp
from fastbp._sklearn_layout import from_sklearn_weights, to_sklearn_weights

from .cases import Problem

__all__ = [
    "IMPLEMENTATIONS",
    "TOLERANCE",
    "Agreement",
    "Implementation",
    "Prepared",
    "agreement",
    "check",
    "course_cost_and_grad",
    "from_sklearn_layout",
    "jax_loss",
    "to_sklearn_layout",
    "torch_loss",
]

# Agreement with fastbp required before a peer is timed (relative, docs/design.md's measures).
TOLERANCE = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}


@dataclass(frozen=True)
class Prepared:
    """One implementation set up for one problem.

    ``call(theta)`` takes θ in the implementation's own layout (``theta`` / ``theta_alt``) and
    returns ``(J, grad)`` with grad in that layout; ``to_fastbp(grad)`` maps it to fastbp's.
    """

    call: Callable[[Any], tuple[float, Any]]
    theta: Any
    theta_alt: Any
    to_fastbp: Callable[[Any], np.ndarray] = np.asarray


@dataclass(frozen=True)
class Implementation:
    """A way to compute (J, grad): fastbp itself or a peer it is compared with.

    ``requires`` names the optional module the implementation needs; ``prepare`` imports it only
    when called, so a missing peer is skipped with a note instead of breaking the benchmark.
    """

    key: str  # command-line name
    name: str  # display name
    is_peer: bool
    requires: str | None
    description: str
    prepare: Callable[[Problem], Prepared]

    def missing(self) -> str | None:
        """Why this implementation cannot run here, or None when it can."""
        if self.requires and importlib.util.find_spec(self.requires) is None:
            return f"{self.requires} is not installed (pip install -e '.[bench]')"
        return None


@dataclass(frozen=True)
class Agreement:
    """docs/design.md's measures against fastbp: cost |J − J_ref| / |J_ref|, gradient max-norm relative."""

    cost: float
    grad: float
    tolerance: float

    @property
    def ok(self) -> bool:
        return self.cost <= self.tolerance and self.grad <= self.tolerance


def agreement(
    J: float, grad: np.ndarray, J_ref: float, grad_ref: np.ndarray, dtype: np.dtype
) -> Agreement:
    """Compare (J, grad) with the reference (J_ref, grad_ref); NaN counts as disagreement."""
    grad = np.asarray(grad, np.float64)
    grad_ref = np.asarray(grad_ref, np.float64)
    if grad.shape != grad_ref.shape:
        raise ValueError(f"gradient has shape {grad.shape}, expected {grad_ref.shape}")
    cost = abs(J - J_ref) / abs(J_ref)
    scale = np.max(np.abs(grad_ref))
    grad_error = np.max(np.abs(grad - grad_ref)) / scale
    # NaN never passes a <= test, so a NaN error reads as disagreement (inf makes it explicit).
    return Agreement(
        float(np.nan_to_num(cost, nan=np.inf)),
        float(np.nan_to_num(grad_error, nan=np.inf)),
        TOLERANCE[np.dtype(dtype)],
    )


def check(prepared: Prepared, reference: tuple[float, np.ndarray], dtype: np.dtype) -> Agreement:
    """Evaluate ``prepared`` at θ and compare it with fastbp's ``reference`` (J, grad)."""
    J, grad = prepared.call(prepared.theta)
    return agreement(J, prepared.to_fastbp(grad), *reference, dtype)


# fastbp -------------------------------------------------------------------------------------


def _prepare_fastbp(problem: Problem, kernel: str = "auto") -> Prepared:
    objective = fastbp.Objective(
        problem.X,
        problem.y,
        problem.layer_sizes,
        problem.lam,
        dtype=problem.dtype,
        kernel=kernel,
        **problem.case.network_keywords,
    )
    return Prepared(objective, problem.theta, problem.theta_alt)


def _prepare_fastbp_literal(problem: Problem) -> Prepared:
    return _prepare_fastbp(problem, kernel="literal")


# NumPy: the course's vectorized formulation ------------------------------------------------


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


# Each hidden activation: (g, back), where back(E, A) is the δ of a layer from E = (δ Θ)_{:,1:},
# g' written from A = g(Z) as in the course (the sigmoid's expression kept as it was written).
_NUMPY_HIDDEN: dict[str, tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]] = {
    "sigmoid": (_sigmoid, lambda E, A: E * A * (1 - A)),
    "tanh": (np.tanh, lambda E, A: E * (1 - A * A)),
    "relu": (lambda Z: np.maximum(Z, 0), lambda E, A: E * (A > 0)),
    "identity": (lambda Z: Z, lambda E, A: E),
}


def _numpy_output(Z: np.ndarray, Y: np.ndarray, output: str) -> tuple[Any, np.ndarray]:
    """(Σ_i cost_i, H) from the output layer's input Z: δ^(L) = H − Y for each output."""
    if output == "sigmoid":
        H = _sigmoid(Z)
        return np.sum(-Y * np.log(H) - (1 - Y) * np.log(1 - H)), H
    if output == "softmax":
        shifted = Z - Z.max(axis=1, keepdims=True)
        E = np.exp(shifted)
        total = E.sum(axis=1, keepdims=True)
        # Σ_k y_k (logsumexp(z) − z_k), logsumexp(z) − z_k = log Σ_j e^{z_j − max} − (z_k − max)
        return np.sum(Y * (np.log(total) - shifted)), E / total
    if output == "identity":
        return np.sum((Z - Y) ** 2) / 2, Z
    raise ValueError(f"unknown output {output!r}")


def course_cost_and_grad(
    theta: np.ndarray,
    X: np.ndarray,
    Y: np.ndarray,
    layer_sizes: tuple[int, ...],
    lam: float,
    activation: str = "sigmoid",
    output: str = "sigmoid",
) -> tuple[float, np.ndarray]:
    """J and its gradient by the course's matrix formulation (ex4's nnCostFunction, any depth).

    Whole-batch matrices: A^(1) = [1 X], A^(l+1) = [1 g(A^(l) Θ^(l)ᵀ)], Z = A^(L−1) Θ^(L−1)ᵀ,
    H = the output's function of Z (sigmoid, softmax or identity);
    J = (1/m) Σ cost(Z, Y) + (λ/2m) Σ (non-bias Θ)² (sigmoid: Σ (−Y log H − (1 − Y) log(1 − H)));
    δ^(L) = H − Y, δ^(l) = (δ^(l+1) Θ^(l))_{:,1:} .* g'(A^(l)_{:,1:}) (sigmoid: A .* (1 − A));
    D^(l) = (δ^(l+1))ᵀ A^(l) / m + (λ/m) [0 Θ^(l)_{:,1:}]. ``Y`` is the (m, K) target matrix;
    ``activation`` is g of every hidden layer.
    """
    g, back = _NUMPY_HIDDEN[activation]
    m = X.shape[0]
    Thetas = fastbp.unpack(theta, layer_sizes)
    ones = np.ones((m, 1), X.dtype)
    A = [np.hstack([ones, X])]
    for Theta in Thetas[:-1]:
        A.append(np.hstack([ones, g(A[-1] @ Theta.T)]))
    cost_sum, H = _numpy_output(A[-1] @ Thetas[-1].T, Y, output)
    penalty = sum(np.sum(Theta[:, 1:] ** 2) for Theta in Thetas)
    J = cost_sum / m + lam / (2 * m) * penalty
    delta = H - Y
    grads = [np.empty(0)] * len(Thetas)
    for l in range(len(Thetas) - 1, -1, -1):
        grads[l] = delta.T @ A[l] / m
        grads[l][:, 1:] += lam / m * Thetas[l][:, 1:]
        if l > 0:
            delta = back((delta @ Thetas[l])[:, 1:], A[l][:, 1:])
    return float(J), fastbp.pack(grads)


def _prepare_numpy(problem: Problem) -> Prepared:
    X, Y, sizes, lam = problem.X, problem.targets(), problem.layer_sizes, problem.lam
    activation, output = problem.activation, problem.output
    return Prepared(
        lambda theta: course_cost_and_grad(theta, X, Y, sizes, lam, activation, output),
        problem.theta,
        problem.theta_alt,
    )


# scikit-learn: MLPClassifier's and MLPRegressor's own loss and gradient ----------------------


def to_sklearn_layout(theta: np.ndarray, layer_sizes: tuple[int, ...]) -> np.ndarray:
    """fastbp's θ as scikit-learn's packed vector: all ``coefs_`` (each row-major) followed by
    all ``intercepts_``, with the layers of :func:`fastbp.sklearn.to_sklearn_weights`."""
    coefs, intercepts = to_sklearn_weights(theta, layer_sizes)
    return np.concatenate([W.ravel() for W in coefs] + intercepts)


def from_sklearn_layout(packed: np.ndarray, layer_sizes: tuple[int, ...]) -> np.ndarray:
    """scikit-learn's packed vector (θ or gradient) in fastbp's layout: the inverse of the above."""
    coefs, intercepts = [], []
    start = 0
    for s_in, s_out in itertools.pairwise(layer_sizes):
        coefs.append(packed[start : start + s_in * s_out].reshape(s_in, s_out))
        start += s_in * s_out
    for s_out in layer_sizes[1:]:
        intercepts.append(packed[start : start + s_out])
        start += s_out
    if start != packed.shape[0]:
        raise ValueError(f"packed vector has length {packed.shape[0]}, expected {start}")
    return from_sklearn_weights(coefs, intercepts)


# scikit-learn's names of the hidden activations and of the outputs it sets up
_SKLEARN_ACTIVATION = {
    "sigmoid": "logistic",
    "tanh": "tanh",
    "relu": "relu",
    "identity": "identity",
}
_SKLEARN_OUTPUT = {"sigmoid": "logistic", "softmax": "softmax", "identity": "identity"}


def _sklearn_model(problem: Problem) -> Any:
    """The scikit-learn network of the problem's case, fitted once on a few rows to set it up.

    Fitting only sets up the structure (the weights are replaced at every call), so a few rows
    of every class suffice. Its loss is then docs/design.md's J:

    - sigmoid output, ``MLPClassifier``: integer 0/1 labels give one logistic output; a one-hot
      indicator matrix makes scikit-learn treat the task as multi-label, whose loss is the sum
      of K binary cross-entropies.
    - softmax output, ``MLPClassifier`` on integer labels of K ≥ 3 classes (two classes give one
      logistic output): its ``log_loss`` is −Σ_k y_k log softmax(z)_k, ours, except that it
      clips the probabilities to [eps, 1 − eps] first, which only matters where a probability
      of the true class falls below eps (2.2e-16 in float64).
    - identity output, ``MLPRegressor``: its ``squared_loss`` is ½ · mean over examples and over
      outputs of (z − y)², ours (½ Σ_k, mean over examples) for one output only; its gradient
      is ours for any K, so that with K > 1 the two J would differ: refused.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    sizes, dtype, output = problem.layer_sizes, problem.dtype, problem.output
    K = sizes[-1]
    n_fit = max(2, K)
    fit_rows = np.arange(n_fit)
    if output == "sigmoid":
        estimator = MLPClassifier
        fit_targets = fit_rows % 2 if K == 1 else np.eye(K, dtype=np.int64)[fit_rows % K]
    elif output == "softmax":
        if K < 3:
            raise ValueError(f"MLPClassifier has a softmax output for 3 or more classes, not {K}")
        estimator, fit_targets = MLPClassifier, fit_rows % K
    elif output == "identity":
        if K != 1:
            raise ValueError(f"MLPRegressor's squared loss is ours for one output, not {K}")
        estimator, fit_targets = MLPRegressor, np.zeros(n_fit, dtype)
    else:
        raise ValueError(f"unknown output {output!r}")
    model = estimator(
        hidden_layer_sizes=sizes[1:-1],
        activation=_SKLEARN_ACTIVATION[problem.activation],
        solver="lbfgs",
        alpha=problem.lam,
        max_iter=1,
        random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(np.zeros((n_fit, sizes[0]), dtype), fit_targets)
    expected = _SKLEARN_OUTPUT[output]
    if model.out_activation_ != expected or model.n_outputs_ != K:
        raise RuntimeError(
            f"{estimator.__name__} set up {model.n_outputs_} {model.out_activation_} outputs, "
            f"expected {K} {expected}"
        )
    return model


def _prepare_sklearn(problem: Problem) -> Prepared:
    sizes, dtype = problem.layer_sizes, problem.dtype
    model = _sklearn_model(problem)
    X, Y = problem.X, problem.targets()
    n_layers = len(sizes)
    activations: list[Any] = [X] + [None] * (n_layers - 1)
    deltas: list[Any] = [None] * (n_layers - 1)
    coef_grads = [np.empty((a, b), dtype) for a, b in itertools.pairwise(sizes)]
    intercept_grads = [np.empty(b, dtype) for b in sizes[1:]]
    buffers = (activations, deltas, coef_grads, intercept_grads)
    # scikit-learn >= 1.6 passes sample weights between the targets and the buffers.
    has_weights = "sample_weight" in inspect.signature(model._loss_grad_lbfgs).parameters
    data = (X, Y, None) if has_weights else (X, Y)

    def call(packed: np.ndarray) -> tuple[float, np.ndarray]:
        loss, grad = model._loss_grad_lbfgs(packed, *data, *buffers)
        return float(loss), grad

    return Prepared(
        call,
        to_sklearn_layout(problem.theta, sizes),
        to_sklearn_layout(problem.theta_alt, sizes),
        lambda grad: from_sklearn_layout(grad, sizes),
    )


# PyTorch: CPU autograd ------------------------------------------------------------------------


def _same(z: Any) -> Any:
    """The identity activation, for the autograd peers."""
    return z


def _weight_slices(layer_sizes: tuple[int, ...]) -> list[tuple[int, int, int]]:
    """(start, rows, columns) of each Θ^(l) in the flat vector."""
    slices, start = [], 0
    for s_in, s_out in itertools.pairwise(layer_sizes):
        slices.append((start, s_out, s_in + 1))
        start += s_out * (s_in + 1)
    return slices


def _torch_cost(problem: Problem) -> Callable[[Any], Any]:
    """Σ_i cost_i of the problem's output from the output layer's z, as a PyTorch user writes
    it: binary cross-entropy with logits, cross-entropy on the labels, or half the squared error.
    """
    import torch
    import torch.nn.functional as F

    if problem.output == "sigmoid":
        Y = torch.from_numpy(problem.targets())
        return lambda z: F.binary_cross_entropy_with_logits(z, Y, reduction="sum")
    if problem.output == "softmax":
        labels = torch.from_numpy(problem.y)
        return lambda z: F.cross_entropy(z, labels, reduction="sum")
    if problem.output == "identity":
        Y = torch.from_numpy(problem.targets())
        return lambda z: F.mse_loss(z, Y, reduction="sum") / 2
    raise ValueError(f"unknown output {problem.output!r}")


def torch_loss(problem: Problem) -> Callable[[Any], Any]:
    """J(θ) of the problem in PyTorch, θ a flat tensor in fastbp's layout."""
    import torch

    X = torch.from_numpy(problem.X)
    cost = _torch_cost(problem)
    g = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "identity": _same}[
        problem.activation
    ]
    slices = _weight_slices(problem.layer_sizes)
    m, lam = problem.m, problem.lam

    def loss(theta: Any) -> Any:
        a, penalty = X, torch.zeros((), dtype=X.dtype)
        for l, (start, rows, columns) in enumerate(slices):
            Theta = theta[start : start + rows * columns].view(rows, columns)
            z = torch.addmm(Theta[:, 0], a, Theta[:, 1:].T)
            penalty = penalty + Theta[:, 1:].square().sum()
            if l < len(slices) - 1:
                a = g(z)
        J = cost(z) / m
        return J + lam / (2 * m) * penalty

    return loss


def _prepare_torch(problem: Problem) -> Prepared:
    import torch

    loss = torch_loss(problem)

    def call(theta_array: np.ndarray) -> tuple[float, np.ndarray]:
        theta = torch.from_numpy(theta_array).requires_grad_()
        J = loss(theta)
        (grad,) = torch.autograd.grad(J, theta)
        return J.item(), grad.numpy()

    return Prepared(call, problem.theta, problem.theta_alt)


# JAX: jit of value_and_grad on the CPU --------------------------------------------------------


def jax_loss(problem: Problem) -> tuple[Callable[..., Any], Any, Any]:
    """(loss(θ, X, Y), X, Y): J of the problem in JAX, θ flat in fastbp's layout, X and Y on the
    device (float64 enabled: else float64 arrays are silently float32)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    slices = _weight_slices(problem.layer_sizes)
    m, lam, output = problem.m, problem.lam, problem.output
    g = {"sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu, "identity": _same}[
        problem.activation
    ]
    if output not in ("sigmoid", "softmax", "identity"):
        raise ValueError(f"unknown output {output!r}")

    def cost(z: Any, Y: Any) -> Any:
        """Σ_i cost_i of the output from its z (one-hot Y for softmax)."""
        if output == "softmax":
            return -jnp.sum(Y * jax.nn.log_softmax(z, axis=1))
        if output == "identity":
            return jnp.sum((z - Y) ** 2) / 2
        # softplus(z) − y z is binary cross-entropy with logits, stable for any z.
        return jnp.sum(jax.nn.softplus(z) - Y * z)

    def loss(theta: Any, X: Any, Y: Any) -> Any:
        a, penalty = X, jnp.zeros((), X.dtype)
        for l, (start, rows, columns) in enumerate(slices):
            Theta = theta[start : start + rows * columns].reshape(rows, columns)
            z = a @ Theta[:, 1:].T + Theta[:, 0]
            penalty = penalty + jnp.sum(Theta[:, 1:] ** 2)
            if l < len(slices) - 1:
                a = g(z)
        return cost(z, Y) / m + lam / (2 * m) * penalty

    return loss, jax.device_put(problem.X), jax.device_put(problem.targets())


def _prepare_jax(problem: Problem) -> Prepared:
    import jax

    loss, X, Y = jax_loss(problem)
    value_and_grad = jax.jit(jax.value_and_grad(loss))

    def call(theta: np.ndarray) -> tuple[float, np.ndarray]:
        J, grad = value_and_grad(theta, X, Y)
        return float(J), np.asarray(grad)

    return Prepared(call, problem.theta, problem.theta_alt)


IMPLEMENTATIONS: dict[str, Implementation] = {
    impl.key: impl
    for impl in (
        Implementation(
            "fastbp",
            "fastbp",
            False,
            None,
            "fastbp.Objective (data validated once), called alternately at two θ",
            _prepare_fastbp,
        ),
        Implementation(
            "literal",
            "fastbp, literal kernel",
            False,
            None,
            "fastbp.Objective(kernel='literal'): the seed's loop, one example at a time, serial",
            _prepare_fastbp_literal,
        ),
        Implementation(
            "numpy",
            "NumPy",
            True,
            None,
            "the course's vectorized matrix formulation, plain NumPy (bench/implementations.py)",
            _prepare_numpy,
        ),
        Implementation(
            "sklearn",
            "scikit-learn",
            True,
            "sklearn",
            "MLPClassifier (sigmoid and softmax outputs) or MLPRegressor (identity output), the "
            "case's activation, alpha=λ: _loss_grad_lbfgs on its packed vector",
            _prepare_sklearn,
        ),
        Implementation(
            "torch",
            "PyTorch",
            True,
            "torch",
            "CPU autograd of the output's loss summed over outputs / m + penalty: "
            "binary_cross_entropy_with_logits, cross_entropy on the labels, or mse_loss / 2",
            _prepare_torch,
        ),
        Implementation(
            "jax",
            "JAX",
            True,
            "jax",
            "jax.jit(jax.value_and_grad(loss)) on the CPU, x64 enabled",
            _prepare_jax,
        ),
    )
}
