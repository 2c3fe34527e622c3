"""Export of 3-D models: dynamic D, H, W ONNX with 3-D metadata, FP16, INT8 through the search, volume roles."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeunet.errors import UserError

torch = pytest.importorskip("torch", reason="export needs the train extra")
pytest.importorskip("onnx", reason="export needs the train extra")
pytestmark = pytest.mark.timeout(600)  # the module fixture trains, exports and INT8-searches a 3-D model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny trained unet3d-ds exported FP32 + FP16 + INT8 (search) on synthetic volumes."""
    from edgeunet.export import export_model
    from edgeunet.export.options import ExportOptions
    from tests.tiny3d import checkpoint_3d

    out = tmp_path_factory.mktemp("export3d") / "export"
    options = ExportOptions(int8=True, fp16=True, calib_images=4, search_images=3, val_images=4, search_time=20.0,
                            search_img_size=32)
    report = export_model(checkpoint_3d(), out, options, progress=False)
    return out, report


def test_3d_onnx_has_dynamic_depth_height_width_and_3d_metadata(exported):
    import onnx

    from edgeunet.runtime.metadata import ModelMetadata

    out, _ = exported
    proto = onnx.load(str(out / "model.onnx"))
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 1, "depth", "height", "width"]
    meta = ModelMetadata.from_props({p.key: p.value for p in proto.metadata_props})
    assert meta.spatial_dims == 3 and meta.size_multiples == (4, 4, 4) and meta.size_multiple == 4


def test_3d_export_verifies_on_whole_held_out_volumes(exported):
    out, report = exported
    verification = report["verification"]
    assert verification["count"] == 4 and all(n.startswith("synthetic3d-val-") for n in verification["images"])
    assert verification["fp32_vs_torch"]["argmax_agreement"] >= 0.9999
    assert verification["fp16_vs_torch"]["argmax_agreement"] >= 0.99
    data = json.loads((out / "export.json").read_text())["data"]
    assert not set(data["calibration"]) & set(data["verification"])


def test_3d_int8_keeps_dice_or_records_which_groups_stayed_float(exported):
    _, report = exported
    quality = report["int8_quality"]
    search = report["int8_search"]
    assert search["size"] == 32 and search["groups"]
    assert set(search["group_decisions"]) == set(search["groups"]), "every layer group gets a decision"
    for decision in search["group_decisions"].values():
        assert decision["int8_pays"] in (True, False, None) and decision["reason"]
        assert decision["kept_float"] == (decision["int8_pays"] is False or decision.get("for_accuracy", False))
    within = quality["dice_drop"] is not None and quality["dice_drop"] <= 0.01
    assert within or search["float_groups"]
    assert "int8_faster_than_fp32" in report


def test_3d_export_runs_in_the_segmenter_like_pytorch(exported):
    from edgeunet.runtime import Segmenter
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING, preprocess
    from tests.tiny3d import trained_unet3d, volumes

    out, _ = exported
    volume = volumes(1, seed=11)[0][0]
    x = preprocess(volume, DEFAULT_PREPROCESSING, 1, spatial_dims=3)
    with torch.no_grad():
        expected = trained_unet3d()(torch.from_numpy(x)[None]).numpy()[0].argmax(0)
    got = Segmenter(out / "model.onnx", threads=1, tile=32)(volume)  # one window: the whole volume
    assert (got == expected).mean() >= 0.9999


def test_volume_folder_roles_are_disjoint_and_read_as_volumes(tmp_path):
    from edgeunet.export.options import ExportOptions
    from edgeunet.export.roles import plan_roles
    from edgeunet.export.samples import InputSpec
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING
    from edgeunet.runtime.volume_files import write_volume
    from tests.tiny3d import volumes

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i, (volume, mask) in enumerate(volumes(6, seed=3, size=(10, 18, 18))):
        write_volume(tmp_path / "images" / f"v{i}.npy", volume)
        write_volume(tmp_path / "masks" / f"v{i}.npy", mask)
    plan = plan_roles(ExportOptions(calib=str(tmp_path), calib_images=2, search_images=2, val_images=2), 3)
    assert plan.layout == "one folder"
    stems = [set(plan.stems(r)) for r in ("calibration", "search", "verification")]
    assert all(stems) and not (stems[0] & stems[1] or stems[0] & stems[2] or stems[1] & stems[2])
    spec = InputSpec(DEFAULT_PREPROCESSING, 1, 4, spatial_dims=3, multiples=(4, 4, 4))
    inputs = plan.load("verification", spec, 16)
    assert inputs.images[0].shape == (1, 8, 16, 16) and inputs.masks[0].shape == (8, 16, 16)


def test_volume_folder_with_an_unpaired_volume_is_a_user_error(tmp_path):
    from edgeunet.export.options import ExportOptions
    from edgeunet.export.roles import plan_roles

    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    np.save(tmp_path / "images" / "a.npy", np.zeros((4, 8, 8), np.uint16))
    with pytest.raises(UserError, match="without a mask"):
        plan_roles(ExportOptions(calib=str(tmp_path)), 3)


def test_3d_export_example_is_a_cube_of_the_patch():
    from edgeunet.export.onnx import export_example
    from edgeunet.models import create_model

    example, axes = export_example(create_model("unet3d-ds").current_config())
    assert tuple(example.shape) == (1, 1, 64, 64, 64) and axes == {0: "batch", 2: "depth", 3: "height", 4: "width"}
    example, axes = export_example(create_model("unet3d-ds").current_config(), 32)
    assert tuple(example.shape) == (1, 1, 32, 32, 32) and axes == {0: "batch"}


# TensorRT profiles for 5-D inputs: the same paths as the 2-D ones, driven by the fake TensorRT.

def test_parse_and_check_5d_profiles():
    from edgeunet.export.tensorrt.shapes import check_shapes, default_shapes, parse_shapes

    shapes = parse_shapes("1x1x64x64x64,1x1x96x96x96,1x1x128x128x128")
    assert shapes[2] == (1, 1, 128, 128, 128)
    check_shapes(shapes, 1, 4, size_multiples=(4, 4, 4))
    with pytest.raises(UserError, match="D 62 is not a multiple of 4"):
        check_shapes(parse_shapes("1x1x62x64x64,1x1x64x64x64,1x1x64x64x64"), 1, 4, size_multiples=(4, 4, 4))
    with pytest.raises(UserError, match="does not fit this 3-D model: write BxCxDxHxW"):
        check_shapes(parse_shapes("1x1x64x64,1x1x64x64,1x1x64x64"), 1, 4, size_multiples=(4, 4, 4))
    with pytest.raises(UserError, match="does not fit this 2-D model: write BxCxHxW"):
        check_shapes(shapes, 1, 4)
    with pytest.raises(UserError, match="same number of dimensions"):
        parse_shapes("1x1x64x64x64,1x1x64x64,1x1x64x64x64")
    with pytest.raises(UserError, match="exported for 32x32x32 volumes"):
        check_shapes(shapes, 1, 4, static_hw=(32, 32, 32), size_multiples=(4, 4, 4))
    assert default_shapes(1, 4, size_multiples=(4, 4, 4)) == (
        (1, 1, 64, 64, 64), (1, 1, 96, 96, 96), (1, 1, 128, 128, 128))
    assert default_shapes(1, 8, size_multiples=(1, 8, 8))[1] == (1, 1, 96, 96, 96)
    assert default_shapes(2, 16, static_hw=(8, 32, 32), size_multiples=(8, 16, 16))[2] == (1, 2, 8, 32, 32)


@pytest.mark.slow
def test_3d_engine_defaults_to_cube_profiles_and_segments_like_onnx(monkeypatch, tmp_path):
    import shutil
    import sys

    from edgeunet.export import build_engine
    from edgeunet.runtime import Segmenter
    from tests.fake_cudart import FakeCuda, install
    from tests.fake_tensorrt import make_tensorrt
    from tests.tiny3d import onnx_3d, volumes

    model = shutil.copy(onnx_3d(), tmp_path / "model.onnx")  # trains first: torch must not see the fake tensorrt
    cuda = FakeCuda()
    monkeypatch.setitem(sys.modules, "tensorrt", make_tensorrt("10.3.0", cuda))
    install(monkeypatch, cuda, "bindings")
    dry = build_engine(model, tmp_path / "default.engine", dry_run=True)
    assert "--minShapes=images:1x1x64x64x64" in dry["trtexec"]
    assert "--maxShapes=images:1x1x128x128x128" in dry["trtexec"]
    engine = build_engine(model, tmp_path / "model.engine", shapes="1x1x16x16x16,1x1x16x16x16,2x1x32x32x32")["engine"]
    seg = Segmenter(engine, tile=16)
    assert seg.backend == "tensorrt" and seg.metadata.is_3d and seg.tile == 16
    volume = volumes(1, seed=12)[0][0]
    np.testing.assert_array_equal(seg(volume), Segmenter(model, threads=1, tile=16)(volume))
    with pytest.raises(UserError, match="outside the input sizes"):
        Segmenter(engine, tile=64)


def _volume_folder(root, count, depth):
    from edgeunet.runtime.volume_files import write_volume
    from tests.tiny3d import volumes

    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i, (volume, mask) in enumerate(volumes(count, seed=3, size=(depth, 18, 18))):
        write_volume(root / "images" / f"v{i}.npy", volume)
        write_volume(root / "masks" / f"v{i}.npy", mask)
    return root


def test_two_volumes_split_the_roles_by_depth_slab_and_export_json_records_them(tmp_path):
    from edgeunet.export.options import ExportOptions
    from edgeunet.export.roles import ROLES, plan_roles
    from edgeunet.export.samples import InputSpec
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    folder = _volume_folder(tmp_path / "two", 2, 24)
    plan = plan_roles(ExportOptions(calib=str(folder), calib_images=4, search_images=4, val_images=4), 3)
    assert plan.layout == "one folder by region"
    assert [plan.roles[r].region for r in ROLES] == [(0, 3), (1, 3), (2, 3)]
    assert all(plan.roles[r].count == 2 for r in ROLES)
    record = plan.to_dict()
    assert record["regions"]["verification"] == {"axis": "depth", "slab": 3, "of": 3}
    assert "depth slabs" in record["summary"] and "v0 (depth slab 1 of 3)" in record["calibration"]
    spec = InputSpec(DEFAULT_PREPROCESSING, 1, 4, spatial_dims=3, multiples=(4, 4, 4))
    raw = np.load(folder / "images" / "v0.npy")
    slabs = [plan.load(r, spec, 16) for r in ROLES]
    assert [s.images[0].shape[1] for s in slabs] == [8, 8, 8]  # 24 voxels deep: three disjoint slabs of 8
    assert all(s.masks[0].shape == (8, 16, 16) for s in slabs)
    # each role's slab is its own depth range of the volume: calibration's voxels are the first 8 slices
    from edgeunet.runtime.preprocess import preprocess

    whole = preprocess(raw[0:8], DEFAULT_PREPROCESSING, 1, spatial_dims=3)[:, :, 1:17, 1:17]
    np.testing.assert_allclose(slabs[0].images[0], whole, atol=1e-6)


def test_one_val_volume_is_split_between_search_and_verification(tmp_path):
    from edgeunet.export.options import ExportOptions
    from edgeunet.export.roles import plan_roles

    calib = _volume_folder(tmp_path / "calib", 1, 16)
    val = _volume_folder(tmp_path / "val", 1, 16)
    plan = plan_roles(ExportOptions(calib=str(calib), val=str(val)), 3)
    assert plan.layout == "separate" and plan.roles["calibration"].region is None
    assert (plan.roles["search"].region, plan.roles["verification"].region) == ((0, 2), (1, 2))
    assert "cut into 2 depth slabs" in plan.summary()


def test_a_volume_too_thin_for_its_slabs_is_a_user_error(tmp_path):
    from edgeunet.export.options import ExportOptions
    from edgeunet.export.roles import plan_roles
    from edgeunet.export.samples import InputSpec
    from edgeunet.runtime.preprocess import DEFAULT_PREPROCESSING

    folder = _volume_folder(tmp_path / "thin", 1, 9)
    plan = plan_roles(ExportOptions(calib=str(folder)), 3)
    spec = InputSpec(DEFAULT_PREPROCESSING, 1, 4, spatial_dims=3, multiples=(4, 4, 4))
    with pytest.raises(UserError, match="too thin to cut into 3 slabs of at least 4 voxels"):
        plan.load("verification", spec, 16)


@pytest.mark.slow
def test_int8_export_of_a_3d_model_with_one_volume_splits_the_roles_by_region(tmp_path):
    """One volume is too few for a volume per role (calibration and verification: no search runs): the export
    cuts it into depth slabs and says so."""
    from edgeunet.export import export_model
    from edgeunet.export.options import ExportOptions
    from tests.tiny3d import checkpoint_3d

    folder = _volume_folder(tmp_path / "one", 1, 36)
    options = ExportOptions(int8=True, calib=str(folder), int8_search=False, max_dice_drop=1.0)
    report = export_model(checkpoint_3d(), tmp_path / "export", options, progress=False)
    data = json.loads((tmp_path / "export" / "export.json").read_text())["data"]
    assert data["layout"] == "one folder by region" and report["data"]["layout"] == data["layout"]
    assert [data["regions"][r]["slab"] for r in ("calibration", "verification")] == [1, 2]
    assert data["verification"] == ["v0 (depth slab 2 of 2)"] and data["search"] == []
    assert report["int8_quality"]["count"] == 1
