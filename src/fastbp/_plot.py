"""The training picture of ``fastbp demo`` and ``fastbp train --plot``: the cost curve beside the
first layer's hidden units drawn as images (matplotlib, from the ``demo`` extra)."""

from __future__ import annotations

import math
import os
from typing import Any, Literal

import numpy as np

__all__ = ["plot_training"]


def image_side(n_inputs: int) -> int | None:
    """The side of a square image with ``n_inputs`` pixels, or None when it is not a square."""
    side = math.isqrt(n_inputs)
    return side if side > 1 and side * side == n_inputs else None


def plot_training(
    path: str | os.PathLike[str],
    history: np.ndarray,
    Theta1: np.ndarray,
    *,
    title: str,
    pixel_order: Literal["C", "F"] = "C",
) -> None:
    """Write a PNG: J after every iteration, and beside it (when the inputs are a square image)
    every hidden unit of Θ^(1) as an image of its input weights Θ^(1)[k, 1:].

    ``pixel_order`` is how an image was unrolled into a row of X: "C" row by row (scikit-learn's
    digits), "F" column by column (the course's .mat files, written by Octave).
    Each unit is scaled to its own largest |weight|, grey 0.5 meaning 0, like the course's
    ``displayData``.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    side = image_side(Theta1.shape[1] - 1)
    figure = Figure(figsize=(11, 4.8) if side else (6, 4.5), layout="constrained")
    FigureCanvasAgg(figure)
    figure.suptitle(title, x=0.01, ha="left", fontsize="medium", color="0.3")
    left: Any = figure
    right: Any = None
    if side:
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
    if side:
        units = Theta1[:, 1:]
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
    figure.savefig(path, dpi=110)
