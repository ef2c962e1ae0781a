"""Records numba's compilations in a process (numba's event API): in Dask workers, a test can
then see whether they compiled anything or only loaded kernels from the disk cache. Imported by
the workers by name, so it is a module of its own."""

import numba
import numba.core.event

COMPILED: list[str] = []  # qualified names of the functions numba compiled in this process


class _CompileRecorder(numba.core.event.Listener):
    def on_start(self, event):
        COMPILED.append(event.data["dispatcher"].py_func.__qualname__)

    def on_end(self, event):
        pass


def record_compilations():
    numba.core.event.register("numba:compile", _CompileRecorder())


def compiled_functions():
    return list(COMPILED)


def forget_compilations():
    COMPILED.clear()


def compile_a_function():
    """Compiles something, so a test can show that the recorder sees it."""

    @numba.njit
    def twice(x):
        return 2 * x

    return twice(1)
