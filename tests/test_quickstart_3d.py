"""``edgeunet quickstart --3d`` on tiny settings: the data, train and prune stages (export, predict and
bench of volumes belong to the deployment side and are exercised by its tests)."""

from __future__ import annotations

import json

import pytest

from edgeunet.errors import UserError
from edgeunet.quickstart3d import Quickstart3DSettings, run_quickstart3d

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_quickstart_3d_trains_and_prunes_unet3d_ds_on_synthetic_volumes(tmp_path):
    settings = Quickstart3DSettings(out=str(tmp_path / "qs"), n_volumes=4, heldout_volumes=1, volume_side=16,
                                    patch_side=16, epochs=1, samples_per_epoch=2, batch_size=2, finetune_epochs=1,
                                    progress=False)
    lines = []
    facts = run_quickstart3d(settings, report=lines.append, stages=("data", "train", "prune"))
    out = tmp_path / "qs"
    assert sorted(p.name for p in (out / "data" / "images").iterdir())[0] == "synth_0000.nii.gz"
    assert len(list((out / "heldout" / "masks").iterdir())) == 1
    config = json.loads((out / "train" / "config.json").read_text())
    assert config["model_config"]["name"] == "unet3d-ds" and config["settings"]["patch"] == [16, 16, 16]
    prune = json.loads((out / "prune" / "prune.json").read_text())
    assert prune["parameters"]["after"] < prune["parameters"]["before"] and prune["patch"] == [16, 16, 16]
    assert facts["train"]["checkpoint"] == str(out / "train" / "best.pt")
    assert [line[:3] for line in lines[:3]] == ["[1]", "[2]", "[3]"] and "export" not in facts


def test_quickstart_3d_settings_name_the_bad_value():
    with pytest.raises(UserError, match="--epochs 0 must be at least 1"):
        Quickstart3DSettings(epochs=0)
