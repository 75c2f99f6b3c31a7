"""Standalone models from a checkpoint: ONNX (onnxruntime, any language) and TorchScript (no texnet needed).

Both are traced from :class:`PortableGenerator`, the generator's inference forward rewritten so that a
trace keeps the image size symbolic (any H x W works; the padding to a multiple of ``generator.multiple``,
2**(K-1) for the pyramid and 4 for the residual net, and the crop back happen inside the model). For the
pyramid the graph is also leaner than eager: no padding copies before 1x1 convolutions, no conv biases in
front of a normalisation (the mean subtraction cancels them), and the joins normalise the coarse stack
before the nearest x2 upsampling (same statistics, a quarter of the work). The same graph, run by
onnxruntime, is the fast path of :class:`texnet.inference.Stylizer`.

Inputs and output of an exported model (float32, images in [0, 1]):
    stylize mode: ``content`` (B, 3, H, W) and ``noise_factor`` (shape [1]; 0 = deterministic output);
        the noise is drawn inside (ONNX RandomUniformLike / torch.rand_like). H and W must be at least
        ``multiple`` + 1 (33 px for the default pyramid, 5 for the residual net) because the padding reflects.
    with ``noise_inputs=True`` (always in texture mode): ``noise_0`` ... ``noise_{K-1}`` (pyramid, coarsest
        first) or ``noise_0`` alone (residual net) instead of ``noise_factor``: uniform noise already multiplied
        by the noise factor, of shape (B, noise_channels, Hp / 2**(K-1-i), Wp / 2**(K-1-i)) (residual: Hp x Wp)
        where Hp, Wp are H, W padded up to a multiple of ``multiple`` and to at least twice it
        (:func:`noise_shapes`). A texture model's output is Hp x Wp.
    output: ``output`` (B, 3, H, W).
Batch-norm checkpoints normalise each image of a batch on its own here (like eager with batch size 1).
"""
from __future__ import annotations

import copy
import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from texnet.errors import TexnetError
from texnet.generator import NoiseGenerator, ResidualBlock, ResidualGenerator

if TYPE_CHECKING:  # texnet.inference imports this module
    from texnet.inference import Stylizer

log = logging.getLogger(__name__)

OPSET = 17


def noise_shapes(generator: NoiseGenerator, height: int, width: int, batch: int = 1) -> list[tuple[int, int, int, int]]:
    """Shapes of the noise maps for an (H, W) image, in the order eager draws them (the pyramid's coarsest first)."""
    full_h, full_w = generator.padded_size(height, width)
    return [(batch, generator.noise_channels, full_h // r, full_w // r) for r in generator.noise_ratios]


def _at_least(a, b):
    """max(a, b) that also works on the traced sizes of torch.onnx / torch.jit (Python's max would freeze them)."""
    return (a + b + abs(a - b)) // 2


class PortableGenerator(nn.Module):
    """Inference-only view of a generator (shares its weights) with a symbolic image size.

    Args:
        generator: the trained generator (not modified).
        noise_inputs: take the per-scale noise as inputs (reproducible, seedable) instead of drawing it inside.
    """

    def __init__(self, generator: NoiseGenerator, noise_inputs: bool = False) -> None:
        super().__init__()
        self.generator = generator
        self.noise_inputs = noise_inputs or generator.mode == "texture"

    @property
    def input_names(self) -> list[str]:
        names = ["content"] if self.generator.mode == "stylize" else []
        if not self.generator.noise_channels:
            return names
        if self.noise_inputs:
            return names + [f"noise_{i}" for i in range(len(self.generator.noise_ratios))]
        return names + ["noise_factor"]

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Inputs to trace with: a size that needs padding, so that the padding is traced too."""
        height, width = 2 * self.generator.multiple + 5, 2 * self.generator.multiple + 9
        inputs = [torch.rand(1, 3, height, width)] if self.generator.mode == "stylize" else []
        if self.generator.noise_channels:
            if self.noise_inputs:
                inputs += [torch.rand(shape) for shape in noise_shapes(self.generator, height, width)]
            else:
                inputs.append(torch.ones(1))
        return tuple(inputs)

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Batch and image size stay symbolic; a stylised output has the content's size."""
        axes = {name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in self.input_names if name != "noise_factor"}
        axes["output"] = {0: "batch", 2: "height", 3: "width"}
        if "content" in axes:
            axes["content"] = axes["output"]
        return axes

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

    def _sequence(self, x: torch.Tensor, layers: nn.Sequential) -> torch.Tensor:
        """The residual net's layers in order, every normalisation per image (as ``_norm``; batch norm included)."""
        for layer in layers:
            if isinstance(layer, ResidualBlock):
                x = x + self._sequence(x, layer.body)
            elif isinstance(layer, (nn.InstanceNorm2d, nn.BatchNorm2d)):
                x = self._norm(x, layer)
            else:
                x = layer(x)
        return x

    def _input(self, content: torch.Tensor | None, inputs: tuple[torch.Tensor, ...], i: int, ratio: int) -> torch.Tensor:
        """The generator's input at noise scale `i`: the content pooled by `ratio` next to its noise, or the noise alone."""
        g = self.generator
        if content is None:
            return inputs[i]
        x = F.avg_pool2d(content, ratio) if ratio > 1 else content
        if g.noise_channels and self.noise_inputs:
            return torch.cat([x, inputs[i]], dim=1)
        if g.noise_channels:
            return torch.cat([x, torch.rand_like(x[:, :1].expand(-1, g.noise_channels, -1, -1)) * inputs[0]], dim=1)
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
        if isinstance(g, ResidualGenerator):
            rgb = torch.sigmoid(self._sequence(self._input(content, inputs, 0, 1), g.body))
            return rgb if content is None else rgb[..., :height, :width]
        out: torch.Tensor | None = None
        for i, (branch, ratio) in enumerate(zip(g.branches, g.noise_ratios)):
            x = self._block(self._input(content, inputs, i, ratio), branch)
            if out is None:
                out = x
            else:
                coarse = F.interpolate(self._norm(out, g.coarse_norms[i - 1]), scale_factor=2, mode="nearest")
                out = self._block(torch.cat([coarse, self._norm(x, g.branch_norms[i - 1])], dim=1), g.joins[i - 1])
        rgb = torch.sigmoid(g.to_rgb(out))
        return rgb if content is None else rgb[..., :height, :width]


def onnx_bytes(module: PortableGenerator, opset: int = OPSET) -> bytes:
    """The ONNX model of `module`, traced with the TorchScript-based exporter (``dynamo=False``).

    The dynamo exporter would need the onnxscript package; the traced graph is the same for this network.
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice and TracerWarnings (traces are tested)
        torch.onnx.export(module, module.example_inputs(), buffer, dynamo=False, input_names=module.input_names,
                          output_names=["output"], dynamic_axes=module.dynamic_axes, opset_version=opset)
    return buffer.getvalue()


def ort_session(model: PortableGenerator | bytes | str | Path, threads: int | None = None):
    """An onnxruntime CPU session with full graph optimisation.

    Threads follow ``torch.get_num_threads()``; idle threads sleep instead of spinning, which measured ~25% faster
    on a shared 2-core machine (spinning workers compete with the thread doing the work).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = onnx_bytes(model) if isinstance(model, PortableGenerator) else model
    return ort.InferenceSession(source if isinstance(source, bytes) else str(source), options, providers=["CPUExecutionProvider"])


def _portable(checkpoint: str | Path | Stylizer, noise_inputs: bool) -> PortableGenerator:
    """A CPU copy of the checkpoint's generator (a Stylizer's own one stays where it is)."""
    from texnet.inference import Stylizer, load

    stylizer = checkpoint if isinstance(checkpoint, Stylizer) else load(checkpoint, device="cpu", backend="eager")
    return PortableGenerator(copy.deepcopy(stylizer.generator).cpu(), noise_inputs=noise_inputs)


def _target(path: str | Path, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise TexnetError(f"output '{path}' already exists: choose another path or pass overwrite=true")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def export_onnx(checkpoint: str | Path | Stylizer, path: str | Path, *, noise_inputs: bool = False, opset: int = OPSET, overwrite: bool = False) -> Path:
    """Write the generator of `checkpoint` (a .ckpt path or a Stylizer) as an ONNX model (see the module doc for its inputs).

    Run it with onnxruntime: ``session.run(None, {"content": x, "noise_factor": np.array([1.0], np.float32)})``.
    """
    module = _portable(checkpoint, noise_inputs)
    path = _target(path, overwrite)
    path.write_bytes(onnx_bytes(module, opset))
    log.info("wrote ONNX model %s (inputs: %s)", path, ", ".join(module.input_names))
    return path


def export_torchscript(checkpoint: str | Path | Stylizer, path: str | Path, *, noise_inputs: bool = False, overwrite: bool = False) -> Path:
    """Write the generator of `checkpoint` as a traced TorchScript module: ``torch.jit.load(path)(content, noise_factor)``.

    The trace keeps the image size symbolic (checked by tests/test_export.py at sizes other than the traced one).
    torch 2.14 marks torch.jit deprecated (FutureWarning on load): prefer ONNX for anything long-lived.
    """
    module = _portable(checkpoint, noise_inputs)
    path = _target(path, overwrite)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice and TracerWarnings (the trace is tested)
        traced = torch.jit.trace(module, module.example_inputs(), check_trace=False)  # rand_like: no re-run check
        torch.jit.save(traced, str(path))
    log.info("wrote TorchScript model %s (inputs: %s)", path, ", ".join(module.input_names))
    return path
