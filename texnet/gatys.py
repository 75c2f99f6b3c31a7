"""Gatys et al.'s per-image optimisation ("A Neural Algorithm of Artistic Style"), the baseline.

The image's pixels are the only parameters; the loss is the very same :class:`PerceptualLoss` the
texture network trains with. It is a LightningModule (manual optimisation, so L-BFGS gets a closure
and one training step is one optimiser iteration) so that the progress bar, the device handling and
the Visdom dashboard of the texture network serve it unchanged.
"""

from __future__ import annotations

import csv
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import Logger
from torch import nn
from torch.utils.data import DataLoader

from texnet.errors import TexnetError
from texnet.image import load_image, next_free_dir, save_image
from texnet.losses import PerceptualLoss, build_perceptual_loss, default_loss_config
from texnet.progress import with_progress_bar
from texnet.textures import load_texture, texture_path

log = logging.getLogger(__name__)

OPTIMIZERS = ("lbfgs", "adam")
INITS = ("content", "noise", "style")
LOG_COLUMNS = ("iteration", "content", "style", "tv", "patch", "total", "seconds")


class GatysModule(pl.LightningModule):
    """Optimises one image (a parameter) against a PerceptualLoss; each training step is one iteration."""

    def __init__(
        self,
        loss: PerceptualLoss,
        init: torch.Tensor,
        content: torch.Tensor | None = None,
        optimizer: str = "lbfgs",
        lr: float = 1.0,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        # Kept out of the module tree, as in TextureNetModule: the loss is not optimised, and its frozen VGG stays in
        # eval mode, which Lightning would report as a possible mistake at the start of every fit.
        self.__dict__["perceptual"] = loss
        self.image = nn.Parameter(init.detach().clone().clamp_(0, 1))
        self.register_buffer("content", content, persistent=False)
        self.optimizer_name, self.lr = optimizer, lr
        self.content_targets: dict[str, torch.Tensor] = {}
        self.last_terms: dict[str, float] = {}

    def on_fit_start(self) -> None:
        self.perceptual.to(self.device)
        if self.content is not None:
            self.content_targets = self.perceptual.content_targets(self.content)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        if self.optimizer_name == "lbfgs":
            # one L-BFGS iteration per step; its history lives in the optimiser state across steps. No tolerance
            # stop: the caller asked for N iterations, and loss scales vary by orders of magnitude with the weights.
            return torch.optim.LBFGS(
                [self.image],
                lr=self.lr,
                max_iter=1,
                max_eval=20,
                history_size=100,
                tolerance_grad=0.0,
                tolerance_change=0.0,
                line_search_fn="strong_wolfe",
            )
        return torch.optim.Adam([self.image], lr=self.lr)

    def evaluate(self) -> dict[str, torch.Tensor]:
        device = self.image.device  # after a fit on a GPU, Lightning has moved the image (not the loss) back to the CPU
        targets = {name: target.to(device) for name, target in self.content_targets.items()}
        return self.perceptual.to(device)(self.image, targets or None)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        optimizer = self.optimizers()
        first: dict[str, float] = {}

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            terms = self.evaluate()
            self.manual_backward(terms["total"])
            if not first:  # the loss at the start of this iteration
                first.update({k: v.item() for k, v in terms.items()})
            return terms["total"]

        optimizer.step(closure=closure)
        with torch.no_grad():
            self.image.clamp_(0, 1)
        self.last_terms = first
        self.log("total", first["total"], prog_bar=True, logger=False)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(range(self.trainer.max_steps), batch_size=None)


class GatysRecorder(pl.Callback):
    """Writes the loss log (CSV), intermediate images every `save_every` iterations, and feeds loggers."""

    def __init__(
        self,
        out_dir: Path,
        save_every: int,
        loggers: Sequence[Logger] = (),
        offset: int = 0,
        clock_start: float | None = None,
    ) -> None:
        self.out_dir, self.save_every, self.loggers, self.offset = out_dir, save_every, list(loggers), offset
        self.start = time.perf_counter() if clock_start is None else clock_start
        self.log_path = out_dir / "losses.csv"

    def write_row(self, iteration: int, terms: Mapping[str, float]) -> None:
        new = not self.log_path.exists()
        with self.log_path.open("a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(LOG_COLUMNS)
            row = [
                iteration,
                *(f"{terms[k]:.6g}" for k in LOG_COLUMNS[1:-1]),
                f"{time.perf_counter() - self.start:.3f}",
            ]
            writer.writerow(row)
        metrics = {f"gatys/{k}": v for k, v in terms.items()}
        for logger in self.loggers:
            logger.log_metrics(metrics, step=iteration)

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: GatysModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        iteration = self.offset + trainer.global_step
        self.write_row(iteration - 1, module.last_terms)
        if self.save_every and iteration % self.save_every == 0:
            image = module.image.detach()
            save_image(image, self.out_dir / f"iter_{iteration:05d}.png", overwrite=True)
            for logger in self.loggers:
                if hasattr(logger, "log_images"):
                    logger.log_images("gatys/current", image, caption=f"iteration {iteration}")


@dataclass
class GatysResult:
    """What a run produced: the final image, its folder, the loss log and the final loss terms."""

    image_path: Path
    out_dir: Path
    log_path: Path
    seconds: float
    iterations: int
    final: dict[str, float] = field(default_factory=dict)


def initial_image(
    init: str, content: torch.Tensor | None, texture: torch.Tensor, size: tuple[int, int], rng: torch.Generator
) -> torch.Tensor:
    """content: the photo; style: the texture resized to the output size; noise: see :func:`texture_noise`."""
    if init == "content":
        if content is None:
            raise TexnetError("gatys.init=content needs a content image: use init=noise for texture synthesis")
        return content.clone()
    if init == "style":
        return F.interpolate(texture, size=size, mode="bilinear", align_corners=False).clamp(0, 1)
    return texture_noise(texture, size, rng)


def texture_noise(texture: torch.Tensor, size: tuple[int, int], rng: torch.Generator) -> torch.Tensor:
    """Smooth noise in the texture's colours: its mean colour plus, per channel, noise drawn at 1/8 of the size,
    upsampled and scaled to the texture's spread, plus 0.05 * N(0, 1) per pixel.

    From mid-grey, L-BFGS spends its first iterations on the deep layers while the palette lags; this start has the
    texture's colours already and ends 100 iterations at a lower loss on every texture measured (docs/results.md,
    session 34). The noise is smooth because the VGG loss does not see pixel-level colour noise: a start with
    full-range pixel noise keeps it in the result.
    """
    mean, spread = texture.mean(dim=(2, 3), keepdim=True), texture.std(dim=(2, 3), keepdim=True)
    coarse = torch.randn(1, 3, max(2, size[0] // 8), max(2, size[1] // 8), generator=rng)
    smooth = F.interpolate(coarse, size=size, mode="bicubic", align_corners=False)
    smooth = smooth / smooth.std(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    return (mean + spread * smooth + 0.05 * torch.randn(1, 3, *size, generator=rng)).clamp(0, 1)


def check_options(optimizer: str, init: str | None, iterations: int) -> None:
    """A one-line TexnetError for an unknown optimiser or start image or no iterations (stylize.py checks them once,
    before its first photo, rather than failing each)."""
    if optimizer not in OPTIMIZERS:
        raise TexnetError(f"gatys.optimizer='{optimizer}' is unknown: use one of {', '.join(OPTIMIZERS)}")
    if init is not None and init not in INITS:
        raise TexnetError(f"gatys.init='{init}' is unknown: use one of {', '.join(INITS)}")
    if iterations < 1:
        raise TexnetError("gatys.iterations must be >= 1")


def run_gatys(
    texture: str | Path,
    output: str | Path,
    content: str | Path | None = None,
    *,
    loss: Mapping[str, Any] | None = None,
    optimizer: str = "lbfgs",
    lr: float | None = None,
    init: str | None = None,
    iterations: int = 200,
    max_size: int = 256,
    size: int = 256,
    texture_size: int = 256,
    save_every: int = 50,
    coarse_to_fine: bool = False,
    seed: int = 0,
    accelerator: str = "auto",
    loggers: Sequence[Logger] = (),
    overwrite: bool = False,
    progress: bool = True,
    callbacks: Sequence[pl.Callback] = (),
) -> GatysResult:
    """Optimise one image; stylisation if `content` is given, texture synthesis otherwise.

    Args:
        texture: a texture name from conf/texture/ or an image path.
        output: run folder; if it exists (and not `overwrite`) a fresh `output-2`, `output-3`, ... is used.
        loss: keys of a loss config (VGG, layers, weights); default texnet/resources/loss/default.yaml. Texture synthesis drops the content term.
        optimizer: "lbfgs" (fast convergence, the classic choice) or "adam" (cheaper steps, lr ~0.02).
        init: "content" | "noise" | "style" (default: content when stylising, noise otherwise).
        max_size: longer side of the stylised photo; `size`: side of a synthesised texture.
        coarse_to_fine: optimise half the iterations at half size, upsample, then continue at full size.
        callbacks: extra Lightning callbacks for every stage (the web app's progress bar counts iterations with one).
    """
    init = init or ("content" if content is not None else "noise")
    check_options(optimizer, init, iterations)
    lr = lr if lr is not None else (1.0 if optimizer == "lbfgs" else 0.02)
    loss_cfg = dict(loss if loss is not None else default_loss_config())
    photo = (
        load_image(content, max_size=max_size, what="content image", size_option="gatys.max_size")
        if content is not None
        else None
    )
    style_image = load_texture(texture_path(texture), texture_size)
    if photo is None:
        loss_cfg["content_layers"], loss_cfg["content_weights"] = [], []
    perceptual = build_perceptual_loss(style_image, **loss_cfg)

    out_dir = Path(output) if overwrite else next_free_dir(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "losses.csv").unlink(missing_ok=True)
    rng = torch.Generator().manual_seed(seed)
    full = tuple(photo.shape[-2:]) if photo is not None else (size, size)
    stages = [(full, iterations)]
    if coarse_to_fine and min(full) >= 64:
        half = (full[0] // 2, full[1] // 2)
        stages = [(half, iterations // 2), (full, iterations - iterations // 2)]

    for logger in loggers:
        logger.log_hyperparams(
            {
                "texture": str(texture),
                "content": str(content),
                "optimizer": optimizer,
                "lr": lr,
                "init": init,
                "iterations": iterations,
                "loss": loss_cfg,
            }
        )
        if hasattr(logger, "log_images"):
            logger.log_images("texture", style_image, caption=str(texture))
    start, done, image, module = time.perf_counter(), 0, None, None
    for stage_size, stage_iters in stages:
        stage_content = None if photo is None else F.interpolate(photo, size=stage_size, mode="area")
        if image is None:
            image = initial_image(init, stage_content, style_image, stage_size, rng)
        else:
            image = F.interpolate(image, size=stage_size, mode="bilinear", align_corners=False)
        module = GatysModule(perceptual, image, stage_content, optimizer, lr)
        recorder = GatysRecorder(out_dir, save_every, loggers, offset=done, clock_start=start)
        trainer = pl.Trainer(
            max_steps=stage_iters,
            accelerator=accelerator,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=progress,
            num_sanity_val_steps=0,
            callbacks=with_progress_bar([recorder, *callbacks], progress),
        )
        trainer.fit(module)
        done += stage_iters
        image = module.image.detach()
    with torch.no_grad():
        final = {k: v.item() for k, v in module.evaluate().items()}
    recorder.write_row(done, final)
    seconds = time.perf_counter() - start
    image_path = save_image(image, out_dir / "result.png", overwrite=True)
    for logger in loggers:
        if hasattr(logger, "log_images"):
            logger.log_images("gatys/current", image, caption=f"result after {done} iterations")
        logger.finalize("success")
    log.info(
        "Gatys %s: %d iterations in %.1f s, total loss %.4g -> %s", optimizer, done, seconds, final["total"], image_path
    )
    return GatysResult(image_path, out_dir, out_dir / "losses.csv", seconds, done, final)


def stylize(content: str | Path, style: str | Path, output: str | Path, **options: Any) -> GatysResult:
    """One call: stylise the photo `content` with the texture/style `style` into the folder `output`."""
    return run_gatys(style, output, content=content, **options)


def synthesize(texture: str | Path, output: str | Path, **options: Any) -> GatysResult:
    """One call: synthesise a new image of `texture` (no content term) into the folder `output`."""
    return run_gatys(texture, output, content=None, **options)


__all__ = ["GatysModule", "GatysRecorder", "GatysResult", "run_gatys", "stylize", "synthesize"]
