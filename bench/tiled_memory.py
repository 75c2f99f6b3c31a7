"""Peak memory of tiled stylisation of one large photo (the 12000x9000 target), without waiting hours for it.

    /usr/bin/time -v timeout 1200 python bench/tiled_memory.py texnet/resources/models/mosaic.ckpt big.jpg

Decodes the photo as ``stylize`` does, runs the statistics passes on a 768 px crop (other values, the same
memory per tile), then the final pass over the whole photo, which ``timeout`` may stop: the peak RSS that
``/usr/bin/time -v`` prints covers decoding, the 8-bit input and output and the tiles in flight.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from texnet.inference import load
    from texnet.tiling import TiledStylizer, _target_pil

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("photo")
    args = parser.parse_args()
    stylizer = load(args.checkpoint, device="cpu", backend="eager")
    start = time.perf_counter()
    source = torch.from_numpy(np.array(_target_pil(args.photo, None, None)))
    print(
        f"decoded {tuple(source.shape)} in {time.perf_counter() - start:.1f} s, peak RSS {peak_mb():.0f} MB", flush=True
    )
    tiler = TiledStylizer(stylizer.generator)
    start = time.perf_counter()
    stats = tiler.statistics(source[:768, :768], stylizer.noise_factor, 0)
    print(
        f"statistics passes on a 768 px crop: {time.perf_counter() - start:.1f} s, peak RSS {peak_mb():.0f} MB",
        flush=True,
    )
    tiler.run(source, stats, stylizer.noise_factor, 0)
    print(f"done, peak RSS {peak_mb():.0f} MB")


if __name__ == "__main__":
    main()
