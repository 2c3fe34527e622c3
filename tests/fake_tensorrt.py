"""A fake ``tensorrt`` module (the TensorRT 10.x / 11.x Python API edgeunet calls) for tests without a GPU.

``make_tensorrt("10.3.0", cuda)`` returns a module with the classes and enums of that major version, checked
against the Python bindings of NVIDIA/TensorRT (``python/src/infer/pyCore.cpp``, ``pyGraph.cpp``,
``parsers/pyOnnx.cpp`` at tags v10.0.0, v10.16, v11.0, v11.1):

* 11.x has no ``BuilderFlag.FP16`` / ``INT8`` (weak typing removed), no
  ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH`` and no ``ICudaEngine.device_memory_size``;
  ``STRONGLY_TYPED`` stays as a deprecated no-op.
* APIs removed in 10.0 are absent, so calling them raises AttributeError as on TensorRT 10:
  ``Builder.build_engine``, ``IBuilderConfig.max_workspace_size``, ``ICudaEngine.get_binding_index`` /
  ``get_binding_shape`` / ``binding_is_input`` / ``num_bindings``, ``IExecutionContext.execute_async_v2`` /
  ``set_binding_shape``. ``IExecutionContext.execute_v2`` (synchronous, binding-indexed) still exists in real
  10.x and 11.x; the fake leaves it out so the runtime cannot drift from ``execute_async_v3`` on its stream.

Contracts it enforces as TensorRT does: ``add_optimization_profile`` returns -1 for an invalid profile;
``build_serialized_network`` returns None when a dynamic input has no profile (or ``fail_build`` is set);
``set_input_shape`` returns False outside the profile; ``execute_async_v3`` returns False unless every input
shape and every I/O address is set; ``deserialize_cuda_engine`` returns None for a plan of another TensorRT
version; ``set_timing_cache(ignore_mismatch=False)`` returns False for a cache of another version.

The "engine" is the ONNX file itself: executing it runs ONNX Runtime on the input bytes in fake device memory
and writes the logits to the output address, on the CUDA stream (``tests/fake_cudart.py``).
"""

from __future__ import annotations

import enum
import json
import types

import numpy as np
from fake_tensorrt_engine import PLAN_MAGIC, ICudaEngine, from_plan

from edgeunet.runtime.session import CPU, ort_session

CACHE_MAGIC = b"FAKECACHE1"
_ONNX_TYPES = {"tensor(float)": "FLOAT", "tensor(float16)": "HALF"}


class Severity(enum.IntEnum):
    INTERNAL_ERROR = 0
    ERROR = 1
    WARNING = 2
    INFO = 3
    VERBOSE = 4


class ILogger:
    Severity = Severity
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = tuple(Severity)


class Logger(ILogger):
    def __init__(self, min_severity: Severity = Severity.WARNING):
        if not isinstance(min_severity, Severity):
            raise TypeError(f"Logger takes a trt.Logger.Severity, not {min_severity!r}")
        self.min_severity, self.messages = min_severity, []

    def log(self, severity: Severity, msg: str) -> None:
        self.messages.append((severity, msg))


class ITensor:
    def __init__(self, name: str, shape: tuple, dtype):
        self.name, self.shape, self.dtype = name, tuple(shape), dtype


class INetworkDefinition:
    def __init__(self, lib, flags: int):
        self._lib, self.flags, self._inputs, self._outputs, self._onnx = lib, flags, [], [], None
        bit = 1 << int(lib.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
        self.strongly_typed = lib.major >= 11 or bool(flags & bit)

    num_inputs = property(lambda self: len(self._inputs))
    num_outputs = property(lambda self: len(self._outputs))

    def get_input(self, index: int) -> ITensor:
        return self._inputs[index]

    def get_output(self, index: int) -> ITensor:
        return self._outputs[index]


class IParserError:
    def __init__(self, text: str):
        self._text = text

    def desc(self) -> str:
        return self._text

    def __str__(self) -> str:
        return self._text


class OnnxParser:
    def __init__(self, network: INetworkDefinition, logger: ILogger):
        if not isinstance(network, INetworkDefinition) or not isinstance(logger, ILogger):
            raise TypeError("OnnxParser(network, logger)")
        self._network, self._errors = network, []
        network._lib.calls.append("OnnxParser")

    num_errors = property(lambda self: len(self._errors))

    def get_error(self, index: int) -> IParserError:
        return self._errors[index]

    def parse_from_file(self, model: str) -> bool:
        self._network._lib.calls.append("OnnxParser.parse_from_file")
        with open(model, "rb") as f:
            return self._parse(f.read())

    def parse(self, model, path=None) -> bool:
        self._network._lib.calls.append("OnnxParser.parse")
        return self._parse(bytes(memoryview(model)))

    def _parse(self, blob: bytes) -> bool:
        if self._network._onnx is not None:
            self._errors.append(IParserError("the network is already populated"))
            return False
        try:
            session = ort_session(blob, threads=1, providers=[CPU])
        except Exception as exc:  # what ONNX Runtime cannot load, the ONNX parser cannot either
            self._errors.append(IParserError(f"ModelImporter: failed to parse the ONNX model ({exc})"))
            return False
        lib = self._network._lib

        def tensor(arg):
            shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in arg.shape)
            return ITensor(arg.name, shape, lib.DataType[_ONNX_TYPES.get(arg.type, "FLOAT")])

        self._network._inputs = [tensor(a) for a in session.get_inputs()]
        self._network._outputs = [tensor(a) for a in session.get_outputs()]
        self._network._onnx = blob
        return True


class IOptimizationProfile:
    def __init__(self):
        self.shapes: dict[str, tuple] = {}
        self.valid = True

    def set_shape(self, input: str, min, opt, max) -> None:  # noqa: A002 - TensorRT's argument names
        shapes = tuple(tuple(int(d) for d in s) for s in (min, opt, max))
        if len({len(s) for s in shapes}) != 1 or not all(a <= b <= c for a, b, c in zip(*shapes)):
            self.valid = False
        self.shapes[input] = shapes

    def __bool__(self) -> bool:
        return self.valid and bool(self.shapes)


class ITimingCache:
    def __init__(self, version: str, entries: int = 0, valid: bool = True):
        self.version, self.entries, self.valid = version, entries, valid

    def serialize(self) -> IHostMemory:
        return IHostMemory(CACHE_MAGIC + json.dumps({"version": self.version, "entries": self.entries}).encode())


class IHostMemory(bytes):
    """Serialized data; bytes-like as TensorRT's (``memoryview``, ``bytes()`` work)."""

    nbytes = property(len)


class IBuilderConfig:
    def __init__(self, lib):
        self._lib, self.pools, self.flags, self.profiles, self.cache = lib, {}, [], [], None

    def set_memory_pool_limit(self, pool, pool_size: int) -> None:
        if not isinstance(pool, self._lib.MemoryPoolType) or not isinstance(pool_size, int) or pool_size < 1:
            raise TypeError("set_memory_pool_limit(pool: MemoryPoolType, pool_size: int)")
        self.pools[pool.name] = pool_size

    def set_flag(self, flag) -> None:
        if not isinstance(flag, self._lib.BuilderFlag):
            raise TypeError(f"set_flag takes a trt.BuilderFlag, not {flag!r}")
        self.flags.append(flag.name)

    def add_optimization_profile(self, profile: IOptimizationProfile) -> int:
        if not profile:
            return -1
        self.profiles.append(profile)
        return len(self.profiles) - 1

    def create_timing_cache(self, serialized_timing_cache) -> ITimingCache:
        blob = bytes(memoryview(serialized_timing_cache))
        if not blob:
            return ITimingCache(self._lib.__version__)
        if not blob.startswith(CACHE_MAGIC):
            return ITimingCache("unknown", valid=False)
        data = json.loads(blob[len(CACHE_MAGIC):])
        return ITimingCache(data["version"], data["entries"])

    def set_timing_cache(self, cache: ITimingCache, ignore_mismatch: bool) -> bool:
        if not cache.valid or (cache.version != self._lib.__version__ and not ignore_mismatch):
            return False
        self.cache = cache
        return True

    def get_timing_cache(self) -> ITimingCache | None:
        return self.cache


class Builder:
    def __init__(self, lib, logger: ILogger):
        if not isinstance(logger, ILogger):
            raise TypeError("Builder(logger: trt.ILogger)")
        self._lib, self._logger = lib, logger

    def create_network(self, flags: int = 0) -> INetworkDefinition:
        self._lib.calls.append("Builder.create_network")
        return INetworkDefinition(self._lib, int(flags))

    def create_builder_config(self) -> IBuilderConfig:
        self._lib.configs.append(IBuilderConfig(self._lib))
        return self._lib.configs[-1]

    def create_optimization_profile(self) -> IOptimizationProfile:
        return IOptimizationProfile()

    def build_serialized_network(self, network: INetworkDefinition, config: IBuilderConfig) -> IHostMemory | None:
        self._lib.calls.append("Builder.build_serialized_network")
        dynamic = [t.name for t in network._inputs if -1 in t.shape]
        profile = config.profiles[0].shapes if config.profiles else {}
        if self._lib.fail_build or network._onnx is None or not set(dynamic) <= set(profile):
            self._logger.log(Severity.ERROR, "Network has dynamic or shape inputs, but no optimization profile")
            return None
        if config.cache is not None:
            config.cache.entries += 1  # the timings of this build
        header = {"version": self._lib.__version__, "profile": {k: list(map(list, v)) for k, v in profile.items()},
                  "inputs": [[t.name, list(t.shape), t.dtype.name] for t in network._inputs],
                  "outputs": [[t.name, list(t.shape), t.dtype.name] for t in network._outputs],
                  "strongly_typed": network.strongly_typed, "flags": config.flags, "pools": config.pools}
        return IHostMemory(PLAN_MAGIC + json.dumps(header).encode() + b"\n" + network._onnx)


class Runtime:
    def __init__(self, lib, logger: ILogger):
        if not isinstance(logger, ILogger):
            raise TypeError("Runtime(logger: trt.ILogger)")
        self._lib, self._logger = lib, logger

    def deserialize_cuda_engine(self, serialized_engine) -> ICudaEngine | None:
        self._lib.calls.append("Runtime.deserialize_cuda_engine")
        engine = from_plan(self._lib, bytes(memoryview(serialized_engine)))
        if engine is None:
            self._logger.log(Severity.ERROR, "The engine plan file is not compatible with this version of TensorRT")
        return engine


def make_tensorrt(version: str, cuda) -> types.ModuleType:
    """A fake ``tensorrt`` module of ``version`` (``"10.3.0"``, ``"11.1.0"``) running on the fake GPU ``cuda``.

    The module also carries the test hooks: ``calls`` (API calls in order), ``configs`` (every builder
    config), ``contexts`` (every execution context), ``fail_build``, ``cuda``.
    """
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__, trt.major, trt.cuda = version, major, cuda
    trt.calls, trt.configs, trt.contexts, trt.fail_build = [], [], [], False
    trt.ILogger, trt.Logger, trt.ITimingCache, trt.IHostMemory = ILogger, Logger, ITimingCache, IHostMemory
    trt.DataType = enum.IntEnum("DataType", {"FLOAT": 0, "HALF": 1, "INT8": 2, "INT32": 3, "BOOL": 4, "UINT8": 5})
    trt.float32, trt.float16 = trt.DataType.FLOAT, trt.DataType.HALF
    trt.int8, trt.int32 = trt.DataType.INT8, trt.DataType.INT32
    numpy_types = {trt.float32: np.float32, trt.float16: np.float16, trt.int8: np.int8, trt.int32: np.int32}

    def nptype(trt_type):
        if trt_type not in numpy_types:
            raise TypeError("Could not resolve TensorRT datatype to an equivalent numpy datatype.")
        return numpy_types[trt_type]

    trt.nptype = nptype
    trt.TensorIOMode = enum.IntEnum("TensorIOMode", {"NONE": 0, "INPUT": 1, "OUTPUT": 2})
    trt.MemoryPoolType = enum.IntEnum("MemoryPoolType", ["WORKSPACE", "DLA_MANAGED_SRAM", "DLA_LOCAL_DRAM",
                                                         "DLA_GLOBAL_DRAM", "TACTIC_DRAM", "TACTIC_SHARED_MEMORY"])
    creation = {"STRONGLY_TYPED": 1} if major >= 11 else {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", creation)
    flags = ["DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS", "VERSION_COMPATIBLE"]
    if major < 11:
        flags += ["FP16", "INT8", "BF16", "FP8", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS"]
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", flags)
    trt.OnnxParser, trt.INetworkDefinition, trt.IBuilderConfig = OnnxParser, INetworkDefinition, IBuilderConfig
    trt.Builder = lambda logger: Builder(trt, logger)
    trt.Runtime = lambda logger: Runtime(trt, logger)
    return trt
