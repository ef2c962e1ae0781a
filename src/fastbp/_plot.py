"""The training picture of ``fastbp demo`` and ``fastbp train --plot``: the cost curve beside the
first layer's weights, as images of the hidden units or as a heat map (matplotlib, from the
``demo`` extra)."""

from __future__ import annotations

import math
import os
from typing import Any, Literal

import numpy as np

__all__ = ["plot_training", "training_figure"]


MIN_IMAGE_SIDE = 8  # fewer inputs are features, not pixels: iris's 4 are no 2 × 2 image


def image_side(n_inputs: int) -> int | None:
    """The side of a square image of at least 8 × 8 pixels with ``n_inputs`` pixels, or None."""
    side = math.isqrt(n_inputs)
    return side if side >= MIN_IMAGE_SIDE and side * side == n_inputs else None


def plot_training(
    path: str | os.PathLike[str],
    history: np.ndarray,
    Theta1: np.ndarray,
    *,
    title: str,
    pixel_order: Literal["C", "F"] = "C",
) -> None:
    """Write :func:`training_figure` to ``path`` as a PNG."""
    training_figure(history, Theta1, title=title, pixel_order=pixel_order).savefig(path, dpi=110)


def training_figure(
    history: np.ndarray,
    Theta1: np.ndarray,
    *,
    title: str,
    pixel_order: Literal["C", "F"] = "C",
) -> Any:
    """A matplotlib Figure: J after every iteration, and beside it the first layer's weights:
    when the inputs are a square image (at least 8 × 8), every hidden unit of Θ^(1) as an image
    of its input weights Θ^(1)[k, 1:]; otherwise Θ^(1)[:, 1:] as a heat map (hidden units ×
    inputs) with a colour scale.

    ``pixel_order`` is how an image was unrolled into a row of X: "C" row by row (scikit-learn's
    digits), "F" column by column (the course's .mat files, written by Octave).
    Each unit's image is scaled to its own largest |weight|, grey 0.5 meaning 0, like the
    course's ``displayData``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    side = image_side(Theta1.shape[1] - 1)
    figure = Figure(figsize=(11, 4.8), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, x=0.01, ha="left", fontsize="medium", color="0.3")
    panels: Any = figure.subfigures(1, 2, width_ratios=[1.15, 1])
    left, right = panels[0], panels[1]
    curve = left.subplots()
    iterations = np.arange(1, len(history) + 1)
    curve.plot(iterations, history, color="tab:blue", linewidth=1.6)
    curve.set_xlabel("iteration")
    curve.set_ylabel("cost J(Θ)")
    curve.set_title(
        f"Training cost after each iteration (final J = {history[-1]:.4f})"
        if len(history)
        else "Training cost (no iteration finished)"
    )
    curve.grid(True, alpha=0.3)
    units = Theta1[:, 1:]
    if not side:
        _heat_map(right, units)
    else:
        columns = math.ceil(math.sqrt(units.shape[0]))
        rows = math.ceil(units.shape[0] / columns)
        right.suptitle(
            f"The {units.shape[0]} hidden units: input weights Θ(1)[k, 1:] as {side}×{side} images"
        )
        for k, axis in enumerate(right.subplots(rows, columns, squeeze=False).ravel()):
            axis.set_axis_off()
            if k < units.shape[0]:
                scale = np.max(np.abs(units[k])) or 1.0
                image = units[k].reshape((side, side), order=pixel_order) / scale
                axis.imshow(image, cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
    return figure


def _heat_map(panel: Any, units: np.ndarray) -> None:
    """Θ^(1)[:, 1:] as an image, one row per hidden unit, one column per input, on a diverging
    colour scale symmetric about 0, with its colour bar."""
    axis = panel.subplots()
    limit = float(np.max(np.abs(units))) or 1.0
    rows, columns = units.shape
    image = axis.imshow(  # the extent centres pixel (k, j) on (j + 1, k + 1): ticks count from 1
        units,
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        aspect="auto",
        interpolation="nearest",
        extent=(0.5, columns + 0.5, rows + 0.5, 0.5),
    )
    axis.set_xlabel(f"input feature (1 … {units.shape[1]})")
    axis.set_ylabel(f"hidden unit (1 … {units.shape[0]})")
    axis.set_title("First-layer weights Θ(1)[k, j] (bias column left out)")
    panel.colorbar(image, ax=axis, label="weight")
