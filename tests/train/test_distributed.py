"""Training under torchrun: two CPU processes with gloo on the loopback interface.

The torchrun runs train a tiny U-Net for two epochs of 16 synthetic 32 px crops
(tests/ddp_worker.py); each launch takes a few seconds, most of it process start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from edgeunet.checkpoint import load_checkpoint, model_from_checkpoint
from edgeunet.errors import UserError
from edgeunet.models import create_model
from edgeunet.train import distributed

WORKER = Path(__file__).parents[1] / "ddp_worker.py"
# The command line of tests/ddp_worker.py's SETTINGS.
CLI_OPTIONS = ["--data", "synthetic", "--model", "unet-ds", "--base-width", "8", "--depth", "2", "--epochs", "2",
               "--batch-size", "4", "--img-size", "32", "--samples-per-epoch", "16", "--device", "cpu", "--no-progress"]


def torchrun(*args: str, processes: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --standalone`` (a free local port) with ``processes`` CPU workers, one thread each."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only: no traffic leaves the machine
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)


def records(folder: Path) -> list[dict]:
    return [json.loads((folder / f"rank{rank}.json").read_text()) for rank in (0, 1)]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """A finished two-process run, the second in its processes: (completed process, run folder, per-rank records)."""
    root = tmp_path_factory.mktemp("ddp")
    done = torchrun(str(WORKER), str(root / "run"), str(root / "records"), "--first-train", str(root / "first"))
    assert done.returncode == 0, done.stderr[-3000:]
    return done, root / "run", records(root / "records")


def test_two_processes_complete_every_epoch(ddp_run):
    _, out, recorded = ddp_run
    assert [r["world_size"] for r in recorded] == [2, 2]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1]


def test_a_second_fit_in_the_same_processes_trains_too(ddp_run):
    _, out, _ = ddp_run  # the run in `out` followed a one-epoch run in `first` in the same processes
    assert len((out.parent / "first" / "metrics.jsonl").read_text().splitlines()) == 1
    assert load_checkpoint(out / "last.pt")["epoch"] == 2  # completed epochs


def test_only_rank_zero_writes_and_each_checkpoint_once_per_epoch(ddp_run):
    _, out, (rank0, rank1) = ddp_run
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "config.json", "last.pt", "metrics.jsonl",
                                                     "results.csv", "results.png"]
    assert rank1["saved"] == []
    assert rank0["saved"].count("last.pt") == 2 and set(rank0["saved"]) <= {"best.pt", "last.pt"}


def test_ranks_hold_identical_trained_weights(ddp_run):
    _, _, (rank0, rank1) = ddp_run
    assert rank0["before"] == rank1["before"]
    assert rank0["after"] == rank1["after"] != rank0["before"]


def test_last_checkpoint_holds_the_weights_of_the_ranks(ddp_run):
    from ddp_worker import state_digest

    _, out, (rank0, _) = ddp_run
    model, _ = model_from_checkpoint(out / "last.pt")
    assert state_digest(model) == rank0["after"]


def test_checkpoint_of_a_two_process_run_loads_in_one_process(ddp_run):
    _, out, _ = ddp_run
    ckpt = load_checkpoint(out / "best.pt")
    assert not [key for key in ckpt["state_dict"] if key.startswith("module.")]
    model, _ = model_from_checkpoint(ckpt)  # strict load
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 2, 32, 32)


def test_checkpoint_of_a_two_process_run_exports_to_onnx(ddp_run, tmp_path):
    from edgeunet.export.onnx import export_onnx, read_metadata

    _, out, _ = ddp_run
    model, ckpt = model_from_checkpoint(out / "best.pt")
    path = export_onnx(model, tmp_path / "model.onnx", ckpt["preprocessing"], ckpt["class_names"])
    assert read_metadata(path).num_classes == 2


def test_cli_resume_under_torchrun_reaches_the_uninterrupted_weights(ddp_run, tmp_path):
    _, full, _ = ddp_run
    part = tmp_path / "part"
    stopped = torchrun(str(WORKER), str(part), str(tmp_path / "records"), "--interrupt-at-epoch", "1")
    assert stopped.returncode != 0 and load_checkpoint(part / "last.pt")["epoch"] == 1  # one epoch completed
    resumed = torchrun("-m", "edgeunet", "train", *CLI_OPTIONS, "--out", str(part), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("trained unet-ds") == 1  # rank 0 alone prints
    expected, got = load_checkpoint(full / "last.pt")["state_dict"], load_checkpoint(part / "last.pt")["state_dict"]
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    assert [json.loads(line)["epoch"] for line in (part / "metrics.jsonl").read_text().splitlines()] == [0, 1]


def test_sync_bn_on_cpu_names_the_fix():
    model = create_model("unet-ds", base_width=8, depth=2)
    with pytest.raises(UserError, match="--sync-bn needs CUDA GPUs.*drop --sync-bn"):
        distributed.wrap(model, distributed.DistContext(rank=0, world_size=2), "cpu", sync_bn=True)


def test_batch_size_that_does_not_split_over_the_processes_names_the_fix():
    with pytest.raises(UserError, match="--batch-size 6 is the total over 4 processes.*multiple of 4"):
        distributed.split_batch(6, distributed.DistContext(rank=0, world_size=4))


def test_revert_sync_batchnorm_turns_sync_batchnorm_back_into_batchnorm_with_the_same_tensors():
    model = create_model("unet-ds", base_width=8, depth=2)
    before = dict(model.state_dict(keep_vars=True))
    torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    distributed.revert_sync_batchnorm(model)
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    after = model.state_dict(keep_vars=True)
    assert list(after) == list(before) and all(after[key] is before[key] for key in before)
