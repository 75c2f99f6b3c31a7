"""Side effects of training, as Lightning callbacks: sample grids on disk and on the dashboard."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid

from texnet.image import save_image
from texnet.module import VAL_SEED, TextureNetModule


class SampleGrid(pl.Callback):
    """Every `every_n_steps` (and at the end): stylise the fixed validation photos, save a PNG grid, and
    send images to every logger that has ``log_images`` (Visdom): the texture, photos vs outputs, and
    one photo at several noise factors side by side (how strongly the style is applied), given as
    multiples of the factor the model trains with."""

    def __init__(self, out_dir: str | Path, every_n_steps: int = 100, noise_multiples: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 4.0)) -> None:
        self.out_dir, self.every_n_steps, self.noise_multiples = Path(out_dir), every_n_steps, list(noise_multiples)
        self.last_written: Path | None = None

    @torch.no_grad()
    def render(self, trainer: pl.Trainer, module: TextureNetModule) -> dict[str, torch.Tensor]:
        photos = trainer.datamodule.val_images().to(module.device)
        rng = torch.Generator(device=module.device).manual_seed(VAL_SEED)
        was_training = module.training
        module.eval()
        try:
            if module.generator.mode == "stylize":
                outputs = torch.cat([module(p[None], rng=rng) for p in photos])
                base = module.generator.noise_factor
                factors = torch.cat([module(photos[:1], noise_factor=m * base, rng=rng) for m in self.noise_multiples])
                grid = make_grid(torch.cat([photos, outputs]), nrow=len(photos), padding=2)
            else:
                outputs = module(size=tuple(photos.shape[-2:]), batch_size=len(photos), rng=rng)
                factors = outputs[:0]
                grid = make_grid(outputs, nrow=len(photos), padding=2)
        finally:
            module.train(was_training)
        return {"grid": grid, "outputs": outputs, "photos": photos, "factors": factors}

    @rank_zero_only
    def write(self, trainer: pl.Trainer, module: TextureNetModule) -> None:
        images = self.render(trainer, module)
        step = trainer.global_step
        self.last_written = save_image(images["grid"], self.out_dir / f"step_{step:06d}.png", overwrite=True)
        for logger in trainer.loggers:
            if hasattr(logger, "log_images"):
                logger.log_images("samples", torch.cat([images["photos"], images["outputs"]]),
                                  caption=f"step {step}: photos (top) and stylised (bottom)", nrow=len(images["photos"]))
                if len(images["factors"]):
                    factors = [m * module.generator.noise_factor for m in self.noise_multiples]
                    caption = "noise factor " + " | ".join(f"{f:g}" for f in factors)
                    logger.log_images("noise_factors", images["factors"], caption=caption, nrow=len(factors))

    @rank_zero_only
    def on_train_start(self, trainer: pl.Trainer, module: TextureNetModule) -> None:
        """The texture does not change: send it to the dashboard once."""
        for logger in trainer.loggers:
            if hasattr(logger, "log_images"):
                logger.log_images("texture", module.texture, caption=module.texture_name)

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.write(trainer, module)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.write(trainer, module)
