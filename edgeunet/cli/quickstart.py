"""``edgeunet quickstart``: the whole pipeline on built-in synthetic data."""

from __future__ import annotations

import argparse
import json


def add_parser(sub) -> None:
    p = sub.add_parser("quickstart", help="run the whole pipeline on built-in synthetic data (a few minutes on 2 CPU cores)")
    p.add_argument("--out", default="runs/quickstart", help="folder for everything it writes (default runs/quickstart)")
    p.add_argument("--epochs", type=int, default=6, help="training epochs (default 6)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", dest="progress", action="store_false")
    p.add_argument("--json", help="also write the facts of every stage to this JSON file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..quickstart import QuickstartSettings, run_quickstart

    facts = run_quickstart(QuickstartSettings(out=args.out, epochs=args.epochs, seed=args.seed, progress=args.progress))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(facts, f, indent=2)
    return 0
