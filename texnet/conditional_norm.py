"""Many textures in one generator: conditional instance norm (Dumoulin, Shlens, Kudlur, "A Learned Representation
for Artistic Style", ICLR 2017).

Every instance-norm layer gets one learned (scale, shift) per texture; all convolutions are shared. A texture is
chosen by its index, and textures are blended by a convex mix of those parameters (the paper's Fig. 7): with mix
weights w, a layer's scale is sum_i w_i * scale_i (likewise the shift), so a mix of 1.0 on one texture is that
texture exactly. Each texture's scales and shifts are Parameters of their own: an optimiser given only one
texture's parameters (train.py's ``texture.add``) cannot move another's, and a texture not drawn in a training step
gets no gradient at all (its Adam state does not move it either).

A network is made conditional after it is built (:func:`make_conditional` swaps its ``nn.InstanceNorm2d`` layers),
so the generators' code, their forward passes and the single-texture state_dict stay as they are. The texture a
forward pass uses is set on the layers for the length of the call (:func:`selected`), which also lets texnet.tiling
run tiles of a chosen mix through the unchanged generator; one generator object thus runs one mix at a time.
Training may also give each sample of a batch its own texture (an integer tensor of indices, one per sample), as
the paper's implementation (magenta's image_stylization) draws a style per batch element.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from texnet.errors import TexnetError
from texnet.texture_mix import mix_vector

# an index, mix weights of shape (number of textures,), or an integer tensor of shape (batch,): one index per sample
Texture = int | torch.Tensor


class ConditionalInstanceNorm(nn.Module):
    """Instance norm with one (scale, shift) pair per texture: ``weights[i]`` and ``biases[i]`` of shape (C,).

    ``weight`` and ``bias`` are those of the selected texture (or mix), so code written for ``nn.InstanceNorm2d``'s
    affine parameters (texnet.tiling's fixed statistics) works unchanged.
    """

    def __init__(self, channels: int, count: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weights = nn.ParameterList(nn.Parameter(torch.ones(channels)) for _ in range(count))
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(channels)) for _ in range(count))
        self.texture: Texture = 0

    @classmethod
    def from_norm(cls, norm: nn.InstanceNorm2d, count: int) -> ConditionalInstanceNorm:
        """`count` textures that all start as `norm`'s affine parameters."""
        layer = cls(norm.num_features, count, norm.eps)
        with torch.no_grad():
            for w, b in zip(layer.weights, layer.biases):
                w.copy_(norm.weight)
                b.copy_(norm.bias)
        return layer.to(norm.weight.device)

    def to_norm(self, texture: Texture) -> nn.InstanceNorm2d:
        """The ``nn.InstanceNorm2d`` with `texture`'s (an index, or mix weights) scale and shift: from_norm's inverse."""
        norm = nn.InstanceNorm2d(self.weights[0].numel(), eps=self.eps, affine=True)
        with selected(self, texture), torch.no_grad():
            norm.weight.copy_(self.weight)
            norm.bias.copy_(self.bias)
        return norm.to(self.weights[0].device)

    def _select(self, params: nn.ParameterList) -> torch.Tensor:
        """(C,) for an index or a mix; (B, C) for per-sample indices, stacked from the drawn textures only, so a
        texture no sample drew gets no gradient."""
        if isinstance(self.texture, int):
            return params[self.texture]
        if self.texture.dtype.is_floating_point:
            return self.texture.to(params[0].dtype) @ torch.stack(list(params))
        drawn = self.texture.unique()
        return torch.stack([params[i] for i in drawn.tolist()])[torch.searchsorted(drawn, self.texture)]

    @property
    def weight(self) -> torch.Tensor:
        return self._select(self.weights)

    @property
    def bias(self) -> torch.Tensor:
        return self._select(self.biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight, bias = self.weight, self.bias
        if weight.dim() == 2:  # one texture per sample
            return F.instance_norm(x, eps=self.eps) * weight[:, :, None, None] + bias[:, :, None, None]
        # the call nn.InstanceNorm2d makes (no running statistics): a converted single-texture network is bit-exact
        return F.instance_norm(x, None, None, weight, bias, True, 0.0, self.eps)


def conditional_norms(generator: nn.Module) -> list[ConditionalInstanceNorm]:
    return [m for m in generator.modules() if isinstance(m, ConditionalInstanceNorm)]


def replace_layers(generator: nn.Module, kind: type[nn.Module], build: Callable[[nn.Module], nn.Module]) -> None:
    """Swap every submodule of type `kind` in `generator` for ``build(it)``, in place."""
    for parent in list(generator.modules()):
        for key, child in parent.named_children():
            if isinstance(child, kind):
                setattr(parent, key, build(child))


def make_conditional(generator: nn.Module, names: Sequence[str]) -> nn.Module:
    """Swap `generator`'s instance norms for conditional ones holding ``len(names)`` textures, each starting as the
    layer's current affine parameters; sets ``generator.textures``. Returns the (modified) generator."""
    names = check_names(names)
    if any(isinstance(m, nn.BatchNorm2d) for m in generator.modules()):
        raise TexnetError(
            "model.norm=batch has no per-texture parameters: train several textures with model.norm=instance "
            "(conditional instance norm, Dumoulin et al. 2017)"
        )
    replace_layers(generator, nn.InstanceNorm2d, lambda norm: ConditionalInstanceNorm.from_norm(norm, len(names)))
    generator.textures = names
    return generator


def add_texture(generator: nn.Module, name: str) -> None:
    """One more texture, whose scales and shifts start as the mean of the others' (every other parameter untouched)."""
    check_names([*generator.textures, name])
    for layer in conditional_norms(generator):
        for params in (layer.weights, layer.biases):
            params.append(nn.Parameter(torch.stack(list(params)).mean(0).detach().clone()))
    generator.textures = [*generator.textures, name]


def single_texture(generator: nn.Module, texture: Texture) -> nn.Module:
    """`generator` made a single-texture network again: each conditional norm becomes an ``nn.InstanceNorm2d`` with
    `texture`'s (an index, or mix weights) scale and shift, so its output is the conditional one's for `texture`
    (``init_from=<several textures>`` fine-tunes one texture from their mix). Modifies and returns `generator`."""
    replace_layers(generator, ConditionalInstanceNorm, lambda layer: layer.to_norm(texture))
    del generator.textures
    return generator


def texture_parameters(generator: nn.Module, index: int) -> list[nn.Parameter]:
    """The scales and shifts of texture `index` in every layer (what ``texture.add`` trains)."""
    return [p for layer in conditional_norms(generator) for p in (layer.weights[index], layer.biases[index])]


@contextmanager
def selected(generator: nn.Module, texture: Texture | None) -> Iterator[None]:
    """Run `generator` with `texture` (an index, mix weights or per-sample indices) for the length of the block; None
    keeps the current one."""
    layers = conditional_norms(generator) if texture is not None else []
    if layers:
        count = len(layers[0].weights)
        indices = [texture] if isinstance(texture, int) else [] if texture.dtype.is_floating_point else texture.tolist()
        wrong = [i for i in indices if not 0 <= i < count]
        if wrong:
            raise TexnetError(f"texture index {wrong[0]} is out of range: this network holds {count} textures")
    before = [layer.texture for layer in layers]
    for layer in layers:
        layer.texture = texture
    try:
        yield
    finally:
        for layer, previous in zip(layers, before):
            layer.texture = previous


def check_names(names: Sequence[str]) -> list[str]:
    names = [str(n) for n in names]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise TexnetError(f"two textures are named '{duplicates[0]}': give each texture image its own file name")
    return names


def mix_weights(names: Sequence[str], mix: str | Mapping[str, float] | None, option: str = "mix") -> torch.Tensor:
    """Mix weights (len(names),) for `mix` (texnet.texture_mix.mix_vector: a name, a convex {name: weight} or None
    for the first texture); anything else is a one-line TexnetError naming `option` and the valid names."""
    return torch.tensor(mix_vector(names, mix, option))
