"""Stylise photos of any size in bounded memory: tiles normalised with the whole image's exact statistics.

Instance norm normalises every feature map by its mean and variance over the whole image, so tiles stylised
on their own would each get their own statistics and change colour and contrast from tile to tile. Here the
statistics of every norm layer are first gathered over the whole image, tile by tile, in a few passes
(:mod:`texnet.norm_stats`); a last pass stylises each tile with them. Tiled and untiled results then agree
to float precision (noise aside: each tile draws its own, the same in every pass, unless the noise comes from
texnet.noise_field's plane, which tiles read at their place; docs/results.md has the figures). The passes cost
several forward passes' worth of time; memory stays that of one tile.

The pyramid's coarse scales (pooled 8x or more: under 2 MP even for a 108 MP photo) run untiled once, so their
statistics need no passes; the tiles run the fine scales only, joined onto their crop of the coarse stack, and
need only the fine scales' context. The residual net has no such cheap part: all of it runs in tiles.

Tiles are cut on a grid (multiples of the coarse stack's scale, or of ``generator.multiple``, so pooling and
upsampling line up with the whole image's) over the photo padded as the network pads it, and stylised with
``margin`` pixels of context on each side, which are thrown away (reflect padding at a tile's edge would show);
neighbours are cross-faded with linear ramps over ``2 * blend`` pixels, which also hides that each tile draws
its own noise. The image stays 8-bit; float maps exist for one tile and one band of tiles at a time. Tiles run
through the eager PyTorch generator (the norm layers are swapped).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from texnet.errors import TexnetError
from texnet.image import open_rgb, output_size, source_size, to_rgb
from texnet.noise_generator import NoiseGenerator
from texnet.norm_stats import Moments, Stats, norm_layers, normalise_with, override, schedule

TILE_SIZE = 768  # default core side: with the pyramid's context a tile is 896 px (1152 px on the all-tiled path)
COARSE_RATIO = 8  # the pyramid's scales pooled this much or more run untiled: under 2 MP even for a 108 MP photo


class _PassDone(Exception):
    """Raised by the last norm layer a statistics pass measures: the rest of the forward pass is not needed."""


class Tile(NamedTuple):
    index: int  # row-major, seeds the tile's noise
    y0: int  # core rows [y0, y1) and columns [x0, x1) of the padded photo (the last core ends at its padded edge)
    y1: int
    x0: int
    x1: int
    ty0: int  # context rows [ty0, ty1) and columns [tx0, tx1): the core and its margin
    ty1: int
    tx0: int
    tx1: int


class Canvas(NamedTuple):
    """A photo as the tiles read it: padded to the network's size by index maps, as the untiled forward pads it."""

    source: torch.Tensor  # (H, W, 3) uint8 or float in [0, 1]
    rows: torch.Tensor  # the source row of each padded row
    cols: torch.Tensor  # the source column of each padded column
    coarse: torch.Tensor | None  # the pyramid's coarse stack over the padded photo (None: every scale is tiled)


def coarse_scales(generator: NoiseGenerator, ratio: int = COARSE_RATIO) -> int:
    """How many of a stylising pyramid's scales (pooled `ratio` times or more) run untiled; at least one scale stays
    tiled. 0 for the residual net, which has no cheap low-resolution part: all of it is tiled."""
    if generator.arch != "pyramid" or generator.mode != "stylize":
        return 0
    return min(sum(r >= ratio for r in generator.noise_ratios), generator.scales - 1)


def untiled_norms(generator: NoiseGenerator, coarse: int) -> set[nn.Module]:
    """The norm layers of the first `coarse` scales, including the one that normalises their stack in the next join:
    their statistics come from the untiled run."""
    if not coarse:
        return set()
    g = generator
    parts = [*g.branches[:coarse], *g.joins[: coarse - 1], *g.branch_norms[: coarse - 1], *g.coarse_norms[:coarse]]
    return set(norm_layers(nn.ModuleList(parts)))


def default_margin(generator: NoiseGenerator, coarse: int = 0) -> int:
    """Context a tile needs for its core to match the whole image's output exactly (given the same statistics).

    The pyramid reaches ~2 px per conv block at each scale, i.e. 4 x 2**(K-1) px from the coarsest one down
    plus its pooling window: 5 x 2**(K-1) (160 px for 6 scales; 128 px left 11/255 differences, 160 none).
    With the first `coarse` scales untiled the tile's coarsest scale r has a join too: 7 r (28 px for r = 4).
    The residual net: a 9x9 conv, two strided and two upsampled 3x3 convs and two 3x3 convs per residual block
    at 1/4 resolution: 4 + 2 + 4 + 8 * blocks + 4 + 2 + 1 px, rounded up.
    The encoder network: :func:`chain_reach` of its VGG, decoder and head.
    """
    if generator.arch == "pyramid":
        return (7 if coarse else 5) * generator.noise_ratios[coarse]
    if generator.arch == "encoder":
        return chain_reach([*generator.encoder.body, *generator.decoder, *generator.head])
    return 17 + 8 * sum(1 for m in generator.modules() if type(m).__name__ == "ResidualBlock")


def chain_reach(layers: list[nn.Module]) -> int:
    """How far (px) an output pixel of a chain of convolutions, poolings and x2 upsamplings sees: a k x k conv at
    1/s resolution reaches (k // 2) * s px, plus s - 1 px of the coarsest grid (a pooled cell's other pixels)."""
    scale, coarsest, reach = 1, 1, 0
    for layer in layers:
        if isinstance(layer, nn.Conv2d):
            reach += layer.kernel_size[0] // 2 * scale
        elif isinstance(layer, (nn.AvgPool2d, nn.MaxPool2d)):
            scale *= 2
            coarsest = max(coarsest, scale)
        elif isinstance(layer, nn.Upsample):
            scale //= 2
    return reach + coarsest - 1


def grid(length: int, padded: int, core: int) -> list[tuple[int, int]]:
    """[start, end) of the tile cores along a side of `length` px padded to `padded`: `core` px each, the last one to
    the padded edge, absorbing a remainder under a quarter core (a sliver would cost a whole tile's context)."""
    starts = list(range(0, length, core))
    if len(starts) > 1 and length - starts[-1] < core // 4:
        starts.pop()
    return list(zip(starts, [*starts[1:], padded]))


def padded_indices(generator: NoiseGenerator, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Source row and column of each row and column of the padded photo: reflected past the bottom and right edges,
    or repeated for a photo smaller than its padding (NoiseGenerator.prepare_input's rule)."""
    full_h, full_w = generator.padded_size(height, width)
    tiny = min(height, width) <= max(full_h - height, full_w - width)

    def index(length: int, padded: int) -> torch.Tensor:
        i = torch.arange(padded)
        return i.clamp(max=length - 1) if tiny else torch.where(i < length, i, 2 * (length - 1) - i)

    return index(height, full_h), index(width, full_w)


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
        tile_size: core side in pixels (rounded up to the tiles' step); memory grows with
            (tile_size + 2 * margin) squared.
        margin: context on each side of a tile beyond the cross-fade, thrown away; default: the network's reach
            (:func:`default_margin`).
        blend: half-width of the cross-fade between neighbouring tiles (at most half a tile).
        coarse_ratio: a pyramid's scales pooled this much or more run untiled (:func:`coarse_scales`).
        origin: the photo's place in a scene whose noise stays put, (y, x) in the photo's pixels
            (texnet.noise_field): every tile reads its noise there, so the tiled photo's noise is the untiled one's;
            None: each tile draws its own (seeded by the run's seed and its index).
    """

    def __init__(
        self,
        generator: NoiseGenerator,
        tile_size: int = TILE_SIZE,
        margin: int | None = None,
        blend: int = 32,
        coarse_ratio: int = COARSE_RATIO,
        origin: tuple[float, float] | None = None,
    ) -> None:
        self.generator, self.origin = generator, origin
        self.coarse = coarse_scales(generator, coarse_ratio)
        # tiles are cut on the grid of the coarsest tiled map: the untiled stack's (so crops of it line up) or the network's
        self.step = step = generator.noise_ratios[self.coarse - 1] if self.coarse else generator.multiple
        self.core = max(2 * step, math.ceil(tile_size / step) * step)
        self.blend = min(blend, self.core // 2)
        # the cross-fade reaches `blend` px past the core, and those pixels need the network's full reach too
        reach = default_margin(generator, self.coarse) if margin is None else margin
        self.margin = math.ceil((reach + self.blend) / step) * step
        # the largest tile side: the last core absorbs up to a quarter core and the padding
        self.max_tile = self.core + self.core // 4 + generator.multiple + 2 * self.margin
        untiled = untiled_norms(generator, self.coarse)
        self.passes = [g for g in ([m for m in group if m not in untiled] for group in schedule(generator)) if g]

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def tiles(self, height: int, width: int) -> Iterator[Tile]:
        """The tiles of a height x width image padded to the network's size, row by row."""
        full_h, full_w = self.generator.padded_size(height, width)
        columns = grid(width, full_w, self.core)
        for row, (y0, y1) in enumerate(grid(height, full_h, self.core)):
            for column, (x0, x1) in enumerate(columns):
                yield Tile(
                    row * len(columns) + column,
                    y0,
                    y1,
                    x0,
                    x1,
                    max(0, y0 - self.margin),
                    min(full_h, y1 + self.margin),
                    max(0, x0 - self.margin),
                    min(full_w, x1 + self.margin),
                )

    def _pixels(self, source: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        """(1, 3, h, w) float in [0, 1] on the device: the given rows and columns of `source` (H, W, 3)."""
        x = source.index_select(0, rows).index_select(1, cols).permute(2, 0, 1)[None].to(self.device)
        return (x.float().div_(255) if x.dtype == torch.uint8 else x.float()).contiguous()

    @torch.inference_mode()
    def canvas(self, source: torch.Tensor, noise_factor: float, seed: int) -> Canvas:
        """`source` (H, W, 3) as the tiles read it, with the coarse scales' stack when a pyramid has them."""
        rows, cols = padded_indices(self.generator, *source.shape[:2])
        coarse = self._coarse_stack(source, rows, cols, noise_factor, seed) if self.coarse else None
        return Canvas(source, rows, cols, coarse)

    def _coarse_stack(
        self, source: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, noise_factor: float, seed: int
    ) -> torch.Tensor:
        """The first `coarse` scales of the pyramid run untiled over the whole padded photo (their norm layers see the
        whole photo, so their statistics are exact as they are). The photo is pooled band by band from 8 bits, so no
        float copy of it exists; the noise of these scales is drawn once for the photo."""
        g, ratios, band = self.generator, self.generator.noise_ratios[: self.coarse], 8 * self.generator.multiple
        pieces: list[list[torch.Tensor]] = [[] for _ in ratios]
        for r in range(0, len(rows), band):  # each band pooled at each ratio: the windows and sums of the whole photo's
            x = self._pixels(source, rows[r : r + band], cols)
            for piece, ratio in zip(pieces, ratios):
                piece.append(F.avg_pool2d(x, ratio))
        pooled = [torch.cat(piece, dim=2) for piece in pieces]
        return g.run_scales(self._with_noise(pooled, ratios, noise_factor, seed, None))

    def _noise(
        self, shapes: list[tuple[int, ...]], ratios: list[int], noise_factor: float, seed: int, tile: Tile | None
    ) -> list[torch.Tensor]:
        """The noise maps of `shapes` at `ratios` for `tile` (None: the untiled coarse scales, the whole padded
        photo), the same in every pass: its own draw, or the plane's window at its place."""
        index, top, left = (-1, 0, 0) if tile is None else (tile.index, tile.ty0, tile.tx0)
        if self.origin is None:
            rng = torch.Generator(device=self.device).manual_seed((seed * 1_000_003 + index) % 2**63)
            return self.generator.noise_of_shapes(shapes, noise_factor, rng)
        place = (self.origin[0] + top, self.origin[1] + left)
        return self.generator.plane_noise(shapes, ratios, place, seed, noise_factor)

    def _with_noise(
        self, pooled: list[torch.Tensor], ratios: list[int], noise_factor: float, seed: int, tile: Tile | None
    ) -> list[torch.Tensor]:
        """The network's inputs at these scales: each pooled map of the photo next to its noise (:meth:`_noise`)."""
        shapes = [(1, self.generator.noise_channels, *x.shape[2:]) for x in pooled]
        noise = self._noise(shapes, ratios, noise_factor, seed, tile)
        return [torch.cat([x, n], dim=1) for x, n in zip(pooled, noise)]

    def _forward(self, canvas: Canvas, tile: Tile, noise_factor: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(content, output) of one tile: the padded photo's rows ty0:ty1, columns tx0:tx1 as (1, 3, h, w) in [0, 1],
        through the generator (or its tiled scales) with the tile's noise (:meth:`_noise`)."""
        content = self._pixels(canvas.source, canvas.rows[tile.ty0 : tile.ty1], canvas.cols[tile.tx0 : tile.tx1])
        g = self.generator
        if canvas.coarse is None:  # the whole network on the tile (it lies on the network's grid)
            shapes = g.image_noise_shapes(1, *content.shape[-2:])
            noise = self._noise(shapes, g.noise_ratios, noise_factor, seed, tile)
            return content, g(content, noise=noise)
        s = self.step
        coarse = canvas.coarse[..., tile.ty0 // s : tile.ty1 // s, tile.tx0 // s : tile.tx1 // s]
        return content, self._fine_scales(content, coarse, noise_factor, seed, tile)

    def _fine_scales(
        self, content: torch.Tensor, coarse: torch.Tensor, noise_factor: float, seed: int, tile: Tile
    ) -> torch.Tensor:
        """The pyramid's forward from scale `coarse` on, for a tile of `content` joined onto its crop of the
        coarse stack: the tile's pooled content and noise at the fine scales, their branches and joins, the output."""
        g = self.generator
        height, width = content.shape[-2:]
        ratios = g.noise_ratios[self.coarse :]
        pooled = [F.avg_pool2d(content, ratio) if ratio > 1 else content for ratio in ratios]
        inputs = self._with_noise(pooled, ratios, noise_factor, seed, tile)
        return g.to_image(g.to_rgb(g.run_scales(inputs, coarse, self.coarse)), inputs, height, width)

    @torch.inference_mode()
    def statistics(self, canvas: Canvas, noise_factor: float, seed: int) -> Stats:
        """Every norm layer's per-channel mean and variance over the whole padded photo, pass by pass (the coarse
        stack's norm from the stack itself; the untiled scales' own norms need none)."""
        height, width = canvas.source.shape[:2]
        stats: Stats = {}
        if canvas.coarse is not None:
            moments = Moments()
            moments.add(canvas.coarse)
            stats[self.generator.coarse_norms[self.coarse - 1]] = moments.stats(self.device)
        for group in self.passes:
            moments = {layer: Moments() for layer in group}
            for tile in self.tiles(height, width):
                with override(self.generator, self._measuring(tile, stats, moments, group[-1])):
                    try:
                        self._forward(canvas, tile, noise_factor, seed)
                    except _PassDone:
                        pass
            stats.update({layer: m.stats(self.device) for layer, m in moments.items()})
        return stats

    def _measuring(
        self, tile: Tile, stats: Stats, moments: dict[nn.Module, Moments], last: nn.Module
    ) -> Callable[[nn.Module, torch.Tensor], torch.Tensor]:
        """The norm layers' forward in a statistics pass over `tile`: measured layers normalise with `stats`, the
        layers in `moments` add the tile's core of their input (at the layer's own resolution), the `last` of them
        ends the pass. The cores cover the padded photo, as the untiled forward's statistics do."""
        y0, y1, x0, x1 = tile.y0 - tile.ty0, tile.y1 - tile.ty0, tile.x0 - tile.tx0, tile.x1 - tile.tx0

        def normalise(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
            if layer in stats:
                return normalise_with(stats, layer, x)
            if layer in moments:
                s = (tile.ty1 - tile.ty0) // x.shape[-2]  # the layer's downscale factor
                moments[layer].add(x[..., y0 // s : y1 // s, x0 // s : x1 // s])
                if layer is last:
                    raise _PassDone
            return x  # not measured yet: nothing after it is measured in this pass

        return normalise

    @torch.inference_mode()
    def run(
        self, canvas: Canvas, stats: Stats, noise_factor: float, seed: int, preserve_color: bool = False
    ) -> torch.Tensor:
        """Stylise the canvas's photo with `stats`; returns its dtype and shape (the padding is not written out).

        Tile rows are finished one band at a time: only the rows the next band still blends into stay in float.
        """
        from texnet.inference import transfer_luminance

        source = canvas.source
        height, width = source.shape[:2]
        out = torch.empty_like(source)
        acc, acc_lo, band = torch.zeros(0, width, 3), 0, None
        with override(self.generator, lambda layer, x: normalise_with(stats, layer, x)):
            for tile in self.tiles(height, width):
                lo, hi = max(0, tile.y0 - self.blend), min(height, tile.y1 + self.blend)
                if band != tile.y0:  # a new row of tiles
                    band, wy = tile.y0, ramp(height, tile.y0, tile.y1, lo, hi, self.blend)
                    acc = torch.cat([acc, torch.zeros(hi - acc_lo - len(acc), width, 3)])
                content, styled = self._forward(canvas, tile, noise_factor, seed)
                styled = styled.float()
                if preserve_color:
                    styled = transfer_luminance(styled, content)
                xlo, xhi = max(0, tile.x0 - self.blend), min(width, tile.x1 + self.blend)
                piece = (
                    styled[0, :, lo - tile.ty0 : hi - tile.ty0, xlo - tile.tx0 : xhi - tile.tx0].permute(1, 2, 0).cpu()
                )
                weight = wy[:, None, None] * ramp(width, tile.x0, tile.x1, xlo, xhi, self.blend)[None, :, None]
                acc[lo - acc_lo : hi - acc_lo, xlo:xhi] += piece * weight
                if tile.x1 >= width:  # the row is complete: write out what the next row does not blend into
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
        """The coarse scales (pyramid), the statistics passes, then the tiles: `source` (H, W, 3) uint8 or float in
        [0, 1] -> the same dtype and shape."""
        canvas = self.canvas(source, noise_factor, seed)
        return self.run(canvas, self.statistics(canvas, noise_factor, seed), noise_factor, seed, preserve_color)


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

    pil = open_rgb(image, "image") if not isinstance(image, Image.Image) else to_rgb(ImageOps.exif_transpose(image))
    target = output_size(*pil.size, max_size, size)
    return pil.resize(target, Image.Resampling.LANCZOS) if target != pil.size else pil


def needs_tiles(stylizer, image, max_size: int | None, size: int | None) -> bool:
    """Whether stylising `image` whole would not fit in memory (the Stylizer's check would refuse it); reads only a
    file's header. Tensors are in memory already and go whole (or tiled with tile_size=)."""
    if isinstance(image, torch.Tensor):
        return False
    width, height = output_size(*source_size(image), max_size, size)
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
    origin: tuple[float, float] | None = None,
) -> Image.Image | torch.Tensor:
    """Stylizer.stylize by tiles, with the same arguments and return types (see texnet.inference); `origin`: the
    resized photo's place in the noise plane (TiledStylizer)."""
    from texnet.inference import prepare_image

    tiler = TiledStylizer(stylizer.generator, tile_size or TILE_SIZE, origin=origin)
    stylizer._check_memory(
        1, tiler.max_tile, tiler.max_tile, f"a tile of {tiler.core} px (+{tiler.margin} px context per side)"
    )
    factor = stylizer.noise_factor if noise_factor is None else float(noise_factor)
    seed = int(torch.randint(2**31, ())) if seed is None else int(seed)  # tiles seed their noise from it
    with torch.autocast(stylizer.device.type, enabled=False):
        if isinstance(image, torch.Tensor):
            out = stylize_tensor(tiler, prepare_image(image, max_size, size), factor, seed, preserve_color)
            return out if image.dim() == 4 else out[0]
        return stylize_pil(tiler, _target_pil(image, max_size, size), factor, seed, preserve_color)
