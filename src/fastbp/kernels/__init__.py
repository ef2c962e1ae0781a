"""fastbp's compiled kernels. Read them in this order:

- ``literal.py``: the seed's loop, one example at a time, and ``normalize`` (step 5): what every
  kernel computes, written plainly;
- ``tiled.py``: the same loop over tiles of 32 examples, in parallel blocks: the fast path;
- ``outputs.py``: its step 2 (δ^(L) and the cost) for each output;
- ``curvature.py``: Hessian-vector products, the R-pass beside the tiled loop (``literal.py``
  writes it one example at a time);
- ``simd.py``: its vector building blocks (register blocks, transposes);
- ``activations.py``: exp, log1p and the activations, without libm calls;
- ``compile.py``: numba options, signatures, the SLP switch, lazy compilation.

Kernels take arrays and scalars only; the Python wrappers (``fastbp._plan``) validate and
convert the data and call :func:`kernel`'s entry points.
"""

from .compile import KERNELS, kernel, prepare_numba, slp_available
from .literal import normalize
from .simd import TILE
from .tiled import block_count, padded_table

__all__ = ["KERNELS", "TILE", "block_count", "kernel", "normalize", "padded_table", "slp_available"]

prepare_numba()
