"""Whole-image normalisation statistics gathered tile by tile, exactly (the first passes of texnet.tiling).

Instance norm divides each feature map by its mean and standard deviation over the whole image, and a norm
layer's input depends on the statistics of the norm layers before it on its path. So the statistics are gathered
in passes over the tiles: pass k runs the generator's own forward on every tile, normalises the layers measured
in earlier passes with their whole-image statistics, adds each tile's core region of the input of the layers
it measures (their inputs all measured before) to running sums, and stops after the last of them. The passes
are as many as the longest chain of norm layers (:func:`schedule`). Only the norm layers' forward is swapped
(:func:`override`); the network's forward is its own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from texnet.conditional_norm import ConditionalInstanceNorm

# batch norm without running statistics normalises like instance norm at batch 1; a conditional norm's weight and bias
# are those of the texture (or mix) selected around the tiling call (texnet.conditional_norm.selected)
NORMS = (nn.InstanceNorm2d, nn.BatchNorm2d, ConditionalInstanceNorm)
Stats = dict[nn.Module, tuple[torch.Tensor, torch.Tensor]]  # norm layer -> (mean, variance) per channel


def norm_layers(generator: nn.Module) -> list[nn.Module]:
    return [m for m in generator.modules() if isinstance(m, NORMS)]


@contextmanager
def override(generator: nn.Module, normalise: Callable[[nn.Module, torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Every norm layer computes ``normalise(layer, input)`` instead of its own forward (restored on exit)."""
    layers = norm_layers(generator)
    for layer in layers:
        layer.forward = partial(normalise, layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward


def normalise_with(stats: Stats, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`layer` applied to `x` with the given statistics instead of x's own."""
    mean, var = stats[layer]
    return F.batch_norm(x, mean.to(x.dtype), var.to(x.dtype), layer.weight, layer.bias, False, 0.0, layer.eps)


@torch.inference_mode()
def schedule(generator: nn.Module) -> list[list[nn.Module]]:
    """The norm layers grouped into passes, each group in call order (see module doc).

    A tiny image runs once per norm layer with that layer putting out NaN: the layers whose input then holds NaN
    depend on it. A layer goes into the pass its longest chain of dependents allows: as late as possible, so
    that early passes, which stop after their last layer, do not run the expensive full-resolution layers.
    """
    ref = next(generator.parameters())
    side = 2 * generator.multiple
    probe = torch.rand(1, 3, side, side, device=ref.device, dtype=ref.dtype)
    order: list[nn.Module] = []
    with override(generator, lambda layer, x: order.append(layer) or x):
        generator(probe, noise_factor=0.0)
    dependents = {source: _dependents(generator, probe, source) for source in order}
    height: dict[nn.Module, int] = {}  # the longest chain of norm layers from a layer to the output, itself included
    for layer in reversed(order):  # dependents are called later
        height[layer] = 1 + max((height[d] for d in dependents[layer]), default=0)
    depth = max(height.values(), default=0)
    return [[layer for layer in order if height[layer] == depth - k] for k in range(depth)]


def _dependents(generator: nn.Module, probe: torch.Tensor, source: nn.Module) -> list[nn.Module]:
    """The norm layers whose input holds NaN when `source` puts out NaN and every other norm layer is the identity."""
    tainted: list[nn.Module] = []

    def normalise(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        if x.isnan().any():
            tainted.append(layer)
        return torch.full_like(x, math.nan) if layer is source else x

    with override(generator, normalise):
        generator(probe, noise_factor=0.0)
    return tainted


class Moments:
    """Per-channel count, mean and sum of squared deviations of the tensors added, in float64.

    Each tile's part is reduced on its own and merged with Chan et al.'s pairwise formula, which keeps the
    variance accurate over billions of pixels (a running sum of squares would cancel)."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = self.m2 = torch.zeros(0, dtype=torch.float64)

    def add(self, x: torch.Tensor) -> None:
        """Add a (B, C, h, w) tensor."""
        count = x.shape[0] * x.shape[2] * x.shape[3]
        if count == 0:
            return
        var, mean = torch.var_mean(x.float(), dim=(0, 2, 3), correction=0)
        mean, m2 = mean.double().cpu(), var.double().cpu() * count
        if self.count == 0:
            self.count, self.mean, self.m2 = count, mean, m2
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + m2 + delta.square() * (self.count * count / total)
        self.count = total

    def stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, biased variance) per channel, as instance norm computes them."""
        return self.mean.float().to(device), (self.m2 / self.count).float().to(device)
