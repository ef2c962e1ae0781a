"""Reading a .csv data file for :func:`fastbp.load`: the delimiter, the header row, the label
column (given, or found by the rule of ``label="auto"``), a sample weight column (given) and the
features as float64.

Error messages count lines and columns from 1 and name the option that settles a doubt
(``--label``); the caller prefixes the file's name.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from ._values import check_sample_weight, encode_labels

__all__ = ["load_csv"]

DELIMITERS = ",;\t|"  # detected
LABEL_NAMES = ("label", "labels", "target", "class", "y")  # headers taken as the label column
LABEL_HINT = "name the label column with --label COLUMN (label= in fastbp.load)"


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_rows(path: Path) -> list[list[str]]:
    """The file's non-empty rows, split at the delimiter that csv.Sniffer finds among
    ``DELIMITERS`` in its first lines (a comma when it finds none: one column)."""
    try:
        with path.open(newline="", encoding="utf-8") as file:
            sample = file.read(64 * 1024)
            file.seek(0)
            try:
                dialect: Any = csv.Sniffer().sniff(sample, delimiters=DELIMITERS)
            except csv.Error:
                dialect = csv.excel
            return [row for row in csv.reader(file, dialect) if row]
    except UnicodeDecodeError as error:
        raise ValueError(f"not a UTF-8 text file ({error})") from None


def _is_header(rows: list[list[str]]) -> bool:
    """Whether the first row names the columns: a field that is not a number above a number
    (a column of numbers), or, in a one-row file, any field that is not a number."""
    if len(rows) == 1:
        return not all(_is_number(field) for field in rows[0])
    return any(
        not _is_number(first) and _is_number(second)
        for first, second in zip(rows[0], rows[1], strict=False)
    )


def load_csv(
    path: Path,
    label: int | str | None,
    n_features: int | None,
    classes: Any,
    sample_weight: int | str | None = None,
    regression: bool = False,
) -> dict[str, Any]:
    """``X``, and with a label column ``y``, ``classes`` and ``label_column`` (``regression``:
    ``y`` float64 targets, no classes), with a ``sample_weight`` column ``sample_weight`` and
    ``sample_weight_column``: the arguments and the rule as :func:`fastbp.load` documents them.
    Indices count the file's columns, the weight column included."""
    rows = _read_rows(path)
    if not rows:
        raise ValueError("the file is empty")
    header = rows[0] if _is_header(rows) else None
    data = rows[1:] if header is not None else rows
    if not data:
        raise ValueError("the file has a header but no examples")
    width = len(rows[0])
    for number, row in enumerate(data, start=2 if header is not None else 1):
        if len(row) != width:
            raise ValueError(f"line {number} has {len(row)} fields, expected {width}")
    names = [field.strip() for field in header] if header is not None else None
    table = np.char.strip(np.array(data, dtype=str))
    weighted = None
    if sample_weight is not None:
        weighted = _given_column(sample_weight, width, names, "sample_weight")
    if n_features is not None and width - (weighted is not None) == n_features:
        label = None
    column = _label_column(label, table, names, classes, weighted, regression)
    if column is not None and column == weighted:
        raise ValueError(
            f"the label column and the sample weight column are the same "
            f"({_describe(column, width, names)}): give --label another column"
        )
    features = [j for j in range(width) if j not in (column, weighted)]
    if not features:
        raise ValueError("the file has no feature columns besides the labels")
    has_header = header is not None
    out: dict[str, Any] = {"X": _numbers(table[:, features], has_header, features, names)}
    if weighted is not None:
        weights = _numbers(table[:, [weighted]], has_header, [weighted], names)[:, 0]
        where = _describe(weighted, width, names, "--sample-weight")
        try:
            out["sample_weight"] = check_sample_weight(weights, len(weights))
        except ValueError as error:
            raise ValueError(f"the sample weight column ({where}): {error}") from None
        out["sample_weight_column"] = where
    if column is None:
        return out
    out["label_column"] = _describe(column, width, names)
    if regression:
        out["y"] = _numbers(table[:, [column]], has_header, [column], names)[:, 0]
        return out
    labels = _label_values(table[:, column])
    if labels is None:
        raise ValueError(
            f"the label column ({out['label_column']}) holds numbers that are not integers: it "
            f"looks like a feature (or regression targets: --output identity); {LABEL_HINT}"
        )
    out["y"], out["classes"] = encode_labels(labels, "the label column")
    return out


def _describe(column: int, width: int, names: list[str] | None, option: str = "--label") -> str:
    """A column as messages name it: counted from 1, with its header name and the index that
    ``option`` (--label, --sample-weight) takes."""
    name = f" {names[column]!r}" if names is not None else ""
    index = -1 if column == width - 1 else column
    return f"column {column + 1}{name}, {option} {index}"


def _as_numbers(values: np.ndarray) -> np.ndarray | None:
    """A column of text as float64, or None when some entry is not a number (one pass in C)."""
    try:
        return values.astype(np.float64)
    except ValueError:
        return None


def _label_values(values: np.ndarray) -> np.ndarray | None:
    """A column's labels: int64 for integers, the strings as they are; None for numbers that are
    not all integers (a feature)."""
    numbers = _as_numbers(values)
    if numbers is None:
        return values
    if not np.all(np.isfinite(numbers)) or np.any(numbers != np.round(numbers)):
        return None
    return numbers.astype(np.int64)


def _looks_like_labels(values: np.ndarray) -> bool:
    """Integers (or strings) with 2 … max(10, m/10) distinct values."""
    labels = _label_values(values)
    if labels is None:
        return False
    distinct = len(np.unique(labels))
    return 2 <= distinct <= max(10, len(values) // 10)


def _label_column(
    label: int | str | None,
    table: np.ndarray,
    names: list[str] | None,
    classes: Any,
    weighted: int | None,
    regression: bool,
) -> int | None:
    """The label column's index in the file: ``label`` given, or found by the rule of
    ``label="auto"`` among the columns other than the sample weights' (``weighted``)."""
    if label is None:
        return None
    if not (isinstance(label, str) and label == "auto" and (names is None or "auto" not in names)):
        return _given_column(label, table.shape[1], names, "label")
    return _auto_label_column(table, names, classes, regression, weighted)


def _given_column(key: int | str, width: int, names: list[str] | None, what: str) -> int:
    """The index of the column that ``key`` (a header name, or an index from 0, negative from
    the end) names; errors name the argument ``what`` (label, sample_weight)."""
    if isinstance(key, str):
        if names is None:
            raise ValueError(f"{what} {key!r} names a column, but the file has no header row")
        if key not in names:
            raise ValueError(f"no column named {key!r}; the columns are {', '.join(names)}")
        return names.index(key)
    if isinstance(key, bool) or not isinstance(key, (int, np.integer)):
        choices = (
            "a column name, an index or None" if what == "label" else "a column name or an index"
        )
        raise TypeError(f"{what} must be {choices}, got {key!r}")
    if not -width <= key < width:
        raise ValueError(f"{what} column {key} is out of range for {width} columns")
    return int(key) % width


def _auto_label_column(
    table: np.ndarray,
    names: list[str] | None,
    classes: Any,
    regression: bool,
    weighted: int | None = None,
) -> int:
    """The label column by the rule of :func:`load`'s ``label="auto"``, among the columns other
    than the sample weights' (``weighted``); regression targets only by a header name."""
    width = table.shape[1]
    candidates = [j for j in range(width) if j != weighted]
    if names is not None:
        named = [j for j in candidates if names[j].lower() in LABEL_NAMES]
        if len(named) == 1:
            return named[0]
        if named:
            columns = ", ".join(repr(names[j]) for j in named)
            raise ValueError(f"the columns {columns} could each be the labels; {LABEL_HINT}")
    if regression:
        raise ValueError(
            "no column is named label, labels, target, class or y, and a column of regression "
            f"targets is not guessed; {LABEL_HINT}"
        )
    first, last = candidates[0], candidates[-1]
    if first == last:
        return last
    words = [j for j in (first, last) if _as_numbers(table[:, j]) is None]
    if len(words) == 1:  # a column of words is no feature: it is the labels
        return words[0]
    if classes is not None:  # a model's classes settle it when one column holds only them
        known = [j for j in (first, last) if _among(table[:, j], np.asarray(classes))]
        if len(known) == 1:
            return known[0]
    first_ok, last_ok = _looks_like_labels(table[:, first]), _looks_like_labels(table[:, last])
    if first_ok and last_ok:
        raise ValueError(
            f"the first column ({_describe(first, width, names)}) and the last "
            f"({_describe(last, width, names)}) both look like labels; {LABEL_HINT}"
        )
    if first_ok or last_ok:
        return first if first_ok else last
    raise ValueError(
        f"neither the first column ({_describe(first, width, names)}: "
        f"{_why_not(table[:, first])}) nor the last ({_describe(last, width, names)}: "
        f"{_why_not(table[:, last])}) looks like labels; {LABEL_HINT}"
    )


def _among(values: np.ndarray, classes: np.ndarray) -> bool:
    """Whether every value of a column is one of ``classes`` (compared as numbers or text)."""
    labels = _label_values(values)
    if labels is None:
        return False
    if labels.dtype.kind in "iu" and classes.dtype.kind in "biuf":
        return bool(np.isin(labels, classes).all())
    return bool(np.isin(labels.astype(str), classes.astype(str)).all())


def _why_not(values: np.ndarray) -> str:
    """Why a column does not look like labels (see :func:`_looks_like_labels`)."""
    labels = _label_values(values)
    if labels is None:
        return "numbers that are not integers"
    return f"{len(np.unique(labels))} distinct values in {len(values)} rows"


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
                where = names[columns[j]] if names is not None else f"column {columns[j] + 1}"
                line = i + (2 if has_header else 1)
                raise ValueError(f"line {line}, {where}: {str(text)!r} is not a finite number")
    raise ValueError("the features are not all finite numbers")
