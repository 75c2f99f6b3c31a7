"""Time and peak memory of tiled stylisation of one large photo (the 12000x9000 target), phase by phase.

    /usr/bin/time -v python bench/tiled_memory.py texnet/resources/models/mosaic.ckpt big.jpg

Decodes the photo as ``stylize`` does, then runs the untiled coarse scales (pyramid), the statistics passes and
the final pass over the whole photo, printing each phase's time and the peak RSS so far (the output is not
written). ``/usr/bin/time -v`` prints the peak RSS of the whole run.
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
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the measured run: one core)")
    args = parser.parse_args()
    stylizer = load(args.checkpoint, device="cpu", backend="eager")
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    source = torch.from_numpy(np.array(_target_pil(args.photo, None, None)))
    print(
        f"decoded {tuple(source.shape)} in {time.perf_counter() - start:.1f} s, peak RSS {peak_mb():.0f} MB", flush=True
    )
    tiler = TiledStylizer(stylizer.generator)
    factor = stylizer.noise_factor
    start = time.perf_counter()
    canvas = tiler.canvas(source, factor, 0)
    print(f"coarse scales: {time.perf_counter() - start:.1f} s, peak RSS {peak_mb():.0f} MB", flush=True)
    start = time.perf_counter()
    stats = tiler.statistics(canvas, factor, 0)
    print(
        f"{len(tiler.passes)} statistics passes: {time.perf_counter() - start:.1f} s, peak RSS {peak_mb():.0f} MB",
        flush=True,
    )
    start = time.perf_counter()
    tiler.run(canvas, stats, factor, 0)
    print(f"final pass: {time.perf_counter() - start:.1f} s, peak RSS {peak_mb():.0f} MB", flush=True)


if __name__ == "__main__":
    main()
