"""Videos in stylize.py (texnet.video, PyAV): the frames come out stylised at the source's frame rate with its sound,
odd frame sizes are encoded, and a missing PyAV or a broken file is one line with no partial file left behind."""

from __future__ import annotations

import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from test_animation import frames_of
from test_stylize import stylize_cfg, train_checkpoint

from stylize import stylize
from texnet.errors import TexnetError

av = pytest.importorskip("av")  # texnet[video]; make install puts it in (the test extra)
pytestmark = pytest.mark.usefixtures("one_thread")
RATE = 12


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return train_checkpoint(tmp_path_factory.mktemp("video_net"))


def write_video(path: Path, frames, codec: str = "libx264", pix_fmt: str = "yuv420p", sound: bool = True) -> Path:
    """`frames` (PIL) at RATE frames/s, with one second of a 440 Hz tone in AAC if `sound`."""
    with av.open(str(path), "w") as out:
        video = out.add_stream(codec, rate=Fraction(RATE))
        video.width, video.height, video.pix_fmt = *frames[0].size, pix_fmt
        audio = out.add_stream("aac", rate=16000) if sound else None
        for frame in frames:
            out.mux(video.encode(av.VideoFrame.from_image(frame)))
        out.mux(video.encode(None))
        if audio is not None:
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)[None]
            samples = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            samples.sample_rate = 16000
            out.mux(audio.encode(samples))
            out.mux(audio.encode(None))
    return path


def decoded(path: Path) -> tuple[list[np.ndarray], av.container.InputContainer]:
    container = av.open(str(path))
    frames = [np.asarray(f.to_image(), dtype=np.int16) for f in container.decode(video=0)]
    container.seek(0)
    return frames, container


def test_a_video_comes_out_stylised_at_its_frame_rate_with_its_sound(tmp_path, ckpt):
    source = write_video(tmp_path / "clip.mp4", frames_of(0, 6))
    (out,) = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={source}", f"output={tmp_path / 'out'}"))
    assert out == tmp_path / "out" / "clip.mp4" and [p.name for p in (tmp_path / "out").iterdir()] == ["clip.mp4"]
    frames, container = decoded(out)
    originals, _ = decoded(source)
    with container:
        video, (sound,) = container.streams.video[0], container.streams.audio
        assert (
            video.average_rate == RATE and (video.width, video.height) == (64, 48) and sound.codec_context.name == "aac"
        )
    assert len(frames) == 6 and all(np.abs(f - o).mean() > 5 for f, o in zip(frames, originals))


def test_each_frame_keeps_its_time_at_a_variable_frame_rate(tmp_path, ckpt):
    """A phone's variable frame rate: frames at 0, 1/12, 3/12 and 4/12 s come out at those times."""
    source = tmp_path / "vfr.mp4"
    with av.open(str(source), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(RATE))
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        for tick, image in zip((0, 1, 3, 4), frames_of(3, 4)):
            frame = av.VideoFrame.from_image(image)
            frame.pts, frame.time_base = tick, Fraction(1, RATE)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
    (out,) = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={source}", f"output={tmp_path / 'out'}"))
    with av.open(str(out)) as container:
        assert [float(f.time) for f in container.decode(video=0)] == pytest.approx([0, 1 / 12, 3 / 12, 4 / 12])


def test_odd_frame_sizes_lose_their_last_row_and_column(tmp_path, ckpt):
    """4:2:0 video needs even sides; a lossless FFV1 source of 65x49 px comes out 64x48."""
    frames = [f.resize((65, 49)) for f in frames_of(1, 3)]
    source = write_video(tmp_path / "odd.mkv", frames, codec="ffv1", pix_fmt="yuv444p", sound=False)
    (out,) = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={source}", f"output={tmp_path / 'out.mkv'}"))
    stylised, container = decoded(out)
    container.close()
    assert len(stylised) == 3 and stylised[0].shape == (48, 64, 3)


def test_a_phones_rotated_video_comes_out_upright(tmp_path, ckpt):
    """A portrait phone video: landscape frames and a display rotation of 90 degrees counter-clockwise."""
    from texnet.video import upright

    marked = np.zeros((48, 64, 3), np.uint8)
    marked[:16, :16] = 255  # a white block at the stored frame's top left
    source = tmp_path / "portrait.mp4"
    with av.open(str(source), "w") as out:
        video = out.add_stream("libx264", rate=Fraction(RATE))
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        video.set_display_rotation(90)
        for _ in range(2):
            out.mux(video.encode(av.VideoFrame.from_ndarray(marked, format="rgb24")))
        out.mux(video.encode(None))
    with av.open(str(source)) as container:
        shown = np.asarray(upright(next(container.decode(video=0))).convert("L"))
    assert (
        shown.shape == (64, 48) and shown[-16:, :16].mean() > 200 and shown[:16, :16].mean() < 50
    )  # top left -> bottom left
    (out,) = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={source}", f"output={tmp_path / 'out'}"))
    with av.open(str(out)) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height, frame.rotation) == (48, 64, 0)


def test_a_broken_video_is_one_line_and_leaves_no_file(tmp_path, ckpt):
    source = tmp_path / "broken.mp4"
    source.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a video" * 50)
    with pytest.raises(TexnetError, match=r"video '.*broken.mp4' is not a readable video"):
        stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={source}", f"output={tmp_path / 'out'}"))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_video_needs_pyav_and_says_how_to_get_it(tmp_path, ckpt, monkeypatch):
    source = write_video(tmp_path / "clip.mp4", frames_of(2, 2), sound=False)
    monkeypatch.setitem(sys.modules, "av", None)  # import av now raises ImportError
    with pytest.raises(TexnetError, match=r"'.*clip.mp4' is a video, which needs PyAV: pip install -e '.\[video\]'"):
        stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={source}", f"output={tmp_path / 'out'}"))
