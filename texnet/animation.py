"""Animated images (GIF, WebP, APNG): every frame in, a stylised animation out, with the source's timing.

Pillow reads and writes all three, so animations need no video library. A stylised animation's noise stays on
the picture (texnet.batch.frame_stylizer): the texture holds still wherever the picture does, where a fresh draw
per frame would make it flicker, and moves with it when it pans. Multi-page TIFFs and phones' multi-picture
JPEGs are single photos.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageSequence
from tqdm import tqdm

from texnet.errors import TexnetError
from texnet.image import MAX_PIXELS, open_image, pixel_limit_lifted, to_rgb

# Pillow format -> the suffixes texnet writes it under
ANIMATED_SUFFIXES = {"GIF": (".gif",), "WEBP": (".webp",), "PNG": (".png", ".apng")}
# WebP lossy at quality 90; GIF 256 colours a frame (shared_palette); APNG lossless
SAVE_OPTIONS = {"GIF": {}, "WEBP": {"quality": 90}, "PNG": {}}


@dataclass
class Animation:
    """The frames of an animated image (RGB, alpha onto white), each one's duration in ms, and its loop count."""

    frames: list[Image.Image]
    durations: list[int]
    loop: int | None  # 0: forever; None: as the source, which said nothing (a GIF then plays once)


def frame_count(path: str | Path) -> int:
    """How many frames `path` holds if it is an animation (GIF, WebP, APNG); 1 for every other image."""
    img = open_image(path)
    with img:
        return img.n_frames if img.format in ANIMATED_SUFFIXES and getattr(img, "is_animated", False) else 1


def read_animation(path: str | Path, what: str = "animation") -> Animation:
    """Every frame of `path`, composited as a viewer shows it; all frames together at most MAX_PIXELS."""
    img = open_image(path, what)
    with img:
        frames_total = img.width * img.height * img.n_frames
        if frames_total > MAX_PIXELS:
            raise TexnetError(
                f"{what} '{path}' has {img.n_frames} frames of {img.width}x{img.height} px ({frames_total / 1e6:.0f} MP "
                f"in all), above texnet's limit of {MAX_PIXELS / 1e6:.0f} MP: shorten or downscale it first"
            )
        frames, durations = [], []
        try:
            with pixel_limit_lifted():
                for frame in ImageSequence.Iterator(img):
                    frame.load()  # a WebP frame's duration is known once it is decoded
                    durations.append(int(frame.info.get("duration") or 100))  # browsers show 0 ms frames ~100 ms
                    frames.append(to_rgb(frame.copy()))
        except (OSError, SyntaxError, ValueError) as err:
            raise TexnetError(f"{what} '{path}' is not a readable image ({err}): replace or remove it") from None
        return Animation(frames, durations, img.info.get("loop"))


def animation_format(path: Path, source: str | Path) -> str:
    """The Pillow format `path`'s suffix names, or a one-line error if it cannot hold an animation."""
    for fmt, suffixes in ANIMATED_SUFFIXES.items():
        if path.suffix.lower() in suffixes:
            return fmt
    names = ", ".join(s for suffixes in ANIMATED_SUFFIXES.values() for s in suffixes)
    raise TexnetError(
        f"output '{path}' cannot hold the frames of the animation '{source}': name a {names} file, or a folder"
    )


def shared_palette(frames: list[Image.Image], samples: int = 16) -> list[Image.Image]:
    """`frames` in one 256-colour palette (median cut over up to `samples` frames spread over the clip), undithered.

    GIF holds 256 colours a frame; a palette of each frame's own, as Pillow makes by default, gives the same colour
    a different neighbour in each frame and makes still regions shimmer, and dithering redraws its dots every frame.
    """
    picked = frames[:: max(1, len(frames) // samples)][:samples]
    width, height = picked[0].size
    montage = Image.new("RGB", (width, height * len(picked)))
    for i, frame in enumerate(picked):
        montage.paste(frame.resize((width, height)), (0, height * i))
    palette = montage.quantize(256, method=Image.Quantize.MEDIANCUT)
    return [frame.quantize(palette=palette, dither=Image.Dither.NONE) for frame in frames]


def save_animation(frames: Iterable[Image.Image], durations: list[int], loop: int | None, path: Path) -> Path:
    """Write `frames` as one animated file in the format of `path`'s suffix (see :func:`animation_format`)."""
    fmt = animation_format(path, path)
    frames = list(frames)
    first, *rest = shared_palette(frames) if fmt == "GIF" else frames
    options = dict(SAVE_OPTIONS[fmt], save_all=True, append_images=rest, duration=durations, format=fmt)
    if loop is not None:
        options["loop"] = loop
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")  # renamed once whole: never a half-written animation
    try:
        first.save(partial, **options)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return partial.replace(path)


def stylize_animation(
    src: str | Path,
    output: str | Path,
    stylize_frame: Callable[[Image.Image], Image.Image],
    progress: bool = False,
) -> tuple[Path, tuple[int, int]]:
    """Pass every frame of the animation `src` through `stylize_frame` (e.g. ``texnet.batch.frame_stylizer``) and
    write them to `output` (its suffix picks GIF, WebP or APNG) with the source's frame durations and loop count;
    returns the path and the frames' (width, height)."""
    src, output = Path(src), Path(output)
    animation_format(output, src)  # an output that cannot hold an animation: one line before any work
    animation = read_animation(src)
    frames = [
        stylize_frame(frame)
        for frame in tqdm(animation.frames, desc=src.name, unit="frame", leave=False, disable=not progress)
    ]
    return save_animation(frames, animation.durations, animation.loop, output), frames[0].size
