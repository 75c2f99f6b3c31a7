"""The texture mix of a network of several textures, checked: shared by texnet.conditional_norm (torch) and
texnet.graph_stylize (onnxruntime, no torch), so both paths take and refuse the same mixes with the same message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from texnet.errors import TexnetError


def mix_vector(names: Sequence[str], mix: str | Mapping[str, float] | None, option: str = "mix") -> list[float]:
    """Mix weights, one per texture of `names`, for `mix`: a texture's name (that texture alone), {name: weight} (a
    convex mix: weights >= 0 summing to 1, missing names 0) or None (the first texture). Anything else is a
    one-line TexnetError naming `option` and the valid names."""
    valid = ", ".join(names)
    if mix is None:
        mix = {names[0]: 1.0}
    elif isinstance(mix, str):
        mix = {mix: 1.0}
    if not isinstance(mix, Mapping) or not mix:
        raise TexnetError(
            f"{option}={mix!r} is not a texture name nor a mix such as {{{names[0]}: 1.0}}: textures are {valid}"
        )
    weights = [0.0] * len(names)
    for name, weight in mix.items():
        if str(name) not in names:
            raise TexnetError(f"{option}: '{name}' is not a texture of this network: use {valid}")
        try:
            weight = float(weight)
        except (TypeError, ValueError):
            raise TexnetError(f"{option}: the weight of '{name}' is {weight!r}, not a number") from None
        if not weight >= 0:  # also NaN
            raise TexnetError(
                f"{option}: the weight of '{name}' is {weight:g}; mix weights must be >= 0 (textures: {valid})"
            )
        weights[list(names).index(str(name))] = weight
    total = sum(weights)
    if abs(total - 1) > 1e-3:
        raise TexnetError(f"{option}: the weights sum to {total:g}; they must sum to 1 (textures: {valid})")
    return [w / total for w in weights]
