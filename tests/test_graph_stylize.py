"""One photo without torch (texnet.graph_stylize): the shipped graphs stylise as their checkpoints do, stylize.py
caches a checkpoint's graph on its first run and uses it from the second (texture-mode networks too), and a graph of
another checkpoint is never used."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import ROOT
from PIL import Image
from test_stylize import stylize_cfg, train_checkpoint, write_photo

from stylize import stylize
from texnet.errors import TexnetError
from texnet.export import cache_checkpoint_graph
from texnet.graph_stylize import GraphModel, cached_graph_path, checkpoint_digest
from texnet.inference import load
from texnet.models import MODELS_DIR, cards

pytestmark = pytest.mark.usefixtures("one_thread")
GRAPH_LOG = "torch not needed"


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path), dtype=np.int16)


@pytest.mark.parametrize("name", [n for n, c in sorted(cards().items()) if c["mode"] == "stylize"])
def test_each_shipped_stylise_model_has_a_graph_that_stylises_as_it_does(name, photo_path):
    checkpoint = MODELS_DIR / f"{name}.ckpt"
    model = GraphModel.find(checkpoint, checkpoint_digest(checkpoint))
    assert model is not None, f"no graph for {checkpoint}: rebuild it with scripts/ship_model.py's ship_graph"
    stylizer = load(name, device="cpu", backend="eager")
    assert model.texture_name == cards()[name]["texture"] and model.textures == stylizer.textures
    photo = Image.open(photo_path).convert("RGB").resize((96, 80))
    blend = {t: 1 / len(stylizer.textures) for t in stylizer.textures}  # a network of several textures: all of them
    for mix in (None, blend) if len(stylizer.textures) > 1 else (None,):
        fast = np.asarray(model.stylize(photo, noise_factor=0, mix=mix), dtype=np.int16)
        eager = np.asarray(stylizer.stylize(photo, noise_factor=0, mix=mix), dtype=np.int16)
        assert np.abs(fast - eager).max() <= 1  # float32 in two runtimes, rounded to 8 bits
        assert np.abs(fast - np.asarray(photo, dtype=np.int16)).mean() > 5  # ... and it stylises


def test_a_texture_mix_goes_through_the_graph_and_a_bad_one_is_the_same_one_line(tmp_path, photo_path, caplog):
    args = ("checkpoint=mosaic+starry+pebbles", f"input={photo_path}", "device=cpu", "max_size=96")
    with caplog.at_level(logging.INFO):
        (out,) = stylize(stylize_cfg(*args, f"output={tmp_path / 'a.png'}", "texture_mix={mosaic: 0.5, starry: 0.5}"))
    assert GRAPH_LOG in caplog.text and max(Image.open(out).size) == 96
    with pytest.raises(TexnetError, match=r"^texture_mix: the weights sum to 0.5; they must sum to 1 \(textures: "):
        stylize(stylize_cfg(*args, f"output={tmp_path / 'b.png'}", "texture_mix={mosaic: 0.5}"))
    assert not (tmp_path / "b.png").exists()


def test_one_photo_with_a_shipped_model_never_imports_torch(tmp_path, photo_path):
    out = tmp_path / "out.png"
    run = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "stylize.py",
            "checkpoint=mosaic",
            f"input={photo_path}",
            f"output={out}",
            "device=cpu",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert "torch" not in imported and "onnxruntime" in imported
    assert Image.open(out).size == Image.open(photo_path).size


def test_a_checkpoints_first_photo_caches_its_graph_for_the_next(tmp_path, caplog):
    checkpoint = train_checkpoint(tmp_path / "net")
    photo = write_photo(tmp_path / "photo.png", 72, 56)
    cached = cached_graph_path(checkpoint_digest(checkpoint))
    with caplog.at_level(logging.INFO):
        (first,) = stylize(
            stylize_cfg(
                f"checkpoint={checkpoint}",
                f"input={photo}",
                f"output={tmp_path / 'a.png'}",
                "noise_factor=0",
                "device=cpu",
            )
        )
        assert cached.is_file() and GRAPH_LOG not in caplog.text
        (second,) = stylize(
            stylize_cfg(
                f"checkpoint={checkpoint}",
                f"input={photo}",
                f"output={tmp_path / 'b.png'}",
                "noise_factor=0",
                "device=cpu",
            )
        )
        assert GRAPH_LOG in caplog.text
    assert np.abs(pixels(first) - pixels(second)).max() <= 1
    caplog.clear()
    with caplog.at_level(logging.INFO):  # a seed is torch's noise: the graph cannot draw it
        stylize(
            stylize_cfg(
                f"checkpoint={checkpoint}", f"input={photo}", f"output={tmp_path / 'c.png'}", "seed=1", "device=cpu"
            )
        )
    assert GRAPH_LOG not in caplog.text


def test_a_graph_of_another_checkpoint_is_never_used(tmp_path):
    other = shutil.copy(MODELS_DIR / "pebbles.ckpt", tmp_path / "pebbles.ckpt")
    shutil.copy(MODELS_DIR / "mosaic.onnx", tmp_path / "pebbles.onnx")  # mosaic's graph beside pebbles
    assert GraphModel.find(other, checkpoint_digest(other)) is None
    shutil.copy(MODELS_DIR / "pebbles.onnx", tmp_path / "pebbles.onnx")
    assert GraphModel.find(other, checkpoint_digest(other)).texture_name == "pebbles"


def test_a_graph_is_named_by_the_bytes_its_network_was_read_from(tmp_path):
    path = shutil.copy(MODELS_DIR / "mosaic.ckpt", tmp_path / "last.ckpt")
    stylizer = load(path, device="cpu")
    shutil.copy(MODELS_DIR / "pebbles.ckpt", path)  # training wrote a newer last.ckpt after the network was read
    assert cache_checkpoint_graph(stylizer) == cached_graph_path(checkpoint_digest(MODELS_DIR / "mosaic.ckpt"))
    assert GraphModel.find(path, checkpoint_digest(path)) is None  # the newer file's network is not mosaic's graph


def test_a_texture_network_generates_through_its_cached_graph_as_torch_would(tmp_path, caplog):
    args = ("checkpoint=pebbles-texture", "device=cpu", "num=2", "size=[72,136]")
    stylize(stylize_cfg(*args, f"output={tmp_path / 'a'}"))  # through torch the first time: caches the graph
    with caplog.at_level(logging.INFO):
        second = stylize(stylize_cfg(*args, f"output={tmp_path / 'b'}"))
    assert GRAPH_LOG in caplog.text and [Image.open(p).size for p in second] == [(136, 72)] * 2
    assert np.abs(pixels(second[0]) - pixels(second[1])).mean() > 1  # two draws of the noise, two textures
    checkpoint = MODELS_DIR / "pebbles-texture.ckpt"
    model, stylizer = GraphModel.find(checkpoint, checkpoint_digest(checkpoint)), load(checkpoint, device="cpu")
    g = stylizer.generator
    for height, width in ((40, 72), (256, 256), (33, 100), (5, 300)):
        assert model.noise_shapes(height, width) == g.noise_shapes(1, *g.padded_size(height, width))
    noise = g.draw_noise(1, 72, 136, rng=torch.Generator().manual_seed(0))
    graph = model.session.run(None, {f"noise_{i}": n.numpy() for i, n in enumerate(noise)})[0]
    with torch.no_grad():
        eager = g(None, noise=noise).numpy()
    assert graph.shape == eager.shape and np.abs(graph - eager).max() < 1e-4


def test_an_animation_goes_through_torch_with_one_noise_draw_not_the_graph(tmp_path, caplog):
    """The graph draws its own noise on every call; an animation's frames must share one draw (texnet.animation)."""
    from test_animation import frames_of, write_animation

    source = write_animation(tmp_path / "clip.gif", frames_of(0))
    with caplog.at_level(logging.INFO):
        (out,) = stylize(stylize_cfg("checkpoint=mosaic", f"input={source}", f"output={tmp_path / 'out.gif'}"))
    assert GRAPH_LOG not in caplog.text and Image.open(out).n_frames == 3
