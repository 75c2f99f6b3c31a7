"""What texnet's generators share: their options, the noise input, padding to the network's grid, the output layer.

:class:`NoiseGenerator` is the base of the networks in texnet.generator; its forward pass is theirs, around each
network's own ``logits``. The forward pass exists once:
texnet.export traces the real modules to ONNX and TorchScript, so sizes are computed with tensor-safe arithmetic
(no Python ``max``/``min`` on sizes, which a trace would freeze at the example size) and the noise is drawn by
:meth:`NoiseGenerator.draw_noise` or passed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from texnet import grid
from texnet.conditional_norm import Texture, selected
from texnet.errors import TexnetError
from texnet.noise_field import noise_maps

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
        (texnet.grid.padded_size)."""
        return grid.padded_size(height, width, self.multiple)

    def noise_shapes(self, batch_size: int, full_h: int, full_w: int) -> list[tuple[int, int, int, int]]:
        """Shapes of the noise maps at padded size (full_h, full_w), in the order forward uses them (coarsest first)."""
        return grid.noise_shapes(batch_size, self.noise_channels, self.noise_ratios, full_h, full_w)

    def image_noise_shapes(self, batch_size: int, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """Shapes of the noise maps of (height, width) images: :meth:`noise_shapes` of their :meth:`padded_size`."""
        return self.noise_shapes(batch_size, *self.padded_size(height, width))

    def draw_noise(
        self,
        batch_size: int,
        height: int,
        width: int,
        noise_factor: float | torch.Tensor | None = None,
        rng: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """The noise input for (height, width) images: uniform [0, 1) maps times the noise factor (default: the
        trained one), one per scale (:meth:`image_noise_shapes`), on the network's device and dtype.

        Forward calls it, and so does the onnxruntime path of texnet.inference, which feeds the maps to the exported
        graph (same seed, same image on both backends).
        """
        return self.noise_of_shapes(self.image_noise_shapes(batch_size, height, width), noise_factor, rng)

    def noise_of_shapes(
        self,
        shapes: list[tuple[int, ...]],
        noise_factor: float | torch.Tensor | None = None,
        rng: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """Noise maps of the given shapes, drawn in order: where texnet draws a generator's noise (:meth:`draw_noise`
        for whole images, texnet.tiling for the scales of a tile or of the untiled coarse stack); a clip's frames
        read theirs from texnet.noise_field's plane instead (:meth:`plane_noise`)."""
        factor = self.noise_factor if noise_factor is None else noise_factor
        ref = next(self.parameters())
        return [torch.rand(shape, device=ref.device, dtype=ref.dtype, generator=rng) * factor for shape in shapes]

    def plane_noise(
        self,
        shapes: list[tuple[int, ...]],
        ratios: list[int],
        origin: tuple[float, float],
        seed: int,
        noise_factor: float,
    ) -> list[torch.Tensor]:
        """Noise maps of `shapes` at `ratios` that are windows onto texnet.noise_field's plane `seed`, for an image
        whose top-left pixel lies at `origin` of the scene (a clip's frames, and the tiles of one), on the network's
        device and dtype."""
        return noise_maps(shapes, ratios, origin, seed, noise_factor, next(self.parameters()))

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
        with selected(self, texture):
            return self.to_image(self.logits(inputs), inputs, height, width)

    def logits(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        """The network's layers on its :meth:`inputs`: the output layer's values before :meth:`to_image`."""
        raise NotImplementedError

    def to_image(self, logits: torch.Tensor, inputs: list[torch.Tensor], height: int, width: int) -> torch.Tensor:
        """RGB in [0, 1] from the last layer's output: its sigmoid, or with ``skip`` the sigmoid of the photo's logit plus
        it, so an untrained network starts near the photo and learns what to change (the photo at full resolution is
        the first three channels of the finest input)."""
        if self.skip:
            logits = logits + torch.logit(inputs[-1][:, :3].clamp(SKIP_EPS, 1 - SKIP_EPS))
        return torch.sigmoid(logits)[..., :height, :width]


SKIP_EPS = 1e-3  # keeps the photo's logit finite at pure black and white (+-6.9)
