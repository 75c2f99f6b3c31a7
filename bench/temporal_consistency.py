"""How still a stylised clip stays, frame to frame: the noise settings a video or animation can take, side by side.

Three clips made from the held-out astronaut (never a training photo), 256 px frames: six copies of one crop with
Gaussian noise of 2 grey levels (a still camera), eight crops 8 px further right each (a pan) and eight crops up to
6 px off in each direction at random (a shaking hand). For each model and noise setting (noise that follows the
picture, as stylize.py does: texnet.batch.frame_stylizer; one draw fixed in the frame, ``seed=0``; a fresh draw
per frame; no noise) it prints the mean absolute change between consecutive frames where they show the same part
of the scene (grey levels; the input's own figures first). Then the still frames written as a GIF and read back,
with a palette per frame (Pillow's default) and with texnet's one palette (texnet.animation.shared_palette). Last,
what the noise settings cost: content and style loss of the held-out photos with the trained noise drawn by torch,
from the noise plane "follows" uses (texnet.noise_field) and without noise (bench/quality_vs_gatys.py's crops and
loss).

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
from texnet.batch import frame_stylizer
from texnet.inference import load
from texnet.losses import build_perceptual_loss, default_loss_config
from texnet.motion import overlap_change

SHIFT = 8  # px the pan moves each frame
SHAKE = 6  # px at most the shaking camera is off its place, in each direction
# each setting makes a clip's frame stylizer (a fresh one per clip: the tracker of "follows" starts at its first frame)
SETTINGS = {
    "follows": frame_stylizer,  # what stylize.py does: one noise plane, each frame's window where the scene moved
    "one draw": lambda model: lambda frame: model.stylize(frame, seed=0),  # session 29's: the noise fixed in the frame
    "fresh draw": lambda model: lambda frame: model.stylize(frame),
    "no noise": lambda model: lambda frame: model.stylize(frame, noise_factor=0.0),
}


def clips() -> dict[str, tuple[list[Image.Image], list[tuple[int, int]]]]:
    """The still clip, the pan and the shaking camera, each as (frames, where each frame's corner lies in the scene)."""
    big = Image.fromarray(data.astronaut()).resize((400, 400), Image.Resampling.LANCZOS)
    base = np.asarray(big.crop((0, 40, 256, 296)), dtype=np.float32)
    rng = np.random.default_rng(0)
    still = [Image.fromarray(np.clip(base + rng.normal(0, 2, base.shape), 0, 255).astype(np.uint8)) for _ in range(6)]
    pan = [(40, SHIFT * i) for i in range(8)]
    shake = [(40 + int(y), 64 + int(x)) for y, x in rng.integers(-SHAKE, SHAKE + 1, (8, 2))]
    crop = lambda corners: [big.crop((x, y, x + 256, y + 256)) for y, x in corners]  # noqa: E731
    return {"still": (still, [(0, 0)] * 6), "pan": (crop(pan), pan), "shake": (crop(shake), shake)}


def arrays(frames: list[Image.Image]) -> list[np.ndarray]:
    return [np.asarray(f.convert("RGB"), dtype=np.float32) for f in frames]


def gif_round_trip(frames: list[Image.Image]) -> tuple[list[Image.Image], int]:
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return [f.convert("RGB") for f in ImageSequence.Iterator(Image.open(buffer))], buffer.tell()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", nargs="+", default=["mosaic", "starry", "pebbles"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    clip = clips()
    print(
        "input: "
        + ", ".join(f"{name} {overlap_change(*c):.2f}" for name, c in clip.items())
        + " grey levels between frames"
    )
    print(f"{'model':10s} {'noise':11s} " + " ".join(f"{name:>6s}" for name in clip))
    names, photos = held_out_photos(None, 256)
    still, corners = clip["still"]
    for checkpoint in args.checkpoint:
        model = load(checkpoint)
        outputs = {}
        for setting, make in SETTINGS.items():
            results = {name: list(map(make(model), frames)) for name, (frames, _) in clip.items()}
            outputs[setting] = results["still"]
            figures = " ".join(f"{overlap_change(results[name], clip[name][1]):6.2f}" for name in clip)
            print(f"{checkpoint:10s} {setting:11s} {figures}")
        for palette, frames in (("per frame", outputs["follows"]), ("shared", shared_palette(outputs["follows"]))):
            back, size = gif_round_trip(frames)
            error = np.mean([np.abs(x - y).mean() for x, y in zip(arrays(back), arrays(outputs["follows"]))])
            print(
                f"{checkpoint:10s} GIF, palette {palette}: still {overlap_change(back, corners):.2f}, "
                f"{error:.2f} from the frames, {size / 1024:.0f} KB"
            )
        perceptual = build_perceptual_loss(model.texture_tensors[0], **default_loss_config())
        for label, options in (
            ("trained noise", {"seed": 0}),
            ("noise plane", {"seed": 0, "noise_at": (0.0, 0.0)}),  # the noise "follows" draws (texnet.noise_field)
            ("no noise", {"noise_factor": 0.0}),
        ):
            terms = [terms_of(perceptual, model.stylize(p[None], **options), p[None]) for p in photos]
            content, style = (float(np.mean([t[k] for t in terms])) for k in ("content", "style"))
            print(f"{checkpoint:10s} {label} on {', '.join(names)}: content {content:.2f}, style {style:.2f}")


if __name__ == "__main__":
    main()
