"""Image I/O: every photo and texture enters and leaves texnet through here.

Images are float tensors in [0, 1], shape (1, 3, H, W). Loading handles what real
photo folders contain (EXIF rotation, grayscale, alpha, palettes, 16-bit PNG) and
turns unreadable files into a one-line :class:`TexnetError`.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from texnet.errors import TexnetError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
MIN_SIDE = 32  # VGG pools five times; smaller inputs vanish before relu5_1.


def open_rgb(path: str | Path, what: str = "image") -> Image.Image:
    """Open `path` as an upright 8-bit RGB PIL image (alpha dropped onto white)."""
    path = Path(path)
    if not path.is_file():
        raise TexnetError(f"{what} '{path}' does not exist: check the path")
    try:
        with Image.open(path) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise TexnetError(f"{what} '{path}' is not a readable image ({err}): replace or remove it") from None
    return to_rgb(img)


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB; 16-bit and float images are rescaled, alpha is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA"):
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img.convert("RGBA"))
    return img.convert("RGB")


def fit_size(width: int, height: int, max_size: int | None) -> tuple[int, int]:
    """Scale (width, height) so the longer side is at most `max_size`, keeping aspect ratio."""
    if not max_size or max(width, height) <= max_size:
        return width, height
    scale = max_size / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def load_image(path: str | Path, max_size: int | None = None, what: str = "image") -> torch.Tensor:
    """Load `path` as a (1, 3, H, W) tensor in [0, 1], longer side at most `max_size`."""
    img = open_rgb(path, what)
    size = fit_size(*img.size, max_size)
    if size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS)
    if min(img.size) < MIN_SIDE:
        raise TexnetError(
            f"{what} '{path}' is {img.size[0]}x{img.size[1]} px: VGG needs at least {MIN_SIDE} px per side; use a larger image"
        )
    return pil_to_tensor(img)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    arr = np.asarray(to_rgb(img), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> RGB PIL image."""
    if image.dim() == 4:
        image = image[0]
    arr = image.detach().float().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr, "RGB")


def save_image(image: torch.Tensor | Image.Image, path: str | Path, overwrite: bool = False) -> Path:
    """Write an image, refusing to replace an existing file unless `overwrite`."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise TexnetError(f"output '{path}' already exists: choose another path or pass overwrite=true")
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = image if isinstance(image, Image.Image) else tensor_to_pil(image)
    pil.save(path)
    return path


def next_free_dir(path: str | Path) -> Path:
    """`path` if it does not exist yet, else `path-2`, `path-3`, ...: results are never overwritten."""
    return _next_free(Path(path), lambda p, n: p.with_name(f"{p.name}-{n}"))


def next_free_file(path: str | Path, taken: Callable[[Path], bool] = Path.exists) -> Path:
    """`path` if it is not `taken` (by default: exists), else `name-2.png`, `name-3.png`, ...: results are never overwritten."""
    return _next_free(Path(path), lambda p, n: p.with_name(f"{p.stem}-{n}{p.suffix}"), taken)


def _next_free(path: Path, numbered: Callable[[Path, int], Path], taken: Callable[[Path], bool] = Path.exists) -> Path:
    candidate, n = path, 1
    while taken(candidate):
        n += 1
        candidate = numbered(path, n)
    return candidate
