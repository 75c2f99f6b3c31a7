"""Tiled stylisation (texnet.tiling, texnet.norm_stats): tiles with whole-image statistics gathered tile by tile match the untiled network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from texnet import inference, tiling
from texnet.generator import build_generator
from texnet.inference import Stylizer
from texnet.noise_field import noise_maps
from texnet.norm_stats import Moments, norm_layers, schedule
from texnet.tiling import TiledStylizer, grid, ramp, stylize_tensor

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


def generator(arch: str, scales: int = 3):
    """A small generator with non-trivial norm weights and biases (as training leaves them), in eval mode."""
    torch.manual_seed(0)
    options = {
        "pyramid": {"scales": scales, "channels": 4},
        "residual": {"channels": 4, "residual_blocks": 1},
        "encoder": {"channels": 4, "encoder_weights": "random"},
        "encoder-relu3_1": {"channels": 4, "encoder_weights": "random", "encoder_layer": "relu3_1"},
    }[arch]
    arch = arch.split("-")[0]
    g = build_generator(arch=arch, **options).eval()
    with torch.no_grad():
        for p in g.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.3)
    return g


def photo(height: int, width: int) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, height), torch.linspace(0, 1, width), indexing="ij")
    image = torch.stack([yy, xx, (torch.sin(17 * yy) * torch.cos(11 * xx) + 1) / 2])[None]
    return (image + 0.2 * torch.rand(image.shape, generator=torch.Generator().manual_seed(1))).clamp(0, 1)


@pytest.mark.parametrize("arch", ["pyramid", "residual", "encoder", "encoder-relu3_1"])
def test_tiles_match_the_untiled_image(arch):
    """Small tiles (20 px cores, 5x7 of them; the encoder network's 32 px) whose statistics are gathered over all
    tiles: the untiled output to float precision, padding included (98x139 is padded to 100x140, 112x144)."""
    g, image = generator(arch), photo(98, 139)
    with torch.inference_mode():
        whole = g(image, noise_factor=0.0)
    core = 32 if arch.startswith("encoder") else 20  # the encoder network's tiles are cut on its 16 px grid
    tiler = TiledStylizer(g, tile_size=core, blend=6)
    assert tiler.core == core and tiler.margin >= tiling.default_margin(g) + 6 and tiler.margin % g.multiple == 0
    tiled = stylize_tensor(tiler, image, 0.0, 0)
    assert tiled.shape == whole.shape
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)


@pytest.mark.parametrize(("scales", "coarse_ratio", "coarse", "passes"), [(3, 4, 1, 11), (3, 2, 2, 7), (6, 8, 3, 15)])
def test_coarse_scales_run_untiled_once(scales, coarse_ratio, coarse, passes):
    """The pyramid's scales pooled `coarse_ratio`x or more run once for the whole photo (their branches are called once,
    not per tile), the tiles run the rest joined onto crops of that stack, with no more passes and less context; the
    result is the untiled output to float precision. The last tile row absorbs a 2 px remainder (98 = 4 x 24 + 2)."""
    g, image = generator("pyramid", scales), photo(98, 139)
    with torch.inference_mode():
        whole = g(image, noise_factor=0.0)
    tiler = TiledStylizer(g, tile_size=24, blend=6, coarse_ratio=coarse_ratio)
    all_tiled = TiledStylizer(g, tile_size=24, blend=6, coarse_ratio=10**6)
    assert tiler.coarse == coarse and all_tiled.coarse == 0
    assert len(tiler.passes) == passes <= len(all_tiled.passes) and tiler.margin < all_tiled.margin
    calls = []
    g.branches[0].register_forward_hook(lambda *args: calls.append(1))
    tiled = stylize_tensor(tiler, image, 0.0, 0)
    assert len(calls) == 1
    torch.testing.assert_close(tiled, whole, atol=1e-5, rtol=0)
    rows = sorted({(t.y0, t.y1) for t in tiler.tiles(98, 139)})
    assert rows[-1][1] == g.padded_size(98, 139)[0] and len(rows) == 4


@pytest.mark.parametrize(("arch", "coarse_ratio"), [("pyramid", 4), ("pyramid", 10**6), ("residual", 8)])
def test_with_the_noise_plane_tiles_match_the_untiled_image_noise_included(arch, coarse_ratio):
    """A frame's noise read from texnet.noise_field's plane at its place (a clip's frames): every tile reads it at its
    own place, so the tiled output is the untiled one with the same noise, not another draw."""
    g, image, origin = generator(arch), photo(98, 139), (37.4, -21.6)
    shapes = g.noise_shapes(1, *g.padded_size(98, 139))
    noise = noise_maps(shapes, g.noise_ratios, origin, 5, 0.5, image)
    with torch.inference_mode():
        whole = g(image, noise=noise)
        other = g(image, noise=noise_maps(shapes, g.noise_ratios, (origin[0], origin[1] + 1), 5, 0.5, image))
    assert (other - whole).abs().mean() > 1e-3  # the noise matters
    tiler = TiledStylizer(g, tile_size=20, blend=6, coarse_ratio=coarse_ratio, origin=origin)
    torch.testing.assert_close(stylize_tensor(tiler, image, 0.5, 5), whole, atol=1e-5, rtol=0)


def test_grid_lets_the_last_core_absorb_a_short_remainder():
    """A remainder under a quarter core joins the last core (no 5 px core inside a 197 px tile); the last core ends at
    the padded edge."""
    assert grid(2309, 2336, 768) == [(0, 768), (768, 1536), (1536, 2336)]
    assert grid(2500, 2528, 768) == [(0, 768), (768, 1536), (1536, 2304), (2304, 2528)]
    assert grid(10, 12, 32) == [(0, 12)]


def test_schedule_measures_each_layer_once_after_its_inputs():
    """The residual net is one chain of norm layers (one per pass); the pyramid's branches are measured side by side."""
    for arch, depth in (
        ("residual", 7),
        ("pyramid", 11),
    ):  # residual: 3 + 2 per block + 2; pyramid: 3 + (1 + 3) per join
        g = generator(arch)
        passes = schedule(g)
        assert sorted(id(layer) for group in passes for layer in group) == sorted(map(id, norm_layers(g)))
        assert len(passes) == depth
    assert all(len(group) == 1 for group in schedule(generator("residual")))


def test_moments_merge_like_one_tensor():
    """Statistics merged over pieces of different sizes equal those of the whole (to float64 rounding)."""
    x = torch.randn(1, 5, 37, 23, dtype=torch.float64) * 3 + 100
    moments = Moments()
    for rows in (slice(0, 1), slice(1, 20), slice(20, 20), slice(20, 37)):
        moments.add(x[:, :, rows])
    mean, var = moments.stats(torch.device("cpu"))
    var_ref, mean_ref = torch.var_mean(x, dim=(0, 2, 3), correction=0)
    torch.testing.assert_close(mean, mean_ref.float())
    torch.testing.assert_close(var, var_ref.float())


def test_without_the_margin_tiles_differ():
    """The margin is what makes tiles exact: without context a tile's edge sees reflect padding instead."""
    g, image = generator("pyramid"), photo(100, 140)
    with torch.inference_mode():
        whole = g(image, noise_factor=0.0)
    tiled = stylize_tensor(TiledStylizer(g, tile_size=20, margin=0, blend=0), image, 0.0, 0)
    assert (tiled - whole).abs().max() > 0.01


def test_each_tile_on_its_own_statistics_would_differ():
    """Why the statistics are shared: the network on one tile alone (its own instance-norm statistics) differs."""
    g, image = generator("pyramid"), photo(96, 96)
    with torch.inference_mode():
        whole = g(image, noise_factor=0.0)
        corner = g(image[..., :48, :48], noise_factor=0.0)
    assert (corner - whole[..., :48, :48]).abs().mean() > 0.01


def test_blend_ramps_sum_to_one():
    """Neighbouring tiles' weights add up to 1 everywhere: the cross-fade is a weighted average."""
    length, core, blend = 100, 32, 6
    total = torch.zeros(length)
    for start in range(0, length, core):
        end = min(start + core, length)
        lo, hi = max(0, start - blend), min(length, end + blend)
        total[lo:hi] += ramp(length, start, end, lo, hi, blend)
    torch.testing.assert_close(total, torch.ones(length))


def test_stylizer_tiles_photos_too_large_for_memory(tmp_path, monkeypatch):
    """Instead of refusing a photo that does not fit whole, Stylizer.stylize tiles it (8-bit in and out)."""
    g = generator("pyramid")
    stylizer = Stylizer(g, torch.rand(1, 3, 32, 32), "test", device="cpu", backend="eager")
    image = photo(90, 130)
    path = tmp_path / "photo.png"
    Image.fromarray((image[0].permute(1, 2, 0) * 255).round().byte().numpy()).save(path)
    whole = np.asarray(stylizer.stylize(path, noise_factor=0))
    monkeypatch.setattr(
        inference, "available_memory", lambda device: 3.5 * 2**20
    )  # whole (~4.1 MB): refused; an 88 px tile (~2.6 MB) fits
    assert tiling.needs_tiles(stylizer, path, None, None)
    monkeypatch.setattr(tiling, "TILE_SIZE", 24)
    tiled = np.asarray(stylizer.stylize(path, noise_factor=0))
    assert tiled.shape == whole.shape == (90, 130, 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1  # rounding to 8 bits only
    explicit = stylizer.stylize(image, noise_factor=0, tile_size=24)  # tensors are tiled when asked
    assert explicit.shape == image.shape
