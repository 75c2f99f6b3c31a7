"""The size a generator works at (its grid) and the noise maps it takes there, in plain Python (no torch):
texnet.noise_generator uses it in its forward pass (and so in the exported graphs), texnet.graph_stylize to size a
texture graph's noise, stylize.py and texnet.inference to read the size of a texture to generate."""

from __future__ import annotations

import numbers

from texnet.errors import TexnetError


def whole(n) -> bool:
    """`n` is a count of at least 1 (numpy integers too; not a bool, a float or a string)."""
    return isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1


def texture_shape(size, form: str, example: str) -> tuple[int, int]:
    """(H, W) of a texture to generate: `size` is N (square) or two sides in whole pixels; anything else is one
    TexnetError line with `form` and `example` as the caller's users write them (the CLI's ``[H, W]``)."""
    sides = (
        [size, size] if isinstance(size, numbers.Integral) else list(size) if isinstance(size, (list, tuple)) else []
    )
    if len(sides) != 2 or not all(whole(side) for side in sides):
        raise TexnetError(f"size={size!r} is not a texture size: give N or {form} in whole pixels, e.g. {example}")
    return int(sides[0]), int(sides[1])


def at_least(a, b):
    """max(a, b) for ints and for the sizes a trace records (Python's max would freeze them at the traced size)."""
    return (a + b + abs(a - b)) // 2


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """Sides padded to a multiple of `multiple` and to at least twice it (reflect padding at the coarsest scale
    needs 2 pixels)."""
    m = multiple
    return height + at_least(-height % m, 2 * m - height), width + at_least(-width % m, 2 * m - width)


def noise_shapes(
    batch_size: int, channels: int, ratios: list[int], full_h: int, full_w: int
) -> list[tuple[int, int, int, int]]:
    """Shapes of the noise maps at padded size (full_h, full_w), one per ratio (coarsest first, as forward uses them)."""
    return [(batch_size, channels, full_h // r, full_w // r) for r in ratios]
