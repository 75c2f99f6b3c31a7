"""Faces in a photo, and how much of each a stylised image keeps.

Issue 14 asks that stylised faces stay recognisable. The content loss averages over the whole image, so a texture
drawn over the face and kept in the background can score as well as the reverse; this measures the content
layer's features inside each face alone, relative to the photo's there (0: the photo's own features).
Faces are found by scikit-image's LBP frontal-face cascade (OpenCV's model, shipped in scikit-image's data).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import torch


@dataclass(frozen=True)
class Box:
    """A face's rectangle in pixels."""

    top: int
    left: int
    height: int
    width: int


@cache
def _detector():
    from skimage.data import lbp_frontal_face_cascade_filename
    from skimage.feature import Cascade

    return Cascade(lbp_frontal_face_cascade_filename())


def find_faces(photo: torch.Tensor, work_side: int = 256) -> list[Box]:
    """Frontal faces in `photo` (1, 3, H, W) in [0, 1], largest first, overlapping detections merged.

    Detection runs with the short side at `work_side` and keeps a face only where 10 windows agree: scikit-image's
    default of 4 also finds faces in textures and cell images (docs/results.md, session 39)."""
    scale = work_side / min(photo.shape[-2:])
    size = [round(photo.shape[-2] * scale), round(photo.shape[-1] * scale)]
    small = torch.nn.functional.interpolate(photo.float(), size=size, mode="bilinear", antialias=True)
    rgb = small[0].permute(1, 2, 0).double().clamp(0, 1).numpy()
    found = _detector().detect_multi_scale(
        img=rgb,
        scale_factor=1.1,
        step_ratio=1,
        min_size=(24, 24),
        max_size=(work_side, work_side),
        min_neighbor_number=10,
    )
    boxes = sorted(
        (Box(*(round(v / scale) for v in (d["r"], d["c"], d["height"], d["width"]))) for d in found),
        key=lambda b: -b.height * b.width,
    )
    kept: list[Box] = []  # torchvision's nms goes by IoU, which keeps a box nested in a larger one
    for box in boxes:
        if not any(_overlap(box, other) > 0.3 for other in kept):
            kept.append(box)
    return kept


def _overlap(a: Box, b: Box) -> float:
    """Intersection over the smaller box's area."""
    rows = max(0, min(a.top + a.height, b.top + b.height) - max(a.top, b.top))
    cols = max(0, min(a.left + a.width, b.left + b.width) - max(a.left, b.left))
    return rows * cols / min(a.height * a.width, b.height * b.width)


@torch.no_grad()
def face_error(extractor, layer: str, image: torch.Tensor, photo: torch.Tensor, faces: list[Box]) -> float | None:
    """Mean over `faces` of ||f(image) - f(photo)||^2 / ||f(photo)||^2 inside the face, f the `extractor`'s features
    at `layer` (the content layer): 0 keeps the face's features, ~1 and more replaces them. None without faces."""
    if not faces:
        return None
    features = extractor(torch.cat([image, photo]), [layer])[layer].float()
    stride = photo.shape[-1] / features.shape[-1]
    errors = []
    for box in faces:
        rows = slice(int(box.top // stride), int(np.ceil((box.top + box.height) / stride)))
        cols = slice(int(box.left // stride), int(np.ceil((box.left + box.width) / stride)))
        out, ref = features[0, :, rows, cols], features[1, :, rows, cols]
        errors.append(((out - ref).pow(2).sum() / ref.pow(2).sum().clamp_min(1e-12)).item())
    return float(np.mean(errors))
