"""Segment every image that appears in a folder: a minimal device app on the edgeunet runtime alone.

    python examples/watch_folder.py model.onnx incoming/ masks/ [--overlay]

Needs only ``pip install edgeunet`` (numpy + ONNX Runtime; no torch). New images are picked
up once their size has stopped changing (a camera or copy may still be writing them); each
gives ``masks/<stem>.png`` (class ids) and, with --overlay, ``masks/<stem>_overlay.png``.
Stop with Ctrl+C.
"""

import argparse
import time
from pathlib import Path

from edgeunet.runtime import IMAGE_SUFFIXES, Segmenter, overlay, read_image, write_mask, write_rgb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="model.onnx (or model.engine with TensorRT)")
    parser.add_argument("incoming", type=Path, help="folder to watch")
    parser.add_argument("out", type=Path, help="folder for the masks")
    parser.add_argument("--overlay", action="store_true", help="also write colored overlays")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between folder scans")
    args = parser.parse_args()

    seg = Segmenter(args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"watching {args.incoming} with {seg.backend} ({', '.join(seg.class_names)}); Ctrl+C stops")
    done, sizes = set(), {}
    try:
        while True:
            for path in sorted(args.incoming.iterdir()):
                if path in done or path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
                    continue
                size = path.stat().st_size
                if sizes.get(path) != size:  # still being written: look again next scan
                    sizes[path] = size
                    continue
                done.add(path)
                try:
                    image = read_image(path)
                    start = time.perf_counter()
                    mask = seg(image)
                    ms = (time.perf_counter() - start) * 1e3
                except ValueError as exc:  # unreadable file or wrong image: report and go on
                    print(f"skipped {exc}")
                    continue
                write_mask(args.out / f"{path.stem}.png", mask)
                if args.overlay:
                    write_rgb(args.out / f"{path.stem}_overlay.png", overlay(image, mask))
                print(f"{path.name}: {ms:.0f} ms, {100 * (mask > 0).mean():.1f}% foreground")
            time.sleep(args.interval)
    except KeyboardInterrupt:
        print(f"stopped after {len(done)} image(s)")


if __name__ == "__main__":
    main()
