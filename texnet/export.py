"""Standalone models from a checkpoint: ONNX (onnxruntime, any language) and TorchScript (no texnet needed).

Both are traced from :class:`PortableGenerator`, TextureGenerator's inference forward rewritten so that a
trace keeps the image size symbolic (any H x W works; the padding to a multiple of 2**(K-1) and the crop
back happen inside the model) and so that the graph is lean: no padding copies before 1x1 convolutions,
no conv biases in front of a normalisation (the mean subtraction cancels them), and the joins normalise
the coarse stack before the nearest x2 upsampling (same statistics, a quarter of the work). The same
graph, run by onnxruntime, is the fast path of :class:`texnet.inference.Stylizer`.

Inputs and output of an exported model (float32, images in [0, 1]):
    stylize mode: ``content`` (B, 3, H, W) and ``noise_factor`` (shape [1]; 0 = deterministic output);
        the noise is drawn inside (ONNX RandomUniformLike / torch.rand_like). H and W must be at least
        2**(K-1) + 1 (33 px for the default K = 6) because the padding reflects.
    with ``noise_inputs=True`` (always in texture mode): ``noise_0`` ... ``noise_{K-1}`` instead of
        ``noise_factor``, coarsest first: uniform noise already multiplied by the noise factor, of shape
        (B, noise_channels, Hp / 2**(K-1-i), Wp / 2**(K-1-i)) where Hp, Wp are H, W padded up to a multiple
        of 2**(K-1) and to at least 2**K (:func:`noise_shapes`). A texture model's output is Hp x Wp.
    output: ``output`` (B, 3, H, W).
Batch-norm checkpoints normalise each image of a batch on its own here (like eager with batch size 1).
"""
from __future__ import annotations

import io
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from texnet.errors import TexnetError
from texnet.generator import TextureGenerator

log = logging.getLogger(__name__)

OPSET = 17


def padded_size(generator: TextureGenerator, height: int, width: int) -> tuple[int, int]:
    """The size TextureGenerator works at: (H, W) padded to a multiple of 2**(K-1) and to at least 2**K."""
    m = generator.multiple
    return height + max(-height % m, 2 * m - height), width + max(-width % m, 2 * m - width)


def noise_shapes(generator: TextureGenerator, height: int, width: int, batch: int = 1) -> list[tuple[int, int, int, int]]:
    """Shapes of the per-scale noise maps for an (H, W) image, coarsest first (the order eager draws them in)."""
    full_h, full_w = padded_size(generator, height, width)
    ratios = [2 ** (generator.scales - 1 - i) for i in range(generator.scales)]
    return [(batch, generator.noise_channels, full_h // r, full_w // r) for r in ratios]


def _at_least(a, b):
    """max(a, b) that also works on the traced sizes of torch.onnx / torch.jit (Python's max would freeze them)."""
    return (a + b + abs(a - b)) // 2


class PortableGenerator(nn.Module):
    """Inference-only view of a TextureGenerator (shares its weights) with a symbolic image size.

    Args:
        generator: the trained generator (not modified).
        noise_inputs: take the per-scale noise as inputs (reproducible, seedable) instead of drawing it inside.
    """

    def __init__(self, generator: TextureGenerator, noise_inputs: bool = False) -> None:
        super().__init__()
        self.generator = generator
        self.noise_inputs = noise_inputs or generator.mode == "texture"

    @property
    def input_names(self) -> list[str]:
        names = ["content"] if self.generator.mode == "stylize" else []
        if self.noise_inputs:
            return names + [f"noise_{i}" for i in range(self.generator.scales)]
        return names + ["noise_factor"]

    def example_inputs(self, height: int = 64, width: int = 64) -> tuple[torch.Tensor, ...]:
        content = [torch.rand(1, 3, height, width)] if self.generator.mode == "stylize" else []
        if self.noise_inputs:
            return (*content, *(torch.rand(shape) for shape in noise_shapes(self.generator, height, width)))
        return (*content, torch.ones(1))

    @staticmethod
    def _norm(x: torch.Tensor, norm: nn.Module) -> torch.Tensor:
        return F.instance_norm(x, weight=norm.weight, bias=norm.bias, eps=norm.eps)

    def _block(self, x: torch.Tensor, block: nn.Sequential) -> torch.Tensor:
        layers = list(block)
        for conv, norm, act in zip(layers[0::3], layers[1::3], layers[2::3]):
            padding = 0
            if conv.kernel_size[0] > 1:
                if conv.padding_mode == "zeros":
                    padding = conv.kernel_size[0] // 2
                else:
                    x = F.pad(x, (conv.padding[1],) * 2 + (conv.padding[0],) * 2, mode=conv.padding_mode)
            x = F.conv2d(x, conv.weight, None, padding=padding)  # bias dropped: the norm's mean removes it
            x = F.leaky_relu(self._norm(x, norm), act.negative_slope)
        return x

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        g = self.generator
        content, height, width = None, None, None
        if g.mode == "stylize":
            content, inputs = inputs[0], inputs[1:]
            height, width = content.shape[-2], content.shape[-1]
            m = g.multiple
            pad_h, pad_w = _at_least(-height % m, 2 * m - height), _at_least(-width % m, 2 * m - width)
            content = F.pad(content, (0, pad_w, 0, pad_h), mode="reflect")
        out: torch.Tensor | None = None
        for i, branch in enumerate(g.branches):
            ratio = 2 ** (g.scales - 1 - i)
            if content is None:
                x = inputs[i]
            else:
                pooled = F.avg_pool2d(content, ratio) if ratio > 1 else content
                if self.noise_inputs:
                    noise = inputs[i]
                else:
                    noise = torch.rand_like(pooled[:, :1].expand(-1, g.noise_channels, -1, -1)) * inputs[0]
                x = torch.cat([pooled, noise], dim=1) if g.noise_channels else pooled
            x = self._block(x, branch)
            if out is None:
                out = x
            else:
                coarse = F.interpolate(self._norm(out, g.coarse_norms[i - 1]), scale_factor=2, mode="nearest")
                out = self._block(torch.cat([coarse, self._norm(x, g.branch_norms[i - 1])], dim=1), g.joins[i - 1])
        rgb = torch.sigmoid(g.to_rgb(out))
        return rgb if content is None else rgb[..., :height, :width]
