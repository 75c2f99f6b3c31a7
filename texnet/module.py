"""TextureNetModule: trains a generator (texnet.generator) against one texture, or several (conditional instance
norm, texnet.conditional_norm: a texture per training step, or per sample), with the shared PerceptualLoss.

A checkpoint alone is enough for inference: the hyper-parameters (generator architecture, noise factor,
texture name, loss and optimiser settings) and the texture image itself are saved in it. The frozen VGG
is not: it is rebuilt in ``setup`` from the loss config, which keeps checkpoints ~0.5 MB instead of ~60 MB.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from texnet.checkpoint import fine_tune_model, mark_checkpoint, read_checkpoint
from texnet.conditional_norm import texture_parameters
from texnet.errors import TexnetError
from texnet.generator import build_generator
from texnet.instantiation import build_node
from texnet.losses import PerceptualLoss, build_perceptual_loss
from texnet.sampling import rng_states, set_rng_states
from texnet.schedule import check_schedule, settings_at, stage_index
from texnet.texture_set import TextureSet, texture_set
from texnet.textures import load_texture, texture_name

log = logging.getLogger("texnet.train")

BALANCE_DECAY = 0.9  # texture.balance's running loss: a texture's last ~10 draws (30 steps of three textures)
VAL_SEED = 1234  # fixed noise for validation losses and samples, so curves and grids are comparable


class TextureNetModule(pl.LightningModule):
    """Generator + perceptual loss + the configured optimiser and learning-rate schedule (Adam, step decay).

    Args:
        model: build_generator keyword arguments (conf/model: ``arch`` and the generator's options).
        loss: build_perceptual_loss keyword arguments (the loss config group, texnet/resources/loss).
        optim: ``optimizer`` and ``scheduler``, each a Hydra ``_target_`` node with ``_partial_: true`` (conf/optim);
            kept as plain data and instantiated in ``configure_optimizers``, so that a checkpoint's hyper-parameters
            hold no Python objects (texnet.checkpoint reads them with ``weights_only=True``).
        texture: ``image`` (path) and ``size`` (conf/texture); several textures: ``names``, ``images`` (paths) and
            ``size``, ``train``, the indices of the textures to train (default all; given, every other parameter
            is frozen: train.py's ``texture.add``), ``draw``: ``step`` (one texture per step; also
            checkpoints from before the option) or ``sample`` (each sample of a batch its own texture), and
            ``balance``: weigh each step by its texture's running loss (see :meth:`balance_weight`).
        texture_image: the texture tensor (a list of them for several); read from the image paths when not given.
        schedule: stages that change the style scale (and, in the data module, crop size, batch size and
            augmentation) at given steps (texnet.schedule); a stage change ends the epoch so that the data is
            reloaded with the new stage's settings.
    """

    def __init__(
        self,
        model: dict,
        loss: dict,
        optim: dict,
        texture: dict,
        texture_image: torch.Tensor | None = None,
        schedule: list[dict] | None = None,
    ) -> None:
        super().__init__()
        self.schedule = check_schedule(schedule)
        self._stage: int | None = None
        self._rng_states: dict | None = None  # a resumed run's, put back at the start of training
        self.save_hyperparameters(ignore=["texture_image"])
        self.generator = build_generator(**model)
        # Read by Lightning's ThroughputMonitor (conf/callbacks): texnet counts no FLOPs, so it logs images/s only.
        self.flops_per_batch: int | None = None
        if "names" in texture:  # several textures: buffers texture_images.<i>, names in the generator's model options
            images = texture_image or [load_texture(image, texture.get("size", 256)) for image in texture["images"]]
            self.texture_images = nn.Module()
            for i, image in enumerate(images):
                self.texture_images.register_buffer(str(i), image)
            self.texture_name = "+".join(texture["names"])
            self.train_textures = list(texture.get("train") or range(len(images)))
            self.draw = "step" if texture.get("draw") is None else texture["draw"]  # None: checkpoints from before
            if self.draw not in ("sample", "step"):
                raise TexnetError(f"texture.draw={self.draw} is unknown: use sample (a texture per sample) or step")
            self.balance = bool(texture.get("balance"))
            if self.balance:
                if self.draw != "step":
                    raise TexnetError(
                        "texture.balance=true weighs each step by its texture's running loss: use texture.draw=step"
                    )
                # each texture's running training loss (0: not drawn yet); saved with the checkpoint, so a resumed
                # run weighs its steps as the uninterrupted one would
                self.register_buffer("texture_losses", torch.zeros(len(images)))
            if texture.get("train"):
                self.generator.requires_grad_(False)
                for i in self.train_textures:
                    for p in texture_parameters(self.generator, i):
                        p.requires_grad_(True)
            return
        if texture_image is None:
            texture_image = load_texture(texture["image"], texture.get("size", 256))
        self.register_buffer("texture", texture_image)
        self.texture_name = texture.get("name") or texture_name(texture["image"])
        self.train_textures = [0]
        self.draw = "step"
        self.balance = False

    @property
    def textures(self) -> list[torch.Tensor]:
        """Every texture image, in the generator's order."""
        return list(self.texture_images.buffers()) if self.generator.textures else [self.texture]

    @property
    def perceptual(self) -> PerceptualLoss:
        """The frozen-VGG loss, built in ``setup``; kept out of ``state_dict`` on purpose (see module doc)."""
        return self.__dict__["_perceptual"]

    def setup(self, stage: str) -> None:
        if "_perceptual" not in self.__dict__:
            self.__dict__["_perceptual"] = build_perceptual_loss([t.cpu() for t in self.textures], **self.hparams.loss)
        self.perceptual.to(self.device)

    def on_fit_start(self) -> None:
        self.perceptual.to(self.device)

    on_validation_start = on_fit_start

    def forward(
        self,
        content: torch.Tensor | None = None,
        noise_factor: float | None = None,
        size: tuple[int, int] | None = None,
        batch_size: int = 1,
        rng: torch.Generator | None = None,
        texture: int | torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.generator(
            content, noise_factor=noise_factor, size=size, batch_size=batch_size, rng=rng, texture=texture
        )

    def model_step(
        self,
        batch: torch.Tensor,
        rng: torch.Generator | None = None,
        texture: int | torch.Tensor = 0,
        targets: dict[str, torch.Tensor] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Losses of the generator's output for one batch of content photos and one texture, or one per sample
        (shared by train and val); `targets`: the batch's content targets when already encoded."""
        picked = texture if self.generator.textures else None
        if self.generator.mode == "stylize":
            output = self(batch, rng=rng, texture=picked)
            if targets is None:
                targets = self.perceptual.content_targets(batch)
            return self.perceptual(output, targets, texture=texture)
        output = self(size=tuple(batch.shape[-2:]), batch_size=batch.shape[0], rng=rng, texture=picked)
        return self.perceptual(output, texture=texture)

    def drawn_textures(self, step: int, batch_size: int) -> int | torch.Tensor:
        """The texture of training step `step` (``texture.draw=step``), or one per sample of its batch (an integer
        tensor; ``sample``): every trained texture once per cycle of draws, in an order shuffled per cycle
        (balanced, and the same on resume). Texture mode's diversity term compares the samples of a batch, so
        they share a texture there."""
        count = len(self.train_textures)
        per_step = self.draw == "step" or count == 1 or self.perceptual.diversity_weight > 0
        draws = [step] if per_step else range(step * batch_size, (step + 1) * batch_size)
        picked = [
            self.train_textures[
                int(torch.randperm(count, generator=torch.Generator().manual_seed(n // count))[n % count])
            ]
            for n in draws
        ]
        return picked[0] if len(set(picked)) == 1 else torch.tensor(picked, device=self.device)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
        """Applies the schedule's stage; -1 (Lightning: end this epoch) when a new stage needs new data."""
        stage = stage_index(self.schedule, self.global_step)
        if stage != self._stage:
            first = self._stage is None  # start or resume: the data loader was built for this step already
            self._stage = stage
            settings = settings_at(
                self.schedule, self.global_step, {"style_scale": self.hparams.loss.get("style_scale", 1.0)}
            )
            self.perceptual.style_scale = float(settings["style_scale"])
            if not first:
                return -1
        if self.schedule:
            self.log_dict(
                {"train/image_size": float(batch.shape[-1]), "train/style_scale": self.perceptual.style_scale}
            )
        return None

    def balance_weight(self, texture: int, loss: torch.Tensor) -> torch.Tensor:
        """``texture.balance``: the weight of a step of `texture` whose loss is `loss`, the mean of the trained
        textures' running losses over this texture's (1 until a second texture has been drawn). Adam's step size
        is shared, so without it the texture with the largest loss moves the shared weights most."""
        running = self.texture_losses
        value = loss.detach().float()
        running[texture] = (
            value if running[texture] == 0 else BALANCE_DECAY * running[texture] + (1 - BALANCE_DECAY) * value
        )
        seen = running[self.train_textures]
        seen = seen[seen > 0]
        return seen.mean() / running[texture]

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        texture = self.drawn_textures(self.global_step, batch.shape[0])
        terms = self.model_step(batch, texture=texture)
        self.log_dict({f"train/{k}": v for k, v in terms.items()}, prog_bar=False)
        self.log("loss", terms["total"], prog_bar=True, logger=False)
        if self.balance:
            weight = self.balance_weight(int(texture), terms["total"])
            self.log("train/balance_weight", weight)
            return terms["total"] * weight
        return terms["total"]

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        """Validation losses with the run's own loss settings (not a schedule's style scale), so that they
        compare across stages and with Gatys under the same weights. Several textures: ``val/<name>/<term>`` for
        each trained texture and ``val/<term>`` their mean."""
        scheduled = self.perceptual.style_scale
        self.perceptual.style_scale = float(self.hparams.loss.get("style_scale", 1.0))
        try:
            # the photos' content targets once for every texture
            targets = self.perceptual.content_targets(batch) if self.generator.mode == "stylize" else None
            per_texture = {
                i: self.model_step(
                    batch, torch.Generator(device=batch.device).manual_seed(VAL_SEED + batch_idx), i, targets
                )
                for i in self.train_textures
            }
        finally:
            self.perceptual.style_scale = scheduled
        terms = {
            k: torch.stack([t[k] for t in per_texture.values()]).mean() for k in per_texture[self.train_textures[0]]
        }
        if self.generator.textures:
            terms.update({f"{self.generator.textures[i]}/{k}": v for i, t in per_texture.items() for k, v in t.items()})
        self.log_dict({f"val/{k}": v for k, v in terms.items()}, batch_size=batch.shape[0], sync_dist=True)

    def configure_optimizers(self) -> dict:
        """The optimiser of the generator's trainable parameters (all but those ``texture.add`` freezes) and its
        scheduler, stepped every training step."""
        optimizer = build_partial(self.hparams.optim, "optimizer")(
            [p for p in self.generator.parameters() if p.requires_grad]
        )
        scheduler = build_partial(self.hparams.optim, "scheduler")(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        mark_checkpoint(checkpoint, self.texture_name)
        checkpoint["rng_states"] = rng_states()  # the noise's RNG, so a resumed run draws the noise it would have

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self._rng_states = checkpoint.get("rng_states")

    def on_train_start(self) -> None:
        """A resumed run's global RNG as it was saved, put back here, after set-up (building the network draws
        from it). Single-process only: the checkpoint holds the first process's states."""
        if self._rng_states is not None and self.trainer.world_size == 1:
            set_rng_states(self._rng_states)
        self._rng_states = None


def build_partial(optim: dict, key: str) -> Callable[..., Any]:
    """``instantiate`` of the ``optim.<key>`` node (a ``_partial_: true`` config), or a one-line TexnetError naming it."""
    node = optim.get(key)
    if not isinstance(node, dict) or "_target_" not in node:
        raise TexnetError(f"optim.{key} is missing or has no _target_: give it one, as conf/optim/adam.yaml does")
    if node.get("_partial_") is not True:
        raise TexnetError(f"optim.{key} needs _partial_: true (the module adds the parameters or the optimiser)")
    return build_node(node, f"optim.{key}._target_={node['_target_']}")


def build_module(cfg: DictConfig) -> tuple[TextureNetModule, TextureSet]:
    """The module of a composed run config (train.py, bench/): its textures (one, several, or ``texture.add``'s one
    more on ``init_from``'s network), model, loss, optimiser and schedule. The TextureSet is returned too: for
    ``texture.add`` the caller loads its generator's weights."""
    texture = OmegaConf.to_container(cfg.texture, resolve=True)
    model = OmegaConf.to_container(cfg.model, resolve=True)
    if cfg.get("init_from") and not texture.get("add"):  # a fine-tune has init_from's layers (texture.add: its options)
        model, differ = fine_tune_model(read_checkpoint(cfg.init_from), cfg.init_from, model)
        if differ:
            log.info(
                "init_from=%s: its layer options replace this run's: %s",
                cfg.init_from,
                ", ".join(f"model.{key}={theirs} (not {ours})" for key, (ours, theirs) in differ.items()),
            )
    textures = texture_set(texture, model, cfg.get("init_from"))
    module = TextureNetModule(
        model=textures.model,
        loss=OmegaConf.to_container(cfg.loss, resolve=True),
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        texture=textures.texture,
        texture_image=textures.images,
        schedule=OmegaConf.to_container(cfg.data.schedule) if cfg.data.get("schedule") else None,
    )
    return module, textures
