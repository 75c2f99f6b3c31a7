"""Gatys baseline speed: the fp32 VGG against the default path (``loss.precision=auto``) in one run.

Both run L-BFGS for `--iterations` from the same photo (astronaut, longest side `--size`) with the default loss,
in the order fp32, auto, auto, fp32 (so a machine that slows down or speeds up during the run weighs on both
alike), and print each run's seconds and final content, style and total loss, then the mean speed ratio.

    .venv/bin/python bench/gatys_speed.py [--size 300] [--iterations 100] [--texture mosaic]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import skimage.data
import torch

from texnet.gatys import stylize
from texnet.losses import default_loss_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=300, help="longest side of the photo (issue 14: 300x256)")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--texture", default="mosaic")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    photo = Path(skimage.data.__file__).parent / "astronaut.png"
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; Gatys L-BFGS x{args.iterations}, {args.size} px"
    )
    seconds: dict[str, list[float]] = {"fp32": [], "auto": []}
    with tempfile.TemporaryDirectory() as tmp:
        for i, precision in enumerate(("fp32", "auto", "auto", "fp32")):
            result = stylize(
                photo,
                args.texture,
                Path(tmp) / f"run{i}",
                loss={**default_loss_config(), "precision": precision},
                iterations=args.iterations,
                max_size=args.size,
                save_every=0,
                progress=False,
            )
            seconds[precision].append(result.seconds)  # the optimisation loop, without loading the VGG
            terms = result.final
            print(
                f"{precision:>5}: {seconds[precision][-1]:6.1f} s  content {terms['content']:.3f}  "
                f"style {terms['style']:.3f}  total {terms['total']:.3f}",
                flush=True,
            )
    fp32, auto = (sum(seconds[p]) / len(seconds[p]) for p in ("fp32", "auto"))
    print(f"mean: fp32 {fp32:.1f} s, auto {auto:.1f} s: the default path is {fp32 / auto:.2f}x as fast")


if __name__ == "__main__":
    main()
