"""Types and bounds of the config options, checked before a run starts: ``trainer.max_steps=abc`` or
``optim.optimizer.lr=-1`` is one line naming the key.

Each schema is a dataclass of the typed keys of one config node. :func:`validate` merges the node's values for
those keys into ``OmegaConf.structured(schema)``, so OmegaConf's own conversion rules decide what fits (``1`` is a
valid float, ``"abc"`` no integer). Only the listed keys are checked, so config groups may hold more keys (e.g.
any ``pytorch_lightning.Trainer`` argument). The schemas are not Hydra defaults of the config groups: Hydra would
then refuse a wrong type itself, at compose time, with a multi-line error that train.py cannot shorten.
Numbers that may be int or float (``val_check_interval``) are declared float: OmegaConf has no Union type, and
the merged copy is only used for checking, so an int keeps its meaning.
"""

from __future__ import annotations

import json
import typing
from dataclasses import dataclass, field, fields
from typing import Any, List, Optional

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from texnet.errors import TexnetError
from texnet.image import MIN_SIDE


def at_least(bound: int | float) -> Any:
    """A schema field whose number, when not null, must be >= `bound` (a count, a size)."""
    return field(default=MISSING, metadata={"at_least": bound})


def above(bound: int | float) -> Any:
    """A schema field whose number, when not null, must be > `bound` (a learning rate, a decay factor)."""
    return field(default=MISSING, metadata={"above": bound})


@dataclass
class TrainerSchema:
    max_steps: int = MISSING
    num_nodes: int = at_least(1)
    val_check_interval: Optional[float] = MISSING
    check_val_every_n_epoch: Optional[int] = MISSING
    limit_val_batches: float = at_least(0)
    log_every_n_steps: int = at_least(1)
    num_sanity_val_steps: int = MISSING
    enable_progress_bar: bool = MISSING
    enable_model_summary: bool = MISSING


@dataclass
class DataSchema:
    source: str = MISSING
    root: Optional[str] = MISSING
    split: str = MISSING
    image_size: int = at_least(MIN_SIDE)  # the smallest image the loss's VGG takes
    batch_size: int = at_least(1)
    num_workers: int = at_least(0)
    num_val: int = at_least(1)
    val_size: int = at_least(MIN_SIDE)
    builtin_length: int = at_least(1)
    seed: int = MISSING
    resize: Optional[List[int]] = at_least(1)


@dataclass
class OptimizerSchema:
    lr: float = above(0)


@dataclass
class SchedulerSchema:
    step_size: int = at_least(1)
    gamma: float = above(0)


@dataclass
class ModelSchema:
    arch: str = MISSING
    mode: str = MISSING
    scales: int = at_least(1)
    channels: int = at_least(1)
    residual_blocks: int = at_least(0)
    fine_channels: Optional[int] = at_least(1)
    fine_kernels: List[int] = MISSING
    encoder_layer: str = MISSING
    encoder_weights: str = MISSING
    noise_channels: int = at_least(0)
    noise_factor: float = at_least(0)
    norm: str = MISSING
    padding: str = MISSING


@dataclass
class TextureSchema:
    image: str = MISSING
    size: int = at_least(1)
    images: Optional[List[str]] = MISSING
    draw: str = MISSING
    balance: bool = MISSING
    add: Optional[str] = MISSING


@dataclass
class TrainSchema:
    seed: int = MISSING
    ckpt_path: Optional[str] = MISSING
    init_from: Optional[str] = MISSING
    checkpoint_every: int = at_least(0)
    sample_every: int = at_least(0)
    noise_multiples: List[float] = MISSING


@dataclass
class StylizeSchema:
    overwrite: bool = MISSING
    noise_factor: Optional[float] = at_least(0)
    seed: Optional[int] = MISSING
    max_size: Optional[int] = at_least(1)
    tile_size: Optional[int] = at_least(1)
    num: int = at_least(1)
    batch_size: int = at_least(1)
    threads: Optional[int] = at_least(1)
    preserve_color: bool = MISSING
    export_noise_inputs: bool = MISSING
    progress: bool = MISSING


@dataclass
class LossSchema:
    content_layers: List[str] = MISSING
    content_weights: List[float] = at_least(0)
    style_layers: List[str] = MISSING
    style_weights: List[float] = at_least(0)
    style_scale: float = at_least(0)
    tv_weight: float = at_least(0)
    diversity_weight: float = at_least(0)
    patch_weight: float = at_least(0)


@dataclass
class GatysSchema:
    optimizer: str = MISSING
    lr: Optional[float] = above(0)
    init: Optional[str] = MISSING
    iterations: int = at_least(1)
    max_size: int = at_least(1)
    save_every: int = at_least(0)
    coarse_to_fine: bool = MISSING
    seed: int = MISSING


TRAIN_SCHEMAS = {
    "": TrainSchema,
    "trainer": TrainerSchema,
    "data": DataSchema,
    "optim.optimizer": OptimizerSchema,
    "optim.scheduler": SchedulerSchema,
    "model": ModelSchema,
    "texture": TextureSchema,
    "loss": LossSchema,
}
STYLIZE_SCHEMAS = {"": StylizeSchema, "texture": TextureSchema, "gatys": GatysSchema, "loss": LossSchema}

EXPECTED = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def describe(annotation: Any) -> str:
    """'an integer', 'a number or null', 'a list of numbers such as [1, 2]' for a schema field's type."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (list, List):
        return f"a list of {EXPECTED[args[0]].removeprefix('an ').removeprefix('a ')}s such as [1, 2]"
    if type(None) in args:
        return f"{describe(next(a for a in args if a is not type(None)))} or null"
    return EXPECTED.get(annotation, str(annotation))


def validate(cfg: DictConfig, schemas: dict[str, type]) -> None:
    """Check the typed keys of `cfg` (node path -> schema dataclass): a wrong type, or a number outside its field's
    bound (:func:`at_least`, :func:`above`), is one TexnetError naming the key."""
    for node_path, schema in schemas.items():
        node = OmegaConf.select(cfg, node_path) if node_path else cfg
        if not isinstance(node, DictConfig):
            continue
        hints = typing.get_type_hints(schema)
        for f in fields(schema):
            if f.name not in node:
                continue
            key, value = f"{node_path}.{f.name}" if node_path else f.name, node[f.name]
            value = OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
            try:
                OmegaConf.merge(OmegaConf.structured(schema), {f.name: value})
            except OmegaConfBaseException:
                shown = (
                    value if isinstance(value, str) else json.dumps(value)
                )  # null, true, [1, 2] as on the command line
                raise TexnetError(f"{key}={shown} has the wrong type: pass {describe(hints[f.name])}") from None
            check_range(f, value, key)


def check_range(schema_field: Any, value: Any, key: str) -> None:
    """A number (or a list's number) outside its field's ``at_least`` / ``above`` bound is one TexnetError naming
    the key."""
    least, over = schema_field.metadata.get("at_least"), schema_field.metadata.get("above")
    numbers = value if isinstance(value, list) else [value]
    what = f"{key}={json.dumps(value)}: each" if isinstance(value, list) else f"{key}={value}"
    for number in numbers:
        if number is None or isinstance(number, bool) or not isinstance(number, (int, float)):
            continue
        if least is not None and number < least:
            raise TexnetError(f"{what} must be at least {least}")
        if over is not None and number <= over:
            raise TexnetError(f"{what} must be more than {over}")
