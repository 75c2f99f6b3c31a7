"""A training schedule inside one run: crop size, batch size, crop augmentation and style scale that change at given
steps.

The Gatys-level recipe trains on small crops first (cheap steps, the texture's statistics) and on larger
crops later (the statistics at the scale photos are stylised at). A schedule is a list of stages, each
``{step: N, image_size: ..., batch_size: ..., augment: [...], style_scale: ...}`` (``augment``: the stage's
``data.augment`` list, e.g. a flip in the early stage only); a stage keeps the values it does not
name from the stage before it (the first from the run's own ``data`` and ``loss`` settings). Which stage
applies is a function of the global step alone, so a resumed run (``ckpt_path=``) continues where it was.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from texnet.errors import TexnetError
from texnet.image import MIN_SIDE

STAGE_KEYS = ("step", "image_size", "batch_size", "augment", "style_scale")


def check_schedule(schedule: Sequence[Mapping] | None) -> list[dict]:
    """The stages as plain dicts, sorted by step; a one-line TexnetError for an unknown key or a bad value."""
    stages = [dict(stage) for stage in schedule or []]
    for i, stage in enumerate(stages):
        unknown = sorted(set(stage) - set(STAGE_KEYS))
        if unknown or "step" not in stage:
            raise TexnetError(
                f"data.schedule[{i}] = {stage}: each stage needs 'step' and may set "
                f"{', '.join(STAGE_KEYS[1:])} (unknown: {', '.join(unknown) or 'none'})"
            )
        for key, least in (("step", 0), ("image_size", MIN_SIDE), ("batch_size", 1)):
            if key in stage and (not isinstance(stage[key], int) or stage[key] < least):
                raise TexnetError(f"data.schedule[{i}].{key}={stage[key]!r} must be a whole number >= {least}")
        if "style_scale" in stage and not isinstance(stage["style_scale"], (int, float)):
            raise TexnetError(f"data.schedule[{i}].style_scale={stage['style_scale']!r} must be a number")
        if "augment" in stage and (
            isinstance(stage["augment"], (str, Mapping)) or not isinstance(stage["augment"], Sequence)
        ):
            raise TexnetError(
                f"data.schedule[{i}].augment={stage['augment']!r} must be a list of transforms, like data.augment "
                "([] for none)"
            )
    steps = [stage["step"] for stage in stages]
    if len(set(steps)) != len(steps):
        raise TexnetError(f"data.schedule has two stages at the same step ({steps}): give each stage its own step")
    return sorted(stages, key=lambda stage: stage["step"])


def stage_index(schedule: Sequence[Mapping], step: int) -> int:
    """Index of the stage in force at `step` (-1 before the first stage, or with no schedule)."""
    index = -1
    for i, stage in enumerate(schedule):
        if stage["step"] <= step:
            index = i
    return index


def settings_at(schedule: Sequence[Mapping], step: int, defaults: Mapping) -> dict:
    """`defaults` (e.g. image_size, batch_size, style_scale) overridden by every stage begun by `step`."""
    settings = dict(defaults)
    for stage in schedule[: stage_index(schedule, step) + 1]:
        settings.update({k: v for k, v in stage.items() if k != "step" and k in settings})
    return settings
