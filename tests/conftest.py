"""Shared fixtures: small U-Nets trained briefly on synthetic nuclei, as a checkpoint (export tests)
and exported to ONNX with edgeunet metadata (runtime tests)."""

from __future__ import annotations

import numpy as np
import pytest
from badinput import run_main
from tiny_fit import fit_on_one_thread

RUNTIME_CLASS_NAMES = ["background", "nucleus"]

# Fixtures that train, prune or export a real model (seconds each, once per session or module). A test that
# uses one, directly or through another fixture, is marked ``slow`` at collection (pytest_collection_modifyitems
# below), so ``pytest -m "not slow"`` (``make test-fast``) neither runs it nor builds the fixture. Tests that are
# slow by themselves carry ``@pytest.mark.slow`` (or a module ``pytestmark``) in their file.
# Key: the test file whose fixture it is ("*": this file's fixtures, used everywhere); value: fixture names.
SLOW_FIXTURES = {
    "*": {"tiny_checkpoint", "runtime_models", "vit_checkpoint", "runtime_vit_model"},  # trained for dozens of steps
    "test_bench.py": {"models"},  # exports a model, then benchmarks it
    "test_bench_interleaved.py": {"models"},
    "test_bench_memory.py": {"result"},  # a benchmark run
    "test_bench_3d.py": {"model3d"},  # tests/tiny3d.py: trains and exports the tiny 3-D model
    "test_predict_3d.py": {"model3d"},
    "test_runtime_3d.py": {"seg3d"},
    "test_info_bench_3d.py": {"checkpoint3d"},
    "test_export.py": {"exported"},  # every registered variant exported to ONNX
    "test_export_3d.py": {"exported"},  # FP32, FP16 and an INT8 search
    "test_export_arm.py": {"arm_export"},
    "test_tensorrt.py": {"onnx_file"},
    "test_runtime_formats.py": {"openvino_files"},  # exports to OpenVINO (gets ``sources`` by request)
    "test_distributed.py": {"ddp_run"},  # torchrun with two processes
    "test_prune.py": {"run"},  # prunes and fine-tunes a checkpoint
    "test_train.py": {"trained"},
    "test_train_3d.py": {"trained"},
}


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects
def pytest_collection_modifyitems(items):
    for item in items:
        if (SLOW_FIXTURES["*"] | SLOW_FIXTURES.get(item.path.name, set())) & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def one_torch_thread():
    """Training tests run torch on one thread: thread counts change float summation order, and
    one thread keeps a shared 2-core CI machine responsive."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def cli(capfd):
    """``cli(*argv)``: runs ``edgeunet ARGV`` in this process and returns its exit code, stdout and stderr
    (``badinput.CliResult``); much cheaper than a subprocess per bad-input case."""
    return lambda *argv: run_main(capfd, *argv)


def _train_tiny_unet(steps: int = 80, name: str = "unet-ds"):
    """A ``name`` (base width 8, depth 3) trained briefly on 64 px synthetic nuclei.

    Random weights give near-constant masks, which would make tiled/untiled agreement trivial;
    a few dozen steps give masks that follow the image (about 97% pixel accuracy).
    """
    import torch

    from edgeunet.data.synthetic import synthetic_sample
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import preprocess

    torch.manual_seed(0)
    samples = [synthetic_sample(i, size=64, seed=1) for i in range(32)]
    x = torch.from_numpy(np.stack([preprocess(image) for image, _ in samples]))
    y = torch.from_numpy(np.stack([mask for _, mask in samples]).astype(np.int64))
    model = create_model(name, base_width=8, depth=3)

    def batch():
        index = torch.randint(0, len(x), (8,))
        return x[index], y[index]

    return fit_on_one_thread(model, batch, steps)


def _export(model, path, size: int | None, with_metadata: bool = True) -> None:
    import onnx
    import torch

    from edgeunet.runtime.metadata import ModelMetadata
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    cfg = model.current_config()
    axes = {} if size else {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad():
        torch.onnx.export(
            model,
            torch.zeros(1, 1, size or 64, size or 64),
            str(path),
            input_names=["images"],
            output_names=["logits"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={"images": axes, "logits": axes} if axes else None,
        )
    proto = onnx.load(str(path))
    if with_metadata:
        meta = ModelMetadata(
            in_channels=cfg.in_channels,
            num_classes=cfg.num_classes,
            size_multiple=cfg.size_multiple,
            preprocessing=dict(DEFAULT_PREPROCESSING),
            class_names=RUNTIME_CLASS_NAMES,
            model_config=cfg.to_dict(),
        )
        onnx.helper.set_model_props(proto, meta.to_props())
    onnx.save(proto, str(path))


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """(best.pt path, model): a unet-ds (base width 8, depth 2) trained for 60 steps on 32 synthetic
    64 px images (mean Dice about 0.9), for the export tests."""
    torch = pytest.importorskip("torch", reason="training needs the train extra")
    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.data.sources import load_samples
    from edgeunet.models import create_model
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING, preprocess

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is as fast and immune to a busy machine
    samples = load_samples("synthetic", n=32, size=64, split="train")
    x = torch.from_numpy(np.stack([preprocess(image, DEFAULT_PREPROCESSING) for _, image, _ in samples]))
    y = torch.from_numpy(np.stack([mask for _, _, mask in samples]))
    model = create_model("unet-ds", base_width=8, depth=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    try:
        for _ in range(60):
            idx = torch.randint(0, len(x), (8,))
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        torch.set_num_threads(threads)
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_checkpoint(
        make_checkpoint(model.eval(), DEFAULT_PREPROCESSING, ["background", "cell"], train_args={"img_size": 64}), path
    )
    return path, model


@pytest.fixture(scope="session")
def runtime_models(tmp_path_factory) -> dict:
    """Paths of the fixture model: ``dynamic`` (any B, H, W), ``static`` (1x1x64x64) and
    ``no_metadata`` (a plain ONNX file without edgeunet metadata)."""
    pytest.importorskip("torch", reason="building the fixture model needs the train extra")
    pytest.importorskip("onnx", reason="building the fixture model needs the train extra")
    folder = tmp_path_factory.mktemp("runtime_models")
    model = _train_tiny_unet()
    paths = {
        "dynamic": folder / "tiny.onnx",
        "static": folder / "tiny_static.onnx",
        "no_metadata": folder / "plain.onnx",
    }
    _export(model, paths["dynamic"], None)
    _export(model, paths["static"], 64)
    _export(model, paths["no_metadata"], None, with_metadata=False)
    return paths


@pytest.fixture(scope="session")
def vit_checkpoint(tmp_path_factory):
    """(best.pt path, model): a small unet-vit (base width 8, depth 3: Transformer blocks at levels 2
    and 3) trained like the runtime fixture model, for the export and runtime tests of the Transformer U-Net."""
    pytest.importorskip("torch", reason="building the fixture model needs the train extra")
    from edgeunet.checkpoint import make_checkpoint, save_checkpoint
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    model = _train_tiny_unet(name="unet-vit").eval()
    path = tmp_path_factory.mktemp("vit_ckpt") / "best.pt"
    save_checkpoint(make_checkpoint(model, DEFAULT_PREPROCESSING, list(RUNTIME_CLASS_NAMES),
                                    train_args={"img_size": 64}), path)
    return path, model


@pytest.fixture(scope="session")
def runtime_vit_model(vit_checkpoint, tmp_path_factory) -> str:
    """Path of the dynamic-shape ONNX file of ``vit_checkpoint``'s model."""
    pytest.importorskip("onnx", reason="building the fixture model needs the train extra")
    path = tmp_path_factory.mktemp("runtime_vit") / "vit.onnx"
    _export(vit_checkpoint[1], path, None)
    return str(path)


@pytest.fixture(scope="session")
def runtime_model(runtime_models) -> str:
    """Path of the dynamic-shape fixture ONNX model (1 channel, 2 classes, size multiple 8)."""
    return str(runtime_models["dynamic"])
