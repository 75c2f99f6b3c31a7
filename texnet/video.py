"""Videos (MP4, MOV, MKV, WebM, AVI): every frame stylised as it is decoded, the sound copied, through PyAV.

PyAV bundles FFmpeg, so no system tool is needed; it is optional (``pip install -e '.[video]'``). As in
texnet.animation, the noise stays on the picture, so the texture neither flickers nor swims. Frames stream from
decoder to encoder, so a video's length is bounded by the disk, not by memory; the file appears only when complete.
Frames are turned upright first (a phone's portrait video is stored sideways with a display rotation).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from texnet.animation import frame_count
from texnet.errors import TexnetError

log = logging.getLogger(__name__)

# suffix -> (video encoder, its options): H.264 at near-transparent quality where the container takes it
ENCODERS = {
    ".mp4": ("libx264", {"crf": "18", "preset": "medium"}),
    ".m4v": ("libx264", {"crf": "18", "preset": "medium"}),
    ".mov": ("libx264", {"crf": "18", "preset": "medium"}),
    ".mkv": ("libx264", {"crf": "18", "preset": "medium"}),
    ".webm": ("libvpx-vp9", {"crf": "30", "b:v": "0"}),
    ".avi": ("mpeg4", {"qscale:v": "3"}),
}
VIDEO_SUFFIXES = tuple(ENCODERS)


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def is_clip(path: str | Path) -> bool:
    """Whether `path` is a video (by its suffix) or an animation (texnet.animation.frame_count): frames to stylise
    with noise that stays on the picture, not one photo. An unreadable image is a one-line TexnetError."""
    return is_video(path) or frame_count(path) > 1


def require_av(what: str | Path) -> Any:
    """The `av` module, or a one-line error saying how to install it."""
    try:
        import av
    except ImportError:
        raise TexnetError(
            f"'{what}' is a video, which needs PyAV: pip install -e '.[video]' (or pip install av)"
        ) from None
    return av


def upright(frame: Any) -> Image.Image:
    """A decoded frame as an RGB image the way players show it: phones store portrait video as landscape frames
    with a display rotation (counter-clockwise degrees), which the stylised video, written without one, bakes in."""
    image = frame.to_image()
    return image.rotate(frame.rotation, expand=True) if frame.rotation else image


def stylize_video(
    src: str | Path,
    output: str | Path,
    stylize_frame: Callable[[Image.Image], Image.Image],
    progress: bool = False,
) -> tuple[Path, tuple[int, int]]:
    """Decode `src`, pass every frame through `stylize_frame`, encode the results into `output` (its suffix picks
    the container and codec, :data:`ENCODERS`) at the source's frame rate, with the source's sound copied when
    the output has the source's suffix. Returns the path and the frames' (width, height)."""
    src, output = Path(src), Path(output)
    if output.suffix.lower() not in ENCODERS:
        raise TexnetError(
            f"output '{output}' cannot hold the video '{src}': name a {', '.join(VIDEO_SUFFIXES)} file, or a folder"
        )
    av = require_av(src)
    try:
        source = av.open(str(src))
    except av.FFmpegError as err:
        raise TexnetError(f"video '{src}' is not a readable video ({err}): replace or remove it") from None
    partial = output.with_name(f".{output.name}.partial{output.suffix}")  # renamed to `output` once complete
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with source, av.open(str(partial), "w") as sink:
            if not source.streams.video:
                raise TexnetError(f"video '{src}' holds no video stream: give a video file")
            video = source.streams.video[0]
            video.thread_type = "AUTO"
            sound = source.streams.audio[0] if source.streams.audio else None
            if sound is not None and output.suffix.lower() != src.suffix.lower():
                log.warning(
                    "'%s': the sound is not copied into a %s file (use %s for it)", src, output.suffix, src.suffix
                )
                sound = None
            rate = video.average_rate or video.guessed_rate or Fraction(25)
            codec, options = ENCODERS[output.suffix.lower()]
            # MPEG-4 part 2 takes time bases up to 1/65535 (MP4 sources often have 1/90000): the nominal rate then
            exact = video.time_base is not None and (codec != "mpeg4" or video.time_base.denominator <= 65535)
            encoder, copied, size, pending, count = None, None, None, [], 0  # pending: sound before the picture's size
            total = video.frames or None
            bar = tqdm(total=total, desc=src.name, unit="frame", leave=False, disable=not progress)
            streams = [video] if sound is None else [video, sound]
            for packet in source.demux(streams):
                if packet.stream is sound:
                    if packet.dts is None:  # the demuxer's flush packet
                        continue
                    if copied is None:  # no stream may be added once muxing has begun: wait for the picture's
                        pending.append(packet)
                        continue
                    packet.stream = copied
                    sink.mux(packet)
                    continue
                for frame in packet.decode():
                    image = stylize_frame(upright(frame))
                    if encoder is None:
                        # 4:2:0 chroma needs even sides: an odd one loses its last pixel row or column
                        size = (image.width - image.width % 2, image.height - image.height % 2)
                        encoder = sink.add_stream(codec, rate=rate, options=options)
                        encoder.width, encoder.height, encoder.pix_fmt = *size, "yuv420p"
                        if exact:  # each frame at its source time: a phone's variable frame rate stays in step
                            encoder.codec_context.time_base = video.time_base
                        if sound is not None:
                            copied = sink.add_stream_from_template(sound)
                            for early in pending:
                                early.stream = copied
                                sink.mux(early)
                            pending.clear()
                    if image.size != size:
                        image = image.crop((0, 0, *size))
                    out = av.VideoFrame.from_image(image)
                    if exact and frame.pts is not None:
                        out.pts, out.time_base = frame.pts, video.time_base
                    else:
                        out.pts, out.time_base = count, 1 / rate
                    sink.mux(encoder.encode(out))
                    count += 1
                    bar.update()
            bar.close()
            if encoder is None:
                raise TexnetError(f"video '{src}' holds no frames: give a video file")
            sink.mux(encoder.encode(None))  # flush the encoder's delayed frames
    except av.FFmpegError as err:
        partial.unlink(missing_ok=True)
        raise TexnetError(f"video '{src}' could not be stylised ({err})") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(output)
    return output, size
