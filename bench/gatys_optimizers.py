"""Gatys baseline on this machine: L-BFGS vs Adam on one photo and the mosaic texture.

Runs both optimisers for `--iterations` from the photo (loss: texnet/resources/loss/default.yaml), reads their loss logs and prints seconds,
content, style and total loss after 50, 100 and 200 iterations, plus a side-by-side picture.

    .venv/bin/python bench/gatys_optimizers.py [--size 256] [--iterations 200]
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path

import skimage.data
from PIL import Image

from texnet.gatys import stylize

OUT = Path(__file__).resolve().parent / "results" / "gatys_optimizers"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--texture", default="mosaic")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    photo = Path(skimage.data.__file__).parent / "astronaut.png"
    checkpoints = [n for n in (50, 100, 200) if n <= args.iterations]
    table, images = [], [Image.open(photo).resize((args.size, args.size))]
    for optimizer in ("lbfgs", "adam"):
        result = stylize(
            photo,
            args.texture,
            OUT / optimizer,
            optimizer=optimizer,
            iterations=args.iterations,
            max_size=args.size,
            save_every=0,
            progress=False,
            overwrite=True,
        )
        rows = {int(r["iteration"]): r for r in csv.DictReader(result.log_path.open())}
        for n in checkpoints:
            r = rows[n]
            table.append((optimizer, n, float(r["seconds"]), float(r["content"]), float(r["style"]), float(r["total"])))
        images.append(Image.open(result.image_path))
    strip = Image.new("RGB", (args.size * len(images), args.size))
    for i, img in enumerate(images):
        strip.paste(img, (i * args.size, 0))
    strip_path = OUT / "photo_lbfgs_adam.png"
    strip.save(strip_path)
    start = {int(r["iteration"]): r for r in csv.DictReader((OUT / "lbfgs" / "losses.csv").open())}[0]
    print(
        f"\nGatys, astronaut {args.size} px + {args.texture}, init = photo (total loss at start {float(start['total']):.1f})"
    )
    print("| optimiser | iterations | seconds | content | style | total |\n|---|---|---|---|---|---|")
    for optimizer, n, seconds, content, style, total in table:
        print(f"| {optimizer} | {n} | {seconds:.0f} | {content:.1f} | {style:.1f} | {total:.1f} |")
    print(f"picture (photo | L-BFGS | Adam): {strip_path}")


if __name__ == "__main__":
    main()
