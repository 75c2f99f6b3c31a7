"""Standalone models from a checkpoint: ONNX (onnxruntime, any language) and TorchScript (no texnet needed).

Both are traces of the trained generator itself (texnet.generator), through :class:`GraphInputs`, which only
turns the model's tensor inputs into the generator's arguments: the forward pass exists once. The trace keeps
the image size symbolic (any H x W works; the padding to a multiple of ``generator.multiple``, 2**(K-1) for the
pyramid and 4 for the residual net, and the crop back happen inside the model). The same graph, run by
onnxruntime, is the fast path of :class:`texnet.inference.Stylizer`.

Inputs and output of an exported model (float32, images in [0, 1]):
    stylize mode: ``content`` (B, 3, H, W) and ``noise_factor`` (shape [1]; 0 = deterministic output);
        the noise is drawn inside (ONNX RandomUniformLike / aten::rand). H and W must be at least
        ``multiple`` + 1 (33 px for the default pyramid, 5 for the residual net) because the padding reflects.
    with ``noise_inputs=True`` (always in texture mode): ``noise_0`` ... ``noise_{K-1}`` (pyramid, coarsest
        first) or ``noise_0`` alone (residual net) instead of ``noise_factor``: uniform noise already multiplied
        by the noise factor, of shape (B, noise_channels, Hp / 2**(K-1-i), Wp / 2**(K-1-i)) (residual: Hp x Wp)
        where Hp, Wp are H, W padded up to a multiple of ``multiple`` and to at least twice it
        (``generator.noise_shapes``, drawn by ``generator.draw_noise``). A texture model's output is Hp x Wp.
    several textures (conditional instance norm): one more input, ``mix`` (shape [number of textures]): the
        convex mix weights (a one-hot vector picks one texture; texnet.conditional_norm.mix_weights makes them).
    output: ``output`` (B, 3, H, W).
An exported ONNX model's metadata_props say what it is (:func:`graph_metadata`: texture, trained noise factor, the
SHA-256 of the checkpoint file), which is what lets texnet.graph_stylize run it without torch.
Batch-norm networks normalise over the batch, as eager does (texnet.inference feeds them one image at a time).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import io
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from texnet.cache import cache_dir, write_atomically
from texnet.checkpoint import checkpoint_generator, checkpoint_texture_name, read_checkpoint_file
from texnet.errors import TexnetError
from texnet.graph_stylize import cached_graph_path, session
from texnet.memory import bytes_per_pixel
from texnet.noise_generator import NoiseGenerator

log = logging.getLogger(__name__)

OPSET = 17


class HasGenerator(Protocol):
    """Anything holding a trained generator, e.g. a :class:`texnet.inference.Stylizer`."""

    generator: NoiseGenerator


class GraphInputs(nn.Module):
    """The generator called with positional tensors only, which is what a trace records (shares its weights).

    Args:
        generator: the trained generator (not modified).
        noise_inputs: take the per-scale noise as inputs (reproducible, seedable) instead of drawing it inside.
    """

    def __init__(self, generator: NoiseGenerator, noise_inputs: bool = False) -> None:
        super().__init__()
        self.generator = generator
        self.noise_inputs = noise_inputs or generator.mode == "texture"
        # torch.onnx.export puts the module in eval mode and restores this flag on the whole tree afterwards: left at
        # nn.Module's default (True), it would leave the generator of an onnxruntime Stylizer training (bf16 join,
        # batch statistics) for its eager fallbacks (tiles, photos too small for the graph).
        self.training = generator.training

    @property
    def input_names(self) -> list[str]:
        names = ["content"] if self.generator.mode == "stylize" else []
        if self.noise_inputs and self.generator.noise_channels:
            names += [f"noise_{i}" for i in range(len(self.generator.noise_ratios))]
        elif self.generator.noise_channels:
            names += ["noise_factor"]
        return names + (["mix"] if self.generator.textures else [])

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        """Inputs to trace with: a size that needs padding, so that the padding is traced too."""
        g = self.generator
        height, width = 2 * g.multiple + 5, 2 * g.multiple + 9
        inputs = [torch.rand(1, 3, height, width)] if g.mode == "stylize" else []
        if g.noise_channels:
            inputs += [n.cpu() for n in g.draw_noise(1, height, width)] if self.noise_inputs else [torch.ones(1)]
        if g.textures:
            inputs.append(torch.full((len(g.textures),), 1 / len(g.textures)))
        return tuple(inputs)

    @property
    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Batch and image size stay symbolic; a stylised output has the content's size."""
        axes = {
            name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"}
            for name in self.input_names
            if name not in ("noise_factor", "mix")
        }
        axes["output"] = {0: "batch", 2: "height", 3: "width"}
        if "content" in axes:
            axes["content"] = axes["output"]
        return axes

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        g = self.generator
        mix, inputs = (inputs[-1], inputs[:-1]) if g.textures else (None, inputs)
        content, rest = (inputs[0], inputs[1:]) if g.mode == "stylize" else (None, inputs)
        if not g.noise_channels:  # stylize mode only: texture mode needs noise
            return g(content, noise_factor=0.0, texture=mix)
        if self.noise_inputs:
            return g(content, noise=list(rest), texture=mix)
        return g(content, noise_factor=rest[0], texture=mix)


def onnx_bytes(module: GraphInputs, opset: int = OPSET) -> bytes:
    """The ONNX model of `module`, traced with the TorchScript-based exporter (``dynamo=False``).

    The dynamo exporter would need the onnxscript package; the traced graph is the same for this network.
    """
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter(
            "ignore"
        )  # the legacy exporter's deprecation notice and TracerWarnings (traces are tested)
        torch.onnx.export(
            module,
            module.example_inputs(),
            buffer,
            dynamo=False,
            input_names=module.input_names,
            output_names=["output"],
            dynamic_axes=module.dynamic_axes,
            opset_version=opset,
        )
    return buffer.getvalue()


GRAPH_CODE = (
    "texnet.export",
    "texnet.generator",
    "texnet.noise_generator",
    "texnet.grid",
    "texnet.conditional_norm",
    "texnet.precision",
)
CACHED_GRAPHS = 32  # the newest ONNX graphs kept in the cache (a pyramid's is ~0.5 MB, a residual net's ~7 MB)


def graph_key(module: GraphInputs, opset: int = OPSET) -> str:
    """A digest of everything :func:`onnx_bytes` depends on: the generator's layers (their repr: kinds, sizes,
    padding), options and weights, the graph's inputs, the opset, the torch that traces and texnet's code that is
    traced."""
    g = module.generator
    options = sorted((k, v) for k, v in vars(g).items() if isinstance(v, (str, int, float, bool, list, tuple)))
    digest = hashlib.sha256(repr((repr(g), options, module.input_names, opset, torch.__version__)).encode())
    for name in GRAPH_CODE:
        digest.update(Path(importlib.import_module(name).__file__).read_bytes())
    for name, tensor in g.state_dict().items():
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:32]


def cached_onnx_bytes(module: GraphInputs) -> bytes:
    """:func:`onnx_bytes` kept in ``$TEXNET_CACHE/onnx`` under :func:`graph_key`: tracing (and the onnx import it
    needs) costs every process that stylises about a second, reading the file next to nothing (docs/results.md).
    The most recently used graphs are kept; where the cache cannot be written, the graph is traced each time."""
    folder = cache_dir() / "onnx"
    path = folder / f"{graph_key(module)}.onnx"
    try:
        data = path.read_bytes()
    except OSError:  # absent, or just removed by another process keeping the newest graphs
        pass
    else:
        with contextlib.suppress(OSError):
            os.utime(path)  # used now: among the newest
        return data
    data = onnx_bytes(module)
    write_cached(path, data)
    return data


def write_cached(path: Path, data: bytes) -> None:
    """Put a graph in the cache folder: atomically, keeping the newest CACHED_GRAPHS; a cache that cannot be
    written is only logged (the graph is made again next time)."""
    folder = path.parent
    try:
        write_atomically(path, data)
        for old in sorted(folder.glob("*.onnx"), key=lambda f: f.stat().st_mtime, reverse=True)[CACHED_GRAPHS:]:
            old.unlink(missing_ok=True)
    except OSError as error:
        log.debug("ONNX graph not cached in %s: %s", folder, error)


def ort_session(model: GraphInputs | bytes | str | Path, threads: int | None = None):
    """An onnxruntime CPU session (texnet.graph_stylize.session) of a generator's graph (cached) or of an ONNX
    file or bytes; threads follow ``torch.get_num_threads()``."""
    source = cached_onnx_bytes(model) if isinstance(model, GraphInputs) else model
    return session(source, threads or torch.get_num_threads())


def _graph(model: str | Path | HasGenerator, noise_inputs: bool) -> tuple[GraphInputs, dict[str, str]]:
    """A CPU copy of the generator of a checkpoint path or of a Stylizer (whose own one stays where it is), and the
    metadata of its graph."""
    if isinstance(model, (str, Path)):
        ckpt, digest = read_checkpoint_file(model)
        generator, texture = checkpoint_generator(ckpt, model), checkpoint_texture_name(ckpt)
    else:
        generator, texture = copy.deepcopy(model.generator).cpu(), getattr(model, "texture_name", "texture")
        digest = getattr(model, "checkpoint_sha256", None)
    module = GraphInputs(generator.eval().requires_grad_(False), noise_inputs=noise_inputs)
    return module, graph_metadata(module.generator, texture, digest)


def _target(path: str | Path, overwrite: bool) -> Path:
    path = Path(path)
    if path.exists() and not overwrite:
        raise TexnetError(f"output '{path}' already exists: choose another path or pass overwrite=true")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def graph_metadata(generator: NoiseGenerator, texture: str, checkpoint_sha256: str | None) -> dict[str, str]:
    """What an exported graph says about itself (ONNX metadata_props, texnet.* keys): mode, texture(s), the trained
    noise factor, the noise maps' channels and scales, the padding multiple, peak bytes per pixel in onnxruntime and
    the SHA-256 of the checkpoint file it came from; texnet.graph_stylize reads them to run it without torch."""
    meta = {
        "texnet.mode": generator.mode,
        "texnet.texture": texture,
        "texnet.textures": json.dumps(list(generator.textures)),
        "texnet.noise_factor": repr(float(generator.noise_factor)),
        "texnet.multiple": str(generator.multiple),
        "texnet.noise_channels": str(generator.noise_channels),
        "texnet.noise_ratios": json.dumps(list(generator.noise_ratios)),
        "texnet.bytes_per_pixel": str(bytes_per_pixel(generator.arch, generator.full_res_channels, "onnxruntime")),
    }
    if checkpoint_sha256:
        meta["texnet.checkpoint_sha256"] = checkpoint_sha256
    return meta


def with_metadata(data: bytes, metadata: dict[str, str]) -> bytes:
    """An ONNX model's bytes with `metadata` added to its metadata_props."""
    import onnx

    model = onnx.load_from_string(data)
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


def cache_checkpoint_graph(stylizer: HasGenerator) -> Path:
    """Write the graph texnet.graph_stylize runs for the checkpoint file `stylizer` was loaded from (noise_factor
    input in stylise mode, noise maps in texture mode) into the cache and return its path."""
    module, metadata = _graph(stylizer, noise_inputs=False)
    path = cached_graph_path(metadata["texnet.checkpoint_sha256"])
    write_cached(path, with_metadata(onnx_bytes(module), metadata))
    return path


def export_onnx(
    checkpoint: str | Path | HasGenerator,
    path: str | Path,
    *,
    noise_inputs: bool = False,
    opset: int = OPSET,
    overwrite: bool = False,
) -> Path:
    """Write the generator of `checkpoint` (a .ckpt path or a Stylizer) as an ONNX model (see the module doc for its inputs).

    Run it with onnxruntime: ``session.run(None, {"content": x, "noise_factor": np.array([1.0], np.float32)})``
    (and ``"mix": np.array([0.7, 0.3], np.float32)`` for a network of two textures).
    """
    module, metadata = _graph(checkpoint, noise_inputs)
    path = _target(path, overwrite)
    path.write_bytes(with_metadata(onnx_bytes(module, opset), metadata))
    log.info("wrote ONNX model %s (inputs: %s)", path, ", ".join(module.input_names))
    return path


def export_torchscript(
    checkpoint: str | Path | HasGenerator, path: str | Path, *, noise_inputs: bool = False, overwrite: bool = False
) -> Path:
    """Write the generator of `checkpoint` as a traced TorchScript module: ``torch.jit.load(path)(content, noise_factor)``.

    The trace keeps the image size symbolic (checked by tests/test_export.py at sizes other than the traced one).
    torch 2.14 marks torch.jit deprecated (FutureWarning on load): prefer ONNX for anything long-lived.
    """
    module, _ = _graph(checkpoint, noise_inputs)
    path = _target(path, overwrite)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit's deprecation notice and TracerWarnings (the trace is tested)
        traced = torch.jit.trace(module, module.example_inputs(), check_trace=False)  # random noise: no re-run check
        torch.jit.save(traced, str(path))
    log.info("wrote TorchScript model %s (inputs: %s)", path, ", ".join(module.input_names))
    return path
