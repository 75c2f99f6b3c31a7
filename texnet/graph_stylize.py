"""Stylise a photo with a checkpoint's exported ONNX graph in onnxruntime, without importing torch.

Importing torch is most of the time a one-photo ``stylize.py`` run takes on a CPU (the network runs in onnxruntime
either way), so for a stylise-mode network the command line goes through here when a graph exported from exactly
that checkpoint file (its SHA-256 is in the graph's metadata, texnet.export.graph_metadata) is found:

* beside the checkpoint, ``<name>.onnx`` (the shipped models have one: scripts/ship_model.py writes it, and a test
  checks that each stylises as its checkpoint does), or
* in ``$TEXNET_CACHE/onnx/ckpt-<sha>.onnx``, which stylize.py writes the first time it stylises a photo with a
  checkpoint through torch.

The graph takes ``noise_factor`` and draws its noise itself, which torch's generator cannot reproduce: seeded runs
(and tiles, colour transfer, folders) stay on texnet.inference's path.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from texnet.cache import cache_dir
from texnet.memory import cpu_memory_available
from texnet.texture_mix import mix_vector

# a stylise-mode graph (with or without noise; "mix": a network of several textures)
INPUTS = ({"content", "noise_factor"}, {"content"}, {"content", "noise_factor", "mix"}, {"content", "mix"})


def checkpoint_digest(path: Path) -> str:
    """The SHA-256 of a checkpoint file: what names the graphs exported from it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
    """A stylise-mode graph, with what its metadata says: texture name (and the names of a network's several
    textures), trained noise factor, padding multiple and peak bytes per pixel. Use :meth:`find`."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        self.path = path
        self.session = session(path, threads)
        meta = self.session.get_modelmeta().custom_metadata_map
        self.checkpoint_sha256 = meta.get("texnet.checkpoint_sha256")
        self.texture_name = meta.get("texnet.texture", "texture")
        self.textures = json.loads(meta.get("texnet.textures", "[]")) or [self.texture_name]
        self.noise_factor = float(meta.get("texnet.noise_factor", 0))
        self.multiple = int(meta.get("texnet.multiple", 0))
        self.bytes_per_pixel = int(meta.get("texnet.bytes_per_pixel", 0))
        self.inputs = {i.name for i in self.session.get_inputs()}

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
            if model.checkpoint_sha256 == digest and model.inputs in INPUTS and model.bytes_per_pixel:
                return model
        return None

    def fits(self, width: int, height: int) -> bool:
        """Whether a width x height photo goes through the graph whole: sides above the padding multiple (the graph
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
        content = np.asarray(photo.convert("RGB"), dtype=np.float32).transpose(2, 0, 1)[None] / 255.0
        feed = {"content": np.ascontiguousarray(content)}
        if "noise_factor" in self.inputs:
            factor = self.noise_factor if noise_factor is None else noise_factor
            feed["noise_factor"] = np.array([factor], dtype=np.float32)
        if "mix" in self.inputs:
            feed["mix"] = np.array(weights, dtype=np.float32)
        out = self.session.run(None, feed)[0][0]
        return Image.fromarray(np.rint(np.clip(out, 0, 1) * 255).astype(np.uint8).transpose(1, 2, 0), "RGB")
