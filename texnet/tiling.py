"""Stylise photos of any size in bounded memory: tiles normalised with the whole image's exact statistics.

Instance norm normalises every feature map by its mean and variance over the whole image, so tiles stylised
on their own would each get their own statistics and change colour and contrast from tile to tile. Here the
statistics of every norm layer are first gathered over the whole image, tile by tile, in a few passes
(:mod:`texnet.norm_stats`); a last pass stylises each tile with them. Tiled and untiled results then agree
to float precision (noise aside: each tile draws its own, the same in every pass; docs/results.md has the
figures). The passes cost several forward passes' worth of time; memory stays that of one tile.

Tiles are cut on the network's grid (multiples of ``generator.multiple``, so pooling and upsampling line up
with the whole image's) and stylised with ``margin`` pixels of context on each side, which are thrown away
(reflect padding at a tile's edge would show); neighbours are cross-faded with linear ramps over ``2 * blend``
pixels, which also hides that each tile draws its own noise. The image stays 8-bit; float maps exist for one
tile and one band of tiles at a time. Tiles run through the eager PyTorch generator (the norm layers are swapped).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch import nn

from texnet.errors import TexnetError
from texnet.image import open_image, open_rgb, to_rgb
from texnet.noise_generator import NoiseGenerator
from texnet.norm_stats import Moments, Stats, normalise_with, override, schedule

TILE_SIZE = 768  # default core side: with the pyramid's context a tile is 1152 px, ~1.6 GB in eager PyTorch


class _PassDone(Exception):
    """Raised by the last norm layer a statistics pass measures: the rest of the forward pass is not needed."""


class Tile(NamedTuple):
    index: int  # row-major, seeds the tile's noise
    y0: int  # core rows [y0, y1) and columns [x0, x1)
    y1: int
    x0: int
    x1: int
    ty0: int  # context rows [ty0, ty1) and columns [tx0, tx1): the core and its margin
    ty1: int
    tx0: int
    tx1: int


def default_margin(generator: NoiseGenerator) -> int:
    """Context a tile needs for its core to match the whole image's output exactly (given the same statistics).

    The pyramid reaches ~2 px per conv block at each scale, i.e. 4 x 2**(K-1) px from the coarsest one down
    plus its pooling window: 5 x 2**(K-1) (160 px for 6 scales; 128 px left 11/255 differences, 160 none).
    The residual net: a 9x9 conv, two strided and two upsampled 3x3 convs and two 3x3 convs per residual block
    at 1/4 resolution: 4 + 2 + 4 + 8 * blocks + 4 + 2 + 1 px, rounded up.
    """
    if generator.arch == "pyramid":
        return 5 * generator.multiple
    return 17 + 8 * sum(1 for m in generator.modules() if type(m).__name__ == "ResidualBlock")


def grid(length: int, core: int) -> list[tuple[int, int]]:
    """[start, end) of the tile cores along one side."""
    return [(start, min(start + core, length)) for start in range(0, length, core)]


def ramp(length: int, start: int, end: int, lo: int, hi: int, blend: int) -> torch.Tensor:
    """Weights over [lo, hi) of a core [start, end): 1 inside, linear cross-fades of 2*blend px centred on inner
    core edges. Two neighbours' ramps sum to 1, so the blend is a weighted average."""
    pos = torch.arange(lo, hi, dtype=torch.float32) + 0.5
    weight = torch.ones(hi - lo)
    if blend and start > 0:
        weight = weight.minimum(((pos - (start - blend)) / (2 * blend)).clamp(0, 1))
    if blend and end < length:
        weight = weight.minimum((((end + blend) - pos) / (2 * blend)).clamp(0, 1))
    return weight


class TiledStylizer:
    """Stylises one image tile by tile with its exact whole-image statistics (see module doc).

    Args:
        generator: an eval-mode generator (texnet.generator).
        tile_size: core side in pixels (rounded up to the generator's multiple); memory grows with
            (tile_size + 2 * margin) squared.
        margin: context on each side of a tile beyond the cross-fade, thrown away; default: the network's reach
            (:func:`default_margin`).
        blend: half-width of the cross-fade between neighbouring tiles (at most half a tile).
    """

    def __init__(
        self, generator: NoiseGenerator, tile_size: int = TILE_SIZE, margin: int | None = None, blend: int = 32
    ) -> None:
        m = generator.multiple
        self.generator = generator
        self.core = max(m, math.ceil(tile_size / m) * m)
        self.blend = min(blend, self.core // 2)
        # the cross-fade reaches `blend` px past the core, and those pixels need the network's full reach too
        self.margin = math.ceil(((default_margin(generator) if margin is None else margin) + self.blend) / m) * m
        self.passes = schedule(generator)

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def tiles(self, height: int, width: int) -> Iterator[Tile]:
        """The tiles of a height x width image, row by row."""
        columns = grid(width, self.core)
        for row, (y0, y1) in enumerate(grid(height, self.core)):
            for column, (x0, x1) in enumerate(columns):
                yield Tile(
                    row * len(columns) + column,
                    y0,
                    y1,
                    x0,
                    x1,
                    max(0, y0 - self.margin),
                    min(height, y1 + self.margin),
                    max(0, x0 - self.margin),
                    min(width, x1 + self.margin),
                )

    def _forward(
        self, source: torch.Tensor, tile: Tile, noise_factor: float, seed: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(content, output) of one tile: source (H, W, 3) uint8 or float rows ty0:ty1, columns tx0:tx1 as (1, 3, h, w)
        in [0, 1], through the generator with the tile's own noise (seeded by `seed` and its index)."""
        content = source[tile.ty0 : tile.ty1, tile.tx0 : tile.tx1].permute(2, 0, 1)[None].to(self.device)
        content = (content.float().div_(255) if content.dtype == torch.uint8 else content.float()).contiguous()
        rng = torch.Generator(device=self.device).manual_seed((seed * 1_000_003 + tile.index) % 2**63)
        return content, self.generator(content, noise_factor=noise_factor, rng=rng)

    @torch.inference_mode()
    def statistics(self, source: torch.Tensor, noise_factor: float, seed: int) -> Stats:
        """Every norm layer's per-channel mean and variance over the whole image `source` (H, W, 3), pass by pass."""
        height, width = source.shape[:2]
        stats: Stats = {}
        for group in self.passes:
            moments = {layer: Moments() for layer in group}
            for tile in self.tiles(height, width):
                with override(self.generator, self._measuring(tile, height, width, stats, moments, group[-1])):
                    try:
                        self._forward(source, tile, noise_factor, seed)
                    except _PassDone:
                        pass
            stats.update({layer: m.stats(self.device) for layer, m in moments.items()})
        return stats

    def _measuring(
        self, tile: Tile, height: int, width: int, stats: Stats, moments: dict[nn.Module, Moments], last: nn.Module
    ) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
        """The norm layers' forward in a statistics pass over `tile`: measured layers normalise with `stats`, the
        layers in `moments` add the tile's core of their input, the `last` of them ends the pass.

        The core is taken at the layer's own resolution; at the bottom and right edges it includes the padding
        that the whole image gets too (to a multiple of ``generator.multiple``).
        """
        full_h, full_w = self.generator.padded_size(tile.ty1 - tile.ty0, tile.tx1 - tile.tx0)
        y0, x0 = tile.y0 - tile.ty0, tile.x0 - tile.tx0
        y1 = tile.y1 - tile.ty0 if tile.y1 < height else full_h
        x1 = tile.x1 - tile.tx0 if tile.x1 < width else full_w

        def normalise(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
            if layer in stats:
                return normalise_with(stats, layer, x)
            if layer in moments:
                s = full_h // x.shape[-2]  # the layer's downscale factor
                moments[layer].add(x[..., y0 // s : y1 // s, x0 // s : x1 // s])
                if layer is last:
                    raise _PassDone
            return x  # not measured yet: nothing after it is measured in this pass

        return normalise

    @torch.inference_mode()
    def run(
        self, source: torch.Tensor, stats: Stats, noise_factor: float, seed: int, preserve_color: bool = False
    ) -> torch.Tensor:
        """Stylise `source` (H, W, 3), uint8 or float in [0, 1], with `stats`; returns the same dtype and shape.

        Tile rows are finished one band at a time: only the rows the next band still blends into stay in float.
        """
        from texnet.inference import transfer_luminance

        height, width = source.shape[:2]
        out = torch.empty_like(source)
        acc, acc_lo, band = torch.zeros(0, width, 3), 0, None
        with override(self.generator, lambda layer, x: normalise_with(stats, layer, x)):
            for tile in self.tiles(height, width):
                lo, hi = max(0, tile.y0 - self.blend), min(height, tile.y1 + self.blend)
                if band != tile.y0:  # a new row of tiles
                    band, wy = tile.y0, ramp(height, tile.y0, tile.y1, lo, hi, self.blend)
                    acc = torch.cat([acc, torch.zeros(hi - acc_lo - len(acc), width, 3)])
                content, styled = self._forward(source, tile, noise_factor, seed)
                styled = styled.float()
                if preserve_color:
                    styled = transfer_luminance(styled, content)
                xlo, xhi = max(0, tile.x0 - self.blend), min(width, tile.x1 + self.blend)
                piece = (
                    styled[0, :, lo - tile.ty0 : hi - tile.ty0, xlo - tile.tx0 : xhi - tile.tx0].permute(1, 2, 0).cpu()
                )
                weight = wy[:, None, None] * ramp(width, tile.x0, tile.x1, xlo, xhi, self.blend)[None, :, None]
                acc[lo - acc_lo : hi - acc_lo, xlo:xhi] += piece * weight
                if tile.x1 == width:  # the row is complete: write out what the next row does not blend into
                    done = tile.y1 - self.blend if tile.y1 < height else height
                    rows = acc[: done - acc_lo]
                    out[acc_lo:done] = (
                        rows.mul(255).round_().clamp_(0, 255).to(torch.uint8) if out.dtype == torch.uint8 else rows
                    )
                    acc, acc_lo = acc[done - acc_lo :], done
        return out

    def stylize(
        self, source: torch.Tensor, noise_factor: float, seed: int, preserve_color: bool = False
    ) -> torch.Tensor:
        """Statistics passes, then the tiles: `source` (H, W, 3) uint8 or float in [0, 1] -> the same dtype and shape."""
        return self.run(source, self.statistics(source, noise_factor, seed), noise_factor, seed, preserve_color)


def stylize_pil(
    tiler: TiledStylizer, image: Image.Image, noise_factor: float, seed: int, preserve_color: bool = False
) -> Image.Image:
    """Tiled stylisation of an RGB PIL image, in 8 bits end to end (a 100 MP photo: ~300 MB in, ~300 MB out)."""
    source = torch.from_numpy(np.array(image))  # (H, W, 3) uint8, one copy
    del image  # the caller's PIL image (~4 bytes per pixel) is freed here when nothing else holds it
    out = tiler.stylize(source, noise_factor, seed, preserve_color)
    del source
    return Image.fromarray(out.numpy(), "RGB")


def stylize_tensor(
    tiler: TiledStylizer, content: torch.Tensor, noise_factor: float, seed: int, preserve_color: bool = False
) -> torch.Tensor:
    """Tiled stylisation of a (B, 3, H, W) float batch, one image at a time (statistics are per image)."""
    return torch.stack(
        [
            tiler.stylize(image.permute(1, 2, 0), noise_factor, seed, preserve_color).permute(2, 0, 1)
            for image in content
        ]
    )


def _target_pil(image: Image.Image | str, max_size: int | None, size: int | None) -> Image.Image:
    """The RGB PIL image that Stylizer.stylize would make a tensor of (same EXIF, mode and resizing rules)."""
    from PIL import ImageOps

    from texnet.inference import _target_size

    pil = open_rgb(image, "image") if not isinstance(image, Image.Image) else to_rgb(ImageOps.exif_transpose(image))
    target = _target_size(*pil.size, max_size, size)
    return pil.resize(target, Image.Resampling.LANCZOS) if target != pil.size else pil


def needs_tiles(stylizer, image, max_size: int | None, size: int | None) -> bool:
    """Whether stylising `image` whole would not fit in memory (the Stylizer's check would refuse it); reads only a
    file's header. Tensors are in memory already and go whole (or tiled with tile_size=)."""
    from texnet.inference import _target_size

    if isinstance(image, torch.Tensor):
        return False
    if isinstance(image, Image.Image):
        width, height = image.size
    else:
        with open_image(image, "image") as header:
            width, height = header.size
    width, height = _target_size(width, height, max_size, size)
    try:
        stylizer._check_memory(1, height, width, "image")
    except TexnetError:
        return True
    return False


def stylize(
    stylizer,
    image,
    noise_factor: float | None,
    seed: int | None,
    max_size: int | None,
    size: int | None,
    preserve_color: bool,
    tile_size: int | None,
) -> Image.Image | torch.Tensor:
    """Stylizer.stylize by tiles, with the same arguments and return types (see texnet.inference)."""
    from texnet.inference import prepare_image

    tiler = TiledStylizer(stylizer.generator, tile_size or TILE_SIZE)
    stylizer._check_memory(
        1,
        *stylizer.generator.padded_size(tiler.core + 2 * tiler.margin, tiler.core + 2 * tiler.margin),
        f"a tile of {tiler.core} px (+{tiler.margin} px context per side)",
    )
    factor = stylizer.noise_factor if noise_factor is None else float(noise_factor)
    seed = int(torch.randint(2**31, ())) if seed is None else int(seed)  # tiles seed their noise from it
    with torch.autocast(stylizer.device.type, enabled=False):
        if isinstance(image, torch.Tensor):
            out = stylize_tensor(tiler, prepare_image(image, max_size, size), factor, seed, preserve_color)
            return out if image.dim() == 4 else out[0]
        return stylize_pil(tiler, _target_pil(image, max_size, size), factor, seed, preserve_color)
