"""How still a stylised clip stays, frame to frame: the noise settings a video or animation can take, side by side.

Two clips made from the held-out astronaut (never a training photo): six copies of one 256 px crop with Gaussian
noise of 2 grey levels (a still camera) and eight 256 px crops 8 px further right each (a pan). For each model and
noise setting (one draw for every frame, as stylize.py does: ``seed=0``; a fresh draw per frame; no noise) it
prints the mean absolute change between consecutive frames of the still clip, and on the pan between frame t
shifted by 8 px and frame t + 1 (grey levels; the input's own figures for reference). Then the same still frames
written as a GIF and read back, with a palette per frame (Pillow's default) and with texnet's one palette
(texnet.animation.shared_palette). Last, what no noise costs: content and style loss of the held-out photos with
the trained noise and without (bench/quality_vs_gatys.py's crops and loss).

    .venv/bin/python bench/temporal_consistency.py [--checkpoint mosaic starry pebbles]
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageSequence
from skimage import data

sys.path.insert(0, str(Path(__file__).parent))
from quality_vs_gatys import held_out_photos, terms_of

from texnet.animation import shared_palette
from texnet.inference import load
from texnet.losses import build_perceptual_loss, default_loss_config

SHIFT = 8  # px the pan moves each frame
SETTINGS = {"one draw": {"seed": 0}, "fresh draw": {"seed": None}, "no noise": {"noise_factor": 0.0}}


def clips() -> tuple[list[Image.Image], list[Image.Image]]:
    """(still, pan): see the module doc."""
    big = Image.fromarray(data.astronaut()).resize((400, 400), Image.Resampling.LANCZOS)
    base = np.asarray(big.crop((0, 40, 256, 296)), dtype=np.float32)
    rng = np.random.default_rng(0)
    still = [Image.fromarray(np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)) for _ in range(6)]
    pan = [big.crop((SHIFT * i, 40, SHIFT * i + 256, 296)) for i in range(8)]
    return still, pan


def arrays(frames: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(f.convert("RGB"), dtype=np.float32) for f in frames]


def still_change(frames: list[Image.Image]) -> float:
    a = arrays(frames)
    return float(np.mean([np.abs(x - y).mean() for x, y in zip(a, a[1:])]))


def pan_change(frames: list[Image.Image]) -> float:
    a = arrays(frames)
    return float(np.mean([np.abs(x[:, SHIFT:] - y[:, :-SHIFT]).mean() for x, y in zip(a, a[1:])]))


def gif_round_trip(frames: list[Image.Image]) -> tuple[list[Image.Image], int]:
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return [f.convert("RGB") for f in ImageSequence.Iterator(Image.open(buffer))], buffer.tell()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", default=["mosaic", "starry", "pebbles"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    still, pan = clips()
    print(f"input: still {still_change(still):.2f}, pan {pan_change(pan):.2f} grey levels between frames")
    print(f"{'model':10s} {'noise':11s} {'still':>6s} {'pan':>6s}")
    names, photos = held_out_photos(None, 256)
    for checkpoint in args.checkpoint:
        model = load(checkpoint)
        outputs = {}
        for setting, options in SETTINGS.items():
            outputs[setting] = [model.stylize(f, **options) for f in still]
            moving = [model.stylize(f, **options) for f in pan]
            print(f"{checkpoint:10s} {setting:11s} {still_change(outputs[setting]):6.2f} {pan_change(moving):6.2f}")
        for palette, frames in (("per frame", outputs["one draw"]), ("shared", shared_palette(outputs["one draw"]))):
            back, size = gif_round_trip(frames)
            error = np.mean([np.abs(x - y).mean() for x, y in zip(arrays(back), arrays(outputs["one draw"]))])
            print(
                f"{checkpoint:10s} GIF, palette {palette}: still {still_change(back):.2f}, "
                f"{error:.2f} from the frames, {size / 1024:.0f} KB"
            )
        perceptual = build_perceptual_loss(model.texture_tensors[0], **default_loss_config())
        for label, options in (("trained noise", {"seed": 0}), ("no noise", {"noise_factor": 0.0})):
            terms = [terms_of(perceptual, model.stylize(p[None], **options), p[None]) for p in photos]
            content, style = (float(np.mean([t[k] for t in terms])) for k in ("content", "style"))
            print(f"{checkpoint:10s} {label} on {', '.join(names)}: content {content:.2f}, style {style:.2f}")


if __name__ == "__main__":
    main()
