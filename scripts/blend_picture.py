"""The README's picture of one photo across a blend of two textures of one network (conditional instance norm).

    python scripts/blend_picture.py --checkpoint runs/mosaic+starry+pebbles/<date>/checkpoints/last.ckpt \\
        --photo photo.jpg --textures mosaic starry --steps 5 --out docs/blend.png

Panels, left to right: the first texture alone, mixes (1 - t, t) for evenly spaced t, the second alone; the same
noise (seed) in every panel, so only the mix changes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from PIL import Image

from texnet.image import save_image
from texnet.inference import Stylizer, load, prepare_image


def blend_strip(
    stylizer: Stylizer,
    photo: str | Path | Image.Image,
    first: str,
    second: str,
    steps: int = 5,
    max_size: int = 256,
    seed: int = 0,
) -> torch.Tensor:
    """(3, H, steps * W): `photo` stylised with mixes from `first` alone to `second` alone."""
    content = prepare_image(photo, max_size)
    panels = []
    for t in torch.linspace(0, 1, steps).tolist():
        mix = {name: w for name, w in ((first, 1 - t), (second, t)) if w > 0}
        panels.append(stylizer.stylize(content, seed=seed, mix=mix)[0])
    return torch.cat(panels, dim=-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", required=True, help="a network of several textures (train.py texture.images=[...])"
    )
    parser.add_argument("--photo", required=True)
    parser.add_argument(
        "--textures", nargs=2, required=True, metavar=("FIRST", "SECOND"), help="the two textures to blend"
    )
    parser.add_argument("--steps", type=int, default=5, help="panels, both ends included")
    parser.add_argument("--max-size", type=int, default=256)
    parser.add_argument("--out", default="docs/blend.png")
    args = parser.parse_args()
    strip = blend_strip(load(args.checkpoint, device="cpu"), args.photo, *args.textures, args.steps, args.max_size)
    print(save_image(strip, Path(args.out), overwrite=True))


if __name__ == "__main__":
    main()
