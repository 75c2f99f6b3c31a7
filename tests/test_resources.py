"""What ships in texnet/resources: the built-in textures and the default loss, found without the repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONFIG_DIR
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import texnet
from texnet.errors import TexnetError
from texnet.losses import default_loss_config
from texnet.textures import available_textures, resolve_texture_path, texture_name, texture_path

PACKAGE = Path(texnet.__file__).parent


def test_builtin_textures_are_package_files():
    assert available_textures() == ["mosaic", "pebbles", "starry"]
    for name in available_textures():
        path = texture_path(name)
        assert path.parent == PACKAGE / "resources" / "textures" and texture_name(path) == name


def test_paths_from_before_the_textures_were_packaged_still_resolve(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_texture_path("data/textures/pebbles.jpg") == texture_path("pebbles")
    own = tmp_path / "data" / "textures" / "pebbles.jpg"  # a file of that name in the working directory wins
    own.parent.mkdir(parents=True)
    own.write_bytes(texture_path("mosaic").read_bytes())
    assert resolve_texture_path("data/textures/pebbles.jpg") == Path("data/textures/pebbles.jpg")
    with pytest.raises(
        TexnetError,
        match="texture image 'wood' does not exist: pass texture=<name> with one of mosaic, pebbles, starry",
    ):
        resolve_texture_path("wood")


def test_the_scripts_texture_configs_name_the_builtin_textures():
    for name in available_textures():
        with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
            cfg = compose("train", overrides=[f"texture={name}"])
        assert resolve_texture_path(cfg.texture.image) == texture_path(name)


@pytest.mark.parametrize("script", ["train", "stylize"])
def test_loss_default_of_the_scripts_is_the_packaged_loss(script):
    """One source: Hydra finds loss=default in the package (hydra.searchpath), the library reads the same file."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(script)
    assert OmegaConf.to_container(cfg.loss) == default_loss_config()
    assert not (CONFIG_DIR / "loss" / "default.yaml").exists()
