"""Files and folders edgeunet writes get the permissions the user's umask gives (0644 and 0755 under
umask 022), atomic writes included: a temporary file from ``mkstemp`` alone would stay 0600."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from PIL import Image

from edgeunet.runtime import Segmenter, predict_files, write_mask


@pytest.fixture
def umask():
    """Sets the process umask for one test and puts the old one back."""
    before = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(before)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_predicted_masks_overlays_and_their_folder_follow_the_umask(mask, file_mode, dir_mode, umask,
                                                                    runtime_model, tmp_path):
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 40), dtype=np.uint8)).save(tmp_path / "a.png")
    umask(mask)
    out = tmp_path / "new" / "masks"
    predict_files(Segmenter(runtime_model), [tmp_path / "a.png"], out, overlays=True)
    assert {p.name: mode(p) for p in out.iterdir()} == {"a.png": file_mode, "a_overlay.png": file_mode}
    assert mode(out) == dir_mode and mode(out.parent) == dir_mode


def test_a_mask_written_over_an_old_one_gets_the_umask_mode(umask, tmp_path):
    umask(0o022)
    target = tmp_path / "m.png"
    target.write_bytes(b"old")
    os.chmod(target, 0o600)
    write_mask(target, np.zeros((4, 4), np.uint8))
    assert mode(target) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]


def test_the_error_log_of_a_long_command_is_readable(umask, monkeypatch, tmp_path, capsys):
    from edgeunet.cli import main

    def boom(args):
        raise RuntimeError("boom")

    umask(0o022)
    monkeypatch.setattr("edgeunet.cli.train.run", boom)
    assert main(["train", "--out", str(tmp_path / "run")]) == 1
    assert mode(tmp_path / "run") == 0o755 and mode(tmp_path / "run" / "edgeunet-error.log") == 0o644
