"""The console progress bar of training runs and Gatys runs: Lightning's own, counted in steps.

texnet's runs end at ``max_steps`` (``max_epochs=-1``) and an epoch is only a pass over the photos: Lightning's bar
showed neither the run's step nor its total, and with rich installed it was titled "Epoch 3/-2" (Lightning 2.6
writes ``max_epochs - 1`` as the total; fixed upstream after 2.6, Lightning-AI/pytorch-lightning#21924). This one
shows the run's step beside the losses and no epoch total; Lightning has no option for either, hence subclasses.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from lightning_utilities.core.imports import RequirementCache
from pytorch_lightning.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar

RICH = RequirementCache("rich>=10.2.2")  # what Lightning requires of rich for its RichProgressBar


class StepMetrics:
    """The step of the run ("step 120/1000") in place of the logger's version number, which says nothing here."""

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        metrics = super().get_metrics(trainer, pl_module)  # type: ignore[misc]
        metrics.pop("v_num", None)
        step = {"step": f"{trainer.global_step}/{trainer.max_steps}"} if trainer.max_steps > 0 else {}
        return {**step, **metrics}  # the step first: a narrow console cuts the line's end


class RichStepProgressBar(StepMetrics, RichProgressBar):
    def _get_train_description(self, current_epoch: int) -> str:
        if self.trainer.max_epochs is not None and self.trainer.max_epochs < 0:  # no epoch limit: no total
            return f"{f'Epoch {current_epoch}':{len(self.validation_description)}}"
        return super()._get_train_description(current_epoch)


class TQDMStepProgressBar(StepMetrics, TQDMProgressBar):
    pass


def progress_bar() -> ProgressBar:
    """The bar Lightning would pick (rich where it is installed, tqdm otherwise), counted in steps."""
    return RichStepProgressBar() if RICH else TQDMStepProgressBar()


def with_progress_bar(callbacks: list[pl.Callback], enabled: bool) -> list[pl.Callback]:
    """`callbacks` plus :func:`progress_bar` where the run shows one and no progress bar is given already."""
    if enabled and not any(isinstance(cb, ProgressBar) for cb in callbacks):
        return [*callbacks, progress_bar()]
    return callbacks
