import numpy as np
import pytest

from edgeunet.metrics import ConfusionCounter, dice_iou


def test_perfect_prediction_scores_one():
    mask = np.array([[0, 1], [1, 2]])
    s = dice_iou(mask, mask, 3)
    assert s["dice"] == [1.0, 1.0, 1.0] and s["mean_dice"] == 1.0


def test_known_overlap():
    target = np.array([[1, 1, 0, 0]])
    pred = np.array([[1, 0, 0, 0]])
    s = dice_iou(pred, target, 2)
    assert s["dice"][1] == pytest.approx(2 / 3) and s["iou"][1] == pytest.approx(0.5)


def test_class_absent_from_both_is_none_and_left_out_of_mean():
    target = np.array([[0, 1, 1]])
    s = dice_iou(target, target, 3)
    assert s["dice"][2] is None and s["mean_dice"] == 1.0


def test_counts_pool_over_images():
    c = ConfusionCounter(2)
    c.update(np.array([1, 1]), np.array([1, 1]))
    c.update(np.array([0, 0]), np.array([1, 1]))
    assert c.summary()["dice"][1] == pytest.approx(2 * 2 / (2 * 2 + 2))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differs from target shape"):
        dice_iou(np.zeros((2, 2)), np.zeros((2, 3)), 2)
