"""Run by ``torchrun`` in tests/train/test_distributed.py: ``edgeunet.train.train`` as every rank runs it.

Usage: ``torchrun --nproc_per_node=2 tests/ddp_worker.py OUT RECORD_DIR [--first-train DIR] [--interrupt-at-epoch E]``.

Each rank writes RECORD_DIR/rank<r>.json with SHA-256 digests of its model state before and
after training and the checkpoint paths it saved, so the test can compare the ranks; nothing
but the trainer writes under OUT. ``--interrupt-at-epoch`` stops every rank as that epoch
begins (KeyboardInterrupt), as a killed job would, to test ``--resume``. ``--first-train DIR``
trains one epoch into DIR first, so that the run in OUT is the second ``fit`` of the same
processes (as ``edgeunet prune --steps`` makes them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from edgeunet.train import TrainSettings, loop, run

# Matches the test's `edgeunet train` command line (CLI defaults elsewhere), so a CLI --resume continues this run.
SETTINGS = dict(data="synthetic", model="unet-ds", model_options={"base_width": 8, "depth": 2}, epochs=2, batch_size=4,
                img_size=32, samples_per_epoch=16, device="cpu", progress=False)


def state_digest(model: torch.nn.Module) -> str:
    """SHA-256 of every parameter and buffer, in state_dict order."""
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("record_dir", type=Path)
    parser.add_argument("--interrupt-at-epoch", type=int)
    parser.add_argument("--first-train")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    record = {"rank": rank, "world_size": int(os.environ["WORLD_SIZE"]), "saved": []}

    real_fit, real_save, real_epoch = run.fit, loop.save_checkpoint, loop._train_epoch

    def recording_fit(model, *rest, **kwargs):  # records the last fit of the process
        record.update(before=state_digest(model), saved=[])
        result = real_fit(model, *rest, **kwargs)
        record["after"] = state_digest(model)
        return result

    def recording_save(ckpt, path):
        record["saved"].append(Path(path).name)
        return real_save(ckpt, path)

    def interruptible_epoch(run_state, loader, epoch):
        if epoch == args.interrupt_at_epoch:  # the 0-based index of the epoch that begins
            raise KeyboardInterrupt
        return real_epoch(run_state, loader, epoch)

    run.fit, loop.save_checkpoint, loop._train_epoch = recording_fit, recording_save, interruptible_epoch
    if args.first_train:
        run.train(TrainSettings(out=args.first_train, **{**SETTINGS, "epochs": 1}))
    code = 0
    try:
        run.train(TrainSettings(out=args.out, **SETTINGS))
    except KeyboardInterrupt:
        code = 3
    args.record_dir.mkdir(parents=True, exist_ok=True)
    (args.record_dir / f"rank{rank}.json").write_text(json.dumps(record))
    return code


if __name__ == "__main__":
    sys.exit(main())
