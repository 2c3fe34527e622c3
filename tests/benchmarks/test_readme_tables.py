"""README and docs figures come from committed result files: benchmarks/tables.py writes the marked blocks, and
the committed README.md, benchmarks/README.md and docs/*.md must be what it writes."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import tables  # noqa: E402
from benchmarks.results_files import latest  # noqa: E402


def test_committed_readme_blocks_are_what_the_result_files_give():
    for path, (committed, written) in tables.rendered().items():
        assert committed == written, f"{path.name} differs from its result files: run python benchmarks/tables.py"


def test_every_block_is_used_in_a_readme():
    text = "".join(path.read_text() for path in tables.files())
    assert {name for name in tables.BLOCKS if f"<!-- edgeunet:table {name} -->" in text} == set(tables.BLOCKS)


def test_the_readmes_and_every_docs_page_are_written():
    names = {path.relative_to(ROOT).as_posix() for path in tables.files()}
    assert {"README.md", "benchmarks/README.md", "docs/benchmarks.md"} <= names
    assert {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")} <= names


def test_the_readme_keeps_the_models_table_and_one_headline_and_the_pages_hold_the_rest():
    readme = (ROOT / "README.md").read_text()
    assert set(re.findall(r"<!-- edgeunet:table ([\w.-]+) -->", readme)) == {"models", "suite-findings",
                                                                              "unet-vit-choice"}
    pages = {name: (ROOT / "docs" / f"{name}.md").read_text() for name in ("training", "export", "formats", "3d",
                                                                           "runtime", "benchmarks", "models")}
    for page, blocks in {"training": ("recipe", "ddp"), "export": ("int8-speedup",), "formats": ("runtimes",),
                         "3d": ("demo3d", "volume-memory", "volumes", "models-3d"), "runtime": ("runtime-memory",),
                         "benchmarks": ("repeatability", "spinning", "suite"),
                         "models": ("recipe-models", "suite-transformer", "unet-vit-choice")}.items():
        for name in blocks:
            assert f"<!-- edgeunet:table {name} -->" in pages[page], f"block {name} is not in docs/{page}.md"


def _memory_result(date: str, int8_big: float) -> dict:
    rows = [
        {"precision": p, "image": image, "tile": 512, "peak_rss_mb": rss}
        for p, image, rss in (
            ("int8", "2048x2048", int8_big),
            ("int8", "512x512", 90.0),
            ("fp32", "2048x2048", 220.0),
            ("fp32", "512x512", 118.0),
        )
    ]
    return {
        "kind": "runtime-memory",
        "date": date,
        "model": "unet-ds",
        "rows": rows,
        "provenance": {"cpu": {"model": "Test CPU", "usable_cores": 4}},
    }


def test_a_block_is_rewritten_from_the_newest_result_file_and_the_rest_is_kept(tmp_path):
    (tmp_path / "a-runtime-memory.json").write_text(json.dumps(_memory_result("2030-01-01", 150.0)))
    (tmp_path / "b-runtime-memory.json").write_text(json.dumps(_memory_result("2030-02-01", 171.6)))
    text = "intro\n<!-- edgeunet:table runtime-memory -->\nold figure 999 MB\n<!-- /edgeunet:table -->\nend\n"
    out = tables.render(text, tmp_path)
    assert out.startswith("intro\n<!-- edgeunet:table runtime-memory -->\n")
    assert out.endswith("<!-- /edgeunet:table -->\nend\n")
    words = " ".join(out.split())  # prose is wrapped at 100 characters
    assert "999" not in out and "172 MB RSS with the INT8 file" in words and "4-core Test CPU" in words
    assert tables.render(out, tmp_path) == out  # writing twice changes nothing


def test_a_block_without_a_result_file_names_the_script_instead_of_a_figure(tmp_path):
    text = "<!-- edgeunet:table ddp -->\n0.8946 vs 0.9010\n<!-- /edgeunet:table -->\n"
    out = tables.render(text, tmp_path)
    assert "0.89" not in out and "benchmarks/ddp.py" in out


def test_an_unclosed_or_unknown_block_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="has no '<!-- /edgeunet:table -->' after it"):
        tables.render("<!-- edgeunet:table ddp -->\nno end\n", tmp_path)
    with pytest.raises(ValueError, match="unknown table block 'nope'"):
        tables.render("<!-- edgeunet:table nope -->\n<!-- /edgeunet:table -->\n", tmp_path)


def test_latest_ignores_other_kinds_and_picks_the_latest_date(tmp_path):
    (tmp_path / "x-demo.json").write_text(json.dumps({"kind": "demo", "date": "2031-01-01"}))
    (tmp_path / "m-runtime-memory.json").write_text(json.dumps(_memory_result("2030-01-01", 1.0)))
    path, data = latest(tmp_path, "runtime-memory")
    assert path.name == "m-runtime-memory.json" and latest(tmp_path, "ddp") is None


def test_a_docs_page_is_written_and_checked_like_the_readme(tmp_path, capsys):
    for name in tables.FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("no blocks\n")
    page = tmp_path / "docs" / "training.md"
    page.parent.mkdir()
    page.write_text("# Training\n<!-- edgeunet:table ddp -->\nstale 0.1234\n<!-- /edgeunet:table -->\n")
    assert tables.main(["--check"], root=tmp_path, results=tmp_path) == 1
    assert "docs/training.md: blocks differ" in capsys.readouterr().out
    assert tables.main([], root=tmp_path, results=tmp_path) == 0
    assert "stale" not in page.read_text() and "benchmarks/ddp.py" in page.read_text()


def test_check_mode_exits_1_when_a_readme_is_stale(tmp_path, capsys):
    for name in tables.FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("<!-- edgeunet:table ddp -->\nstale 0.1234\n<!-- /edgeunet:table -->\n")
    assert tables.main(["--check"], root=tmp_path, results=tmp_path) == 1
    assert "differ from the result files" in capsys.readouterr().out
    assert "stale 0.1234" in (tmp_path / "README.md").read_text()  # --check writes nothing
    assert tables.main([], root=tmp_path, results=tmp_path) == 0
    assert "stale" not in (tmp_path / "README.md").read_text()


def test_demo_and_ddp_blocks_are_written_from_their_scripts_result_files(tmp_path):
    cpu = {"cpu": {"model": "Test CPU", "usable_cores": 2}}
    demo = {
        "kind": "demo",
        "date": "2030-01-01",
        "seconds": 110.4,
        "train_dice": 0.9871,
        "parameters": 266_000,
        "pruned_parameters": 70_000,
        "pruned_reduction": 0.737,
        "pruned_dice": 0.9832,
        "int8_dice_drop": 0.0001,
        "int8_search": {"kept": "full int8", "speedup": 2.1, "size": 256},
        "provenance": cpu,
    }
    ddp = {
        "kind": "ddp",
        "date": "2030-01-01",
        "provenance": cpu,
        "rows": [
            {
                "what": "today's layout",
                "options": ["--data", "synthetic", "--model", "unet-ds", "--epochs", "4"],
                "best_dice": {"1": 0.8946, "2": 0.9010},
            }
        ],
    }
    (tmp_path / "m-demo.json").write_text(json.dumps(demo))
    (tmp_path / "m-ddp.json").write_text(json.dumps(ddp))
    words = " ".join(tables.block_text("demo", tmp_path).split())
    assert "took 1 min 50 s" in words and "0.266 M -> 0.070 M parameters (-74%)" in words
    assert "INT8 Dice drop 0.0001" in words and "kept full int8 (2.10x as fast as FP32 at 256 px" in words
    words = " ".join(tables.block_text("ddp", tmp_path).split())
    assert "today's layout: 0.8946 (1 process) vs 0.9010 (2 processes)" in words and "`--model unet-ds`" in words


def test_spinning_block_gives_each_modes_p50s_and_the_gain_of_spinning_within_a_call(tmp_path):
    def sizes(fp32, int8):
        return {"256": {"fp32_p50_ms": fp32, "int8_p50_ms": int8, "ratio": round(fp32 / int8, 4)}}

    data = {"kind": "spinning", "date": "2030-01-01", "model": "unet-ds", "command": "edgeunet bench a b",
            "provenance": {"cpu": {"model": "Test CPU", "usable_cores": 2}},
            "modes": {"off": sizes(8.0, 4.0), "run": sizes(7.5, 3.2), "always": sizes(7.4, 3.9)}}
    (tmp_path / "m-spinning.json").write_text(json.dumps(data))
    text = tables.block_text("spinning", tmp_path)
    assert "| run | 7.50 / 3.20 | 2.34 |" in text and "| off | 8.00 / 4.00 | 2.00 |" in text
    words = " ".join(text.split())
    assert "p50 1.25x (INT8) and 1.07x (FP32) at 256 px" in words and "the 2-core Test CPU, 2030-01-01" in words


def test_models_blocks_are_written_from_the_models_result_file(tmp_path):
    row = {"name": "unet-ds", "encoder": "", "block": "ds", "widths": [32, 48, 96, 192], "fused_levels": 2,
           "space_to_depth": 2, "upsample": "bilinear", "up_act": True, "attention": False, "parameters": 266_818,
           "gmacs": 1.1131}
    row_3d = {**row, "name": "unet3d", "block": "conv", "widths": [32, 64], "fused_levels": 0, "space_to_depth": 1,
              "upsample": "transpose", "up_act": False, "parameters": 5_600_962, "gmacs": 62.7151, "spatial_dims": 3}
    data = {"kind": "models", "date": "2030-01-01", "img_size": 256, "img_size_3d": 64, "rows": [row, row_3d],
            "provenance": {"edgeunet": "9.9.9"}}
    (tmp_path / "models.json").write_text(json.dumps(data))
    text = tables.block_text("models", tmp_path)
    line = ("| `unet-ds` | - | depthwise-separable | 2 | 2 | bilinear + BN-ReLU | no | - | 0.267 | 1.113 "
            "| 32, 48, 96, 192 |")
    assert line in text
    vit = {**row, "name": "unet-vit", "attention_levels": [2, 3], "parameters": 836_504, "gmacs": 1.3589}
    (tmp_path / "models.json").write_text(json.dumps({**data, "rows": [row, vit]}))
    assert "| no | 2, 3 | 0.837 | 1.359 |" in tables.block_text("models", tmp_path)
    (tmp_path / "models.json").write_text(json.dumps(data))
    assert "unet3d" not in text and "at 256x256" in " ".join(text.split())
    text = tables.block_text("models-3d", tmp_path)
    assert "| `unet3d` | - | 3x3 conv | - | - | transposed | no | - | 5.601 | 62.715 | 32, 64 |" in text
    assert "unet-ds" not in text and "at 64^3" in " ".join(text.split())
    assert "benchmarks/models.py" in tables.block_text("models", tmp_path / "empty")


@pytest.mark.slow
def test_the_committed_models_result_is_what_the_code_counts():
    pytest.importorskip("torch_pruning", reason="counting MACs needs the train extra (Torch-Pruning)")
    from benchmarks import models

    path, data = latest(tables.RESULTS, "models")
    counted = {r["name"]: (r["parameters"], round(r["gmacs"], 3), r["widths"]) for r in models.count()}
    committed = {r["name"]: (r["parameters"], round(r["gmacs"], 3), r["widths"]) for r in data["rows"]}
    assert committed == counted, f"{path.name} is stale: run python benchmarks/models.py, then benchmarks/tables.py"


def test_a_suite_run_with_a_tag_is_its_own_kind_and_leaves_the_full_suite_table(tmp_path):
    """`benchmarks/run.py --tag transformer` of three variants must not stand in for the full suite's table."""
    from benchmarks.results_files import kind_of, latest

    full = {"suite": {"variants": []}, "rows": [], "date": "2030-01-01"}
    tagged = {"suite": {"variants": [], "tag": "transformer"}, "rows": [], "date": "2030-02-01"}
    (tmp_path / "m-2030-01-01.json").write_text(json.dumps(full))
    (tmp_path / "m-transformer-2030-02-01.json").write_text(json.dumps(tagged))
    assert kind_of(tmp_path / "x.json", tagged) == "suite-transformer" and kind_of(tmp_path / "x.json", full) == "suite"
    assert latest(tmp_path, "suite")[0].name == "m-2030-01-01.json"
    assert latest(tmp_path, "suite-transformer")[0].name == "m-transformer-2030-02-01.json"


@pytest.mark.parametrize("tag, ok", [("transformer", True), ("vit-2", True), ("Bad Tag", False), ("../x", False)])
def test_a_suite_tag_becomes_part_of_file_names_only_when_safe(tag, ok):
    import argparse

    from benchmarks.run import tag_name

    if ok:
        assert tag_name(tag) == tag
    else:
        with pytest.raises(argparse.ArgumentTypeError, match="lower-case letters"):
            tag_name(tag)
