"""The one table of formats (``edgeunet/formats.py``): the only place a format's file suffixes are spelled, and
every row has what a format needs (a runtime backend, an exporter, a ``--formats`` name)."""

from __future__ import annotations

import io
import re
import sys
import tokenize
from pathlib import Path

import pytest

from edgeunet.formats import (
    BY_NAME,
    ENGINE_SUFFIXES,
    FORMATS,
    MODEL_SUFFIXES,
    OPTION_NAMES,
    artifact_pattern,
    format_of,
    model_file_name,
)

PACKAGE = Path(__file__).resolve().parents[1] / "edgeunet"
TABLE = PACKAGE / "formats.py"
# A suffix in prose or a string: ".tflite", "model.int8.tflite", "model.<precision>.engine". In Python files only
# strings and comments are searched (see _spelled), so attribute access such as ``options.engine`` never counts.
SUFFIX = re.compile(r"\.(tflite|pte|xml|engine)\b")
_FSTRING_FIELD = re.compile(r"\{[^{}]*\}")  # the code inside an f-string ("{o.engine}") is not text
_TEXT_TOKENS = {tokenize.STRING, tokenize.COMMENT} | {getattr(tokenize, "FSTRING_MIDDLE", tokenize.STRING)}


def _spelled(path: Path) -> list[str]:
    """The lines of ``path`` that spell one of the suffixes: in a Python file, inside strings and comments."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        return [line for line in text.splitlines() if SUFFIX.search(line)]
    hits = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in _TEXT_TOKENS:
            words = _FSTRING_FIELD.sub("", token.string) if token.string[:2].lower() in ("f'", 'f"') else token.string
            if SUFFIX.search(words):
                hits.append(f"{token.start[0]}: {token.line.strip()}")
    return hits


def _package_files() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*")) if p.is_file() and "__pycache__" not in p.parts
            and p.suffix in (".py", ".md", ".toml", ".txt", ".json", ".cfg")]


def test_the_regex_tells_a_suffix_from_attribute_access(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('x = options.engine or self.engine\n# model.int8.tflite\ny = f"{o.engine}.onnx"\n'
                     'z = "give a .pte file"\n')
    assert [hit.split(":")[0] for hit in _spelled(probe)] == ["2", "4"]


def test_only_the_format_table_spells_the_suffixes():
    assert _spelled(TABLE), "formats.py must hold the suffixes"
    spelled = {str(p.relative_to(PACKAGE.parent)): hits for p in _package_files() if p != TABLE
               for hits in [_spelled(p)] if hits}
    assert spelled == {}, "format suffixes spelled outside edgeunet/formats.py (read them from the table):\n" + \
        "\n".join(f"{name}:{hit}" for name, hits in spelled.items() for hit in hits)


def test_every_row_has_a_runtime_backend_and_an_exporter():
    from edgeunet.export.formats import EXPORTERS
    from edgeunet.runtime import backends

    for fmt in FORMATS:
        assert fmt.backend in backends._MAKE, f"{fmt.name}: no backend {fmt.backend!r} in runtime/backends.py"
        assert fmt.backend in backends.BACKENDS
        for suffix in fmt.suffixes:
            assert backends.choose_backend(f"model{suffix}") == fmt.backend
            assert format_of(f"m{suffix.upper()}") is fmt
        if fmt.name not in ("onnx", "tensorrt"):  # export_onnx and build_engine make those
            assert fmt.name in EXPORTERS, f"{fmt.name}: no exporter in edgeunet.export.formats.EXPORTERS"
    assert set(EXPORTERS) == set(OPTION_NAMES) - {"onnx"}
    assert set(backends._MAKE) == {f.backend for f in FORMATS}


def test_the_formats_help_lists_the_table_names(capsys):
    from edgeunet.cli import main

    with pytest.raises(SystemExit):
        main(["export", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    start = text.rindex("--formats LIST")  # the option's own entry, after the usage line
    helped = text[start:start + 400]
    for name in OPTION_NAMES + ("auto",):
        assert re.search(rf"\b{name}\b", helped), f"--formats help does not name {name!r}: {helped}"


def test_names_and_folder_pattern_follow_the_table():
    assert model_file_name("onnx") == "model.onnx" and model_file_name("onnx", "fp16") == "model.fp16.onnx"
    assert model_file_name("litert", "int8") == "model.int8" + BY_NAME["litert"].suffix
    assert model_file_name("tensorrt", "fp32") == "model.fp32" + ENGINE_SUFFIXES[0]
    written = artifact_pattern()
    for fmt in FORMATS:
        for precision in fmt.precisions:
            name = model_file_name(fmt.name, precision)
            assert written.match(name) and (not fmt.sidecar or written.match(name + ".json"))
    assert not written.match("best.pt") and not written.match("notes.txt")
    assert MODEL_SUFFIXES[0] == ".onnx" and set(ENGINE_SUFFIXES) <= set(MODEL_SUFFIXES)


def test_the_table_imports_nothing_heavy():
    import subprocess

    code = ("import sys, edgeunet.formats; "
            "print([m for m in ('torch', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_executorch_takes_one_size_only_for_models_with_transformer_blocks():
    from edgeunet.formats import BY_NAME, FORMATS, takes_one_size

    assert takes_one_size(BY_NAME["litert"], False) and takes_one_size(BY_NAME["litert"], True)
    assert not takes_one_size(BY_NAME["executorch"], False) and takes_one_size(BY_NAME["executorch"], True)
    assert [f.name for f in FORMATS if takes_one_size(f, True)] == ["executorch", "litert"]
