"""What kind of array a user passed: memory-mapped, scipy.sparse, dask, a pandas table.

Recognized without importing scipy, dask or pandas when the user has not: a test of the
array's type against the module only when that module is already loaded, or of its methods.
"""

from __future__ import annotations

import mmap
import sys
from typing import Any

import numpy as np

__all__ = ["dense", "from_table", "is_dask_array", "is_memory_mapped", "is_sparse"]


def is_memory_mapped(a: Any) -> bool:
    """True if ``a`` is, or is a view of, a memory-mapped file (``np.memmap``, ``mmap.mmap``)."""
    while a is not None:
        if isinstance(a, (np.memmap, mmap.mmap)):
            return True
        a = getattr(a, "base", None)
    return False


def is_sparse(a: Any) -> bool:
    """True for a scipy.sparse matrix or array (without importing scipy when it is not loaded)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(a)


def is_dask_array(a: Any) -> bool:
    """True for a dask array (without importing dask when it is not loaded)."""
    dask_array = sys.modules.get("dask.array")
    return dask_array is not None and isinstance(a, dask_array.Array)


def dense(a: Any) -> np.ndarray:
    """``a`` as an ndarray: a scipy.sparse array made dense, anything else through np.asarray."""
    return a.toarray() if is_sparse(a) else np.asarray(a)


def from_table(a: Any, name: str) -> Any:
    """A pandas DataFrame or Series with nullable dtypes (``Int64``, ``Float64``, ``boolean``)
    as a NumPy array of their NumPy dtype; a ValueError naming the first missing value.

    Anything else is returned as it is. pandas is never imported: a table is recognised by its
    ``to_numpy`` and ``isna`` methods.
    """
    if isinstance(a, np.ndarray) or not (hasattr(a, "to_numpy") and hasattr(a, "isna")):
        return a
    missing = np.asarray(a.isna())
    if missing.any():
        where = np.argwhere(missing)[0]
        raise ValueError(
            f"{name} has missing values: {name}[{', '.join(map(str, where))}] is missing; "
            "fill or drop them first"
        )
    dtypes = getattr(a, "dtypes", None)
    dtypes = list(dtypes) if dtypes is not None and np.ndim(dtypes) else [a.dtype]
    numpy_dtypes = [np.dtype(getattr(dtype, "numpy_dtype", dtype)) for dtype in dtypes]
    if any(dtype.kind == "O" for dtype in numpy_dtypes):
        return np.asarray(a)  # strings (labels), or objects: checked by the caller
    return np.asarray(a.to_numpy(dtype=np.result_type(*numpy_dtypes)))
