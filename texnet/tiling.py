"""Stylise photos of any size in bounded memory: tiles that share whole-image normalisation statistics.

Instance norm normalises every feature map by its mean and variance over the whole image, so tiles stylised
on their own would each get their own statistics and change colour and contrast from tile to tile. Here the
statistics are measured once for the whole image: a first pass at reduced resolution (``stats_size``, longer
side) records each norm layer's per-channel mean and variance with forward hooks, and every tile is then
normalised with these fixed statistics. Images up to ``stats_size`` thus match the untiled result exactly;
larger ones get the statistics of the image shrunk by a whole factor, an approximation (exact statistics at full
resolution would need one pass over all tiles per layer depth: each layer's statistics depend on those before).

Tiles are cut on the network's grid (multiples of ``generator.multiple``, so pooling and upsampling line up
with the whole image's) and stylised with ``margin`` pixels of context on each side, which are thrown away
(reflect padding at a tile's edge would show); neighbours are cross-faded with linear ramps over ``2 * blend``
pixels, which also hides that each tile draws its own noise. The image stays 8-bit; float maps exist for one
tile and one band of tiles at a time. Tiles run through the eager PyTorch generator (hooks need it).
"""
from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from texnet.conditional_norm import ConditionalInstanceNorm
from texnet.errors import TexnetError
from texnet.generator import NoiseGenerator
from texnet.image import open_image, open_rgb, to_rgb

TILE_SIZE = 768  # default core side: with the pyramid's context a tile is 1152 px, ~1.6 GB in eager PyTorch
STATS_SIZE = 1536  # longer side of the statistics pass (~1.8 MP at 4:3, ~2 GB eager): larger images get approximate statistics

# batch norm without running statistics normalises like instance norm at batch 1; a conditional norm's weight and bias
# are those of the texture (or mix) selected around the tiling call (texnet.conditional_norm.selected)
NORMS = (nn.InstanceNorm2d, nn.BatchNorm2d, ConditionalInstanceNorm)
Stats = dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]  # norm layer -> (mean, variance) per channel


def norm_layers(generator: nn.Module) -> list[nn.Module]:
    return [m for m in generator.modules() if isinstance(m, NORMS)]


@torch.inference_mode()
def measure_statistics(generator: NoiseGenerator, content: torch.Tensor, noise_factor: float,
                       rng: torch.Generator | None) -> Stats:
    """Each norm layer's per-channel input mean and variance over a whole (1, 3, H, W) image."""
    stats: Stats = {}

    def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        var, mean = torch.var_mean(args[0].float(), dim=(0, 2, 3), unbiased=False)
        stats[module] = (mean, var)

    handles = [m.register_forward_pre_hook(record) for m in norm_layers(generator)]
    try:
        generator(content, noise_factor=noise_factor, rng=rng)
    finally:
        for handle in handles:
            handle.remove()
    return stats


@contextmanager
def fixed_statistics(generator: NoiseGenerator, stats: Stats) -> Iterator[None]:
    """Norm layers normalise with `stats` instead of their input's own statistics (forward swapped, then restored)."""
    layers = norm_layers(generator)
    for layer in layers:
        mean, var = stats[layer]
        layer.forward = lambda x, layer=layer, mean=mean, var=var: F.batch_norm(
            x, mean.to(x.dtype), var.to(x.dtype), layer.weight, layer.bias, False, 0.0, layer.eps)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


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
    """Stylises one image tile by tile with whole-image statistics (see module doc).

    Args:
        generator: an eval-mode generator (texnet.generator).
        tile_size: core side in pixels (rounded up to the generator's multiple); memory grows with
            (tile_size + 2 * margin) squared.
        margin: context on each side of a tile beyond the cross-fade, thrown away; default: the network's reach
            (:func:`default_margin`).
        blend: half-width of the cross-fade between neighbouring tiles (at most half a tile).
        stats_size: longer side of the statistics pass (images up to this size get exact statistics).
    """

    def __init__(self, generator: NoiseGenerator, tile_size: int = TILE_SIZE, margin: int | None = None, blend: int = 32,
                 stats_size: int = STATS_SIZE) -> None:
        m = generator.multiple
        self.generator = generator
        self.core = max(m, math.ceil(tile_size / m) * m)
        self.blend = min(blend, self.core // 2)
        # the cross-fade reaches `blend` px past the core, and those pixels need the network's full reach too
        self.margin = math.ceil(((default_margin(generator) if margin is None else margin) + self.blend) / m) * m
        self.stats_size = stats_size

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def _tile_input(self, source: torch.Tensor, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
        """(1, 3, h, w) float in [0, 1] of source (H, W, 3) uint8 or float rows y0:y1, columns x0:x1."""
        tile = source[y0:y1, x0:x1].permute(2, 0, 1)[None].to(self.device)
        return (tile.float().div_(255) if tile.dtype == torch.uint8 else tile.float()).contiguous()

    def _context(self, start: int, end: int, length: int) -> tuple[int, int]:
        return max(0, start - self.margin), min(length, end + self.margin)

    def statistics(self, small: torch.Tensor, noise_factor: float, rng: torch.Generator | None) -> Stats:
        """Whole-image statistics, measured on `small`: the image at most stats_size px on its longer side."""
        return measure_statistics(self.generator, small.to(self.device), noise_factor, rng)

    @torch.inference_mode()
    def run(self, source: torch.Tensor, stats: Stats, noise_factor: float, rng: torch.Generator | None,
            preserve_color: bool = False) -> torch.Tensor:
        """Stylise `source` (H, W, 3), uint8 or float in [0, 1]; returns the same dtype and shape.

        Tile rows are finished one band at a time: only the rows the next band still blends into stay in float.
        """
        from texnet.inference import transfer_luminance

        height, width = source.shape[:2]
        out = torch.empty_like(source)
        acc, acc_lo = torch.zeros(0, width, 3), 0
        with fixed_statistics(self.generator, stats):
            for y0, y1 in grid(height, self.core):
                ty0, ty1 = self._context(y0, y1, height)
                lo, hi = max(0, y0 - self.blend), min(height, y1 + self.blend)
                acc = torch.cat([acc, torch.zeros(hi - acc_lo - len(acc), width, 3)])
                wy = ramp(height, y0, y1, lo, hi, self.blend)
                for x0, x1 in grid(width, self.core):
                    tx0, tx1 = self._context(x0, x1, width)
                    content = self._tile_input(source, ty0, ty1, tx0, tx1)
                    styled = self.generator(content, noise_factor=noise_factor, rng=rng).float()
                    if preserve_color:
                        styled = transfer_luminance(styled, content.float())
                    xlo, xhi = max(0, x0 - self.blend), min(width, x1 + self.blend)
                    piece = styled[0, :, lo - ty0:hi - ty0, xlo - tx0:xhi - tx0].permute(1, 2, 0).cpu()
                    weight = wy[:, None, None] * ramp(width, x0, x1, xlo, xhi, self.blend)[None, :, None]
                    acc[lo - acc_lo:hi - acc_lo, xlo:xhi] += piece * weight
                done = y1 - self.blend if y1 < height else height
                rows = acc[:done - acc_lo]
                out[acc_lo:done] = rows.mul(255).round_().clamp_(0, 255).to(torch.uint8) if out.dtype == torch.uint8 else rows
                acc, acc_lo = acc[done - acc_lo:], done
        return out


def reduced(image: Image.Image, longer_side: int) -> torch.Tensor:
    """`image` shrunk by a whole factor to at most `longer_side` (box filter, like the network's own pooling), as (1, 3, h, w)."""
    factor = max(1, math.ceil(max(image.size) / longer_side))
    small = image.reduce(factor) if factor > 1 else image
    return torch.from_numpy(np.asarray(small, dtype=np.float32) / 255).permute(2, 0, 1)[None].contiguous()


def stylize_pil(tiler: TiledStylizer, image: Image.Image, noise_factor: float, rng: torch.Generator | None,
                preserve_color: bool = False) -> Image.Image:
    """Tiled stylisation of an RGB PIL image, in 8 bits end to end (a 100 MP photo: ~300 MB in, ~300 MB out)."""
    source = torch.from_numpy(np.array(image))  # (H, W, 3) uint8, one copy
    small = reduced(image, tiler.stats_size)
    del image  # the caller's PIL image (~4 bytes per pixel) is freed here when nothing else holds it
    out = tiler.run(source, tiler.statistics(small, noise_factor, rng), noise_factor, rng, preserve_color)
    del source
    return Image.fromarray(out.numpy(), "RGB")


def stylize_tensor(tiler: TiledStylizer, content: torch.Tensor, noise_factor: float, rng: torch.Generator | None,
                   preserve_color: bool = False) -> torch.Tensor:
    """Tiled stylisation of a (B, 3, H, W) float batch, one image at a time (statistics are per image)."""
    outputs = []
    for image in content:
        small = F.interpolate(image[None], scale_factor=min(1.0, tiler.stats_size / max(image.shape[-2:])), mode="area")
        source = image.permute(1, 2, 0)
        stats = tiler.statistics(small, noise_factor, rng)
        outputs.append(tiler.run(source, stats, noise_factor, rng, preserve_color).permute(2, 0, 1))
    return torch.stack(outputs)


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


def stylize(stylizer, image, noise_factor: float | None, seed: int | None, max_size: int | None, size: int | None,
            preserve_color: bool, tile_size: int | None) -> Image.Image | torch.Tensor:
    """Stylizer.stylize by tiles, with the same arguments and return types (see texnet.inference)."""
    from texnet.inference import prepare_image

    tiler = TiledStylizer(stylizer.generator, tile_size or TILE_SIZE)
    stylizer._check_memory(1, *stylizer.generator.padded_size(tiler.core + 2 * tiler.margin, tiler.core + 2 * tiler.margin),
                           f"a tile of {tiler.core} px (+{tiler.margin} px context per side)")
    factor = stylizer.noise_factor if noise_factor is None else float(noise_factor)
    rng = None if seed is None else torch.Generator(device=stylizer.device).manual_seed(int(seed))
    with torch.autocast(stylizer.device.type, enabled=False):
        if isinstance(image, torch.Tensor):
            out = stylize_tensor(tiler, prepare_image(image, max_size, size), factor, rng, preserve_color)
            return out if image.dim() == 4 else out[0]
        return stylize_pil(tiler, _target_pil(image, max_size, size), factor, rng, preserve_color)
