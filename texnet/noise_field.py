"""Noise that stays on the picture: a generator's noise maps as windows onto one unbounded noise plane per scale.

A clip stylised with one noise draw for every frame is still where the camera is, but when the camera moves the
picture slides under noise that stays on the frame, and the texture swims. Placing each frame's noise maps where
the frame lies in the scene (texnet.motion) moves the noise with the picture (texnet.batch.frame_stylizer).

The plane's values come from a counter-based hash (splitmix64) of (seed, scale, channel, row, column), so any
window is computed directly and is the same whenever it is asked for: torch's generators draw sequences, not
values at positions. Uniform in [0, 1) with 24 bits, as the training noise (``torch.rand``) is.
"""

from __future__ import annotations

import math

import numpy as np
import torch

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Sebastiano Vigna's splitmix64 finaliser on uint64 arrays (numpy wraps uint64 arithmetic modulo 2**64)."""
    x = x + _GOLDEN
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def plane_window(seed: int, ratio: int, channels: int, top: int, left: int, height: int, width: int) -> np.ndarray:
    """Rows ``top..top+height`` and columns ``left..left+width`` (either may be negative) of the noise plane of the
    scale pooled by `ratio`: float32 (channels, height, width) in [0, 1)."""
    key = splitmix64(np.array([seed & 0xFFFFFFFF, ratio], dtype=np.uint64)).sum(dtype=np.uint64)
    planes = splitmix64(key ^ np.arange(channels, dtype=np.uint64))
    rows = splitmix64(planes[:, None] ^ np.arange(top, top + height, dtype=np.int64).astype(np.uint64)[None])
    values = splitmix64(rows[:, :, None] ^ np.arange(left, left + width, dtype=np.int64).astype(np.uint64)[None, None])
    return (values >> np.uint64(40)).astype(np.float32) * np.float32(2.0**-24)


def noise_maps(
    shapes: list[tuple[int, int, int, int]],
    ratios: list[int],
    origin: tuple[float, float],
    seed: int,
    noise_factor: float,
    like: torch.Tensor,
) -> list[torch.Tensor]:
    """A generator's noise input (`shapes` and `ratios` as NoiseGenerator.noise_shapes and noise_ratios give them,
    coarsest first; every image of the batch gets the same maps) for an image whose top-left pixel lies at
    `origin` = (y, x) of the scene, in its own pixels; times `noise_factor`, on `like`'s device and dtype. A scale
    pooled by r moves by whole pixels, origin / r rounded half up: a window at origin + k * r (texnet.tiling's tiles)
    is the window at origin moved by k pooled pixels."""
    maps = []
    for (batch, channels, height, width), ratio in zip(shapes, ratios):
        top, left = (math.floor(o / ratio + 0.5) for o in origin)  # not round(): ties to even would break tiling
        window = torch.from_numpy(plane_window(seed, ratio, channels, top, left, height, width))
        maps.append((window * noise_factor).expand(batch, -1, -1, -1).contiguous().to(like.device, like.dtype))
    return maps
