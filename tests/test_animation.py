"""Animated GIF, WebP and PNG in stylize.py: an animation comes out in its own format and timing, its frames share
one noise (where the picture stands still) and a GIF one palette, and what cannot be done (an output file that cannot hold frames, too many
frames, Gatys on every frame) is one line; the Python API says when it stylised only the first frame."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageSequence
from test_stylize import stylize_cfg, train_checkpoint

from stylize import stylize
from texnet.errors import TexnetError

pytestmark = pytest.mark.usefixtures("one_thread")
DURATIONS = [50, 120, 200]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return train_checkpoint(tmp_path_factory.mktemp("animation_net"))


def frames_of(seed: int, count: int = 3) -> list[Image.Image]:
    """`count` different 64x48 frames: a bright square moving across a noisy background."""
    rng = np.random.default_rng(seed)
    background = rng.uniform(0, 255, (48, 64, 3))
    frames = []
    for i in range(count):
        arr = background.copy()
        arr[10:30, 8 + 12 * i : 28 + 12 * i] = (250, 240, 40)
        frames.append(Image.fromarray(arr.astype(np.uint8)))
    return frames


def write_animation(path: Path, frames: list[Image.Image], durations=DURATIONS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path


def read_back(path: Path) -> tuple[list[np.ndarray], list[int], Image.Image]:
    img = Image.open(path)
    frames, durations = [], []
    for frame in ImageSequence.Iterator(img):
        frame.load()
        durations.append(frame.info["duration"])
        frames.append(np.asarray(frame.convert("RGB"), dtype=np.int16))
    return frames, durations, img


@pytest.mark.parametrize("suffix", [".gif", ".webp", ".png"])
def test_an_animation_comes_out_stylised_in_its_own_format_and_timing(tmp_path, ckpt, suffix):
    source = write_animation(tmp_path / f"in/clip{suffix}", frames_of(0))
    (out,) = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={source}", f"output={tmp_path / 'out'}"))
    assert out == tmp_path / "out" / f"clip{suffix}" and [p.name for p in out.parent.iterdir()] == [out.name]
    frames, durations, img = read_back(out)
    assert img.format == Image.open(source).format and img.info["loop"] == 0
    assert durations == DURATIONS and all(f.shape == (48, 64, 3) for f in frames)
    originals, _, _ = read_back(source)
    assert all(np.abs(f - o).mean() > 5 for f, o in zip(frames, originals))  # every frame stylised
    assert np.abs(frames[0] - frames[1]).mean() > 1  # ... each from its own frame


def test_the_frames_of_an_animation_share_one_noise_draw(tmp_path, ckpt):
    """Frames A, B, A: a fresh noise draw per frame would stylise the two A's differently (the texture flickers)."""
    a, b = frames_of(1, 2)
    source = write_animation(tmp_path / "aba.png", [a, b, a], [100, 100, 100])
    (out,) = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={source}", f"output={tmp_path / 'out.png'}"))
    frames, _, _ = read_back(out)
    assert len(frames) == 3 and np.array_equal(frames[0], frames[2]) and not np.array_equal(frames[0], frames[1])


def test_in_a_folder_animations_stay_animations_and_photos_png(tmp_path, ckpt):
    write_animation(tmp_path / "in/clip.gif", frames_of(2))
    frames_of(3, 1)[0].save(tmp_path / "in/still.webp")
    written = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}"))
    assert sorted(p.name for p in written) == ["clip.gif", "still.png"]
    assert Image.open(tmp_path / "out/clip.gif").n_frames == 3 and Image.open(tmp_path / "out/still.png").n_frames == 1


def test_an_output_file_that_cannot_hold_frames_is_one_line(tmp_path, ckpt, caplog):
    source = write_animation(tmp_path / "clip.gif", frames_of(4))
    with caplog.at_level(logging.ERROR), pytest.raises(TexnetError, match=r"cannot hold the frames of the animation"):
        stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={source}", f"output={tmp_path / 'out.jpg'}"))
    assert not (tmp_path / "out.jpg").exists()


def test_an_animation_too_large_for_memory_is_one_line(tmp_path, ckpt, monkeypatch):
    monkeypatch.setattr("texnet.animation.MAX_PIXELS", 64 * 48 * 2)  # two frames' worth
    source = write_animation(tmp_path / "clip.gif", frames_of(5))
    with pytest.raises(TexnetError, match=r"has 3 frames of 64x48 px .* above texnet's limit .*: shorten or downscale"):
        stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={source}", f"output={tmp_path / 'out'}"))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_gatys_says_it_does_not_stylise_animations(tmp_path):
    source = write_animation(tmp_path / "clip.gif", frames_of(6))
    with pytest.raises(TexnetError, match=r"'.*clip.gif' is a video or animation: method=gatys optimises one photo"):
        stylize(stylize_cfg("method=gatys", f"input={source}", f"output={tmp_path / 'out'}", "gatys.iterations=1"))


def test_a_gif_keeps_still_regions_still(tmp_path):
    """GIF's 256 colours: one palette for the clip, so a region the same in two frames decodes the same in both."""
    from texnet.animation import save_animation

    rng = np.random.default_rng(7)
    first = rng.uniform(0, 255, (48, 64, 3)).astype(np.uint8)
    second = first.copy()
    second[:, 32:] = rng.uniform(0, 255, (48, 32, 3))  # the right half changes, the left half stays
    out = save_animation([Image.fromarray(first), Image.fromarray(second)], [100, 100], 0, tmp_path / "a.gif")
    frames, _, _ = read_back(out)
    assert np.array_equal(frames[0][:, :32], frames[1][:, :32])


def test_the_python_api_says_it_stylised_only_the_first_frame(tmp_path, ckpt, caplog):
    from texnet.inference import load

    source = write_animation(tmp_path / "clip.gif", frames_of(8))
    with caplog.at_level(logging.WARNING):
        image = load(ckpt).stylize(source, seed=0)
    assert image.size == (64, 48) and "only its first frame is stylised" in caplog.text
