"""TextureNetModule: the optimiser and schedule come from the optim config group (Hydra partials)."""

from __future__ import annotations

import pytest
import torch
from conftest import CONFIG_DIR
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from texnet.errors import TexnetError
from texnet.module import TextureNetModule
from texnet.textures import texture_path

TINY_MODEL = {"arch": "pyramid", "scales": 2, "channels": 4}


def module_with(*overrides: str) -> TextureNetModule:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    return TextureNetModule(
        model=TINY_MODEL,
        loss={},
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        texture={"image": str(texture_path("mosaic")), "size": 32},
    )


def test_default_optim_is_adam_with_step_decay():
    module = module_with()
    configured = module.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["lr"] == 0.01
    assert type(scheduler) is torch.optim.lr_scheduler.StepLR and (scheduler.step_size, scheduler.gamma) == (400, 0.8)
    assert configured["lr_scheduler"]["interval"] == "step"
    assert optimizer.param_groups[0]["params"] == list(module.generator.parameters())


def test_optimizer_and_schedule_are_swapped_from_the_command_line():
    configured = module_with(
        "optim.optimizer._target_=torch.optim.SGD",
        "optim.optimizer.lr=0.5",
        "optim.scheduler.step_size=7",
        "experiment=paper",
    ).configure_optimizers()
    assert type(configured["optimizer"]) is torch.optim.SGD and configured["optimizer"].defaults["lr"] == 0.5
    assert (
        configured["lr_scheduler"]["scheduler"].step_size == 7 and configured["lr_scheduler"]["scheduler"].gamma == 0.8
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["optim.optimizer._target_=torch.optim.Nope"],
            r"^optim\.optimizer\._target_=torch\.optim\.Nope cannot be built: ",
        ),
        (["optim.scheduler._partial_=false"], r"^optim\.scheduler needs _partial_: true "),
        (["~optim.scheduler"], r"^optim\.scheduler is missing or has no _target_"),
    ],
)
def test_bad_optim_config_is_one_line_naming_the_option(overrides, message):
    with pytest.raises(TexnetError, match=message) as err:
        module_with(*overrides).configure_optimizers()
    assert "\n" not in str(err.value)
