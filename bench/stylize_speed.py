"""Seconds per photo: the texture network (eager PyTorch and texnet's onnxruntime path) against Gatys (L-BFGS).

For square photos of 256, 512 and 1024 px, in one run (so the ratios share the machine's load):
  * texture network: the default generator (K = 6, 8 channels, instance norm; ``--arch residual``: the residual net
    of conf/model/residual.yaml) through ``Stylizer.stylize``
    (tensor in, tensor out: no file I/O), eager PyTorch vs the onnxruntime path ``stylize.py`` uses by default;
    median of several runs after a warm-up. Its weights are random: the speed does not depend on them.
  * Gatys: the real perceptual loss (texnet/resources/loss/default.yaml, the VGG weights texnet resolves), L-BFGS from the photo,
    run at 256 px until the loss improves by less than 1% over 10 iterations (cap: 300 iterations; 20 with --quick).
    At 512 and 1024 px (~4x and ~16x the cost per iteration) only 3 iterations are timed and the time is extrapolated
    to the iteration count of the 256 px run; the table says so. The VGG is built once, outside the timings.
  * peak memory (RSS, VmHWM) of one stylisation per size and backend, each in a fresh subprocess started before the
    parent grows (imports included, so the baseline of torch + onnxruntime is in every number).

    .venv/bin/python bench/stylize_speed.py [--quick] [--threads N] [--arch pyramid|residual]
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from texnet.gatys import GatysModule
from texnet.generator import ARCHITECTURES, build_generator
from texnet.image import load_image
from texnet.inference import Stylizer
from texnet.losses import build_perceptual_loss, default_loss_config
from texnet.noise_generator import NoiseGenerator
from texnet.textures import load_texture

SIZES = (256, 512, 1024)
BACKENDS = ("eager", "onnxruntime")
GATYS_CAP = 300
GATYS_TIMED = 3  # iterations timed at 512 and 1024 px


def random_generator(arch: str) -> NoiseGenerator:
    """The architecture's default size with seeded random weights (norm affines too, so no layer is an identity)."""
    torch.manual_seed(0)
    generator = build_generator(arch=arch)
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return generator


def photo(size: int) -> torch.Tensor:
    import skimage.data

    image = load_image(Path(skimage.data.__file__).parent / "astronaut.png")
    return F.interpolate(image, size=(size, size), mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)


def stylizer(backend: str, arch: str) -> Stylizer:
    return Stylizer(random_generator(arch), torch.rand(1, 3, 64, 64), "random", device="cpu", backend=backend)


def texnet_seconds(size: int, repeats: int, arch: str) -> dict[str, float]:
    """Median seconds per photo for each backend; the backends alternate so that load changes hit both alike."""
    x = photo(size)
    models = {backend: stylizer(backend, arch) for backend in BACKENDS}
    times: dict[str, list[float]] = {backend: [] for backend in BACKENDS}
    for model in models.values():
        model.stylize(x, seed=0)  # warm-up: builds the onnxruntime session, first-touch allocations
    for _ in range(repeats):
        for backend, model in models.items():
            start = time.perf_counter()
            model.stylize(x, seed=0)
            times[backend].append(time.perf_counter() - start)
    return {backend: statistics.median(ts) for backend, ts in times.items()}


class StopWhenFlat(pl.Callback):
    """Stops Gatys once the loss improved by less than `tolerance` over the last `window` iterations."""

    def __init__(self, window: int = 10, tolerance: float = 0.01) -> None:
        self.window, self.tolerance, self.losses, self.converged = window, tolerance, [], False

    def on_train_batch_end(self, trainer: pl.Trainer, module: GatysModule, outputs, batch, batch_idx: int) -> None:
        self.losses.append(module.last_terms["total"])
        n = len(self.losses)
        if (
            n > self.window
            and n % self.window == 0
            and self.losses[-1] > (1 - self.tolerance) * self.losses[-1 - self.window]
        ):
            self.converged = trainer.should_stop = True


def gatys_run(size: int, max_iterations: int, perceptual: nn.Module) -> tuple[float, int, bool]:
    """(seconds, iterations, converged) of one L-BFGS stylisation at `size`, content targets included."""
    content = photo(size)
    module = GatysModule(perceptual, content, content, optimizer="lbfgs", lr=1.0)
    stopper = StopWhenFlat()
    trainer = pl.Trainer(
        max_steps=max_iterations,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        callbacks=[stopper],
    )
    start = time.perf_counter()
    trainer.fit(module)
    return time.perf_counter() - start, len(stopper.losses), stopper.converged


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries the parent's ru_maxrss over fork + exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def subprocess_rss_mb(size: int, backend: str, threads: int, arch: str) -> float:
    """Peak RSS of a fresh process that stylises one photo of `size` (imports included)."""
    cmd = [sys.executable, __file__, "--rss", str(size), backend, "--threads", str(threads), "--arch", arch]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats; Gatys capped at 20 iterations (not converged)"
    )
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch and onnxruntime threads")
    parser.add_argument(
        "--arch", choices=list(ARCHITECTURES), default="pyramid", help="generator architecture (model.arch)"
    )
    parser.add_argument("--rss", nargs=2, metavar=("SIZE", "BACKEND"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.rss:
        stylizer(args.rss[1], args.arch).stylize(photo(int(args.rss[0])), seed=0)
        print(peak_rss_mb())
        return
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    print(
        f"stylize speed: {os.cpu_count()} CPU cores, {args.threads} threads, load average {os.getloadavg()[0]:.1f} at start"
        f"{', --quick' if args.quick else ''}"
    )
    described = (
        "default pyramid (K=6, 8 channels" if args.arch == "pyramid" else "residual net (32-64-128 channels, 5 blocks"
    )
    print(f"texture network: {described}, instance norm) with RANDOM weights (speed does not depend on them)")
    rss = {
        (size, backend): subprocess_rss_mb(size, backend, args.threads, args.arch)
        for size in SIZES
        for backend in BACKENDS
    }

    rows = {}
    for size in SIZES:
        repeats = (3 if args.quick else 7) if size < 1024 else (2 if args.quick else 3)
        rows[size] = texnet_seconds(size, repeats, args.arch)
        print(
            f"  {size} px: eager {rows[size]['eager']:.3f} s, onnxruntime {rows[size]['onnxruntime']:.3f} s "
            f"({rows[size]['eager'] / rows[size]['onnxruntime']:.1f}x)",
            flush=True,
        )

    loss_cfg = default_loss_config()
    texture = load_texture("mosaic", 256)
    perceptual = build_perceptual_loss(texture, **loss_cfg)
    gatys: dict[int, tuple[float, str]] = {}
    seconds, iterations, converged = gatys_run(SIZES[0], 20 if args.quick else GATYS_CAP, perceptual)
    gatys[SIZES[0]] = (seconds, f"{iterations} its{'' if converged else ', cap: not converged'}")
    for size in SIZES[1:]:
        timed, its, _ = gatys_run(size, GATYS_TIMED, perceptual)
        gatys[size] = (timed / its * iterations, f"extrapolated: {iterations} its x {timed / its:.1f} s")
    for size, (seconds, note) in gatys.items():
        print(f"  gatys {size} px: {seconds:.1f} s ({note})", flush=True)
    print()
    print(
        "| size | eager s/img | onnxruntime s/img | speed-up | Gatys L-BFGS s/img | Gatys / onnxruntime | peak RSS eager | peak RSS onnxruntime |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in SIZES:
        eager, fast = rows[size]["eager"], rows[size]["onnxruntime"]
        seconds, note = gatys[size]
        print(
            f"| {size} | {eager:.3f} | {fast:.3f} | {eager / fast:.1f}x | {seconds:.0f} ({note}) | {seconds / fast:,.0f}x "
            f"| {rss[size, 'eager']:.0f} MB | {rss[size, 'onnxruntime']:.0f} MB |"
        )
    print(
        f"\n512 px target <= 0.300 s/img: onnxruntime {rows[512]['onnxruntime']:.3f} s "
        f"({'met' if rows[512]['onnxruntime'] <= 0.3 else 'NOT met'} at load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
