"""The Transformer U-Net in the torch-free runtime: any image size, tiling, batches (fixture in conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeunet.data.synthetic import synthetic_sample
from edgeunet.runtime import Segmenter


@pytest.fixture(scope="module")
def seg(runtime_vit_model):
    return Segmenter(runtime_vit_model)


@pytest.mark.parametrize("shape", [(64, 64), (61, 97), (130, 45)])
def test_mask_has_the_image_size_for_any_size(seg, shape):
    image = np.random.default_rng(0).random(shape).astype(np.float32)
    mask = seg(image)
    assert mask.shape == shape and mask.dtype == np.uint8


def test_masks_follow_the_nuclei(seg):
    image, truth = synthetic_sample(7, size=128, seed=3)
    mask = seg(image)
    assert (mask == truth).mean() > 0.9
    assert 0.05 < mask.mean() < 0.6


def test_tiles_see_less_context_but_agree_with_the_whole_image(runtime_vit_model, seg):
    """Attention spans a whole tile, not the whole image, so tiled masks may differ from whole-image ones; on
    nuclei, whose evidence is local, nearly every pixel still agrees, and the blended probabilities sum to 1."""
    image, _ = synthetic_sample(11, size=256, seed=3)
    image = image[:230, :250]
    tiled = Segmenter(runtime_vit_model, tile=128, overlap=0.25)
    assert (tiled(image) == seg(image)).mean() >= 0.97
    probs = tiled.predict_probs(image)
    assert probs.shape == (2, 230, 250)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-5)


def test_batch_prediction_equals_one_by_one(seg):
    images = [synthetic_sample(i, size=96, seed=5)[0] for i in range(3)]
    batched = seg.predict(images, batch_size=3)
    for image, mask in zip(images, batched):
        assert (mask == seg(image)).all()
