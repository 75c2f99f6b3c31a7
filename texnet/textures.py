"""Texture (style image) lookup shared by train.py, stylize.py, the Gatys baseline and the app.

A texture is chosen by name (`texture=mosaic`, a file in ``conf/texture/``) or by any image file
(`texture.image=/path/to/style.jpg`). Relative paths are tried against the working directory,
then against the project root, so the shipped ``data/textures/*`` work from anywhere.
"""
from __future__ import annotations

from pathlib import Path

import torch

from omegaconf import OmegaConf

from texnet.errors import TexnetError
from texnet.image import load_image

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = PROJECT_ROOT / "conf"


def available_textures() -> list[str]:
    return sorted(p.stem for p in (CONFIG_DIR / "texture").glob("*.yaml"))


def resolve_texture_path(image: str | Path) -> Path:
    """The texture file named by `image`, relative to the cwd or the project root."""
    path = Path(image).expanduser()
    for candidate in (path, PROJECT_ROOT / path):
        if candidate.is_file():
            return candidate
    raise TexnetError(
        f"texture image '{image}' does not exist: pass texture=<name> with one of {', '.join(available_textures())} "
        "or texture.image=/path/to/your_texture.jpg"
    )


def texture_path(texture: str | Path) -> Path:
    """The image file behind a texture given by name (conf/texture/<name>.yaml) or as an image path."""
    named = CONFIG_DIR / "texture" / f"{texture}.yaml"
    if named.is_file():
        return resolve_texture_path(OmegaConf.load(named).image)
    return resolve_texture_path(texture)


def texture_name(image: str | Path) -> str:
    return Path(image).stem


def load_texture(image: str | Path, size: int | None = 256) -> torch.Tensor:
    """(1, 3, H, W) texture in [0, 1], longer side `size` (the reference's `-style_size 256`)."""
    return load_image(resolve_texture_path(image), max_size=size, what="texture image")
