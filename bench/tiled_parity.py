"""Tiled vs untiled stylisation of one photo (default 2048x1536): how far apart, and the tiles' time cost.

    python bench/tiled_parity.py texnet/resources/models/mosaic.ckpt
    python bench/tiled_parity.py runs/<run>/checkpoints/last.ckpt --size 2048 --tile-size 768

Noise factor 0 (each tile draws its own noise, so with noise the two differ by the noise alone); float outputs
in [0, 1] are compared, then the 8-bit images. Both run the eager generator on the CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image


def main() -> None:
    import skimage.data

    from texnet.inference import load
    from texnet.tiling import TILE_SIZE, TiledStylizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--size", type=int, default=2048, help="longer side; the photo is 4:3")
    parser.add_argument("--tile-size", type=int, default=TILE_SIZE)
    args = parser.parse_args()
    generator = load(args.checkpoint, device="cpu", backend="eager").generator
    width, height = args.size, args.size * 3 // 4
    photo = np.array(Image.fromarray(skimage.data.astronaut()).resize((width, height), Image.Resampling.BICUBIC))
    content = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        start = time.perf_counter()
        whole = generator(content, noise_factor=0.0)[0].permute(1, 2, 0)
        whole_s = time.perf_counter() - start
    tiler = TiledStylizer(generator, args.tile_size)
    start = time.perf_counter()
    tiled = tiler.stylize(content[0].permute(1, 2, 0), 0.0, seed=0)
    tiled_s = time.perf_counter() - start
    diff = (tiled - whole).abs()
    bytes_diff = (tiled.mul(255).round() - whole.mul(255).round()).abs()
    tiles = len(list(tiler.tiles(height, width)))
    print(
        f"{generator.arch} {width}x{height}, {tiles} tiles of {tiler.core} px (+{tiler.margin} px context), {len(tiler.passes)} statistics passes"
    )
    print(
        f"float: max abs {diff.max():.2e}, mean abs {diff.mean():.2e}; 8-bit: max {bytes_diff.max():.0f}/255, "
        f"{(bytes_diff > 0).float().mean() * 100:.3f}% of values differ"
    )
    print(f"time: untiled {whole_s:.1f} s, tiled {tiled_s:.1f} s ({tiled_s / whole_s:.1f}x)")


if __name__ == "__main__":
    main()
