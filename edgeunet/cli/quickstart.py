"""``edgeunet quickstart``: the whole pipeline on built-in synthetic data."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import nonnegative_int, positive_int


def add_parser(sub) -> None:
    from ..quickstart import QuickstartSettings
    from ..quickstart3d import Quickstart3DSettings

    defaults, defaults3d = QuickstartSettings(), Quickstart3DSettings()
    p = sub.add_parser("quickstart", help="run the whole pipeline on built-in synthetic data "
                                          "(a few minutes on 2 CPU cores)")
    p.add_argument("--3d", dest="volumes", action="store_true",
                   help=f"the 3-D pipeline on synthetic volumes (unet3d-ds; default --out {defaults3d.out})")
    p.add_argument("--out", default=None, help=f"folder for everything it writes (default {defaults.out})")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help=f"training epochs (default {defaults.epochs}; 3-D: {defaults3d.epochs})")
    p.add_argument("--seed", type=nonnegative_int, default=defaults.seed)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--json", help="also write the facts of every stage to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..atomic import ensure_dir, write_json
    from ..errors import UserError
    from ..quickstart import QuickstartSettings, run_quickstart

    if args.json:  # checked before minutes of work, not after
        json_path = Path(args.json)
        if json_path.is_dir():
            raise UserError(f"--json {json_path} is a folder: give a file path such as facts.json")
        ensure_dir(json_path.absolute().parent, "--json folder")
    chosen = {key: value for key, value in (("out", args.out), ("epochs", args.epochs)) if value is not None}
    if args.volumes:
        from ..quickstart3d import Quickstart3DSettings, run_quickstart3d

        facts = run_quickstart3d(Quickstart3DSettings(seed=args.seed, progress=args.progress, **chosen))
    else:
        facts = run_quickstart(QuickstartSettings(seed=args.seed, progress=args.progress, **chosen))
    if args.json:
        write_json(args.json, facts)
    return 0
