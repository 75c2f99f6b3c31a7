"""Ulyanov et al.'s multi-scale texture generator ("Texture Networks", arXiv:1603.03417, Fig. 2).

Follows the reference `models/pyramid.lua` (DmitryUlyanov/texture_nets, branch texture_nets_v1):
K = 6 scales with the input average-pooled by 32, 16, 8, 4, 2, 1; at each scale fresh noise
(for stylisation concatenated to the pooled content image); each branch a 3x3 -> 3x3 -> 1x1
conv block with normalisation and LeakyReLU at 8 channels; a join upsamples the coarser
stack x2 (nearest), normalises both inputs, concatenates them and applies the same block at
8*i channels; a final 1x1 conv gives RGB. A sigmoid keeps outputs in [0, 1] (the reference
emitted VGG-preprocessed values directly; our images live in [0, 1]).

:class:`ResidualGenerator` (``model=residual``) is the other network of the reference repository
(``models/johnson.lua``, Johnson et al. 2016) with the same interface; :func:`build_generator` picks one.

Each forward pass exists once, here: texnet.export traces these very modules to ONNX and TorchScript, so
sizes are computed with tensor-safe arithmetic (no Python ``max``/``min`` on sizes, which a trace would
freeze at the example size) and the noise is drawn by :meth:`NoiseGenerator.draw_noise` or passed in.

Either network can hold several textures (``textures=[names]``: conditional instance norm, texnet.conditional_norm);
``texture=`` of a forward pass picks one by index or blends them by mix weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from texnet.conditional_norm import Texture, make_conditional, selected
from texnet.errors import TexnetError

NORMS = ("instance", "batch")
PADDINGS = ("reflect", "replicate", "circular", "zeros")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """Instance norm ("Improved Texture Networks", 2017) or batch norm (the 2016 paper).

    Batch norm keeps no running statistics (``track_running_stats=False``): every batch is normalised
    by its own statistics in training and at inference alike, so sampling never relies on running
    averages that a few hundred small batches estimate badly (the PyTorch port skipped ``eval()`` for
    the same reason). ``stylize`` feeds one image at a time, so outputs never depend on other images.
    """
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return BatchNorm(channels, track_running_stats=False)


class BatchNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that a trace with a symbolic batch size can export.

    ONNX's exporter needs a static batch size for batch statistics, so a trace records the same formula
    (the biased variance over batch, height and width) as plain reductions. Same parameters, same output.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_tracing():
            return super().forward(x)
        var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0, keepdim=True)
        return (x - mean) * torch.rsqrt(var + self.eps) * self.weight[:, None, None] + self.bias[:, None, None]


def conv_norm(c_in: int, c_out: int, kernel: int, norm: str, padding: str, stride: int = 1) -> list[nn.Module]:
    """A same-size (or strided) convolution and its normalisation: the unit both generators are built from.

    A 1x1 convolution pads nothing, so it gets ``padding_mode="zeros"``: any other mode would copy its input
    through an empty ``F.pad`` first (the weights, and so checkpoints, are the same either way).
    """
    mode = padding if kernel > 1 else "zeros"
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, padding_mode=mode),
        norm_layer(norm, c_out),
    ]


def at_least(a, b):
    """max(a, b) for ints and for the sizes a trace records (Python's max would freeze them at the traced size)."""
    return (a + b + abs(a - b)) // 2


class NoiseGenerator(nn.Module):
    """What both generators share: option checks, the noise input and padding to ``multiple``.

    Subclasses set ``arch``, ``multiple`` (sides are padded to a multiple of it) and ``noise_ratios``.
    """

    arch: str
    multiple: int
    noise_ratios: list[int]
    textures: (
        tuple[str, ...] | list[str]
    ) = ()  # names of the textures of a conditional network (make_conditional); () for one

    def __init__(
        self,
        mode: str,
        channels: int,
        noise_channels: int,
        noise_factor: float,
        norm: str,
        padding: str,
        skip: bool = False,
    ) -> None:
        super().__init__()
        if mode not in ("stylize", "texture"):
            raise TexnetError(f"model.mode='{mode}' is unknown: use stylize or texture")
        if norm not in NORMS:
            raise TexnetError(f"model.norm='{norm}' is unknown: use one of {', '.join(NORMS)}")
        if padding not in PADDINGS:
            raise TexnetError(f"model.padding='{padding}' is unknown: use one of {', '.join(PADDINGS)}")
        if channels < 1 or noise_channels < (1 if mode == "texture" else 0):
            raise TexnetError("model.channels (and model.noise_channels in texture mode) must be >= 1")
        if skip and mode != "stylize":
            raise TexnetError("model.skip=true adds the photo to the output: it needs model.mode=stylize")
        self.mode, self.noise_channels, self.noise_factor, self.skip = (
            mode,
            noise_channels,
            float(noise_factor),
            bool(skip),
        )
        self.in_channels = noise_channels + (3 if mode == "stylize" else 0)

    def padded_size(self, height: int, width: int) -> tuple[int, int]:
        """The size the network works at: sides padded to a multiple of ``multiple`` and to at least twice it
        (reflect padding at the coarsest scale needs 2 pixels)."""
        m = self.multiple
        return height + at_least(-height % m, 2 * m - height), width + at_least(-width % m, 2 * m - width)

    def noise_shapes(self, batch_size: int, full_h: int, full_w: int) -> list[tuple[int, int, int, int]]:
        """Shapes of the noise maps at padded size (full_h, full_w), in the order forward uses them (coarsest first)."""
        return [(batch_size, self.noise_channels, full_h // r, full_w // r) for r in self.noise_ratios]

    def draw_noise(
        self,
        batch_size: int,
        height: int,
        width: int,
        noise_factor: float | torch.Tensor | None = None,
        rng: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """The noise input for (height, width) images: uniform [0, 1) maps times the noise factor (default: the
        trained one), one per scale (:meth:`noise_shapes` of the padded size), on the network's device and dtype.

        The only place texnet draws a generator's noise: forward calls it, and so does the onnxruntime path of
        texnet.inference, which feeds the maps to the exported graph (same seed, same image on both backends).
        """
        factor = self.noise_factor if noise_factor is None else noise_factor
        ref = next(self.parameters())
        shapes = self.noise_shapes(batch_size, *self.padded_size(height, width))
        return [torch.rand(shape, device=ref.device, dtype=ref.dtype, generator=rng) * factor for shape in shapes]

    def prepare_input(
        self,
        content: torch.Tensor | None,
        size: tuple[int, int] | None,
        batch_size: int,
        noise: list[torch.Tensor] | None,
    ) -> tuple[torch.Tensor | None, int, tuple[int, int]]:
        """(content padded to :meth:`padded_size`, batch size, output size) of a forward call.

        Without content the output size is `size` (default 256 x 256) or, when `noise` is given, its padded size.
        """
        if self.mode == "stylize":
            if content is None:
                raise TexnetError(
                    "this generator stylises photos: pass a content image (it was trained with model.mode=stylize)"
                )
            batch_size, height, width = content.shape[0], content.shape[-2], content.shape[-1]
        elif size is None and noise is not None:
            batch_size, height, width = (
                noise[-1].shape[0],
                noise[-1].shape[-2],
                noise[-1].shape[-1],
            )  # finest scale: ratio 1
        else:
            height, width = size if size is not None else (256, 256)
        if content is not None:
            full_h, full_w = self.padded_size(height, width)
            pad_h, pad_w = full_h - height, full_w - width
            # reflect padding needs pad < side; replicate works for tiny inputs too (a trace keeps reflect, see texnet.export)
            tiny = not torch.jit.is_tracing() and min(height, width) <= max(pad_h, pad_w)
            content = F.pad(content, (0, pad_w, 0, pad_h), mode="replicate" if tiny else "reflect")
        return content, batch_size, (height, width)

    def inputs(
        self,
        content: torch.Tensor | None,
        noise_factor: float | torch.Tensor | None,
        size: tuple[int, int] | None,
        batch_size: int,
        rng: torch.Generator | None,
        noise: list[torch.Tensor] | None,
    ) -> tuple[list[torch.Tensor], tuple[int, int]]:
        """The network's input at each noise scale (the pooled content next to its noise, or the noise alone) and the
        output size: what both forward passes start from."""
        if noise is not None and len(noise) != len(self.noise_ratios):
            raise TexnetError(
                f"got {len(noise)} noise maps; this network takes {len(self.noise_ratios)}, one per scale (see draw_noise)"
            )
        content, batch_size, (height, width) = self.prepare_input(content, size, batch_size, noise)
        if noise is None:
            noise = self.draw_noise(batch_size, height, width, noise_factor, rng)
        if content is None:
            return list(noise), (height, width)
        pooled = [F.avg_pool2d(content, ratio) if ratio > 1 else content for ratio in self.noise_ratios]
        return [torch.cat([x, n], dim=1) for x, n in zip(pooled, noise)], (height, width)

    def to_image(self, logits: torch.Tensor, inputs: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
        """RGB in [0, 1] from the last layer's output: its sigmoid, or with ``skip`` the sigmoid of the photo's logit plus
        it, so an untrained network starts near the photo and learns what to change (the photo at full resolution is
        the first three channels of the finest input)."""
        if self.skip:
            logits = logits + torch.logit(inputs[-1][:, :3].clamp(SKIP_EPS, 1 - SKIP_EPS))
        return torch.sigmoid(logits)[..., :height, :width]


SKIP_EPS = 1e-3  # keeps the photo's logit finite at pure black and white (+-6.9)


class ConvBlock(nn.Sequential):
    """3x3 -> 3x3 -> 1x1 convolutions, each followed by normalisation and LeakyReLU (pyramid.lua)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, padding: str) -> None:
        layers: list[nn.Module] = []
        for kernel, c_in in ((3, in_channels), (3, out_channels), (1, out_channels)):
            layers += [*conv_norm(c_in, out_channels, kernel, norm, padding), nn.LeakyReLU(0.2, inplace=True)]
        super().__init__(*layers)


class PyramidGenerator(NoiseGenerator):
    """Multi-scale generator; ``mode="stylize"`` maps a photo to a stylised photo, ``"texture"`` maps noise to a texture.

    Args:
        mode: "stylize" (content + noise at each scale) or "texture" (noise only).
        scales: K, number of scales; sides are padded internally to multiples of 2**(K-1) and cropped back.
        channels: conv channels per branch (8 in the paper); the join at scale i has channels*i.
        noise_channels: noise maps per scale (3 in the reference `-noise_depth`).
        noise_factor: multiplies the uniform [0, 1) noise (default 0.05, see conf/model/pyramid.yaml); with a content image it sets how strongly the
            style is applied (0 = deterministic output). It can be changed at inference. In texture mode the
            noise is the only input and normalisation removes its scale, so only 0 vs > 0 matters there.
        norm: "instance" | "batch"; padding: "reflect" | "replicate" | "circular" (seamless tiles) | "zeros".
        skip: stylise mode: the network's output is added to the photo's logit (:meth:`NoiseGenerator.to_image`).

    Joins normalise the coarse stack before the nearest x2 upsampling: a nearest upsampling repeats every value
    4 times, so the statistics (and the output) are those of normalising after it, at a quarter of the work.
    """

    arch = "pyramid"

    def __init__(
        self,
        mode: str = "stylize",
        scales: int = 6,
        channels: int = 8,
        noise_channels: int = 3,
        noise_factor: float = 0.05,
        norm: str = "instance",
        padding: str = "reflect",
        skip: bool = False,
    ) -> None:
        super().__init__(mode, channels, noise_channels, noise_factor, norm, padding, skip)
        if scales < 1:
            raise TexnetError("model.scales must be >= 1")
        self.scales = scales
        self.branches = nn.ModuleList(ConvBlock(self.in_channels, channels, norm, padding) for _ in range(scales))
        # Joins for scales 2..K: normalise the coarse stack (then upsample it) and the new branch, concat, conv block.
        self.coarse_norms = nn.ModuleList(norm_layer(norm, channels * i) for i in range(1, scales))
        self.branch_norms = nn.ModuleList(norm_layer(norm, channels) for _ in range(1, scales))
        self.joins = nn.ModuleList(
            ConvBlock(channels * (i + 1), channels * (i + 1), norm, padding) for i in range(1, scales)
        )
        self.to_rgb = nn.Conv2d(channels * scales, 3, kernel_size=1)

    @property
    def multiple(self) -> int:
        return 2 ** (self.scales - 1)

    @property
    def noise_ratios(self) -> list[int]:
        """Downscale factor of each noise map, in the order forward draws them (coarsest first)."""
        return [2 ** (self.scales - 1 - i) for i in range(self.scales)]

    @property
    def full_res_channels(self) -> int:
        """Feature maps at full resolution (the last join): what a forward pass's memory grows with."""
        return self.to_rgb.in_channels

    def forward(
        self,
        content: torch.Tensor | None = None,
        noise_factor: float | torch.Tensor | None = None,
        size: tuple[int, int] | None = None,
        batch_size: int = 1,
        rng: torch.Generator | None = None,
        noise: list[torch.Tensor] | None = None,
        texture: Texture | None = None,
    ) -> torch.Tensor:
        """Stylise `content` (B, 3, H, W) in [0, 1], or (texture mode) make `batch_size` textures of `size` (H, W).

        The noise is drawn with `rng` (None: torch's global generator) times `noise_factor` (default: the trained
        one), unless `noise` gives the maps (:meth:`draw_noise`'s shapes, already scaled), as an exported model does.
        `texture` (networks of several textures): an index or mix weights (None: the one selected, at first the first).
        """
        inputs, (height, width) = self.inputs(content, noise_factor, size, batch_size, rng, noise)
        out: torch.Tensor | None = None
        with selected(self, texture):
            for i, (branch, x) in enumerate(zip(self.branches, inputs)):
                x = branch(x)
                if out is None:
                    out = x
                else:
                    coarse = F.interpolate(self.coarse_norms[i - 1](out), scale_factor=2, mode="nearest")
                    out = self.joins[i - 1](torch.cat([coarse, self.branch_norms[i - 1](x)], dim=1))
            return self.to_image(self.to_rgb(out), inputs, height, width)


class ResidualBlock(nn.Module):
    """x + (conv3x3 -> norm -> ReLU -> conv3x3 -> norm)(x), as in Johnson et al. and texture_nets' johnson.lua."""

    def __init__(self, channels: int, norm: str, padding: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *conv_norm(channels, channels, 3, norm, padding),
            nn.ReLU(inplace=True),
            *conv_norm(channels, channels, 3, norm, padding),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def conv_norm_relu(c_in: int, c_out: int, kernel: int, norm: str, padding: str, stride: int = 1) -> list[nn.Module]:
    return [*conv_norm(c_in, c_out, kernel, norm, padding, stride), nn.ReLU(inplace=True)]


class ResidualGenerator(NoiseGenerator):
    """Johnson et al. 2016's residual network (texture_nets ``models/johnson.lua``, the reference's
    recommended stylisation model): 9x9 conv, two stride-2 downsamplings, residual blocks at 1/4
    resolution, two nearest x2 upsamplings + 3x3 convs (pytorch/examples' fast_neural_style: no
    checkerboard artefacts of transposed convolutions), 3x3 conv to RGB and a sigmoid.

    The same interface and noise input as :class:`PyramidGenerator` (noise next to the photo at full
    resolution, scaled by the noise factor). Most of its work happens at 1/4 resolution, so it has 14x the
    pyramid's parameters (1.7M) at ~1.1x its training cost per step (the frozen VGG dominates; measured).
    """

    arch = "residual"
    multiple = 4
    noise_ratios = [1]

    def __init__(
        self,
        mode: str = "stylize",
        channels: int = 32,
        residual_blocks: int = 5,
        noise_channels: int = 3,
        noise_factor: float = 0.05,
        norm: str = "instance",
        padding: str = "reflect",
        skip: bool = False,
    ) -> None:
        super().__init__(mode, channels, noise_channels, noise_factor, norm, padding, skip)
        if residual_blocks < 0:
            raise TexnetError("model.residual_blocks must be >= 0")
        self.full_res_channels = c = channels
        self.body = nn.Sequential(
            *conv_norm_relu(self.in_channels, c, 9, norm, padding),
            *conv_norm_relu(c, 2 * c, 3, norm, padding, stride=2),
            *conv_norm_relu(2 * c, 4 * c, 3, norm, padding, stride=2),
            *(ResidualBlock(4 * c, norm, padding) for _ in range(residual_blocks)),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *conv_norm_relu(4 * c, 2 * c, 3, norm, padding),
            nn.Upsample(scale_factor=2, mode="nearest"),
            *conv_norm_relu(2 * c, c, 3, norm, padding),
            nn.Conv2d(c, 3, 3, padding=1, padding_mode=padding),
        )

    def forward(
        self,
        content: torch.Tensor | None = None,
        noise_factor: float | torch.Tensor | None = None,
        size: tuple[int, int] | None = None,
        batch_size: int = 1,
        rng: torch.Generator | None = None,
        noise: list[torch.Tensor] | None = None,
        texture: Texture | None = None,
    ) -> torch.Tensor:
        """Same arguments as :meth:`PyramidGenerator.forward`."""
        inputs, (height, width) = self.inputs(content, noise_factor, size, batch_size, rng, noise)
        with selected(self, texture):
            return self.to_image(self.body(inputs[0]), inputs, height, width)


ARCHITECTURES = {"pyramid": PyramidGenerator, "residual": ResidualGenerator}


def build_generator(arch: str = "pyramid", textures: list[str] | None = None, **options) -> NoiseGenerator:
    """The generator named by ``model.arch`` (checkpoints from before the option existed are pyramids); with
    `textures` (names) one that holds them all (conditional instance norm)."""
    if arch not in ARCHITECTURES:
        raise TexnetError(f"model.arch='{arch}' is unknown: use one of {', '.join(ARCHITECTURES)}")
    generator = ARCHITECTURES[arch](**options)
    return make_conditional(generator, textures) if textures else generator
