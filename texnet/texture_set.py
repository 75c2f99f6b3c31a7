"""Which textures a training run learns, from the ``texture`` config node (conf/texture, conf/train.yaml):

- ``texture=mosaic`` or ``texture.image=my.jpg``: one texture, a plain network (as before several were possible);
- ``'texture.images=[mosaic,starry,my.jpg]'``: one network for all of them (conditional instance norm,
  texnet.conditional_norm), each texture named by its file name;
- ``init_from=<checkpoint> texture.add=new.jpg``: the checkpoint's network (one texture or several) with one more
  texture, of which only the scales and shifts are trained (Dumoulin et al. 2017, Sec. 4.3); every other weight,
  and so every old texture's output, stays exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from texnet.checkpoint import checkpoint_generator, checkpoint_texture_name, checkpoint_textures, read_checkpoint
from texnet.conditional_norm import add_texture, check_names, make_conditional
from texnet.errors import TexnetError
from texnet.noise_generator import NoiseGenerator
from texnet.textures import load_texture, resolve_texture_path, texture_name


@dataclass
class TextureSet:
    """What TextureNetModule is built from: model options, texture options, texture tensors (None: read from the
    paths in `texture`) and, for ``texture.add``, the generator to start from."""

    model: dict
    texture: dict
    images: list[torch.Tensor] | None = None
    generator: NoiseGenerator | None = None


def texture_set(texture: dict, model: dict, init_from: str | None) -> TextureSet:
    """The run's textures from the ``texture`` config node (a plain dict), the ``model`` options and ``init_from``."""
    size, images, add = texture.get("size", 256), texture.get("images"), texture.get("add")
    if texture.get("balance") and images is None:
        raise TexnetError(
            "texture.balance=true balances the losses of several textures: pass 'texture.images=[a,b,...]' or drop it"
        )
    if add:
        if images:
            raise TexnetError(
                "texture.add adds one texture to a trained network and texture.images trains a new one: pass one of them"
            )
        if not init_from:
            raise TexnetError(f"texture.add={add} adds a texture to a trained network: pass init_from=<its checkpoint>")
        return added_texture(init_from, add, size)
    if images is not None:
        if isinstance(images, str) or not images:
            raise TexnetError(
                f"texture.images={images} is not a list of textures: pass e.g. 'texture.images=[mosaic,starry,my.jpg]'"
            )
        paths = [resolve_texture_path(image) for image in images]
        names = check_names([texture_name(path) for path in paths])
        return TextureSet(
            {**model, "textures": names},
            {
                "names": names,
                "images": [str(p) for p in paths],
                "size": size,
                "draw": texture.get("draw"),
                "balance": bool(texture.get("balance")),
            },
        )
    path = resolve_texture_path(texture["image"])
    return TextureSet(model, {"image": str(path), "size": size, "name": texture_name(path)})


def added_texture(init_from: str, image: str, size: int) -> TextureSet:
    """The network of checkpoint `init_from` with texture `image` added (its model options are the checkpoint's)."""
    ckpt = read_checkpoint(init_from)
    generator = checkpoint_generator(ckpt, init_from)
    old = checkpoint_textures(ckpt, init_from)
    if not generator.textures:  # a single-texture network: its norms become texture 0 of a conditional one
        make_conditional(generator, [checkpoint_texture_name(ckpt)])
    path = resolve_texture_path(image)
    add_texture(generator, texture_name(path))
    model = {**ckpt["hyper_parameters"]["model"], "textures": list(generator.textures)}
    texture = {
        "names": list(generator.textures),
        "images": [None] * len(old) + [str(path)],
        "size": size,
        "train": [len(old)],
        "init_from": str(init_from),
    }
    return TextureSet(model, texture, [*old, load_texture(path, size)], generator)
