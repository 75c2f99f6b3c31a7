"""Noise that moves with the picture: the noise plane is the same wherever it is read and looks like the training
noise, the tracker finds where a frame lies in the scene, and a clip's stylised frames agree where they show the
same part of it, through either backend and at any output size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data
from test_stylize import train_checkpoint

from texnet.batch import frame_stylizer
from texnet.inference import load
from texnet.motion import SceneTracker, overlap_change
from texnet.noise_field import plane_window

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return train_checkpoint(tmp_path_factory.mktemp("moving_noise_net"), "stylize", "model.noise_factor=1.0")


def scene() -> Image.Image:
    return Image.fromarray(data.astronaut()).resize((256, 256), Image.Resampling.LANCZOS)


def crops(corners: list[tuple[int, int]], side: int = 96) -> list[Image.Image]:
    return [scene().crop((x, y, x + side, y + side)) for y, x in corners]


def test_the_noise_plane_is_the_same_wherever_it_is_read_and_uniform():
    big = plane_window(7, 4, 3, -20, -30, 64, 80)
    assert big.dtype == np.float32 and big.shape == (3, 64, 80)
    np.testing.assert_array_equal(plane_window(7, 4, 3, -5, 10, 16, 24), big[:, 15:31, 40:64])
    assert 0 <= big.min() and big.max() < 1
    assert abs(big.mean() - 0.5) < 0.02 and abs(big.std() - 12**-0.5) < 0.01  # as torch.rand
    neighbours = np.corrcoef(big[:, :, 1:].ravel(), big[:, :, :-1].ravel())[0, 1]
    assert abs(neighbours) < 0.05  # no correlation between neighbouring pixels
    for other in (plane_window(8, 4, 3, -20, -30, 64, 80), plane_window(7, 2, 3, -20, -30, 64, 80)):
        assert np.abs(other - big).mean() > 0.2  # another seed, another scale: other noise
    assert np.abs(big[0] - big[1]).mean() > 0.2  # channels differ


@pytest.mark.parametrize("corners", [[(30, 40), (30, 52), (30, 61)], [(40, 40), (34, 45), (47, 31)]])
def test_the_tracker_finds_where_each_frame_lies(corners):
    tracker = SceneTracker()
    found = [tracker.locate(frame) for frame in crops(corners)]
    expected = [(y - corners[0][0], x - corners[0][1]) for y, x in corners]
    np.testing.assert_allclose(found, expected, atol=0.1)


def test_a_flat_frame_or_another_size_keeps_the_place():
    tracker = SceneTracker()
    first, second = crops([(30, 40), (30, 50)])
    tracker.locate(first)
    assert tracker.locate(Image.new("RGB", (96, 96), (40, 40, 40))) == (0.0, 0.0)
    tracker.locate(second.resize((80, 80)))
    assert tracker.locate(second) == (0.0, 0.0)


@pytest.mark.parametrize("backend", ["eager", "onnxruntime"])
def test_a_panning_clip_keeps_its_texture_on_the_picture(ckpt, backend):
    """Stylised with noise fixed in the frame, a pan's frames disagree where they show the same place; with the noise
    plane they agree as the network without noise does. Steps of 8 px: whole pixels at every scale of this
    3-scale network (pooled 4, 2, 1); a finer step moves the coarse noise by a rounded amount."""
    model = load(ckpt, backend=backend)
    corners = [(40, 30 + 8 * i) for i in range(4)]
    frames = crops(corners)
    follows = overlap_change(list(map(frame_stylizer(model), frames)), corners)
    fixed = overlap_change([model.stylize(f, seed=0) for f in frames], corners)
    without = overlap_change([model.stylize(f, noise_factor=0.0) for f in frames], corners)
    assert follows < 0.6 * fixed and follows < 1.5 * without + 0.5


def test_a_still_clip_gets_the_same_noise_in_every_frame(ckpt):
    model = load(ckpt)
    frame = crops([(40, 40)])[0]
    stylize = frame_stylizer(model, seed=3)
    first, second = np.asarray(stylize(frame)), np.asarray(stylize(frame))
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, np.asarray(frame_stylizer(model, seed=4)(frame)))  # the seed picks the plane
    unseeded = [np.asarray(model.stylize(frame, noise_at=(5.0, 7.0))) for _ in "ab"]
    np.testing.assert_array_equal(*unseeded)  # noise_at without a seed: plane 0 for every frame, not a fresh draw


def test_the_place_is_in_the_given_frame_s_pixels_whatever_the_output_size(ckpt):
    model = load(ckpt)
    frame = crops([(40, 40)], side=128)[0]
    half = frame.resize((64, 64), Image.Resampling.LANCZOS)
    resized = np.asarray(model.stylize(frame, max_size=64, seed=1, noise_at=(32.0, -64.0)))
    np.testing.assert_array_equal(resized, np.asarray(model.stylize(half, seed=1, noise_at=(16.0, -32.0))))
    tensor = torch.from_numpy(np.array(half)).permute(2, 0, 1).float() / 255
    batch = model.stylize(torch.stack([tensor, tensor]), seed=1, noise_at=(16.0, -32.0))
    assert torch.equal(batch[0], batch[1])  # every image of a batch at that place gets the same noise


def test_a_tiled_frame_reads_the_same_noise_as_a_whole_one(ckpt):
    """Frames too large for memory go by tiles (texnet.tiling); they read the plane at each tile's place, so the
    result is the whole frame's (8-bit rounding aside), at any output size."""
    model = load(ckpt)
    frame = crops([(40, 40)], side=160)[0]
    options = {"max_size": 128, "seed": 2, "noise_at": (13.0, -27.0)}
    whole = np.asarray(model.stylize(frame, **options), dtype=int)
    tiled = np.asarray(model.stylize(frame, tile_size=32, **options), dtype=int)
    assert np.abs(tiled - whole).max() <= 1
    other = np.asarray(model.stylize(frame, tile_size=32, **{**options, "noise_at": (13.0, -35.0)}), dtype=int)
    assert np.abs(other - whole).mean() > 1  # another place, other noise
