"""The patch term, three ways in one run: the full normalised cross-correlation search with the image's patches
unfolded (session 35), the search in the texture patches' principal directions with the patches unfolded
(session 36), and texnet.losses.PatchLoss (that search, the loss summed without unfolding).

For the held-out photos and a crop of the texture, at 128 px (batch 4) and 256 px (batch 1): seconds for the
term's forward and backward, and the patch distance each ends at (lower = nearer patches found; the two
principal-direction arms find the same patches, so their distances agree to float32 rounding). The references
are written here, not in texnet: they are what PatchLoss replaced, kept only to check it.

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


def correlation_kernels(patches: torch.Tensor, channels: int) -> torch.Tensor:
    """The texture patches at unit norm as 3x3 filters, built once as session 35's PatchLoss kept them."""
    return nn.functional.normalize(patches, dim=1).view(patches.shape[0], channels, 3, 3)


def full_correlation(
    loss: PatchLoss, patches: torch.Tensor, kernels: torch.Tensor, features: torch.Tensor
) -> torch.Tensor:
    """PatchLoss's distance with the nearest patch found by the full correlation (every dimension), per image."""
    with torch.no_grad():
        nearest = nn.functional.conv2d(features, kernels).flatten(2).argmax(dim=1)
    own = nn.functional.unfold(features, 3).transpose(1, 2)
    return (own - patches[nearest]).pow(2).mean(dim=(1, 2)) / loss.scale


def unfolded_subspace(loss: PatchLoss, patches: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """Session 36's PatchLoss.forward: PatchLoss's search, the distance over the image's unfolded patches."""
    own = nn.functional.unfold(features, 3).transpose(1, 2)
    with torch.no_grad():
        query = own @ loss.basis
        nearest = torch.cat([(q @ loss.keys.t()).argmax(dim=2) for q in query.split(4096, dim=1)], dim=1)
    return (own - patches[nearest]).pow(2).mean(dim=(1, 2)) / loss.scale


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
    patches = loss.patches  # (L, C*9), as both references kept them
    kernels = correlation_kernels(patches, texture_features.shape[1])
    photos = torch.cat([square(load_image(builtin_photo_dir() / name, 256), 256) for name in BUILTIN_VAL_PHOTOS])
    print(
        f"{'images':34} {'full s':>7} {'s36 s':>7} {'PatchLoss s':>11} {'vs full':>8} {'vs s36':>7} "
        f"{'full dist':>9} {'s36 dist':>9} {'PatchLoss dist':>14}"
    )
    for size, batch in ((128, 4), (256, 1)):
        crop = texture[..., :size, :size]
        for name, images in (
            (f"held-out photos, {size} px x {batch}", square(photos, size)),
            (f"a texture crop, {size} px x {batch}", crop),
        ):
            images = images.repeat(-(-batch // images.shape[0]), 1, 1, 1)[:batch]
            with torch.no_grad():
                features = vgg(images)[args.layer]
            full_s, full_d = timed(lambda x: full_correlation(loss, patches, kernels, x), features, args.repeats)
            old_s, old_d = timed(lambda x: unfolded_subspace(loss, patches, x), features, args.repeats)
            new_s, new_d = timed(loss, features, args.repeats)
            print(
                f"{name:34} {full_s:7.3f} {old_s:7.3f} {new_s:11.3f} {full_s / new_s:7.1f}x {old_s / new_s:6.1f}x "
                f"{full_d:9.4f} {old_d:9.4f} {new_d:14.4f}"
            )


if __name__ == "__main__":
    main()
