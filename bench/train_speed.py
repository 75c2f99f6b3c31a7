"""Training throughput: the reference fp32 path against the fast paths, and Lightning against a bare loop.

For each crop size it builds the default run's module (conf/, built-in photos) three times: the reference
(``loss.precision=fp32 model.train_precision=fp32``: fp32 everywhere, contiguous), the session-6 fast path
(``loss.precision=<--precision> model.train_precision=fp32`` with autograd's fp32 Gram gradient: bf16
channels_last VGG where bf16 is fast: texnet.precision) and the new one (the configured path: the Grams'
gradient as one bf16 product, and ``model.train_precision=<--train-precision>``: the generator's
full-resolution join in bf16 while training), and times the same training step in alternation (so a busy
machine slows all alike). It prints a per-part profile of one step (data, generator, VGG forward, backward,
optimiser), the images/s of each path and their ratio to the reference, the loss of each path on one fixed
batch against the reference's (relative difference), and the images/s of ``Trainer.fit`` against the bare loop
with the newest path's module and data. Where the configured pyramid's full-resolution join is not the paper's
(the default since session 51: 32 channels, kernels 3-1-1), the paper's network in fp32 is timed beside them, the
reference that issue 14's speed-up is measured against ("ratio to the paper network").

    .venv/bin/python bench/train_speed.py [--sizes 128 256] [--steps 12] [--batch 4]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from texnet.module import TextureNetModule
from texnet.precision import bf16_is_fast, cpu_bf16_speedup, cpu_has_bf16
from texnet.textures import resolve_texture_path, texture_name

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"  # the root scripts' Hydra configs


PAPER_JOIN = ["model.fine_channels=null", "model.fine_kernels=[3,3,1]"]  # pyramid.lua's full-resolution join


def compose_run(overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def build(
    size: int, batch: int, precision: str, train_precision: str, overrides: list[str], bf16_gram_grad: bool = True
) -> tuple[TextureNetModule, pl.LightningDataModule]:
    cfg = compose_run(
        [
            f"data.image_size={size}",
            f"data.batch_size={batch}",
            f"loss.precision={precision}",
            f"model.train_precision={train_precision}",
            *overrides,
        ]
    )
    image = resolve_texture_path(cfg.texture.image)
    torch.manual_seed(0)
    module = TextureNetModule(
        model=OmegaConf.to_container(cfg.model),
        loss=OmegaConf.to_container(cfg.loss),
        optim=OmegaConf.to_container(cfg.optim),
        texture={"image": str(image), "size": cfg.texture.size, "name": texture_name(image)},
    )
    module.setup("fit")
    module.perceptual.bf16_gram_grad = bf16_gram_grad
    data = instantiate(cfg.data)
    data.setup("fit")
    return module, data


class BareLoop:
    """The training step without Lightning: the same model_step, backward and Adam step."""

    def __init__(self, module: TextureNetModule, data: pl.LightningDataModule) -> None:
        self.module, self.batches = module, iter(data.train_dataloader())
        self.optimizer = module.configure_optimizers()["optimizer"]
        self.parts: dict[str, float] = {}

    def step(self, profile: bool = False) -> None:
        marks = [time.perf_counter()]
        batch = next(self.batches)
        marks.append(time.perf_counter())
        perceptual = self.module.perceptual
        output = self.module(batch)
        marks.append(time.perf_counter())
        terms = perceptual(output, perceptual.content_targets(batch))
        marks.append(time.perf_counter())
        self.optimizer.zero_grad(set_to_none=True)
        terms["total"].backward()
        marks.append(time.perf_counter())
        self.optimizer.step()
        marks.append(time.perf_counter())
        if profile:
            for name, a, b in zip(
                ("data", "generator forward", "VGG forward (targets + output)", "backward", "optimiser"),
                marks,
                marks[1:],
            ):
                self.parts[name] = self.parts.get(name, 0.0) + b - a


class StepTimer(pl.Callback):
    """Wall time of each Lightning training step after `warmup` steps (start of one batch to the next)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.times, self._last = warmup, [], None

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last is not None and batch_idx > self.warmup:
            self.times.append(now - self._last)
        self._last = now


def lightning_seconds(module: TextureNetModule, data: pl.LightningDataModule, steps: int, warmup: int) -> float:
    timer = StepTimer(warmup)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_steps=steps + warmup + 1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[timer],
    )
    trainer.fit(module, train_dataloaders=data.train_dataloader())
    return sum(timer.times) / len(timer.times)


def loss_difference(reference: TextureNetModule, fast: TextureNetModule, batch: torch.Tensor) -> dict[str, float]:
    """Relative difference of each loss term of the two paths on one fixed batch, same weights, same noise."""
    fast.generator.load_state_dict(reference.generator.state_dict())
    terms = []
    for module in (reference, fast):
        with torch.no_grad():
            terms.append(module.model_step(batch, torch.Generator().manual_seed(0)))
    return {k: abs(terms[1][k].item() - v.item()) / max(abs(v.item()), 1e-12) for k, v in terms[0].items() if v.item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per path and size")
    parser.add_argument("--precision", default="auto", help="the fast paths' loss.precision")
    parser.add_argument("--train-precision", default="auto", help="the new path's model.train_precision")
    parser.add_argument("overrides", nargs="*", help="extra config overrides, e.g. model=residual")
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()}, batch {args.batch}, {args.steps} steps per path"
    )
    probe = f", bf16 {cpu_bf16_speedup():.2f}x fp32 on its probe" if cpu_has_bf16() else ""
    print(f"precision auto on this CPU: {'bf16' if bf16_is_fast(torch.device('cpu')) else 'fp32'}{probe}")
    model = compose_run(args.overrides).model
    paper = model.arch == "pyramid" and (model.fine_channels is not None or list(model.fine_kernels) != [3, 3, 1])
    for size in args.sizes:
        paths = {
            "reference (fp32)": build(size, args.batch, "fp32", "fp32", args.overrides),
            f"fast ({args.precision} VGG)": build(
                size, args.batch, args.precision, "fp32", args.overrides, bf16_gram_grad=False
            ),
            f"new (+Gram, {args.train_precision} join)": build(
                size, args.batch, args.precision, args.train_precision, args.overrides
            ),
        }
        if paper:  # timed too, last: the first three share one network (loss_difference loads one's weights)
            paths["paper network (fp32)"] = build(size, args.batch, "fp32", "fp32", [*args.overrides, *PAPER_JOIN])
        loops = {name: BareLoop(*pair) for name, pair in paths.items()}
        for loop in loops.values():  # warm-up: allocator, oneDNN kernels
            for _ in range(2):
                loop.step()
        seconds = {name: 0.0 for name in loops}
        for _ in range(args.steps):  # alternate, so all paths see the same machine load
            for name, loop in loops.items():
                start = time.perf_counter()
                loop.step(profile=True)
                seconds[name] += time.perf_counter() - start
        print(f"\n{size} px, batch {args.batch}: per-step profile (ms)")
        parts = list(next(iter(loops.values())).parts)
        print(f"{'':32}" + "".join(f"{name:>24}" for name in loops))
        for part in parts:
            print(f"{part:32}" + "".join(f"{loop.parts[part] / args.steps * 1e3:24.0f}" for loop in loops.values()))
        rates = {name: args.batch * args.steps / s for name, s in seconds.items()}
        ref_name, ref_rate = next(iter(rates.items()))
        print(f"{'images/s':32}" + "".join(f"{rate:24.2f}" for rate in rates.values()))
        print(f"{'ratio to reference':32}" + "".join(f"{rate / ref_rate:23.2f}x" for rate in rates.values()))
        if paper:
            paper_rate = rates["paper network (fp32)"]
            print(f"{'ratio to the paper network':32}" + "".join(f"{r / paper_rate:23.2f}x" for r in rates.values()))
        batch = torch.stack([paths[ref_name][1].val_images()[0]] * 2)
        batch = torch.nn.functional.interpolate(batch, size=(size, size), mode="bilinear", antialias=True)
        for name, (module, _) in list(paths.items())[1:3]:
            diff = loss_difference(paths[ref_name][0], module, batch)
            print(
                f"loss difference {name} vs reference on a fixed batch (relative): "
                + ", ".join(f"{k} {v:.2%}" for k, v in diff.items())
            )
        name = list(paths)[2]  # Lightning against the bare loop: the newest path
        module, data = paths[name]
        bare = BareLoop(module, data)
        for _ in range(2):
            bare.step()
        start = time.perf_counter()
        for _ in range(args.steps):
            bare.step()
        bare_s = (time.perf_counter() - start) / args.steps
        lit_s = lightning_seconds(module, data, args.steps, warmup=2)
        print(
            f"{name}: bare loop {args.batch / bare_s:.2f} images/s, Lightning Trainer.fit "
            f"{args.batch / lit_s:.2f} images/s: Lightning/bare {bare_s / lit_s:.2f}"
        )


if __name__ == "__main__":
    main()
