"""Seconds from the command to the file: ``python stylize.py checkpoint=NAME input=<photo>``, process start included.

The torch-free graph path (texnet.graph_stylize, what one unseeded photo takes) against the same command through
torch (``seed=0`` sends it there), run alternately in fresh processes so that both see the same machine load. The
cache (``TEXNET_CACHE``) starts empty: the torch side's first run traces the network's graph, and is reported apart
from the median. The photo is the held-out astronaut (512 x 512, never in the training photos) unless ``--photo``.

    .venv/bin/python bench/stylize_command.py [--checkpoint mosaic] [--photo PATH] [--runs 5] [--extra texture_mix=...]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from skimage import data

ROOT = Path(__file__).resolve().parents[1]


def timed(args: list[str], env: dict[str, str]) -> float:
    """Wall seconds of one `stylize.py` process; its error, if it fails."""
    start = time.perf_counter()
    run = subprocess.run([sys.executable, str(ROOT / "stylize.py"), *args], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise SystemExit(f"stylize.py {' '.join(args)} failed:\n{run.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="mosaic", help="a shipped model's name or a .ckpt")
    parser.add_argument("--photo", type=Path, help="default: the held-out astronaut, 512 x 512")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--extra", nargs="*", default=[], help="more stylize.py options for both sides")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="texnet-bench-") as tmp:
        photo = args.photo or Path(tmp) / "astronaut.png"
        if not args.photo:
            Image.fromarray(data.astronaut()).save(photo)
        env = {**os.environ, "TEXNET_CACHE": str(Path(tmp) / "cache")}
        common = [f"checkpoint={args.checkpoint}", f"input={photo}", "overwrite=true", *args.extra]
        graph, torch = [], []
        for _ in range(args.runs):
            graph.append(timed([*common, f"output={tmp}/graph.png"], env))
            torch.append(timed([*common, f"output={tmp}/torch.png", "seed=0"], env))
            print(f"graph {graph[-1]:.2f} s   torch {torch[-1]:.2f} s", flush=True)
    size = "x".join(map(str, Image.open(args.photo).size)) if args.photo else "512x512"
    g, t = statistics.median(graph), statistics.median(torch[1:] or torch)
    print(
        f"{args.checkpoint}, one {size} photo, {os.cpu_count()} CPUs: graph median {g:.2f} s, torch median {t:.2f} s "
        f"(first run, tracing, {torch[0]:.2f} s): torch / graph = {t / g:.2f}x"
    )


if __name__ == "__main__":
    main()
