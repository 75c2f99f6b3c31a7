"""The patch term's nearest-patch search: texnet.losses.PatchLoss (matching in the texture patches' principal
directions) against the full normalised cross-correlation it approximates, in one run.

For the held-out photos and a crop of the texture, at 128 px (batch 4) and 256 px (batch 1): seconds for the
term's forward and backward, and the patch distance each search ends at (lower = nearer patches found; the
distance itself is computed the same way for both). The reference is written here, not in texnet: it is what
PatchLoss replaced, kept only to check it.

    .venv/bin/python bench/patch_matching.py [--texture bench/textures/strokes.jpg] [--layer relu3_1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn
from torchvision.transforms import v2

from texnet.content_sources import BUILTIN_VAL_PHOTOS, builtin_photo_dir
from texnet.image import load_image
from texnet.losses import PatchLoss
from texnet.textures import load_texture
from texnet.vgg import VGGFeatures


def correlation_kernels(loss: PatchLoss, channels: int) -> torch.Tensor:
    """The texture patches at unit norm as 3x3 filters, built once as session 35's PatchLoss kept them."""
    return nn.functional.normalize(loss.patches, dim=1).view(loss.patches.shape[0], channels, 3, 3)


def full_correlation(loss: PatchLoss, kernels: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """PatchLoss's distance with the nearest patch found by the full correlation (every dimension), per image."""
    with torch.no_grad():
        nearest = nn.functional.conv2d(features, kernels).flatten(2).argmax(dim=1)
    own = nn.functional.unfold(features, 3).transpose(1, 2)
    return (own - loss.patches[nearest]).pow(2).mean(dim=(1, 2)) / loss.scale


def timed(fn, features: torch.Tensor, repeats: int) -> tuple[float, float]:
    """(fastest seconds of forward + backward, mean distance) over `repeats` calls after one warm-up."""
    best, distance = float("inf"), 0.0
    for _ in range(repeats + 1):
        x = features.clone().requires_grad_(True)
        start = time.perf_counter()
        value = fn(x).mean()
        value.backward()
        best, distance = min(best, time.perf_counter() - start), value.item()
    return best, distance


def square(image: torch.Tensor, size: int) -> torch.Tensor:
    """The centre square of a (1, 3, H, W) image at `size` px."""
    side = min(image.shape[-2:])
    return nn.functional.interpolate(v2.functional.center_crop(image, [side, side]), size=size, mode="area")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texture", default="bench/textures/strokes.jpg")
    parser.add_argument("--texture-size", type=int, default=512, help="the texture's side, as training uses it")
    parser.add_argument("--layer", default="relu3_1")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    vgg = VGGFeatures([args.layer], arch="vgg16")
    texture = load_texture(args.texture, args.texture_size)
    texture_features = vgg(texture)[args.layer]
    start = time.perf_counter()
    loss = PatchLoss(texture_features)
    print(
        f"{Path(args.texture).name} at {args.texture_size} px, {args.layer}: {loss.patches.shape[0]} texture patches "
        f"of {loss.patches.shape[1]} values, matched in {loss.basis.shape[1]} directions "
        f"(set-up {time.perf_counter() - start:.2f} s)"
    )
    kernels = correlation_kernels(loss, texture_features.shape[1])
    photos = torch.cat([square(load_image(builtin_photo_dir() / name, 256), 256) for name in BUILTIN_VAL_PHOTOS])
    print(f"{'images':34} {'full s':>8} {'PatchLoss s':>12} {'speed-up':>9} {'full dist':>10} {'PatchLoss dist':>15}")
    for size, batch in ((128, 4), (256, 1)):
        crop = texture[..., :size, :size]
        for name, images in (
            (f"held-out photos, {size} px x {batch}", square(photos, size)),
            (f"a texture crop, {size} px x {batch}", crop),
        ):
            images = images.repeat(-(-batch // images.shape[0]), 1, 1, 1)[:batch]
            with torch.no_grad():
                features = vgg(images)[args.layer]
            full_s, full_d = timed(lambda x: full_correlation(loss, kernels, x), features, args.repeats)
            new_s, new_d = timed(loss, features, args.repeats)
            print(f"{name:34} {full_s:8.3f} {new_s:12.3f} {full_s / new_s:8.1f}x {full_d:10.4f} {new_d:15.4f}")


if __name__ == "__main__":
    main()
