"""The app's Stylise tab without its layout: uploads through stylize.py's own photo loop (texnet.batch), new
textures from texture-mode networks, and the timed comparison with Gatys et al. on the same loss.

Every function raises :class:`TexnetError` for bad input; the layout shows it with :func:`short_error`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytorch_lightning as pl
from PIL import Image

from texnet.batch import check_failures, frame_stylizer, stylize_files
from texnet.checkpoint import describe_checkpoint, read_checkpoint
from texnet.errors import TexnetError
from texnet.gatys import run_gatys
from texnet.image import next_free_file
from texnet.inference import Stylizer
from texnet.motion import SceneTracker

GATYS_MAX_SIZE = 256  # every L-BFGS iteration costs ~2 s at 256 px on 2 CPU cores (conf/stylize.yaml)
MIX_SLIDERS = 8  # textures of a multi-texture network that the page can blend (one slider each)


def short_error(err: Exception | str, *paths: str | Path) -> str:
    """The error's one line with upload paths (deep gradio temp folders) cut to their file names."""
    message = str(err)
    for path in paths:
        if str(path):
            message = message.replace(str(path), Path(path).name)
    return message


def describe_model(stylizer: Stylizer, path: str | Path, shown: str | Path) -> str:
    """A line about a model for the page: texture, mode, training steps, trained noise factor, and its file."""
    steps = describe_checkpoint(read_checkpoint(path))["steps"]
    count = len(stylizer.textures)
    textures = (
        ""
        if count < 2
        else f" ({count} textures: blend them below)"
        if count <= MIX_SLIDERS
        else f" ({count} textures: the first here)"
    )
    return (
        f"**{stylizer.texture_name}**{textures} · {stylizer.mode} network · {steps} training steps · "
        f"trained noise factor {stylizer.noise_factor:g}\n\n`{shown}`"
    )


def slider_mix(stylizer: Stylizer, values: list[float] | None) -> dict[str, float] | None:
    """The mix of the page's texture sliders (one per texture, any non-negative values, scaled here to sum to 1);
    None for a single-texture network or before any slider moved (the first texture)."""
    if not 1 < len(stylizer.textures) <= MIX_SLIDERS or values is None:  # more textures: blend them with stylize.py
        return None
    weights = [max(0.0, float(v or 0)) for v in values[: len(stylizer.textures)]]
    if sum(weights) <= 0:
        raise TexnetError("every texture's weight is 0: move at least one texture slider above 0")
    return {name: w / sum(weights) for name, w in zip(stylizer.textures, weights) if w > 0}


def stylize_frame(
    stylizer: Stylizer,
    frame: np.ndarray,
    noise_factor: float,
    mix: dict[str, float] | None,
    max_size: int,
    tracker: SceneTracker | None = None,
) -> np.ndarray:
    """One webcam frame (H, W, 3 uint8) through the network, its longer side at most `max_size`, with the noise
    every frame of a clip gets (:func:`texnet.batch.frame_stylizer`); `tracker` has seen the stream's earlier frames,
    so the noise moves with the picture when the camera does."""
    if stylizer.mode == "texture":
        raise TexnetError("this model makes textures from noise: pick a stylise model for the webcam")
    stylize = frame_stylizer(stylizer, tracker=tracker, noise_factor=noise_factor, max_size=max_size, mix=mix)
    return np.asarray(stylize(Image.fromarray(frame).convert("RGB")))


def new_textures(
    stylizer: Stylizer, out: Path, seed: int | None, mix: dict[str, float] | None = None
) -> tuple[list, list[str], str]:
    """Four 256 px textures from a texture-mode network (it needs no photo): gallery, files, status."""
    written = []
    for image in stylizer.generate(size=256, num=4, seed=seed, mix=mix):
        path = next_free_file(out / f"{stylizer.texture_name}_texture.png")
        image.save(path)
        written.append(str(path))
    return [(p, "new texture") for p in written], written, f"{len(written)} textures from a texture-mode network."


def stylize_uploads(
    stylizer: Stylizer,
    photos: list[str],
    out: Path,
    noise_factor: float,
    seed: int | None,
    max_size: int | None,
    preserve_color: bool,
    mix: dict[str, float] | None = None,
) -> tuple[list, list[str], str]:
    """Every uploaded photo through :func:`texnet.batch.stylize_files`, as stylize.py does: unreadable ones are
    reported and skipped, an error only when none worked. Returns gallery (photo, result pairs), files, status."""
    inputs = [(Path(p), Path(p)) for p in photos]
    result = stylize_files(
        stylizer,
        inputs,
        lambda name: next_free_file(out / f"{name.stem}_{stylizer.texture_name}{name.suffix}"),
        noise_factor=noise_factor,
        seed=seed,
        max_size=max_size,
        preserve_color=preserve_color,
        mix=mix,
    )
    check_failures(result.failures, len(inputs))
    gallery = []
    for item in result.done:
        gallery += [
            (str(item.source), item.source.name),
            (str(item.output), f"{stylizer.texture_name} · {item.width}x{item.height} · {item.seconds:.2f} s"),
        ]
    shown = " + ".join(f"{w:.0%} {name}" for name, w in mix.items()) if mix else stylizer.texture_name
    status = f"Stylised {len(result.done)} photo(s) with **{shown}**."
    if result.failures:
        status += f"\n\nSkipped {len(result.failures)}:\n" + "\n".join(
            f"- `{src.name}`: {short_error(reason, src)}" for src, reason in result.failures
        )
    return gallery, [str(item.output) for item in result.done], status


class GatysProgress(pl.Callback):
    """Forwards each L-BFGS iteration of run_gatys to the page's progress bar."""

    def __init__(self, progress: gr.Progress, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def on_train_batch_end(self, *args: Any) -> None:
        self.done += 1
        self.progress((self.done, self.total), desc="Gatys (L-BFGS)", unit="iterations")


def compare_with_gatys(
    stylizer: Stylizer,
    checkpoint: str | Path,
    photo: str,
    out: Path,
    noise_factor: float,
    seed: int | None,
    iterations: int,
    progress: gr.Progress,
) -> tuple[str, str, str]:
    """`photo` through the network and through Gatys' L-BFGS on the loss the network trained with, at the same
    size, timed: (network image, Gatys image, a Markdown report)."""
    loss = read_checkpoint(checkpoint)["hyper_parameters"]["loss"]
    stylizer.stylize(
        photo, noise_factor=noise_factor, seed=seed, max_size=GATYS_MAX_SIZE
    )  # warm-up: first call builds the runtime
    start = time.perf_counter()
    network = stylizer.stylize(photo, noise_factor=noise_factor, seed=seed, max_size=GATYS_MAX_SIZE)
    network_s = time.perf_counter() - start
    network_path = next_free_file(out / f"{Path(photo).stem}_{stylizer.texture_name}_network.png")
    network.save(network_path)
    texture = stylizer.texture
    texture_path = next_free_file(out / f"{stylizer.texture_name}.png")
    texture.save(texture_path)
    progress((0, iterations), desc="Gatys (L-BFGS)", unit="iterations")
    result = run_gatys(
        texture_path,
        out / f"gatys_{Path(photo).stem}",
        content=photo,
        loss=loss,
        optimizer="lbfgs",
        iterations=iterations,
        max_size=GATYS_MAX_SIZE,
        texture_size=max(texture.size),
        save_every=0,
        progress=False,
        callbacks=[GatysProgress(progress, iterations)],
    )
    report = (
        f"| {Path(photo).name}, {network.width}x{network.height} px | time |\n|---|---|\n"
        f"| texture network (one forward pass) | **{network_s:.3f} s** |\n"
        f"| Gatys et al. (L-BFGS, {result.iterations} iterations) | **{result.seconds:.1f} s** |\n\n"
        f"The network is {result.seconds / max(network_s, 1e-6):,.0f}x faster here; both minimise the "
        f"same perceptual loss (Gatys ends at {result.final['total']:.4g})."
    )
    return str(network_path), str(result.image_path), report
