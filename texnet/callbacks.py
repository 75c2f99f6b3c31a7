"""Side effects of training, as Lightning callbacks: the final checkpoint, sample grids on disk and on the dashboard.

train.py builds the callbacks from the ``callbacks`` config group (conf/callbacks/), so any Lightning callback can
be added from the command line (``'callbacks=[default,early_stopping]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid

from texnet.image import save_image
from texnet.module import VAL_SEED, TextureNetModule


class LastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``last.ckpt`` always holds the final step.

    Lightning saves ``last.ckpt`` every ``every_n_train_steps`` and, at the end, only if it never saved one: a
    60-step run with checkpoints every 50 steps ended with step 50 in last.ckpt. This saves it at the end too
    (Lightning's ``_save_last_checkpoint``, which keeps its file naming and bookkeeping).
    """

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.save_last and self._last_global_step_saved != trainer.global_step:
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        """A stopped run (Ctrl-C, the web app's Stop) keeps its last step as well; single-process only, since with
        DDP the other processes may never reach the save."""
        if trainer.world_size == 1 and trainer.global_step > 0:
            self.on_train_end(trainer, pl_module)


class BestCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that takes over the best checkpoint already in its folder when a run is resumed.

    ``last.ckpt`` is saved before the validation of its step, so a run resumed from it (after a kill) may not
    know the best score that ``best.ckpt`` holds: Lightning then wrote ``best-v1.ckpt`` beside it. This reads
    the score stored in the existing file, so it is replaced only by a better model.
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.take_over_existing()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.take_over_existing()  # a finished run resumed trains no step, so on_train_start never came

    def take_over_existing(self) -> None:
        existing = Path(self.dirpath or "") / f"{self.filename}{self.FILE_EXTENSION}"
        if self.best_model_path or self.save_top_k != 1 or not existing.is_file():
            return
        state = torch.load(existing, map_location="cpu", weights_only=True).get("callbacks", {}).get(self.state_key, {})
        score = state.get("best_model_score")
        if score is not None:
            self.best_model_path = self.kth_best_model_path = str(existing)
            self.best_model_score = self.kth_value = score
            self.best_k_models = {str(existing): score}


class SampleGrid(pl.Callback):
    """Every `every_n_steps` (and at the end): stylise the fixed validation photos, save a PNG grid, and
    send images to every logger that has ``log_images`` (Visdom): the texture, photos vs outputs, and
    one photo at several noise factors side by side (how strongly the style is applied), given as
    multiples of the factor the model trains with. A network of several textures shows a row per texture."""

    def __init__(
        self,
        out_dir: str | Path,
        every_n_steps: int = 100,
        noise_multiples: Sequence[float] = (0.0, 0.5, 1.0, 2.0, 4.0),
    ) -> None:
        self.out_dir, self.every_n_steps, self.noise_multiples = Path(out_dir), every_n_steps, list(noise_multiples)
        self.last_written: Path | None = None

    @torch.no_grad()
    def render(self, trainer: pl.Trainer, module: TextureNetModule) -> dict[str, torch.Tensor]:
        photos = trainer.datamodule.val_images().to(module.device)
        rng = torch.Generator(device=module.device).manual_seed(VAL_SEED)
        was_training = module.training
        module.eval()
        try:
            textures = range(len(module.generator.textures)) if module.generator.textures else [None]
            if module.generator.mode == "stylize":
                outputs = torch.cat([module(photos, rng=rng, texture=t) for t in textures])
                base = module.generator.noise_factor
                factors = torch.cat([module(photos[:1], noise_factor=m * base, rng=rng) for m in self.noise_multiples])
                grid = make_grid(torch.cat([photos, outputs]), nrow=len(photos), padding=2)
            else:
                outputs = torch.cat(
                    [
                        module(size=tuple(photos.shape[-2:]), batch_size=len(photos), rng=rng, texture=t)
                        for t in textures
                    ]
                )
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
                logger.log_images(
                    "samples",
                    torch.cat([images["photos"], images["outputs"]]),
                    caption=f"step {step}: photos (top) and stylised ({module.texture_name})",
                    nrow=len(images["photos"]),
                )
                if len(images["factors"]):
                    factors = [m * module.generator.noise_factor for m in self.noise_multiples]
                    caption = "noise factor " + " | ".join(f"{f:g}" for f in factors)
                    logger.log_images("noise_factors", images["factors"], caption=caption, nrow=len(factors))

    @rank_zero_only
    def on_train_start(self, trainer: pl.Trainer, module: TextureNetModule) -> None:
        """The texture does not change: send it to the dashboard once."""
        for logger in trainer.loggers:
            if hasattr(logger, "log_images"):
                for image, name in zip(module.textures, module.generator.textures or [module.texture_name]):
                    logger.log_images(
                        "texture" if len(module.textures) == 1 else f"texture/{name}", image, caption=name
                    )

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs, batch, batch_idx: int
    ) -> None:
        if self.every_n_steps and trainer.global_step % self.every_n_steps == 0:
            self.write(trainer, module)

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.write(trainer, module)
