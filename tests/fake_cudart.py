"""A fake cuda-python runtime (``cuda.bindings.runtime``, or ``cuda.cudart`` before cuda-python 12.6) for tests
without a GPU.

"Device" memory is host memory the fake allocates and tracks, so copies and the fake TensorRT engine
(``tests/fake_tensorrt.py``) really move bytes. It refuses what CUDA would: a copy in the wrong direction or
outside an allocation, an unknown stream, freeing twice. Copies and kernels queued on a stream run only at
``cudaStreamSynchronize``: output read before synchronizing is stale, as it would be unfinished on a GPU. Every
function returns cuda-python's ``(cudaError_t, *values)`` tuple; ``fail`` makes the next call of a function
return an error, and a kernel or copy that touches bad memory makes later calls return
``cudaErrorIllegalAddress`` (sticky, as on a GPU).
"""

from __future__ import annotations

import ctypes
import enum
import sys
import types

import numpy as np

FUNCTIONS = ("cudaMalloc", "cudaFree", "cudaMemcpyAsync", "cudaStreamCreate", "cudaStreamSynchronize",
             "cudaStreamDestroy", "cudaMemGetInfo", "cudaGetDeviceProperties", "cudaGetErrorName")


class cudaError_t(enum.IntEnum):  # noqa: N801 - cuda-python's names
    cudaSuccess = 0
    cudaErrorInvalidValue = 1
    cudaErrorMemoryAllocation = 2
    cudaErrorInvalidResourceHandle = 400
    cudaErrorIllegalAddress = 700


class cudaMemcpyKind(enum.IntEnum):  # noqa: N801
    cudaMemcpyHostToHost = 0
    cudaMemcpyHostToDevice = 1
    cudaMemcpyDeviceToHost = 2
    cudaMemcpyDeviceToDevice = 3
    cudaMemcpyDefault = 4


class cudaStream_t:  # noqa: N801
    """A stream handle: ``int(stream)`` is the address TensorRT's ``execute_async_v3`` takes."""

    def __init__(self, handle: int):
        self._handle = handle

    def __int__(self) -> int:
        return self._handle

    def getPtr(self) -> int:  # noqa: N802
        return self._handle


class DeviceFault(Exception):
    """A kernel or copy touched memory outside every allocation."""


class FakeCuda:
    """One fake GPU: its allocations, streams and a log of calls (``calls``: function names in order)."""

    def __init__(self, total_bytes: int = 8 << 30, name: str = "Fake GPU"):
        self.total_bytes, self.name = total_bytes, name
        self.allocations: dict[int, np.ndarray] = {}  # device pointer -> its bytes
        self.streams: dict[int, list] = {}  # handle -> queued operations
        self.calls: list[str] = []
        self.fail: dict[str, cudaError_t] = {}  # function name -> error its next call returns
        self.sticky: cudaError_t | None = None
        self._next_stream = 0x1000

    def module(self, name: str = "cuda.bindings.runtime") -> types.ModuleType:
        module = types.ModuleType(name)
        module.cudaError_t, module.cudaMemcpyKind, module.cudaStream_t = cudaError_t, cudaMemcpyKind, cudaStream_t
        for function in FUNCTIONS:
            setattr(module, function, getattr(self, function))
        return module

    def _enter(self, function: str) -> cudaError_t | None:
        self.calls.append(function)
        if function in self.fail:
            return self.fail.pop(function)
        return self.sticky

    def is_device(self, ptr: int, nbytes: int) -> bool:
        """Whether ``[ptr, ptr + nbytes)`` lies inside one allocation."""
        return any(base <= ptr and ptr + nbytes <= base + buf.nbytes for base, buf in self.allocations.items())

    def read(self, ptr: int, nbytes: int) -> bytes:
        if not self.is_device(ptr, nbytes):
            raise DeviceFault(f"read of {nbytes} bytes at {ptr:#x} is outside every allocation")
        return ctypes.string_at(ptr, nbytes)

    def write(self, ptr: int, data: bytes) -> None:
        if not self.is_device(ptr, len(data)):
            raise DeviceFault(f"write of {len(data)} bytes at {ptr:#x} is outside every allocation")
        ctypes.memmove(ptr, data, len(data))

    def enqueue(self, stream, operation) -> bool:
        """Queues ``operation()`` on ``stream`` (for the fake engine); False for an unknown stream."""
        queue = self.streams.get(int(stream))
        if queue is None:
            return False
        queue.append(operation)
        return True

    def cudaMalloc(self, size: int):  # noqa: N802
        error = self._enter("cudaMalloc")
        if error or not isinstance(size, int) or size < 0:
            return (error or cudaError_t.cudaErrorInvalidValue, 0)
        if sum(b.nbytes for b in self.allocations.values()) + size > self.total_bytes:
            return (cudaError_t.cudaErrorMemoryAllocation, 0)
        buffer = np.zeros(max(size, 1), np.uint8)
        self.allocations[buffer.ctypes.data] = buffer
        return (cudaError_t.cudaSuccess, buffer.ctypes.data)

    def cudaFree(self, ptr: int):  # noqa: N802
        error = self._enter("cudaFree")
        if error:
            return (error,)
        if self.allocations.pop(int(ptr), None) is None:
            return (cudaError_t.cudaErrorInvalidValue,)
        return (cudaError_t.cudaSuccess,)

    def cudaMemcpyAsync(self, dst: int, src: int, count: int, kind, stream):  # noqa: N802
        error = self._enter("cudaMemcpyAsync")
        if error:
            return (error,)
        if int(stream) not in self.streams:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        to_device = kind == cudaMemcpyKind.cudaMemcpyHostToDevice
        device, host = (dst, src) if to_device else (src, dst)
        if kind not in (cudaMemcpyKind.cudaMemcpyHostToDevice, cudaMemcpyKind.cudaMemcpyDeviceToHost):
            return (cudaError_t.cudaErrorInvalidValue,)
        if not self.is_device(device, count) or self.is_device(host, 1):
            return (cudaError_t.cudaErrorInvalidValue,)  # a host pointer where a device one belongs, or the reverse
        self.streams[int(stream)].append(lambda: ctypes.memmove(dst, src, count))
        return (cudaError_t.cudaSuccess,)

    def cudaStreamCreate(self):  # noqa: N802
        error = self._enter("cudaStreamCreate")
        if error:
            return (error, None)
        self._next_stream += 0x10
        self.streams[self._next_stream] = []
        return (cudaError_t.cudaSuccess, cudaStream_t(self._next_stream))

    def cudaStreamSynchronize(self, stream):  # noqa: N802
        error = self._enter("cudaStreamSynchronize")
        if error:
            return (error,)
        queue = self.streams.get(int(stream))
        if queue is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        try:
            while queue:
                queue.pop(0)()
        except DeviceFault:
            queue.clear()
            self.sticky = cudaError_t.cudaErrorIllegalAddress
            return (self.sticky,)
        return (cudaError_t.cudaSuccess,)

    def cudaStreamDestroy(self, stream):  # noqa: N802
        error = self._enter("cudaStreamDestroy")
        if error:
            return (error,)
        if self.streams.pop(int(stream), None) is None:
            return (cudaError_t.cudaErrorInvalidResourceHandle,)
        return (cudaError_t.cudaSuccess,)

    def cudaMemGetInfo(self):  # noqa: N802
        used = sum(b.nbytes for b in self.allocations.values())
        return (self._enter("cudaMemGetInfo") or cudaError_t.cudaSuccess, self.total_bytes - used, self.total_bytes)

    def cudaGetDeviceProperties(self, device: int):  # noqa: N802
        error = self._enter("cudaGetDeviceProperties")
        props = types.SimpleNamespace(name=self.name.encode() + b"\0" * 8, major=8, minor=7,
                                      totalGlobalMem=self.total_bytes)
        return (error or cudaError_t.cudaSuccess, props)

    def cudaGetErrorName(self, error):  # noqa: N802
        return (cudaError_t.cudaSuccess, cudaError_t(int(error)).name.encode())


def install(monkeypatch, cuda: FakeCuda, layout: str = "bindings") -> types.ModuleType:
    """Puts ``cuda`` in ``sys.modules`` as cuda-python's runtime: ``"bindings"`` (``cuda.bindings.runtime``,
    cuda-python 12.6+) or ``"cudart"`` (``cuda.cudart``, older releases)."""
    package = types.ModuleType("cuda")
    package.__path__ = []  # a package with nothing on disk: other submodules do not exist
    for name in ("cuda", "cuda.bindings", "cuda.bindings.runtime", "cuda.cudart"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setitem(sys.modules, "cuda", package)
    if layout == "bindings":
        runtime = cuda.module("cuda.bindings.runtime")
        bindings = types.ModuleType("cuda.bindings")
        bindings.__path__, bindings.runtime, package.bindings = [], runtime, bindings
        monkeypatch.setitem(sys.modules, "cuda.bindings", bindings)
        monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", runtime)
    else:
        runtime = package.cudart = cuda.module("cuda.cudart")
        monkeypatch.setitem(sys.modules, "cuda.cudart", runtime)
    return runtime
