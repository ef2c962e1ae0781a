"""How the kernels compile: numba options, the target CPU, one signature per dtype, the SLP switch,
numba's disk cache and lazy loading.

The target is numba's: ``NUMBA_CPU_NAME`` / ``NUMBA_CPU_FEATURES`` when set, else this CPU.
:data:`ISA` ("avx512" or "avx2") picks the register blocks (``simd.py``), and every kernel
function is compiled with :data:`KERNEL_FEATURES`, the target's features and no gathers.

Every entry point compiles on first use, one dtype and one entry point at a time (a float64 user
never waits for float32 kernels, nor a small problem for the parallel kernel), from numba's disk
cache when it holds them (:class:`KernelCache`). The parallel entry point is the serial one's
source compiled with ``parallel``: a twin function under its own name, since numba's cache keys
a function by its name and signature, not by its options.
"""

from __future__ import annotations

import hashlib
import platform
import threading
import types as pytypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba import types
from numba.core.caching import FunctionCache
from numba.core.compiler_lock import global_compiler_lock
from numba.extending import intrinsic

__all__ = [
    "ISA",
    "KERNELS",
    "OPTIONS",
    "OVERLOAD_OPTIONS",
    "compact_code",
    "jit",
    "kernel",
    "kernel_features",
    "slp_available",
]

KERNELS = ("tiled", "literal")

# error_model="numpy": no zero-division branch in float divisions, so the sigmoid loops vectorize;
# fastmath={"contract"} alone: FMAs, but every sum in the order written (docs/decisions.md#options).
OVERLOAD_OPTIONS: Any = {"error_model": "numpy", "fastmath": {"contract"}}
OPTIONS: dict[str, Any] = {**OVERLOAD_OPTIONS, "nogil": True}  # cached by ``jit``


def target_features() -> str:
    """The CPU features numba compiles for: ``NUMBA_CPU_FEATURES`` when set, else this CPU's."""
    from numba.core import config
    from numba.core.codegen import get_host_cpu_features

    features = getattr(config, "CPU_FEATURES", None)  # NUMBA_CPU_FEATURES
    return str(features if features is not None else get_host_cpu_features())


ISA = "avx512" if "+avx512f" in target_features().split(",") else "avx2"

# LLVM vectorizes with gathers and scatters where AVX-512 makes them legal, and they are many
# times slower than contiguous loads (docs/decisions.md#no-gathers): every kernel function is
# compiled with these features on top of the target's.
# (x86 only: another target's LLVM would warn about features it does not know, and ignore them)
KERNEL_FEATURES = (
    ",".join(
        [target_features(), "+prefer-no-gather", "+prefer-no-scatter"]
        + (["-prefer-256-bit"] if ISA == "avx512" else [])
    )
    if platform.machine().lower() in ("x86_64", "amd64")
    else ""
)


@intrinsic
def kernel_features(typingctx):
    """Give the calling function :data:`KERNEL_FEATURES` (an LLVM "target-features" attribute,
    which replaces the target machine's for that function). Every jit function of the kernels
    calls it first; inlining needs the caller's features to include the callee's."""

    def codegen(context, builder, signature, args):
        if KERNEL_FEATURES:  # llvmlite checks attribute names; this one goes in as it is printed
            set.add(builder.function.attributes, f'"target-features"="{KERNEL_FEATURES}"')
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def compact_code(typingctx):
    """Compile the calling function for size (LLVM's ``optsize``: vectorized, not unrolled) and
    never inline it: for code off the sigmoid path, whose cold compile counts more than its
    speed (docs/decisions.md#compact-outputs)."""

    def codegen(context, builder, signature, args):
        builder.function.attributes.add("optsize")
        builder.function.attributes.add("noinline")
        return context.get_dummy_value()

    return types.none(), codegen


# Everything compiled into a kernel: this package and the layer table's columns.
SOURCES = (*sorted(Path(__file__).parent.glob("*.py")), Path(__file__).parents[1] / "_layout.py")


def _sources_digest() -> str:
    digest = hashlib.sha256()
    for path in SOURCES:
        digest.update(path.read_bytes())
    return digest.hexdigest()


class KernelCache(FunctionCache):
    """numba's on-disk cache, keyed by the kernels' sources too.

    numba invalidates a cached function when the file that defines it changes, not when a
    function it calls from another file does; a kernel compiles code from every file of this
    package, so its cache entries are keyed by all of them (``SOURCES``).
    """

    digest = _sources_digest()

    def _index_key(self, sig: Any, codegen: Any) -> Any:
        return (*super()._index_key(sig, codegen), self.digest)


def jit(function: Callable[..., Any] | None = None, **options: Any) -> Any:
    """``numba.njit`` with the kernels' options and :class:`KernelCache`: the decorator of every
    compiled kernel function (``@jit`` or ``@jit(parallel=...)``), compiled on first call."""
    if function is None:
        return lambda f: jit(f, **options)
    dispatcher = numba.njit(**OPTIONS, **options)(function)
    dispatcher._cache = KernelCache(function)
    return dispatcher


_compiled: dict[tuple[np.dtype, str, bool, str], Any] = {}
_compile_lock = threading.Lock()


def signature(dtype: np.dtype, which: str, what: str = "sums") -> Any:
    """The entry points' signature in ``dtype``:

        tiled sums:    (theta, layers, X, labels, Y, weights, grad, proba, n_blocks, m, lam)
        literal sums:  (theta, layers, X, labels, Y, weights, grad, proba, m, lam)
                       -> (Σ cost, penalty)
        tiled hessp:   (theta, v, layers, X, labels, Y, weights, hv, gauss_newton, n_blocks, m, lam)
        literal hessp: (theta, v, layers, X, labels, Y, weights, hv, gauss_newton, m, lam)
                       -> Σ cost

    Read-only arrays are declared so, and writable ones are accepted for them.
    """
    F = numba.from_dtype(dtype)
    readonly_1d = types.Array(F, 1, "C", readonly=True)
    readonly_2d = types.Array(F, 2, "C", readonly=True)
    ints = types.Array(types.int64, 1, "C", readonly=True)
    table = types.Array(types.int64, 2, "C", readonly=True)
    data = [table, readonly_2d, ints, readonly_2d, readonly_1d]
    blocks = [types.int64] if which == "tiled" else []
    scalars = [*blocks, types.float64, types.float64]
    if what == "hessp":
        arguments = [readonly_1d, readonly_1d, *data, F[::1], types.boolean, *scalars]
        return types.float64(*arguments)
    arguments = [readonly_1d, *data, F[::1], F[:, ::1], *scalars]
    return types.UniTuple(types.float64, 2)(*arguments)


def slp_available() -> bool:
    """Whether this numba has the (internal) SLP vectorizer switch fastbp compiles with."""
    return hasattr(numba.config, "SLP_VECTORIZE")


@contextmanager
def slp_vectorization() -> Iterator[None]:
    """Switch LLVM's SLP vectorizer on for fastbp's own compilation only.

    numba reads ``config.SLP_VECTORIZE`` whenever it builds an optimization pipeline; the switch
    is held under numba's global compiler lock, so no other thread compiles anything while it is
    on, and it is restored in ``finally``. SLP is what vectorizes the register blocks
    (docs/decisions.md#slp). Where the setting is missing the kernels still compile, slower
    (``fastbp --info`` says so).
    """
    with global_compiler_lock:
        if not slp_available():
            yield
            return
        old = numba.config.SLP_VECTORIZE  # type: ignore[attr-defined]
        numba.config.SLP_VECTORIZE = 1  # type: ignore[attr-defined]
        try:
            yield
        finally:
            numba.config.SLP_VECTORIZE = old  # type: ignore[attr-defined]


def _parallel_options(parallel: bool) -> bool | dict[str, bool]:
    """numba's ``parallel`` option: the explicit ``prange`` loops only, or False.

    Plain ``parallel=True`` would also turn array expressions into parallel loops, each compiled
    on its own, for loops far too short to gain (docs/decisions.md#parallel-options).
    """
    if not parallel:
        return False
    automatic = ("comprehension", "reduction", "inplace_binop", "setitem", "numpy", "stencil")
    return {"prange": True, "fusion": False, **dict.fromkeys(automatic, False)}


def _twin(function: Callable[..., Any], suffix: str) -> Callable[..., Any]:
    """``function``'s code under another name: a separate entry in numba's cache."""
    twin = pytypes.FunctionType(
        function.__code__, function.__globals__, function.__name__ + suffix, None, None
    )
    twin.__qualname__ = function.__qualname__ + suffix
    twin.__doc__ = function.__doc__
    return twin


def _entry_point(which: str, parallel: bool, what: str) -> Callable[..., Any]:
    from .curvature import tiled_hessp
    from .literal import literal_hessp, literal_sums
    from .tiled import tiled_sums

    if which == "literal":
        return literal_hessp if what == "hessp" else literal_sums
    function = tiled_hessp if what == "hessp" else tiled_sums
    return _twin(function, "_parallel") if parallel else function


def kernel(dtype: Any, parallel: bool, which: str = "tiled", what: str = "sums") -> Any:
    """The compiled entry point for ``dtype`` (float64/float32), serial or parallel, tiled or
    literal, of the sums (cost and gradient) or of ``what="hessp"`` (H·v, G·v).

    Compiled, or loaded from numba's disk cache, on first use (see the module docstring); the
    literal kernels are serial only.
    """
    key = (np.dtype(dtype), which, parallel and which == "tiled", what)
    dispatcher = _compiled.get(key)
    if dispatcher is None:
        with _compile_lock:
            dispatcher = _compiled.get(key)
            if dispatcher is None:
                function = _entry_point(which, key[2], what)
                dispatcher = jit(function, parallel=_parallel_options(key[2]))
                with slp_vectorization():
                    dispatcher.compile(signature(key[0], which, what))
                dispatcher.disable_compile()  # one signature per dtype
                _compiled[key] = dispatcher
    return dispatcher


def prepare_numba() -> None:
    """Run part of numba's one-time per-process set-up at import, not in the first call.

    Importing scipy.linalg's BLAS module (numba's BLAS check needs it) and refreshing the typing
    registries, fastbp's overloads included (docs/decisions.md#prepare-numba).
    """
    try:
        import scipy.linalg.cython_blas  # noqa: F401  (what numba.np.linalg.ensure_blas imports)
    except ImportError:  # pragma: no cover - scipy is a dependency; numba copes without it
        pass
    from numba.core.registry import cpu_target

    cpu_target.typing_context.refresh()
