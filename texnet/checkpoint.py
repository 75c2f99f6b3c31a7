"""The checkpoint format of a trained texture network, in one place: written, read, checked, turned back into a generator.

A texnet checkpoint is the dict Lightning saves (``state_dict``, ``hyper_parameters``, ``global_step``, ...) with
two more entries that ``TextureNetModule.on_save_checkpoint`` adds: ``texnet`` (:func:`mark_checkpoint`:
``{"kind": KIND, "texture_name": ...}``) and ``rng_states`` (the global RNG, for an exact resume: texnet.sampling;
inference ignores it and shipped models leave it out). The generator's weights are the ``generator.*`` entries of
the state dict, its options ``hyper_parameters["model"]`` (the ``arch`` name, never a class name, so classes can be
renamed) and the texture image the ``texture`` buffer; the frozen VGG is not stored (texnet.module says why).
A network of several textures has their names in ``hyper_parameters["model"]["textures"]`` (the generator's
``textures`` option), their images in the buffers ``texture_images.0``, ``texture_images.1``, ... and the names
joined by "+" as its ``texture_name``; single-texture checkpoints are unchanged.

Files are read with ``torch.load(weights_only=True)``: a checkpoint holds only tensors and plain data, so
reading one can never run code. This module needs neither Lightning nor the training code.
"""

from __future__ import annotations

import io
from pathlib import Path

import torch

from texnet.errors import TexnetError, first_line
from texnet.generator import ARCHITECTURES, architecture_options, build_generator
from texnet.graph_stylize import bytes_digest
from texnet.models import resolve_checkpoint
from texnet.noise_generator import NoiseGenerator

KIND = "texnet.TextureNetModule"
EXPECTED = "expected a texture-network checkpoint written by train.py (runs/<texture>/<date>/checkpoints/last.ckpt)"


def mark_checkpoint(checkpoint: dict, texture_name: str) -> None:
    """Add texnet's entry to a checkpoint Lightning is about to save (``on_save_checkpoint``)."""
    checkpoint["texnet"] = {"kind": KIND, "texture_name": texture_name}


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint dict of a texture network (a file, or a shipped model's name: texnet.models), or a one-line
    TexnetError saying what is wrong with `path`."""
    return read_checkpoint_file(path)[0]


def read_checkpoint_file(path: str | Path) -> tuple[dict, str]:
    """:func:`read_checkpoint`, and the SHA-256 of the bytes it read: what names the ONNX graphs exported from
    them (texnet.graph_stylize), taken from the same read so that a file rewritten meanwhile cannot be mislabelled."""
    path = resolve_checkpoint(path)
    if not path.is_file():
        raise TexnetError(f"checkpoint '{path}' does not exist: {EXPECTED}")
    try:
        data = path.read_bytes()
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - a non-checkpoint makes the unpickler fail in arbitrary ways
        if "Unsupported global" in str(err):  # a pickle with objects other than tensors and plain data
            raise TexnetError(
                f"checkpoint '{path}' holds Python objects, which texnet does not unpickle (they could run code): {EXPECTED}"
            ) from None
        raise TexnetError(
            f"checkpoint '{path}' is not a PyTorch checkpoint ({type(err).__name__}): {EXPECTED}"
        ) from None
    entry = ckpt.get("texnet") if isinstance(ckpt, dict) else None
    kind = entry.get("kind") if isinstance(entry, dict) else None
    if kind != KIND:
        raise TexnetError(
            f"checkpoint '{path}' is not a texnet checkpoint (its texnet.kind is {kind!r}, not '{KIND}'): {EXPECTED}"
        )
    return ckpt, bytes_digest(data)


def check_resumable(ckpt_path: str | Path) -> None:
    """A one-line TexnetError unless `ckpt_path` is a checkpoint train.py can resume (``ckpt_path=``): a file, a
    texnet checkpoint, with the optimiser state that shipped models and ``init_from`` sources need not have."""
    path = Path(str(ckpt_path)).expanduser()
    if not path.is_file():
        raise TexnetError(
            f"ckpt_path '{ckpt_path}' is not a file: pass a run's checkpoint to resume it (runs/<texture>/<date>/"
            "checkpoints/last.ckpt), or init_from= to start a new run from a trained or shipped model"
        )
    if "optimizer_states" not in read_checkpoint(path):
        raise TexnetError(
            f"ckpt_path '{ckpt_path}' holds a network without its training state (a shipped or exported model): "
            f"start a new run from it with init_from={ckpt_path}"
        )


def checkpoint_generator(ckpt: dict, path: str | Path) -> NoiseGenerator:
    """The trained generator of a checkpoint read by :func:`read_checkpoint` (inference, and train.py's init_from)."""
    try:
        model = dict(ckpt.get("hyper_parameters", {})["model"])
        if model.get("arch") == "encoder":  # its frozen VGG is in the state dict loaded below
            model["encoder_weights"] = "checkpoint"
        generator = build_generator(**model)
        state = ckpt["state_dict"]
        generator.load_state_dict(
            {k.removeprefix("generator."): v for k, v in state.items() if k.startswith("generator.")}
        )
    except (KeyError, TypeError, RuntimeError) as err:
        reason = first_line(err)[:160]
        raise TexnetError(
            f"checkpoint '{path}' is incomplete or does not match its model settings ({reason}): re-export it with train.py"
        ) from None
    return generator


# The model options that decide a network's layers: a run that starts from a checkpoint (init_from) takes them from
# it, whatever its own config says, so that its weights fit; every other model option is the run's.
LAYER_OPTIONS = (
    "arch",
    "scales",
    "channels",
    "residual_blocks",
    "fine_channels",
    "fine_kernels",
    "encoder_layer",
    "noise_channels",
    "norm",
)


def fine_tune_model(ckpt: dict, path: str | Path, model: dict) -> tuple[dict, dict]:
    """The model options of a run that starts from checkpoint `ckpt` (``init_from``): its layer options
    (:data:`LAYER_OPTIONS`), the run's `model` options for the rest; and the layer options that differ from the
    run's, ``{key: (run's, checkpoint's)}``, for the log. A checkpoint of the other mode is a one-line error."""
    source = dict(ckpt.get("hyper_parameters", {}).get("model", {}))
    source_mode, mode = source.get("mode", "stylize"), model.get("mode", "stylize")
    if source_mode != mode:
        raise TexnetError(
            f"init_from={path} is a {source_mode}-mode network and this run trains {mode} mode: start from a "
            f"{mode}-mode checkpoint or shipped model (python -m texnet.models lists them), or pass model.mode={source_mode}"
        )
    arch = source.get("arch", "pyramid")  # checkpoints from before model.arch are pyramids
    if arch not in ARCHITECTURES:
        raise TexnetError(f"init_from={path} holds a model.arch='{arch}' this texnet does not know: {EXPECTED}")
    accepted = architecture_options(arch)  # with its defaults: what a checkpoint without the option was built with
    layers = {key: source.get(key, accepted[key]) for key in LAYER_OPTIONS if key in accepted}
    layers["arch"] = arch
    options = {k: v for k, v in model.items() if k not in LAYER_OPTIONS and (k in accepted or k == "textures")}
    differ = {
        key: (model.get(key), value)
        for key, value in layers.items()
        if key in model and _as_list(model[key]) != _as_list(value)
    }
    return {**options, **layers}, differ


def _as_list(value: object) -> object:
    """A tuple as the list a config holds (a class default (3, 3, 1) is the config's [3, 3, 1])."""
    return list(value) if isinstance(value, tuple) else value


def checkpoint_texture(ckpt: dict, path: str | Path) -> torch.Tensor:
    """The (1, 3, H, W) texture image the network was trained on (the first one of several)."""
    return checkpoint_textures(ckpt, path)[0]


def checkpoint_textures(ckpt: dict, path: str | Path) -> list[torch.Tensor]:
    """Every texture image the network was trained on, in the order of its textures."""
    state = ckpt.get("state_dict", {})
    textures = [state["texture"]] if "texture" in state else []
    while f"texture_images.{len(textures)}" in state:
        textures.append(state[f"texture_images.{len(textures)}"])
    if not textures:
        raise TexnetError(f"checkpoint '{path}' holds no texture image: re-export it with train.py")
    # shipped models keep their textures in 8 bits (scripts/ship_model.py): a quarter of the file
    return [t.float().div(255) if t.dtype == torch.uint8 else t for t in textures]


def checkpoint_texture_name(ckpt: dict) -> str:
    """The texture's name: the texnet entry's, else the training config's (checkpoints from before the entry had it)."""
    texture = ckpt.get("hyper_parameters", {}).get("texture", {})
    return (
        ckpt.get("texnet", {}).get("texture_name")
        or (texture.get("name") if isinstance(texture, dict) else None)
        or "texture"
    )


def describe_checkpoint(ckpt: dict) -> dict:
    """What a person choosing a model wants to know: texture, mode, architecture, training steps, noise factor."""
    model = ckpt.get("hyper_parameters", {}).get("model", {})
    return {
        "texture": checkpoint_texture_name(ckpt),
        "mode": model.get("mode", "stylize"),
        "arch": model.get("arch", "pyramid"),
        "steps": ckpt.get("global_step", "?"),
        "noise_factor": model.get("noise_factor"),
    }
