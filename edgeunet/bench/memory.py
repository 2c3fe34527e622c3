"""Memory of a bench row: the peak RSS of a fresh process running the file, and ``RssPeak`` for stretches of work.

``process_peak_rss_mb`` is what running a file costs: a new Python process opens it with the row's
runtime (``edgeunet.runtime.backends.open_backend``, or ``TorchBackend`` for a checkpoint) and runs it
a few times at the row's shape; its peak resident memory is the ``VmHWM`` of its own address space
(``ru_maxrss`` where there is no ``/proc``). Interpreter, libraries, weights, arenas and activations
all count, as on a device that runs the file, and no other model's memory can leak into the figure.

``RssPeak`` measures a stretch of work inside this process. ``resource.getrusage(...).ru_maxrss``
only grows over the life of a process, so a second stretch would inherit the first one's peak. On
Linux the peak (``VmHWM`` in ``/proc/self/status``) can be reset by writing ``5`` to
``/proc/self/clear_refs``; ``RssPeak`` does that, which catches short peaks exactly. Where the reset
is refused it samples ``/proc/self/statm`` from a thread every few ms instead; without ``/proc`` it
reports None.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading

logger = logging.getLogger(__name__)

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
SAMPLE_INTERVAL_S = 0.005
CHILD_RUNS = 3  # calls of the model in the fresh process: the first allocates, the next ones reuse or grow
CHILD_TIMEOUT_S = 600
# The fresh process: imports what a deployment imports (the runtime; torch for a checkpoint), opens the file as
# the bench row did, runs it at the row's shape, and prints its own peak RSS (MB) as the last line of stdout.
# It reads VmHWM itself rather than through _hwm_mb: importing edgeunet.bench would add the bench's modules to
# the memory of an ONNX Runtime row.
CHILD = """\
import json, sys
import numpy as np
job = json.loads(sys.argv[1])
if job["backend"] == "torch":
    import torch
    from edgeunet.bench.torch_backend import TorchBackend
    torch.set_num_threads(job["threads"])
    model = TorchBackend(job["path"], "cpu")
else:
    from edgeunet.runtime.backends import open_backend
    model = open_backend(job["path"], job["backend"], threads=job["threads"], providers=job["providers"],
                         precision=job["precision"], spinning=job["spinning"])
meta = model.metadata
shape = [job["batch"], meta.in_channels] + [job["size"]] * int(getattr(meta, "spatial_dims", 2))
x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
for _ in range(job["runs"]):
    model.run(x)
try:
    with open("/proc/self/status") as f:
        peak_mb = int(f.read().split("VmHWM:")[1].split()[0]) / 1024
except (OSError, IndexError, ValueError):
    import resource
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)
print(json.dumps({"peak_rss_mb": peak_mb}))
"""


def current_rss_mb() -> float | None:
    """Resident set size of this process now (MB), or None without ``/proc``."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE / 2**20
    except (OSError, ValueError, IndexError):
        return None


def _hwm_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            match = re.search(r"^VmHWM:\s+(\d+)\s+kB", f.read(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) / 1024 if match else None


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class RssPeak:
    """Context manager: ``peak_mb`` is the highest RSS (MB) seen inside the ``with`` block.

    Example:
        >>> with RssPeak() as probe:
        ...     run_model()
        >>> probe.peak_mb  # None where this platform cannot tell
    """

    def __init__(self) -> None:
        self.peak_mb: float | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._exact = False

    def __enter__(self) -> RssPeak:
        self.peak_mb = current_rss_mb()
        self._exact = self.peak_mb is not None and _reset_hwm() and _hwm_mb() is not None
        if self.peak_mb is not None and not self._exact:
            self._thread = threading.Thread(target=self._sample, name="edgeunet-rss", daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL_S):
            self._update(current_rss_mb())

    def _update(self, value: float | None) -> None:
        if value is not None and (self.peak_mb is None or value > self.peak_mb):
            self.peak_mb = value

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        self._update(_hwm_mb() if self._exact else current_rss_mb())


def process_peak_rss_mb(path: str | os.PathLike, backend: str, size: int, batch: int, *, threads: int,
                        spinning: str, precision: str | None = None, runs: int = CHILD_RUNS) -> float | None:
    """Peak RSS (MB) of a fresh process that opens ``path`` with ``backend`` on the CPU and runs it ``runs``
    times on a (batch, C, size, size) input ((batch, C, size, size, size) for a 3-D model).

    Args:
        path: The model file.
        backend: ``"torch"`` (a checkpoint, through ``TorchBackend``) or a runtime backend name
            (``open_backend``'s, e.g. ``"onnxruntime"``, ``"openvino"``).
        size, batch: The row's shape.
        threads, spinning, precision: As the bench opened the file (precision: OpenVINO's hint).
        runs: Calls of the model.

    Returns:
        The whole process's peak resident memory in MB (interpreter and libraries included), or None when
        the process failed or timed out (logged: the row's other figures stand).
    """
    providers = ["CPUExecutionProvider"] if backend == "onnxruntime" else None
    job = {"path": os.fspath(path), "backend": backend, "size": int(size), "batch": int(batch), "threads": int(threads),
           "spinning": spinning, "precision": precision or "f32", "providers": providers, "runs": int(runs)}
    try:
        done = subprocess.run([sys.executable, "-c", CHILD, json.dumps(job)], capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("memory of %s at %d px batch %d not measured: %s", path, size, batch, exc)
        return None
    try:
        if done.returncode == 0:
            return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"])
    except (IndexError, KeyError, TypeError, ValueError):
        pass
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    logger.warning("memory of %s at %d px batch %d not measured (exit %d): %s", path, size, batch, done.returncode,
                   tail)
    return None
