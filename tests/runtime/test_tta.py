"""Test-time mirroring (``window.mirrored``, ``Segmenter(tta=True)``, ``predict --tta``, ``evaluate(tta=True)``):
the mean of the mirrored predictions, one mechanism for the runtime and for scoring in PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from edgeunet.runtime.window import mirror_sets, mirrored, softmax


def ramp(batch: np.ndarray) -> np.ndarray:
    """(B, 1, *s) -> (B, 2, *s) logits that depend on the position along the last axis, not only on the input."""
    position = np.arange(batch.shape[-1], dtype=np.float32) / batch.shape[-1]
    return np.concatenate([batch + 4 * position, -batch], axis=1).astype(np.float32)


@pytest.mark.parametrize("dims, count", [(2, 4), (3, 8)])
def test_mirror_sets_are_every_combination_of_axes_identity_first(dims, count):
    sets = mirror_sets(dims)
    assert len(sets) == len(set(sets)) == count
    assert sets[0] == ()
    assert all(set(axes) <= set(range(2, 2 + dims)) for axes in sets)


@pytest.mark.parametrize("shape", [(2, 1, 6, 10), (1, 1, 4, 6, 10)])
def test_mirrored_returns_the_mean_probability_of_the_mirror_images(shape):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    calls = []

    def run(batch):
        calls.append(batch.shape)
        return ramp(batch)

    got = softmax(mirrored(run)(x), axis=1)
    expected = np.mean([np.flip(softmax(ramp(np.flip(x, axes)), axis=1), axes) for axes in mirror_sets(x.ndim - 2)],
                       axis=0)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    assert len(calls) == 2 ** (x.ndim - 2)
    # a position-dependent model: mirroring changes the answer (the test would catch a no-op)
    assert np.abs(got - softmax(ramp(x), axis=1)).max() > 0.05


def test_mirroring_a_mirror_symmetric_model_changes_nothing():
    x = np.random.default_rng(1).normal(size=(1, 1, 8, 8)).astype(np.float32)

    def pointwise(batch):
        return np.concatenate([batch, -batch], axis=1)

    np.testing.assert_allclose(softmax(mirrored(pointwise)(x), axis=1), softmax(pointwise(x), axis=1), atol=1e-6)


def test_segmenter_tta_averages_the_mirrored_images(runtime_model):
    from edgeunet.runtime import Segmenter

    image = (np.random.default_rng(2).random((48, 64)) * 255).astype(np.uint8)  # a multiple of 8: no padding
    plain, tta = Segmenter(runtime_model), Segmenter(runtime_model, tta=True)
    expected = np.mean([np.flip(plain.predict_probs(np.ascontiguousarray(np.flip(image, axes))),
                                tuple(a + 1 for a in axes)) for axes in [(), (0,), (1,), (0, 1)]], axis=0)
    np.testing.assert_allclose(tta.predict_probs(image), expected, atol=1e-5)
    assert not np.allclose(tta.predict_probs(image), plain.predict_probs(image), atol=1e-4)
    masks, probs = tta.predict([image, image], return_probs=True)  # batched path, same answer
    np.testing.assert_allclose(probs[1], expected, atol=1e-5)
    assert "tta=True" in repr(tta)


def test_segmenter_tta_tiles_large_images(runtime_model):
    from edgeunet.runtime import Segmenter

    image = (np.random.default_rng(3).random((100, 140)) * 255).astype(np.uint8)
    probs = Segmenter(runtime_model, tile=64, tta=True).predict_probs(image)
    assert probs.shape == (2, 100, 140)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-5)


def test_torch_scoring_with_tta_matches_the_runtime(tiny_checkpoint, tmp_path):
    pytest.importorskip("torch")
    from edgeunet.checkpoint import load_checkpoint
    from edgeunet.train.evaluate import predict_logits

    path, model = tiny_checkpoint
    preprocessing = load_checkpoint(path)["preprocessing"]
    image = (np.random.default_rng(4).random((40, 56)) * 255).astype(np.uint8)
    tta = softmax(predict_logits(model.eval(), image, preprocessing, tta=True), axis=0)
    expected = np.mean([np.flip(softmax(predict_logits(model, np.ascontiguousarray(np.flip(image, axes)),
                                                       preprocessing), axis=0), tuple(a + 1 for a in axes))
                        for axes in [(), (0,), (1,), (0, 1)]], axis=0)
    np.testing.assert_allclose(tta, expected, atol=1e-5)


def test_predict_cli_tta_writes_masks(runtime_model, tmp_path, cli):
    from PIL import Image

    image = tmp_path / "a.png"
    Image.fromarray((np.random.default_rng(5).random((40, 50)) * 255).astype(np.uint8)).save(image)
    result = cli("predict", runtime_model, str(image), "--out", str(tmp_path / "out"), "--tta", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert np.asarray(Image.open(tmp_path / "out" / "a.png")).shape == (40, 50)
