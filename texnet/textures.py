"""Texture (style image) lookup shared by train.py, stylize.py, the Gatys baseline and the app.

A texture is chosen by name (``texture=mosaic``: one of the built-in textures shipped in
``texnet/resources/textures/``) or by any image file (``texture.image=/path/to/style.jpg``). A relative
path is read from the working directory; one that does not exist there but names a built-in texture's
file (``data/textures/mosaic.jpg``, where they lived before they were packaged) is that texture, so older
run configs and checkpoints still resume.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import torch

from texnet.errors import TexnetError
from texnet.image import load_image

BUILTIN_DIR = Path(str(resources.files("texnet.resources") / "textures"))


def builtin_textures() -> dict[str, Path]:
    """Name -> image file of every built-in texture."""
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.jpg"))}


def available_textures() -> list[str]:
    return list(builtin_textures())


def resolve_texture_path(image: str | Path) -> Path:
    """The texture file named by `image`: a path (relative to the working directory) or a built-in texture's name."""
    path = Path(image).expanduser()
    if path.is_file():
        return path
    builtin = builtin_textures()
    if str(image) in builtin:
        return builtin[str(image)]
    if not path.is_absolute() and path.stem in builtin and path.name == builtin[path.stem].name:
        return builtin[path.stem]
    raise TexnetError(
        f"texture image '{image}' does not exist: pass texture=<name> with one of {', '.join(builtin)} "
        "or texture.image=/path/to/your_texture.jpg"
    )


def texture_path(texture: str | Path) -> Path:
    """The image file behind a texture given by built-in name or as an image path."""
    return resolve_texture_path(texture)


def texture_name(image: str | Path) -> str:
    return Path(image).stem


def load_texture(image: str | Path, size: int | None = 256) -> torch.Tensor:
    """(1, 3, H, W) texture in [0, 1], longer side `size` (the reference's `-style_size 256`)."""
    return load_image(resolve_texture_path(image), max_size=size, what="texture image", size_option="texture.size")
