import pytest
import torch
from small_models import example_input, small_model

from edgeunet.checkpoint import load_checkpoint, make_checkpoint, model_from_checkpoint, save_checkpoint
from edgeunet.errors import UserError
from edgeunet.models import create_model, list_models
from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING


@pytest.mark.parametrize("name", list_models())
@pytest.mark.slow
def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, name):
    torch.manual_seed(0)
    model = small_model(name, num_classes=3).eval()
    path = save_checkpoint(
        make_checkpoint(model, DEFAULT_PREPROCESSING, ["bg", "a", "b"], {"mean_dice": 0.5}), tmp_path / "m.pt"
    )
    loaded, ckpt = model_from_checkpoint(path)
    x = example_input(model, side=16)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert ckpt["class_names"] == ["bg", "a", "b"] and ckpt["preprocessing"] == DEFAULT_PREPROCESSING


def test_checkpoint_is_a_plain_dict_loadable_with_weights_only(tmp_path):
    path = save_checkpoint(
        make_checkpoint(create_model("unet-ds", base_width=4, depth=2), {}, ["bg", "fg"]), tmp_path / "m.pt"
    )
    ckpt = torch.load(path, weights_only=True)
    assert isinstance(ckpt, dict) and {"format_version", "model_config", "state_dict", "edgeunet_version"} <= set(ckpt)
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_missing_checkpoint_names_the_fix(tmp_path):
    with pytest.raises(UserError, match="checkpoint not found.*best.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_foreign_file_is_rejected(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="not a readable edgeunet checkpoint"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(UserError, match="not an edgeunet checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_format_1_checkpoints_read_epochs_as_completed_counts(tmp_path):
    ckpt = make_checkpoint(create_model("unet-ds", base_width=4, depth=2), {}, ["bg", "fg"], epoch=2, best_epoch=1)
    torch.save({**ckpt, "format_version": 1}, tmp_path / "old.pt")  # format 1: 0-based epoch indices
    loaded = load_checkpoint(tmp_path / "old.pt")
    assert (loaded["format_version"], loaded["epoch"], loaded["best_epoch"]) == (2, 3, 2)
    save_checkpoint(ckpt, tmp_path / "new.pt")
    assert load_checkpoint(tmp_path / "new.pt")["epoch"] == 2
