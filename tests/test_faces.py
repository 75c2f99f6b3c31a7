"""Faces found in a photo, and the error inside them that bench/quality_vs_gatys.py reports."""

from __future__ import annotations

import pytest
import torch
from torchvision.transforms import v2

from texnet.content_sources import builtin_photo_dir
from texnet.faces import Box, face_error, find_faces
from texnet.image import load_image


def crop(name: str, side: int) -> torch.Tensor:
    return v2.Compose([v2.Resize(side, antialias=True), v2.CenterCrop(side)])(load_image(builtin_photo_dir() / name))


def test_finds_the_astronauts_face_at_any_size_and_none_in_the_coffee() -> None:
    for side in (256, 512):
        faces = find_faces(crop("astronaut.png", side))
        assert len(faces) == 1, faces
        face, scale = faces[0], side / 256  # by eye, the face spans rows ~30-85 and columns ~85-140 at 256 px
        assert 20 * scale <= face.top <= 40 * scale and 75 * scale <= face.left <= 95 * scale
        assert 40 * scale <= face.height <= 70 * scale
    assert find_faces(crop("coffee.png", 256)) == []


def test_face_error_sees_the_face_not_the_background(vgg) -> None:
    photo = crop("astronaut.png", 256)
    faces = find_faces(photo)
    assert face_error(vgg, "relu4_2", photo, photo, faces) == pytest.approx(0.0, abs=1e-6)
    assert face_error(vgg, "relu4_2", photo, photo, []) is None
    noise = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    face, corner = faces[0], Box(256 - 64, 0, 64, 64)  # the bottom-left corner: the suit, far from the face
    over_face, over_corner = photo.clone(), photo.clone()
    over_face[..., face.top : face.top + 64, face.left : face.left + 64] = noise
    over_corner[..., corner.top :, : corner.width] = noise
    assert face_error(vgg, "relu4_2", over_face, photo, faces) > 0.5
    assert face_error(vgg, "relu4_2", over_corner, photo, faces) < 0.1
