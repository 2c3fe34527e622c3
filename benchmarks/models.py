"""The models table: parameters and MACs of every registered variant, counted by the code that builds it.

    python benchmarks/models.py            # writes benchmarks/results/models.json

The rows are ``edgeunet.describe.describe_variants`` (what ``edgeunet info --models`` prints): 1 input channel,
2 classes, MACs counted by Torch-Pruning at 256 x 256 for 2-D variants and on a 64^3 cube for 3-D ones. The
counts depend on the code, not on the machine: rerun after changing a variant, then ``python benchmarks/tables.py``
writes the ``models`` and ``models-3d`` blocks of README.md and docs/.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root makes `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HERE = Path(__file__).resolve().parent
IMG_SIZE = 256
IMG_SIZE_3D = 64
NO_MODELS = ("`python benchmarks/models.py` counts the parameters and MACs of every variant and records them in "
             "benchmarks/results/; `edgeunet info --models` prints them.")
NO_MODELS_3D = NO_MODELS
# describe_variants' block codes, as the table names them.
BLOCKS = {"conv": "3x3 conv", "ds": "depthwise-separable", "ir": "inverted residual"}


def count(img_size: int = IMG_SIZE, img_size_3d: int = IMG_SIZE_3D) -> list[dict]:
    """Every registered variant (2-D, then 3-D) with its parameters and GMACs; 3-D rows carry ``spatial_dims: 3``."""
    from edgeunet.describe import describe_variants

    rows_3d = describe_variants(img_size_3d, spatial_dims=3)
    return describe_variants(img_size) + [{**row, "spatial_dims": 3} for row in rows_3d]


def _upsample(row: dict) -> str:
    name = {"transpose": "transposed"}.get(row["upsample"], row["upsample"])
    return f"{name} + BN-ReLU" if row.get("up_act") else name


def _table(rows: list[dict], macs_at: str) -> str:
    lines = [f"| model | encoder | block | fused levels | space-to-depth | up-sampling | attention gates "
             f"| Transformer levels | parameters (M) | GMACs at {macs_at} | widths |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        levels = ", ".join(str(level) for level in r.get("attention_levels") or ()) or "-"
        lines.append(f"| `{r['name']}` | {r.get('encoder') or '-'} | {BLOCKS.get(r['block'], r['block'])} "
                     f"| {r['fused_levels'] or '-'} | {r['space_to_depth'] if r['space_to_depth'] > 1 else '-'} "
                     f"| {_upsample(r)} | {'yes' if r['attention'] else 'no'} | {levels} "
                     f"| {r['parameters'] / 1e6:.3f} | {r['gmacs']:.3f} | {', '.join(str(w) for w in r['widths'])} |")
    return "\n".join(lines)


def _caption(data: dict, macs_at: str) -> str:
    return (f"Parameters with 1 input channel and 2 classes, MACs counted by Torch-Pruning at {macs_at}, with "
            f"the MatMuls of linear attention (`edgeunet info --models` prints the same counts); `block` is the "
            f"convolution of edgeunet's own levels (the decoder's, behind a pretrained encoder); Transformer "
            f"levels: the encoder levels (0: full resolution) that end in Transformer blocks. edgeunet "
            f"{data['provenance']['edgeunet']}, {data['date']}. File: `benchmarks/results/models.json` "
            f"(`benchmarks/models.py`).")


def block(path: Path, data: dict) -> str:
    """README and docs/models.md: the 2-D variants, one row each."""
    rows = [r for r in data["rows"] if r.get("spatial_dims", 2) == 2]
    macs_at = f"{data['img_size']}x{data['img_size']}"
    return _table(rows, macs_at) + "\n\n" + _caption(data, macs_at)


def block_3d(path: Path, data: dict) -> str:
    """docs/3d.md: the 3-D variants, one row each."""
    rows = [r for r in data["rows"] if r.get("spatial_dims", 2) == 3]
    macs_at = f"{data['img_size_3d']}^3"
    return _table(rows, macs_at) + "\n\n" + _caption(data, macs_at)


def main(argv: list[str] | None = None) -> int:
    from edgeunet.atomic import write_json
    from edgeunet.env import provenance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "models.json", help="result file")
    args = parser.parse_args(argv)
    rows = count()
    result = {"kind": "models", "date": datetime.date.today().isoformat(), "img_size": IMG_SIZE,
              "img_size_3d": IMG_SIZE_3D, "rows": rows, "provenance": provenance()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(f"{args.out}: {len(rows)} variants")
    return 0


if __name__ == "__main__":
    sys.exit(main())
