"""Data and model files: the course's .mat files, .npz (data or a saved model) and .csv.

``load`` returns a dict holding whichever of these the file has:

- ``"X"``: (m, n) examples;
- ``"y"``: (m,) int64 labels 0 … K−1 indexing ``"classes"``, or (m, K) float targets (.npz);
- ``"classes"``: the original label of each output unit (the course's 1 … K for .mat files);
- ``"thetas"``: the weight matrices Θ^(1), Θ^(2), …; ``"theta"``: the same, flat (C order);
- ``"layer_sizes"``: the sizes the weights imply; ``"lam"``: λ of a saved model.
"""

from __future__ import annotations

import csv
import math
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._inputs import check_lam, encode_labels, prepare_theta
from ._layout import check_chain, layer_sizes_of, pack, unpack, validate_layer_sizes
from ._workflow import FitResult

__all__ = ["load", "save"]

SUFFIXES = (".mat", ".npz", ".csv")
_THETA_KEY = re.compile(r"Theta(\d+)$")


def load(path: str | os.PathLike[str], *, label: int | str | None = -1) -> dict[str, Any]:
    """Read a data or model file into a dict (see the module docstring for the keys).

    - ``.mat`` (MATLAB/Octave, read with scipy.io): ``X``; ``y`` as the course stores it, an
      (m, 1) column of labels 1 … K, mapped to 0 … K−1 in the same output-unit order (so
      ``classes`` is 1 … K, and 10 stays the course's label of the digit 0); weights ``Theta1``,
      ``Theta2``, …. K is the last weight matrix's row count when the file has weights, else
      max(y).
    - ``.npz``: ``X`` and ``y`` (class labels, encoded as indices into ``classes = np.unique(y)``
      unless the file has ``classes``; or (m, K) float targets), or a model written by
      :func:`save` (``theta``, ``layer_sizes``, ``classes``, ``lam``).
    - ``.csv``: one example per row, comma-separated, an optional header row. ``label`` picks the
      label column by header name or index (default −1, the last); None means no label column.
      Labels are numbers or strings; ``classes = np.unique(labels)``. ``label`` is for .csv only.

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
        return _load_csv(path, label)
    except (ValueError, TypeError) as error:
        message = str(error)
        if message.startswith(f"{path}: "):
            raise
        raise type(error)(f"{path}: {message}") from None


def save(path: str | os.PathLike[str], model: FitResult | Mapping[str, Any]) -> Path:
    """Write a model ``.npz`` with ``theta``, ``layer_sizes``, ``classes`` and ``lam``.

    ``model`` is a :class:`fastbp.FitResult`, or a mapping with ``theta`` and ``layer_sizes``
    (and optionally ``classes`` and ``lam``), such as a dict from :func:`load`. :func:`load` reads
    the file back. Returns the path written.
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
        }
    elif isinstance(model, Mapping):
        missing = [key for key in ("theta", "layer_sizes") if key not in model]
        if missing:
            raise ValueError(f"model lacks {' and '.join(missing)}")
        fields = {key: model.get(key) for key in ("theta", "layer_sizes", "classes", "lam")}
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
    """The course's labels 1 … K (an (m, 1) column) as 0 … K−1, and classes 1 … K."""
    if y.ndim != 2 or 1 not in y.shape or y.size == 0:
        raise ValueError(f"y must be an (m, 1) column of labels 1 … K, got shape {y.shape}")
    y = y.ravel()
    if y.dtype.kind not in "biuf" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
        raise ValueError("y must hold integer labels 1 … K (the course's convention)")
    labels = y.astype(np.int64)
    if K is None:
        K = int(labels.max())
    bad = labels[(labels < 1) | (labels > K)]
    if bad.size:
        raise ValueError(
            f"y must hold the course's labels 1 … {K} (label k is output unit k), found {bad[0]}"
        )
    if K == 1:
        raise ValueError("y holds a single class (label 1): at least 2 are needed")
    return labels - 1, np.arange(1, K + 1, dtype=np.int64)


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


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _load_csv(path: Path, label: int | str | None) -> dict[str, Any]:
    try:
        with path.open(newline="", encoding="utf-8") as file:
            rows = [row for row in csv.reader(file) if row]
    except UnicodeDecodeError as error:
        raise ValueError(f"not a UTF-8 text file ({error})") from None
    if not rows:
        raise ValueError("the file is empty")
    header = None if all(_is_number(field) for field in rows[0]) else rows[0]
    data = rows[1:] if header is not None else rows
    if not data:
        raise ValueError("the file has a header but no examples")
    width = len(rows[0])
    for number, row in enumerate(data, start=2 if header is not None else 1):
        if len(row) != width:
            raise ValueError(f"line {number} has {len(row)} fields, expected {width}")
    names = [field.strip() for field in header] if header is not None else None
    column = _label_column(label, width, names)
    table = np.array(data, dtype=str)
    features = [j for j in range(width) if j != column]
    if not features:
        raise ValueError("the file has no feature columns besides the labels")
    out: dict[str, Any] = {"X": _numbers(table[:, features], header is not None, features, names)}
    if column is not None:
        labels = np.char.strip(table[:, column])
        if all(_is_number(value) for value in labels):
            values = labels.astype(np.float64)
            if not np.all(np.isfinite(values)) or np.any(values != np.round(values)):
                raise ValueError("the label column holds numbers that are not integers")
            labels = values.astype(np.int64)
        out["y"], out["classes"] = encode_labels(labels, "the label column")
    return out


def _label_column(label: int | str | None, width: int, names: list[str] | None) -> int | None:
    if label is None:
        return None
    if isinstance(label, str):
        if names is None:
            raise ValueError(f"label {label!r} names a column, but the file has no header row")
        if label not in names:
            raise ValueError(f"no column named {label!r}; the columns are {', '.join(names)}")
        return names.index(label)
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)):
        raise TypeError(f"label must be a column name, an index or None, got {label!r}")
    if not -width <= label < width:
        raise ValueError(f"label column {label} is out of range for {width} columns")
    return int(label) % width


def _numbers(
    table: np.ndarray, has_header: bool, columns: list[int], names: list[str] | None
) -> np.ndarray:
    """The feature columns as float64; the error names the line and column of a bad entry."""
    try:
        X = table.astype(np.float64)
    except ValueError:
        X = None
    if X is not None and np.all(np.isfinite(X)):
        return X
    for i, row in enumerate(table):
        for j, text in enumerate(row):
            if not _is_number(text) or not math.isfinite(float(text)):
                where = names[columns[j]] if names is not None else f"column {columns[j]}"
                line = i + (2 if has_header else 1)
                raise ValueError(f"line {line}, {where}: {str(text)!r} is not a finite number")
    raise ValueError("the features are not all finite numbers")
