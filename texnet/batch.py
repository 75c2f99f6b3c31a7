"""Stylise many photo files with one trained network: the loop that stylize.py and the web app share.

Photos are read one by one; consecutive photos of the same (resized) size go through the network together,
up to ``batch_size``. An animated GIF, WebP or PNG becomes an animation of the same format and timing
(texnet.animation), a video a video (texnet.video), frame by frame with noise that stays on the picture
(:func:`frame_stylizer`). A photo that cannot be read or stylised is recorded with its one-line reason and the
others go on; :func:`check_failures` turns "nothing at all could be done" into an error and lists the rest.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from texnet.animation import stylize_animation
from texnet.errors import TexnetError
from texnet.image import save_image, tensor_to_pil
from texnet.inference import Stylizer, prepare_image
from texnet.motion import SceneTracker
from texnet.tiling import needs_tiles
from texnet.video import is_clip, is_video, stylize_video

log = logging.getLogger(__name__)


@dataclass
class Stylized:
    """One photo done: where it came from, where its result went, its size and its share of the batch's time."""

    source: Path
    output: Path
    width: int
    height: int
    seconds: float


@dataclass
class BatchResult:
    done: list[Stylized] = field(default_factory=list)
    failures: list[tuple[Path, str]] = field(default_factory=list)  # (photo, one-line reason)


def stylize_files(
    stylizer: Stylizer,
    inputs: Sequence[tuple[Path, Path]],
    target: Callable[[Path], Path],
    *,
    noise_factor: float | None = None,
    seed: int | None = None,
    max_size: int | None = None,
    size: int | None = None,
    preserve_color: bool = False,
    batch_size: int = 1,
    progress: bool = False,
    tile_size: int | None = None,
    mix: str | dict[str, float] | None = None,
) -> BatchResult:
    """Stylise every (photo, name) of `inputs` and save each result at ``target(name)`` (a free path), `name`'s
    suffix being what is written: ``.png`` for a photo, an animation's or video's own for an animation or video.

    `noise_factor`, `seed`, `max_size`, `size`, `preserve_color` and `mix` are :meth:`Stylizer.stylize`'s; `seed` seeds
    every batch, so a photo's result depends on the seed and the batch it is in, not on the photos before it.
    A photo too large to stylise whole in memory (or every photo, with `tile_size`) goes alone, by tiles
    (texnet.tiling), read and written in 8 bits; so does every frame of an animation or video that needs it
    (:func:`frame_stylizer`).
    """
    result = BatchResult()
    batch: list[tuple[Path, Path, torch.Tensor]] = []

    def flush() -> None:
        start = time.perf_counter()
        try:
            out = stylizer.stylize(
                torch.cat([t for _, _, t in batch]),
                noise_factor=noise_factor,
                seed=seed,
                preserve_color=preserve_color,
                mix=mix,
            )
        except TexnetError as err:
            result.failures.extend((src, str(err)) for src, _, _ in batch)
        else:
            seconds = (time.perf_counter() - start) / len(batch)
            for (src, name, _), image in zip(batch, out):
                path = save_image(tensor_to_pil(image), target(name.with_suffix(".png")), overwrite=True)
                result.done.append(Stylized(src, path, image.shape[-1], image.shape[-2], seconds))
        batch.clear()

    options = dict(
        noise_factor=noise_factor,
        seed=seed,
        max_size=max_size,
        size=size,
        preserve_color=preserve_color,
        tile_size=tile_size,
        mix=mix,
    )
    with logging_redirect_tqdm():
        for src, name in tqdm(inputs, desc="stylize", unit="img", disable=len(inputs) < 2 or not progress):
            try:
                if is_clip(src):
                    start = time.perf_counter()
                    frames = stylize_video if is_video(src) else stylize_animation
                    path, (width, height) = frames(src, target(name), frame_stylizer(stylizer, **options), progress)
                    result.done.append(Stylized(src, path, width, height, time.perf_counter() - start))
                    continue
                if tile_size or needs_tiles(stylizer, src, max_size, size):
                    start = time.perf_counter()
                    image = stylizer.stylize(src, **options)
                    path = save_image(image, target(name.with_suffix(".png")), overwrite=True)
                    result.done.append(Stylized(src, path, image.width, image.height, time.perf_counter() - start))
                    continue
                tensor = prepare_image(src, max_size, size)
            except TexnetError as err:
                result.failures.append((src, str(err)))
                continue
            if batch and (batch[0][2].shape != tensor.shape or len(batch) >= max(1, batch_size)):
                flush()
            batch.append((src, name, tensor))
        if batch:
            flush()
    return result


def frame_stylizer(
    stylizer: Stylizer, seed: int | None = None, tracker: SceneTracker | None = None, **options: Any
) -> Callable[[Image.Image], Image.Image]:
    """Stylise a clip's frames, given in order, with noise that stays on the picture: one noise plane for the clip
    (`seed`, default 0), each frame's window onto it where the frame lies in the scene (texnet.motion), so a still
    camera's frames all get the same noise and a moving camera's noise moves with the picture. A fresh draw per
    frame makes the texture flicker; one draw for every frame makes it swim over a pan (docs/results.md, sessions
    29-30). `tracker`: one that has seen the clip's earlier frames (the web app's webcam stream); `options` are
    :meth:`Stylizer.stylize`'s."""
    seed = 0 if seed is None else seed
    tracker = tracker or SceneTracker()
    return lambda frame: stylizer.stylize(frame, seed=seed, noise_at=tracker.locate(frame), **options)


def check_failures(failures: Sequence[tuple[Path, str]], total: int) -> None:
    """Inputs that failed, logged once at the end; a TexnetError only when none of the `total` could be done."""
    if not failures:
        return
    if len(failures) == total:
        raise TexnetError(f"none of the {total} input(s) could be stylised; first: {failures[0][1]}")
    log.warning("%d of %d inputs were skipped:", len(failures), total)
    for src, reason in failures:
        log.warning("  %s: %s", src, reason)
