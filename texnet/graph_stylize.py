"""Stylise a photo (or generate textures) with a checkpoint's exported ONNX graph in onnxruntime, without torch.

Importing torch is most of the time a one-photo ``stylize.py`` run takes on a CPU (the network runs in onnxruntime
either way), so the command line goes through here when a graph exported from exactly that checkpoint file (its
SHA-256 is in the graph's metadata, texnet.export.graph_metadata) is found:

* beside the checkpoint, ``<name>.onnx`` (the shipped stylise models have one: scripts/ship_model.py writes it, and
  a test checks that each stylises as its checkpoint does), or
* in ``$TEXNET_CACHE/onnx/ckpt-<sha>.onnx``, which stylize.py writes the first time a checkpoint runs through torch.

A stylise graph takes ``noise_factor`` and draws its noise itself; a texture graph takes the noise maps, drawn here
with numpy. Neither can reproduce torch's noise for a seed: seeded runs (and tiles, colour transfer, folders) stay
on texnet.inference's path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from texnet.cache import cache_dir
from texnet.grid import noise_shapes, padded_size
from texnet.image import array_to_pil, pil_to_array
from texnet.memory import cpu_memory_available
from texnet.texture_mix import mix_vector

# the inputs of a stylise-mode graph (with or without noise); "mix" is added for a network of several textures
STYLIZE_INPUTS = ({"content", "noise_factor"}, {"content"})


def checkpoint_digest(path: Path) -> str:
    """The SHA-256 of a checkpoint file: what names the graphs exported from it."""
    return bytes_digest(path.read_bytes())


def bytes_digest(data: bytes) -> str:
    """The SHA-256 of a checkpoint's bytes (texnet.checkpoint.read_checkpoint_file takes it from the bytes it loads)."""
    return hashlib.sha256(data).hexdigest()


def cached_graph_path(digest: str) -> Path:
    """Where stylize.py keeps the graph of the checkpoint whose SHA-256 is `digest`."""
    return cache_dir() / "onnx" / f"ckpt-{digest[:32]}.onnx"


def session(source: bytes | str | Path, threads: int | None = None):
    """An onnxruntime CPU session with full graph optimisation (threads: onnxruntime's default, one per core).

    Idle threads sleep instead of spinning, which measured ~25% faster on a shared 2-core machine (spinning
    workers compete with the thread doing the work).
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(
        source if isinstance(source, bytes) else str(source), options, providers=["CPUExecutionProvider"]
    )


class GraphModel:
    """A network's graph, with what its metadata says: mode, texture name (and the names of a network's several
    textures), trained noise factor, noise maps, padding multiple and peak bytes per pixel. Use :meth:`find`."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.path = path
        self.session = session(path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.checkpoint_sha256 = meta.get("texnet.checkpoint_sha256")
        self.mode = meta.get("texnet.mode", "stylize")
        self.texture_name = meta.get("texnet.texture", "texture")
        self.textures = json.loads(meta.get("texnet.textures", "[]")) or [self.texture_name]
        self.noise_factor = float(meta.get("texnet.noise_factor", 0))
        self.multiple = int(meta.get("texnet.multiple", 0))
        self.bytes_per_pixel = int(meta.get("texnet.bytes_per_pixel", 0))
        self.noise_channels = int(meta.get("texnet.noise_channels", 0))
        self.noise_ratios = json.loads(meta.get("texnet.noise_ratios", "[]"))
        self.inputs = {i.name for i in self.session.get_inputs()}

    def _known_inputs(self) -> bool:
        """Whether the graph's inputs are those of a texnet graph of this mode (texnet.export.GraphInputs)."""
        expected = [{f"noise_{i}" for i in range(len(self.noise_ratios))}] if self.mode == "texture" else STYLIZE_INPUTS
        mix = {"mix"} if len(self.textures) > 1 else set()
        return any(self.inputs == names | mix for names in expected)

    @classmethod
    def find(cls, checkpoint: Path, digest: str, threads: int | None = None) -> GraphModel | None:
        """The graph exported from the checkpoint file whose SHA-256 is `digest` (see the module doc), or None."""
        for path in (checkpoint.with_suffix(".onnx"), cached_graph_path(digest)):
            if not path.is_file():
                continue
            try:
                model = cls(path, threads)
            except Exception:  # noqa: BLE001 - onnxruntime raises its own types for a damaged or foreign file
                continue
            if model.checkpoint_sha256 == digest and model._known_inputs() and model.bytes_per_pixel:
                return model
        return None

    def fits(self, width: int, height: int) -> bool:
        """Whether a width x height photo (or texture) goes through the graph whole: sides above the padding multiple (the graph
        reflects them) and the forward pass within free memory (a padded side is at most side + 2 * multiple)."""
        m = self.multiple
        need = (width + 2 * m) * (height + 2 * m) * self.bytes_per_pixel
        return min(width, height) > m and need <= cpu_memory_available()

    def mix_weights(self, mix: str | Mapping[str, float] | None, option: str = "mix") -> list[float]:
        """The mix weights for `mix` (texnet.texture_mix.mix_vector; a one-line TexnetError naming `option`)."""
        return mix_vector(self.textures, mix, option)

    def stylize(
        self, photo: Image.Image, noise_factor: float | None = None, mix: str | Mapping[str, float] | None = None
    ) -> Image.Image:
        """The stylised RGB photo (`noise_factor`: default the trained one; `mix`: as :meth:`mix_weights` takes),
        rounded to 8 bits as texnet.image does."""
        weights = self.mix_weights(mix)
        feed = {"content": pil_to_array(photo)}
        if "noise_factor" in self.inputs:
            factor = self.noise_factor if noise_factor is None else noise_factor
            feed["noise_factor"] = np.array([factor], dtype=np.float32)
        if "mix" in self.inputs:
            feed["mix"] = np.array(weights, dtype=np.float32)
        return array_to_pil(self.session.run(None, feed)[0][0])

    def noise_shapes(self, height: int, width: int) -> list[tuple[int, int, int, int]]:
        """The noise maps of a height x width texture, as the generator's own (texnet.grid)."""
        full_h, full_w = padded_size(height, width, self.multiple)
        return noise_shapes(1, self.noise_channels, self.noise_ratios, full_h, full_w)

    def generate(
        self,
        size: tuple[int, int],
        num: int = 1,
        seed: None = None,
        mix: str | Mapping[str, float] | None = None,
    ) -> list[Image.Image]:
        """`num` textures of `size` (H, W) from a texture graph, as texnet.inference.Stylizer.generate makes them
        (uniform noise times the trained noise factor), without a seed: numpy's noise is not torch's."""
        if seed is not None:
            raise ValueError("a graph draws numpy's noise, which no seed makes torch's: seeded runs go through torch")
        height, width = size
        weights, rng = self.mix_weights(mix), np.random.default_rng()
        images = []
        for _ in range(num):
            feed = {
                f"noise_{i}": rng.random(shape, dtype=np.float32) * np.float32(self.noise_factor)
                for i, shape in enumerate(self.noise_shapes(height, width))
            }
            if "mix" in self.inputs:
                feed["mix"] = np.array(weights, dtype=np.float32)
            images.append(array_to_pil(self.session.run(None, feed)[0][0, :, :height, :width]))
        return images
