"""The engine half of the fake ``tensorrt`` (``tests/fake_tensorrt.py``): ``ICudaEngine`` and
``IExecutionContext`` of the TensorRT 10/11 name-based tensor API.

A fake plan is ``PLAN_MAGIC`` + a JSON header (TensorRT version, I/O tensors, profile) + the ONNX bytes.
Executing it runs ONNX Runtime on the input bytes in fake device memory and writes the logits to the output
address, queued on the CUDA stream: the output exists only after ``cudaStreamSynchronize``.
"""

from __future__ import annotations

import json

import numpy as np

from edgeunet.runtime.session import CPU, ort_session

PLAN_MAGIC = b"FAKETRT1"


def _same_release(a: str, b: str) -> bool:
    """Engines load only under the TensorRT release (major.minor) that built them."""
    return a.split(".")[:2] == b.split(".")[:2]


def from_plan(lib, blob: bytes):
    """The ICudaEngine of a fake plan, or None for anything else or a plan of another TensorRT release."""
    if not blob.startswith(PLAN_MAGIC) or b"\n" not in blob:
        return None
    header_text, onnx_bytes = blob[len(PLAN_MAGIC):].split(b"\n", 1)
    header = json.loads(header_text)
    if not _same_release(header["version"], lib.__version__):
        return None
    return ICudaEngine(lib, header, onnx_bytes)


class ICudaEngine:
    def __init__(self, lib, header: dict, onnx_bytes: bytes):
        self._lib, self._header = lib, header
        self._tensors = {name: (lib.TensorIOMode.INPUT, tuple(shape), lib.DataType[dtype])
                         for name, shape, dtype in header["inputs"]}
        self._tensors.update({name: (lib.TensorIOMode.OUTPUT, tuple(shape), lib.DataType[dtype])
                              for name, shape, dtype in header["outputs"]})
        self._names = list(self._tensors)
        self._session = ort_session(onnx_bytes, threads=1, providers=[CPU])
        self.activation_bytes = 3 << 20
        if lib.major < 11:  # removed in 11.x; device_memory_size_v2 exists from 10.1
            self.device_memory_size = self.activation_bytes

    num_io_tensors = property(lambda self: len(self._names))
    num_optimization_profiles = property(lambda self: 1)
    device_memory_size_v2 = property(lambda self: self.activation_bytes)

    def get_tensor_name(self, index: int) -> str | None:
        return self._names[index] if 0 <= index < len(self._names) else None

    def get_tensor_mode(self, name: str):
        return self._tensors[name][0] if name in self._tensors else self._lib.TensorIOMode.NONE

    def get_tensor_shape(self, name: str) -> tuple:
        return self._tensors[name][1]

    def get_tensor_dtype(self, name: str):
        return self._tensors[name][2]

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[tuple]:
        if profile_index != 0 or name not in self._header["profile"]:
            raise RuntimeError(f"no profile {profile_index} for {name!r}")
        return [tuple(s) for s in self._header["profile"][name]]

    def create_execution_context(self):
        self._lib.calls.append("ICudaEngine.create_execution_context")
        context = IExecutionContext(self._lib, self)
        self._lib.contexts.append(context)
        return context


class IExecutionContext:
    def __init__(self, lib, engine: ICudaEngine):
        self._lib, self.engine = lib, engine
        self.shapes: dict[str, tuple] = {}
        self.addresses: dict[str, int] = {}
        self.runs = 0

    def _inputs(self) -> list[str]:
        return [n for n in self.engine._names if self.engine.get_tensor_mode(n) == self._lib.TensorIOMode.INPUT]

    def set_input_shape(self, name: str, shape) -> bool:
        self._lib.calls.append("IExecutionContext.set_input_shape")
        if name not in self._inputs():
            return False
        shape = tuple(int(d) for d in shape)
        static = self.engine.get_tensor_shape(name)
        low, _, high = self.engine.get_tensor_profile_shape(name, 0) if -1 in static else (static, None, static)
        if len(shape) != len(low) or not all(lo <= s <= hi for lo, s, hi in zip(low, shape, high)):
            return False
        self.shapes[name] = shape
        return True

    def get_tensor_shape(self, name: str) -> tuple:
        if name in self._inputs():
            return self.shapes.get(name, self.engine.get_tensor_shape(name))
        (input_name,) = self._inputs()
        if input_name not in self.shapes:
            return self.engine.get_tensor_shape(name)
        batch, _, *spatial = self.shapes[input_name]  # (H, W), or (D, H, W) for 3-D models
        classes = self.engine.get_tensor_shape(name)[1]
        return (batch, classes, *spatial)

    def set_tensor_address(self, name: str, memory: int) -> bool:
        self._lib.calls.append("IExecutionContext.set_tensor_address")
        if name not in self.engine._tensors or not isinstance(memory, int) or memory == 0:
            return False
        self.addresses[name] = memory
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        self._lib.calls.append("IExecutionContext.execute_async_v3")
        if not isinstance(stream_handle, int):
            raise TypeError(f"execute_async_v3(stream_handle: int), not {type(stream_handle).__name__}")
        if set(self._inputs()) - set(self.shapes) or set(self.engine._names) - set(self.addresses):
            return False  # TensorRT: "not all input shapes / tensor addresses are specified"
        shapes = {n: self.get_tensor_shape(n) for n in self.engine._names}
        addresses = dict(self.addresses)
        return self._lib.cuda.enqueue(stream_handle, lambda: self._compute(shapes, addresses))

    def _compute(self, shapes: dict, addresses: dict) -> None:
        (input_name,) = self._inputs()
        dtype = np.dtype(self._lib.nptype(self.engine.get_tensor_dtype(input_name)))
        count = int(np.prod(shapes[input_name]))
        data = self._lib.cuda.read(addresses[input_name], count * dtype.itemsize)
        x = np.frombuffer(data, dtype).reshape(shapes[input_name])
        outputs = [n for n in self.engine._names if n != input_name]
        results = self.engine._session.run(outputs, {input_name: x})
        for name, value in zip(outputs, results):
            out_dtype = np.dtype(self._lib.nptype(self.engine.get_tensor_dtype(name)))
            value = np.ascontiguousarray(value, out_dtype)
            assert value.shape == shapes[name], (value.shape, shapes[name])
            self._lib.cuda.write(addresses[name], value.tobytes())
        self.runs += 1
