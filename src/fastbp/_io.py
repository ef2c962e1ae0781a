"""Data and model files: the course's .mat files, .npz (data or a saved model) and .csv.

``load`` returns a dict holding whichever of these the file has:

- ``"X"``: (m, n) examples;
- ``"y"``: (m,) int64 labels 0 … K−1 indexing ``"classes"``, or (m, K) float targets (.npz);
- ``"classes"``: the original label of each output unit (the course's 1 … K for .mat files);
- ``"thetas"``: the weight matrices Θ^(1), Θ^(2), …; ``"theta"``: the same, flat (C order);
- ``"layer_sizes"``: the sizes the weights imply; ``"lam"``: λ of a saved model;
- ``"activation"`` (a tuple, one name per hidden layer), ``"output"``: the network's functions,
  for any weights (sigmoid for the course's files and for models saved before fastbp recorded
  them); ``"y_ndim"``: the dimensions of a saved model's training y, when recorded;
- ``"x_mean"``, ``"x_scale"``: a saved model's feature standardization (``fit(..., scale=True)``);
- ``"sample_weight"``: a .csv file's column of sample weights (``sample_weight=``).
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
from ._layout import (
    check_chain,
    layer_sizes_of,
    names_of,
    network,
    pack,
    unpack,
    validate_layer_sizes,
)
from ._model import FitResult
from ._scaling import check_scaling
from ._values import check_lam, encode_labels, prepare_theta

__all__ = ["load", "save"]

SUFFIXES = (".mat", ".npz", ".csv")
MODEL_KEYS = (
    "theta",
    "layer_sizes",
    "classes",
    "lam",
    "x_mean",
    "x_scale",
    "activation",
    "output",
    "y_ndim",
)
_THETA_KEY = re.compile(r"Theta(\d+)$")


def load(
    path: str | os.PathLike[str],
    *,
    label: int | str | None = "auto",
    n_features: int | None = None,
    classes: Any = None,
    sample_weight: int | str | None = None,
    regression: bool = False,
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
      :func:`save` (``theta``, ``layer_sizes``, ``classes``, ``lam``, ``x_mean``, ``x_scale``,
      ``activation``, ``output``, ``y_ndim``; a model saved before ``activation`` and ``output``
      were recorded loads as sigmoid throughout, what it was trained as).
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
      ``sample_weight``: a column of sample weights (a header name or an index from 0, like
      ``label``; numbers ≥ 0, not all 0), returned as ``"sample_weight"`` and left out of the
      features and of the label rule; indices count every column of the file. ``label``,
      ``n_features``, ``classes`` and ``sample_weight`` are for .csv only.

    ``regression=True`` reads y as numbers to fit (the identity output), not as class labels:
    the .csv label column (found by its header name or given by ``label``; never guessed from
    its values) as float64, an .npz's y or a .mat's y as they are (float64; a .mat's (m, 1)
    column as (m,)), without ``classes``.

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
        if sample_weight is not None and suffix != ".csv":
            raise ValueError(
                f"sample_weight names a .csv column, but this is a {suffix} file: pass the "
                "weights to fastbp.fit yourself"
            )
        if suffix == ".mat":
            return _load_mat(path, regression)
        if suffix == ".npz":
            return _load_npz(path, regression)
        return load_csv(path, label, n_features, classes, sample_weight, regression)
    except (ValueError, TypeError) as error:
        message = str(error)
        if message.startswith(f"{path}: "):
            raise
        raise type(error)(f"{path}: {message}") from None


def save(path: str | os.PathLike[str], model: FitResult | Mapping[str, Any]) -> Path:
    """Write a model ``.npz`` with ``theta``, ``layer_sizes``, ``classes``, ``lam``, the
    network's ``activation`` (one name per hidden layer) and ``output``, ``y_ndim`` (the
    training y's dimensions) and the feature standardization ``x_mean``, ``x_scale`` of a model
    trained with ``scale=True``.

    ``model`` is a :class:`fastbp.FitResult`, or a mapping with ``theta`` and ``layer_sizes``
    (and optionally ``classes``, ``lam``, ``x_mean``, ``x_scale``, ``activation``, ``output``
    (sigmoid when absent or None) and ``y_ndim``), such as a dict from :func:`load`.
    :func:`load` reads the file back. Returns the path written.
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
            "activation": model.activation,
            "output": model.output,
            "y_ndim": model.y_ndim,
        }
    elif isinstance(model, Mapping):
        missing = [key for key in ("theta", "layer_sizes") if key not in model]
        if missing:
            raise ValueError(f"model lacks {' and '.join(missing)}")
        fields = {key: model.get(key) for key in MODEL_KEYS}
    else:
        raise TypeError(f"model must be a FitResult or a mapping, got {type(model).__name__}")
    activation = "sigmoid" if fields["activation"] is None else fields["activation"]
    output = "sigmoid" if fields["output"] is None else fields["output"]
    sizes, functions = network(fields["layer_sizes"], activation, output)
    hidden, output = names_of(functions)
    arrays: dict[str, np.ndarray] = {
        "theta": prepare_theta(fields["theta"], sizes, None),
        "layer_sizes": np.array(sizes, dtype=np.int64),
        "activation": np.array(hidden, dtype=str).reshape(len(hidden)),
        "output": np.array(output),
    }
    if fields["y_ndim"] is not None:
        arrays["y_ndim"] = np.array(_y_ndim(fields["y_ndim"], sizes, output), dtype=np.int64)
    if fields["classes"] is not None:
        classes = np.asarray(fields["classes"])
        if classes.dtype.kind == "O":
            raise TypeError("classes must be numbers or strings, not Python objects")
        if output == "identity":
            raise ValueError("a model with output='identity' is a regressor: it has no classes")
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
    sizes, functions = network(layer_sizes_of(thetas))  # the course's: all sigmoid
    hidden, output = names_of(functions)
    return {
        "thetas": unpack(theta, sizes),
        "theta": theta,
        "layer_sizes": sizes,
        "activation": hidden,
        "output": output,
    }


def _functions(arrays: Mapping[str, np.ndarray], layer_sizes: tuple[int, ...]) -> dict[str, Any]:
    """A saved model's ``activation`` (a tuple) and ``output``, checked against its layers; a
    model saved before fastbp recorded them is all sigmoid."""
    activation: Any = "sigmoid"
    if "activation" in arrays:
        names = arrays["activation"]
        if names.ndim != 1 or names.dtype.kind != "U":
            raise ValueError(f"activation must be a 1-D array of names, got {names!r}")
        activation = names.tolist()
    output: Any = "sigmoid"
    if "output" in arrays:
        name = arrays["output"]
        if name.ndim != 0 or name.dtype.kind != "U":
            raise ValueError(f"output must be a name, got {name!r}")
        output = str(name)
    hidden, output = names_of(network(layer_sizes, activation, output)[1])
    out: dict[str, Any] = {"activation": hidden, "output": output}
    if "y_ndim" in arrays:
        y_ndim = arrays["y_ndim"]
        if y_ndim.ndim != 0 or y_ndim.dtype.kind not in "iu":
            raise ValueError(f"y_ndim must be an integer, got {y_ndim!r}")
        out["y_ndim"] = _y_ndim(int(y_ndim), layer_sizes, output)
    return out


def _y_ndim(y_ndim: Any, layer_sizes: tuple[int, ...], output: str) -> int:
    """A model's ``y_ndim`` checked: 1 (a label vector, or one target per example) or 2."""
    if isinstance(y_ndim, bool) or y_ndim not in (1, 2):
        raise ValueError(f"y_ndim must be 1 or 2, got {y_ndim!r}")
    if y_ndim == 1 and output == "identity" and layer_sizes[-1] != 1:
        raise ValueError(f"y_ndim 1 needs one output unit, but layer_sizes are {layer_sizes}")
    return int(y_ndim)


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


def _load_mat(path: Path, regression: bool) -> dict[str, Any]:
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
    if "y" in contents and regression:
        out["y"] = _regression_targets(np.asarray(contents["y"]), column=True)
    elif "y" in contents:
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


def _regression_targets(y: np.ndarray, column: bool = False) -> np.ndarray:
    """y as float64 regression targets, (m,) or (m, K); ``column``: an (m, 1) y (what a .mat
    file holds for a vector) as (m,)."""
    if y.dtype.kind not in "biuf" or y.ndim not in (1, 2):
        raise ValueError(
            f"regression targets y must be real numbers of shape (m,) or (m, K), got {y.dtype} "
            f"of shape {y.shape}"
        )
    if column and y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    return y.astype(np.float64)


def _load_npz(path: Path, regression: bool) -> dict[str, Any]:
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
        out.update(_functions(arrays, sizes))
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
    if "y" in arrays and regression:
        out["y"] = _regression_targets(arrays["y"])
    elif "y" in arrays:
        out.update(_npz_targets(arrays["y"], out.get("classes")))
    if not out:
        raise ValueError(
            "no X, y or model (theta, layer_sizes) in the file (it has "
            f"{', '.join(sorted(arrays)) or 'nothing'})"
        )
    if "layer_sizes" in out and "classes" in out:
        K = out["layer_sizes"][-1]
        if out["output"] == "identity":
            raise ValueError("a model with output='identity' is a regressor: it has no classes")
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
