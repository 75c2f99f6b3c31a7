"""conf/: the trainer group's shared keys live once, in trainer/default.yaml."""
from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from conftest import CONFIG_DIR

OWN = {"cpu": {"accelerator": "auto", "max_steps": 1000, "val_check_interval": 100},
       "gpu": {"accelerator": "gpu", "precision": "16-mixed", "max_steps": 3000, "val_check_interval": 250},
       "ddp": {"accelerator": "auto", "devices": "auto", "num_nodes": 1, "strategy": "ddp", "max_steps": 3000, "val_check_interval": 250}}


@pytest.mark.parametrize("trainer", list(OWN))
def test_each_trainer_is_default_yaml_plus_its_own_keys(trainer):
    default = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "trainer" / "default.yaml"))
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        composed = OmegaConf.to_container(compose("train", overrides=[f"trainer={trainer}"]).trainer)
    assert composed == {**default, **OWN[trainer]}
    own_file = OmegaConf.load(CONFIG_DIR / "trainer" / f"{trainer}.yaml")
    assert list(own_file.defaults) == ["default", "_self_"] and not set(own_file) - {"defaults"} - set(OWN[trainer])
