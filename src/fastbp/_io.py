"""Data and model files: the course's .mat files, .npz (data or a saved model) and .csv.

``load`` returns a dict holding whichever of these the file has:

- ``"X"``: (m, n) examples;
- ``"y"``: (m,) int64 labels 0 … K−1 indexing ``"classes"``, or (m, K) float targets (.npz);
- ``"classes"``: the original label of each output unit (the course's 1 … K for .mat files);
- ``"thetas"``: the weight matrices Θ^(1), Θ^(2), …; ``"theta"``: the same, flat (C order);
- ``"layer_sizes"``: the sizes the weights imply; ``"lam"``: λ of a saved model;
- ``"x_mean"``, ``"x_scale"``: a saved model's feature standardization (``fit(..., scale=True)``).
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._csv import load_csv
from ._inputs import check_lam, encode_labels, prepare_theta
from ._layout import check_chain, layer_sizes_of, pack, unpack, validate_layer_sizes
from ._scaling import check_scaling
from ._workflow import FitResult

__all__ = ["load", "save"]

SUFFIXES = (".mat", ".npz", ".csv")
MODEL_KEYS = ("theta", "layer_sizes", "classes", "lam", "x_mean", "x_scale")
_THETA_KEY = re.compile(r"Theta(\d+)$")


def load(
    path: str | os.PathLike[str],
    *,
    label: int | str | None = "auto",
    n_features: int | None = None,
    classes: Any = None,
) -> dict[str, Any]:
    """Read a data or model file into a dict (see the module docstring for the keys).

    - ``.mat`` (MATLAB/Octave, read with scipy.io): ``X``; ``y`` as the course stores it, an
      (m, 1) column of labels 1 … K, mapped to 0 … K−1 in the same output-unit order (so
      ``classes`` is 1 … K, and 10 stays the course's label of the digit 0); weights ``Theta1``,
      ``Theta2``, …. K is the last weight matrix's row count when the file has weights, else
      max(y). Labels that include 0 (and a file without weights) are taken as 0 … K−1, classes
      0 … max(y).
    - ``.npz``: ``X`` and ``y`` (class labels, encoded as indices into ``classes = np.unique(y)``
      unless the file has ``classes``; or (m, K) float targets), or a model written by
      :func:`save` (``theta``, ``layer_sizes``, ``classes``, ``lam``, ``x_mean``, ``x_scale``).
    - ``.csv``: one example per row, an optional header row; the delimiter (comma, semicolon,
      tab or ``|``) is detected. ``label`` picks the label column: a header name, an index
      (from 0; −1 is the last) or None (no label column). The default, ``"auto"``, takes the
      column whose header is ``label``, ``labels``, ``target``, ``class`` or ``y`` (any case);
      without one, the one of the first and the last column that holds words (not numbers),
      else whichever of the two looks like labels (integers with 2 … max(10, m/10) distinct
      values), and raises a ValueError asking for ``label`` when both do or neither does;
      ``"label_column"`` then describes the column taken. ``n_features``: when the file has
      exactly this many columns, it has no label column. ``classes``: the labels a model knows;
      of the first and the last column, the only one whose values are all among them is taken
      (before the rule above). Labels are numbers or strings; ``classes = np.unique(labels)``.
      ``label``, ``n_features`` and ``classes`` are for .csv only.

    Raises FileNotFoundError for a missing file and ValueError (naming the file) for an unknown
    suffix, an unreadable file, a missing key, a wrong shape or a bad label.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(
            f"{path}: unknown file type {path.suffix or '(no suffix)'!r}; fastbp reads "
            + ", ".join(SUFFIXES)
        )
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        if suffix == ".mat":
            return _load_mat(path)
        if suffix == ".npz":
            return _load_npz(path)
        return load_csv(path, label, n_features, classes)
    except (ValueError, TypeError) as error:
        message = str(error)
        if message.startswith(f"{path}: "):
            raise
        raise type(error)(f"{path}: {message}") from None


def save(path: str | os.PathLike[str], model: FitResult | Mapping[str, Any]) -> Path:
    """Write a model ``.npz`` with ``theta``, ``layer_sizes``, ``classes`` and ``lam``, and the
    feature standardization ``x_mean``, ``x_scale`` of a model trained with ``scale=True``.

    ``model`` is a :class:`fastbp.FitResult`, or a mapping with ``theta`` and ``layer_sizes``
    (and optionally ``classes``, ``lam``, ``x_mean`` and ``x_scale``), such as a dict from
    :func:`load`. :func:`load` reads the file back. Returns the path written.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"{path}: a model is saved as .npz, got suffix {path.suffix!r}")
    if isinstance(model, FitResult):
        fields: dict[str, Any] = {
            "theta": model.theta,
            "layer_sizes": model.layer_sizes,
            "classes": model.classes,
            "lam": model.lam,
            "x_mean": model.x_mean,
            "x_scale": model.x_scale,
        }
    elif isinstance(model, Mapping):
        missing = [key for key in ("theta", "layer_sizes") if key not in model]
        if missing:
            raise ValueError(f"model lacks {' and '.join(missing)}")
        fields = {key: model.get(key) for key in MODEL_KEYS}
    else:
        raise TypeError(f"model must be a FitResult or a mapping, got {type(model).__name__}")
    sizes = validate_layer_sizes(fields["layer_sizes"])
    arrays: dict[str, np.ndarray] = {
        "theta": prepare_theta(fields["theta"], sizes, None),
        "layer_sizes": np.array(sizes, dtype=np.int64),
    }
    if fields["classes"] is not None:
        classes = np.asarray(fields["classes"])
        if classes.dtype.kind == "O":
            raise TypeError("classes must be numbers or strings, not Python objects")
        arrays["classes"] = classes
    if fields["lam"] is not None:
        arrays["lam"] = np.array(check_lam(fields["lam"]))
    scaling = check_scaling(fields["x_mean"], fields["x_scale"], sizes[0])
    if scaling is not None:
        arrays["x_mean"], arrays["x_scale"] = scaling
    with path.open("wb") as file:
        np.savez(file, allow_pickle=False, **arrays)
    return path


def _weights(thetas: list[np.ndarray], names: list[str]) -> dict[str, Any]:
    """``thetas``, ``theta`` and ``layer_sizes`` of a chain of weight matrices."""
    for name, matrix in zip(names, thetas, strict=True):
        if matrix.ndim != 2 or matrix.dtype.kind not in "biuf":
            raise ValueError(
                f"{name} must be a real matrix, got {matrix.dtype} of shape {matrix.shape}"
            )
    check_chain(thetas, names)
    theta = pack(thetas)
    sizes = validate_layer_sizes(layer_sizes_of(thetas))
    return {"thetas": unpack(theta, sizes), "theta": theta, "layer_sizes": sizes}


def _check_examples(out: dict[str, Any]) -> dict[str, Any]:
    """Check that X, y and the weights agree with each other."""
    X, y = out.get("X"), out.get("y")
    if X is not None:
        if X.ndim != 2 or X.dtype.kind not in "biuf":
            raise ValueError(f"X must be a real (m, n) matrix, got {X.dtype} of shape {X.shape}")
        if y is not None and y.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]} labels")
        if "layer_sizes" in out and X.shape[1] != out["layer_sizes"][0]:
            raise ValueError(
                f"X has {X.shape[1]} columns but the weights take {out['layer_sizes'][0]} inputs"
            )
    return out


def _load_mat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        contents = loadmat(path)
    except NotImplementedError as error:  # MATLAB v7.3 (HDF5)
        raise ValueError(f"cannot read MATLAB v7.3 files ({error}); save with -v7") from None
    except (MatReadError, ValueError, OSError, EOFError) as error:
        raise ValueError(f"not a readable MATLAB .mat file ({error})") from None
    keys = sorted(key for key in contents if not key.startswith("__"))
    out: dict[str, Any] = {}
    numbers = sorted(int(match[1]) for key in keys if (match := _THETA_KEY.match(key)))
    if numbers:
        expected = list(range(1, len(numbers) + 1))
        if numbers != expected:
            missing = sorted(set(range(1, max(numbers) + 1)) - set(numbers))
            raise ValueError(
                f"weights must be Theta1, Theta2, … without gaps; Theta{missing[0]} is missing"
            )
        names = [f"Theta{n}" for n in numbers]
        out.update(_weights([np.asarray(contents[name]) for name in names], names))
    if "X" in contents:
        out["X"] = contents["X"]
    if "y" in contents:
        K = out["layer_sizes"][-1] if "layer_sizes" in out else None
        out["y"], out["classes"] = _course_labels(np.asarray(contents["y"]), K)
    if not out:
        raise ValueError(f"no X, y or Theta1, Theta2, … in the file (it has {', '.join(keys)})")
    return _check_examples(out)


def _course_labels(y: np.ndarray, K: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The course's labels 1 … K (an (m, 1) column) as 0 … K−1, and classes 1 … K; labels
    0 … K−1 (some 0, and no weights to fix K) as they are, and classes 0 … K−1."""
    if y.ndim != 2 or 1 not in y.shape or y.size == 0:
        raise ValueError(f"y must be an (m, 1) column of labels 1 … K, got shape {y.shape}")
    y = y.ravel()
    if y.dtype.kind not in "biuf" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
        raise ValueError("y must hold integer labels 1 … K (the course's convention)")
    labels = y.astype(np.int64)
    first = 0 if K is None and labels.min() == 0 else 1  # 0-based labels, when nothing fixes K
    if K is None:
        K = int(labels.max()) + 1 - first
    bad = labels[(labels < first) | (labels > K - 1 + first)]
    if bad.size:
        fix = " (the file's weights number classes from 1: add 1 to y)" if bad[0] == 0 else ""
        raise ValueError(
            f"y must hold the course's labels 1 … {K} (label k is output unit k), "
            f"found {bad[0]}{fix}"
        )
    if K == 1:
        raise ValueError(f"y holds a single class (label {first}): at least 2 are needed")
    return labels - first, np.arange(first, K + first, dtype=np.int64)


def _load_npz(path: Path) -> dict[str, Any]:
    if not zipfile.is_zipfile(path):
        raise ValueError("not a .npz file (np.savez writes a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as contents:
            arrays = {key: contents[key] for key in contents.files}
    except ValueError:
        raise ValueError("holds pickled Python objects, which fastbp does not load") from None
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"not a readable .npz file ({error})") from None
    out: dict[str, Any] = {}
    if "theta" in arrays or "layer_sizes" in arrays:
        if "theta" not in arrays or "layer_sizes" not in arrays:
            raise ValueError("a model needs both theta and layer_sizes")
        sizes = arrays["layer_sizes"]
        if sizes.ndim != 1 or sizes.dtype.kind not in "iu":
            raise ValueError(f"layer_sizes must be a 1-D integer array, got {sizes!r}")
        sizes = validate_layer_sizes(tuple(int(s) for s in sizes))
        theta = prepare_theta(arrays["theta"], sizes, None)
        out.update(theta=theta, layer_sizes=sizes, thetas=unpack(theta, sizes))
    if "lam" in arrays:
        out["lam"] = check_lam(arrays["lam"].item() if arrays["lam"].size == 1 else arrays["lam"])
    if "x_mean" in arrays or "x_scale" in arrays:
        inputs = out["layer_sizes"][0] if "layer_sizes" in out else None
        scaling = check_scaling(arrays.get("x_mean"), arrays.get("x_scale"), inputs)
        if scaling is not None:  # both present: checked
            out["x_mean"], out["x_scale"] = scaling
    if "classes" in arrays:
        classes = arrays["classes"]
        if classes.ndim != 1 or len(classes) < 2:
            raise ValueError(f"classes must be a 1-D array of 2 or more labels, got {classes!r}")
        out["classes"] = classes
    if "X" in arrays:
        out["X"] = arrays["X"]
    if "y" in arrays:
        out.update(_npz_targets(arrays["y"], out.get("classes")))
    if not out:
        raise ValueError(
            "no X, y or model (theta, layer_sizes) in the file (it has "
            f"{', '.join(sorted(arrays)) or 'nothing'})"
        )
    if "layer_sizes" in out and "classes" in out:
        K = out["layer_sizes"][-1]
        if len(out["classes"]) != (2 if K == 1 else K):
            raise ValueError(f"{len(out['classes'])} classes do not match K = {K} output units")
    return _check_examples(out)


def _npz_targets(y: np.ndarray, classes: np.ndarray | None) -> dict[str, Any]:
    if y.ndim == 2:
        if y.dtype.kind not in "biuf":
            raise ValueError(f"float targets y must be real numbers, got {y.dtype}")
        return {"y": y}
    if classes is None:
        indices, classes = encode_labels(y)
        return {"y": indices, "classes": classes}
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise ValueError(f"with classes, y must hold indices 0 … {len(classes) - 1}")
    if y.size and (y.min() < 0 or y.max() >= len(classes)):
        raise ValueError(f"y must hold indices 0 … {len(classes) - 1} into classes")
    return {"y": y.astype(np.int64)}
