"""Training a texture network from a composed config: the run folder, the module, data, trainer and callbacks, and a
fine-tuned run's starting weights. ``train.py`` is its command line; tests and notebooks call :func:`train`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.utilities import rank_zero_only

from texnet.callbacks import LastCheckpoint
from texnet.checkpoint import check_resumable, checkpoint_generator, read_checkpoint
from texnet.conditional_norm import mix_weights, single_texture
from texnet.config import TRAIN_SCHEMAS, validate
from texnet.errors import TexnetError
from texnet.instantiation import build_node
from texnet.module import TextureNetModule, build_module
from texnet.progress import with_progress_bar
from texnet.resume import resumed_config
from texnet.run_folder import check_run_folder, record_start, remove_failed_start, resumes_inside

log = logging.getLogger("texnet.train")


def train(cfg: DictConfig, overrides: Sequence[str] | None = None) -> dict[str, Any]:
    """Train from a composed config; returns final metrics and checkpoint paths (tests call this directly).

    A run folder that already holds a run is refused unless ``ckpt_path`` resumes from inside it, and a start
    that fails before the first training step removes the folder it created (texnet.run_folder). Given the
    command line's `overrides` (train.py), a run resumed in its own folder trains with the options in its
    config.yaml, changed only by `overrides` (texnet.resume); without them `cfg` is taken as it is.
    """
    run_dir = Path(cfg.run_dir)
    if rank_zero_only.rank == 0:
        check_run_folder(run_dir, cfg.ckpt_path)
        record_start(run_dir)
    saved = run_dir / "config.yaml"
    if overrides is not None and resumes_inside(run_dir, cfg.ckpt_path) and saved.is_file():
        cfg = resumed_config(cfg, saved, overrides)
    trainer: pl.Trainer | None = None
    try:
        validate(cfg, TRAIN_SCHEMAS)
        if cfg.ckpt_path:
            check_resumable(cfg.ckpt_path)
        module, datamodule, trainer, callbacks = build(cfg, run_dir)
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
    except BaseException:
        if trainer is None or trainer.global_step == 0:
            remove_failed_start(run_dir)
        elif rank_zero_only.rank == 0:
            log_resume_hint(run_dir, trainer.global_step, last_checkpoint(callbacks).last_model_path)
        raise
    last = last_checkpoint(callbacks)
    best = next((cb for cb in callbacks if isinstance(cb, ModelCheckpoint) and cb.monitor == "val/total"), None)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    return {
        "run_dir": run_dir,
        "last": Path(last.last_model_path),
        "best": best.best_model_path if best else "",
        "metrics": metrics,
        "global_step": trainer.global_step,
    }


def build(
    cfg: DictConfig, run_dir: Path
) -> tuple[TextureNetModule, pl.LightningDataModule, pl.Trainer, list[pl.Callback]]:
    """The module, data, trainer and callbacks of a run; writes config.yaml and the loggers' hyper-parameters."""
    pl.seed_everything(cfg.seed, workers=True)
    module, textures = build_module(cfg)
    if textures.generator is not None:  # texture.add: the checkpoint's network, one texture more, the rest frozen
        module.generator.load_state_dict(textures.generator.state_dict())
        log.info(
            "adding texture '%s' to %s (model options from it; only the new texture's norm parameters train)",
            module.generator.textures[-1],
            cfg.init_from,
        )
    elif cfg.init_from:
        init_generator(module, cfg)
    if cfg.init_from:  # config.yaml (what a resume reads) and the loggers say the network's options, not the command's
        with open_dict(cfg):
            cfg.model = textures.model
    datamodule = build_node(cfg.data, "data")
    callbacks = with_progress_bar(
        [build_node(spec, f"callbacks.{name}") for name, spec in cfg.callbacks.items()], cfg.trainer.enable_progress_bar
    )
    if not any(isinstance(cb, LastCheckpoint) for cb in callbacks):
        raise TexnetError(
            "callbacks.last_checkpoint is missing: every run needs its last.ckpt (conf/callbacks/default.yaml)"
        )
    loggers = [build_node(spec, f"logger.{name}") for name, spec in cfg.logger.items()] if cfg.logger else []
    # A schedule changes crop/batch size between epochs: the data loader is rebuilt at each epoch.
    reload = {"reload_dataloaders_every_n_epochs": 1} if module.schedule else {}
    trainer: pl.Trainer = build_node(
        cfg.trainer, "trainer", default_root_dir=str(run_dir), callbacks=callbacks, logger=loggers, **reload
    )
    if trainer.is_global_zero:
        run_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    for logger in loggers:  # the whole resolved run config, not only the module's hyper-parameters
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    log.info("training %s texture network on '%s' into %s", module.generator.mode, module.texture_name, run_dir)
    return module, datamodule, trainer, callbacks


def init_generator(module: TextureNetModule, cfg: DictConfig) -> None:
    """Fine-tuning: the generator starts from init_from's weights; loss, data, optimiser and steps are this run's.
    With ``ckpt_path`` too, the run resumes from its checkpoint: init_from only chose where that run started, and
    the resume command is the run's own command (experiment=finetune sets init_from) plus ckpt_path."""
    if cfg.ckpt_path:
        log.info(
            "resuming from %s: its weights replace init_from=%s, where the run started", cfg.ckpt_path, cfg.init_from
        )
        return
    generator = checkpoint_generator(read_checkpoint(cfg.init_from), cfg.init_from)
    if generator.textures and not module.generator.textures:  # a base of several textures: start from their mean
        names = generator.textures
        generator = single_texture(generator, mix_weights(names, {name: 1 / len(names) for name in names}))
        log.info(
            "init_from=%s holds %d textures (%s): starting from their mean", cfg.init_from, len(names), ", ".join(names)
        )
    try:
        module.generator.load_state_dict(generator.state_dict())
    except RuntimeError:
        raise TexnetError(
            f"init_from={cfg.init_from} holds a {generator.arch} generator whose layers differ from this "
            f"run's model ({cfg.model.arch}): pass the model options it was trained with"
        ) from None
    log.info("generator initialised from %s", cfg.init_from)


def last_checkpoint(callbacks: list[pl.Callback]) -> LastCheckpoint:
    """The run's last.ckpt callback (build() refuses a run without one)."""
    return next(cb for cb in callbacks if isinstance(cb, LastCheckpoint))


def log_resume_hint(run_dir: Path, step: int, last: str) -> None:
    """A run stopped after its first step (Ctrl-C, SIGTERM, an error): say where its last checkpoint (`last`, empty
    if none was saved) is and how to go on. Lightning ends a SIGTERM'd run with exit code 0 and no word of it."""
    if last and Path(last).is_file():
        log.warning(
            "stopped at step %d: %s holds the last checkpoint; resume with: python train.py ckpt_path=%s "
            "(it goes on in this folder with the run's options)",
            step,
            run_dir,
            last,
        )
