"""Tiled stylisation of large photos: seconds per megapixel at 1, 4, 16 and 64 MP (is the cost linear?) and peak memory.

    python bench/tiled_speed.py                          # default pyramid (random weights: the speed is the same)
    python bench/tiled_speed.py --checkpoint runs/mosaic/<date>/checkpoints/last.ckpt --sizes 1 4 --threads 2

Each size runs in a fresh process (``--one``), so its peak RSS (ru_maxrss) is its own: decoding the JPEG, the
statistics passes, the tiles and writing the PNG. The photos (the astronaut scaled to 4:3) are made beforehand.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from texnet.tiling import TILE_SIZE


def make_photo(megapixels: float, folder: Path) -> Path:
    import skimage.data

    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = round(width * 3 / 4)
    path = folder / f"photo_{megapixels:g}mp.jpg"
    Image.fromarray(skimage.data.astronaut()).resize((width, height), Image.Resampling.BICUBIC).save(path, quality=90)
    return path


def run_one(args: argparse.Namespace) -> None:
    """Stylise one photo by tiles and print seconds and peak RSS as JSON (the child process)."""
    from texnet.generator import build_generator
    from texnet.inference import Stylizer, load

    torch.set_num_threads(args.threads)
    if args.checkpoint:
        stylizer = load(args.checkpoint, device="cpu", backend="eager")
    else:
        stylizer = Stylizer(build_generator().eval(), torch.rand(1, 3, 64, 64), "random", device="cpu", backend="eager")
    start = time.perf_counter()
    image = stylizer.stylize(args.one, seed=0, tile_size=args.tile_size)
    stylized = time.perf_counter() - start
    image.save(Path(args.one).with_suffix(".out.png"), compress_level=1)
    total = time.perf_counter() - start
    print(
        json.dumps(
            {
                "pixels": image.width * image.height,
                "size": f"{image.width}x{image.height}",
                "stylize_s": stylized,
                "total_s": total,
                "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 4, 16, 64], help="megapixels")
    parser.add_argument("--tile-size", type=int, default=TILE_SIZE, help="tiles even where the photo would fit whole")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return run_one(args)
    print("| MP | size | stylise s | s / MP | with PNG writing s | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for mp in args.sizes:
            photo = make_photo(mp, Path(tmp))
            cmd = [sys.executable, __file__, "--one", str(photo), "--threads", str(args.threads)]
            cmd += [f"--checkpoint={args.checkpoint}"] if args.checkpoint else []
            cmd += [f"--tile-size={args.tile_size}"]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"| {r['pixels'] / 1e6:.1f} | {r['size']} | {r['stylize_s']:.1f} | {r['stylize_s'] / r['pixels'] * 1e6:.2f} | "
                f"{r['total_s']:.1f} | {r['peak_rss_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
