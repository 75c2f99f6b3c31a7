"""Where each frame of a clip lies in the scene: the picture's shift from one frame to the next by phase correlation
(scikit-image's ``phase_cross_correlation``, to a twentieth of a pixel), summed along the clip. Global translation
only (pans, tilts, a shaking hand); zooms, rotations and things moving in front of a still camera are not followed.
texnet.noise_field places each frame's noise there, so the texture moves with the picture.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.filters import window
from skimage.registration import phase_cross_correlation

ANALYSIS_SIDE = 512  # px: frames are compared at most this large (~20 ms a pair here; 0.4 s for a whole 1080p frame)


def analysis_image(frame: Image.Image) -> tuple[np.ndarray | None, float]:
    """`frame` in grey, at most ANALYSIS_SIDE on its longer side, under a Hann window (the frame's edges do not
    wrap around as the FFT assumes), or None for a flat frame (under a grey level of variation: nothing to match);
    and the factor from its pixels back to the frame's."""
    scale = max(frame.size) / ANALYSIS_SIDE
    grey = frame.convert("L")
    if scale > 1:
        grey = grey.resize((round(frame.width / scale), round(frame.height / scale)), Image.Resampling.BILINEAR)
    else:
        scale = 1.0
    pixels = np.asarray(grey, dtype=np.float32)
    if pixels.std() < 1:
        return None, scale
    return pixels * window("hann", pixels.shape).astype(np.float32), scale


class SceneTracker:
    """Feed it a clip's frames in order; :meth:`locate` gives each one's top-left corner in the scene, (y, x) in the
    frame's pixels, the first frame at (0, 0). A frame of another size than the one before, or a flat one, or one
    after a flat one, stays where the last one was."""

    def __init__(self) -> None:
        self.previous: np.ndarray | None = None
        self.origin = (0.0, 0.0)

    def locate(self, frame: Image.Image) -> tuple[float, float]:
        pixels, scale = analysis_image(frame)
        previous, self.previous = self.previous, pixels
        if previous is not None and pixels is not None and previous.shape == pixels.shape:
            (dy, dx), _, _ = phase_cross_correlation(previous, pixels, upsample_factor=20)
            self.origin = (self.origin[0] + float(dy) * scale, self.origin[1] + float(dx) * scale)
        return self.origin


def overlap_change(frames: list[Image.Image], corners: list[tuple[int, int]]) -> float:
    """How steady a clip is: the mean absolute change (grey levels) between consecutive frames where they show the
    same part of the scene, given each frame's top-left corner in it, (y, x) in whole pixels (a clip cut from one
    picture: bench/temporal_consistency.py and the tests)."""
    arrays = [np.asarray(f.convert("RGB"), dtype=np.float32) for f in frames]
    changes = []
    for a, b, (y0, x0), (y1, x1) in zip(arrays, arrays[1:], corners, corners[1:]):
        height, width = a.shape[:2]
        top, left, bottom, right = max(y0, y1), max(x0, x1), min(y0, y1) + height, min(x0, x1) + width
        same_a = a[top - y0 : bottom - y0, left - x0 : right - x0]
        changes.append(np.abs(same_a - b[top - y1 : bottom - y1, left - x1 : right - x1]).mean())
    return float(np.mean(changes))
