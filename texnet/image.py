"""Image I/O: every photo and texture enters and leaves texnet through here.

Images are float tensors in [0, 1], shape (1, 3, H, W). Loading handles what real
photo folders contain (EXIF rotation, grayscale, alpha, palettes, 16-bit PNG) and
turns unreadable files into a one-line :class:`TexnetError`.

One list of readable formats (:data:`PHOTO_FORMATS`) serves every reader: folder listings and globs go by
the file extensions Pillow registers for them (:data:`IMAGE_EXTENSIONS`), single files, textures, the data
loader and the web app by the format Pillow detects in the file. Images up to :data:`MAX_PIXELS` are
decoded without Pillow's decompression-bomb warning; larger ones are a one-line error.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from texnet.errors import TexnetError

if (
    TYPE_CHECKING
):  # torch is imported where tensors are made: stylising with a graph (texnet.graph_stylize) never needs it
    import torch

# Pillow format names texnet reads (MPO: the multi-picture JPEGs many phones write). A format this Pillow build
# cannot open (no AVIF or HEIF plugin, say) drops out of IMAGE_EXTENSIONS by itself.
PHOTO_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP", "TIFF", "PPM", "AVIF", "HEIF", "JPEG2000")
READABLE_FORMATS = tuple(fmt for fmt in PHOTO_FORMATS if fmt in Image.registered_extensions().values() or fmt == "MPO")
IMAGE_EXTENSIONS = tuple(
    sorted(ext for ext, fmt in Image.registered_extensions().items() if fmt in READABLE_FORMATS and fmt in Image.OPEN)
)
MIN_SIDE = 32  # VGG pools five times; smaller inputs vanish before relu5_1.
# Largest image decoded (pixels), instead of Pillow's decompression-bomb check (a warning from 89 MP, an error from
# 179 MP): 250 MP takes ~1 GB decoded, covers 200 MP phone cameras, and tiled stylisation keeps the rest bounded.
MAX_PIXELS = 250_000_000


@contextmanager
def pixel_limit_lifted() -> Iterator[None]:
    """Pillow's global bomb check off while texnet opens a file; open_rgb checks MAX_PIXELS itself."""
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def open_image(path: str | Path, what: str = "image") -> Image.Image:
    """Open `path` lazily (header only) after checking that it is a readable format within MAX_PIXELS; the caller loads it."""
    path = Path(path)
    if not path.is_file():
        raise TexnetError(f"{what} '{path}' does not exist: check the path")
    try:
        with pixel_limit_lifted():
            img = Image.open(path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise TexnetError(f"{what} '{path}' is not a readable image ({err}): replace or remove it") from None
    if img.format not in READABLE_FORMATS:
        img.close()
        raise TexnetError(
            f"{what} '{path}' is a {img.format} file, which texnet does not read: convert it to one of "
            f"{', '.join(f for f in READABLE_FORMATS if f != 'MPO')}"
        )
    if img.width * img.height > MAX_PIXELS:
        img.close()
        raise TexnetError(
            f"{what} '{path}' is {img.width}x{img.height} px ({img.width * img.height / 1e6:.0f} MP), above texnet's "
            f"limit of {MAX_PIXELS / 1e6:.0f} MP (texnet.image.MAX_PIXELS): downscale it first"
        )
    return img


def open_rgb(path: str | Path, what: str = "image") -> Image.Image:
    """Open `path` as an upright 8-bit RGB PIL image (alpha dropped onto white)."""
    img = open_image(path, what)
    try:
        with img, pixel_limit_lifted():
            img.load()
            img = ImageOps.exif_transpose(img)
    except (OSError, SyntaxError, ValueError) as err:
        raise TexnetError(f"{what} '{path}' is not a readable image ({err}): replace or remove it") from None
    return to_rgb(img)


def check_output(path: str | Path, folder: bool = True, what: str = "output") -> None:
    """Fail before any work if `path` (a folder to write into, or with ``folder=False`` a file) cannot be written.

    The nearest existing folder must accept a new file (tried with a temporary file: permission bits alone
    miss read-only file systems and ACLs), and nothing on the way may be a file.
    """
    path = Path(path).expanduser()
    if path.exists() and path.is_dir() != folder:
        kind = "a folder" if folder else "a file"
        raise TexnetError(f"{what} '{path}' exists and is not {kind}: choose another {what}=")
    existing = path if folder and path.is_dir() else path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise TexnetError(
            f"{what} '{path}' cannot be created: '{existing}' is a file, not a folder: choose another {what}="
        )
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as err:
        raise TexnetError(
            f"{what} '{path}' cannot be written ({err.strerror} in '{existing}'): choose another {what}= "
            "or make that folder writable"
        ) from None


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


def output_size(width: int, height: int, max_size: int | None, size: int | None) -> tuple[int, int]:
    """(width, height) after `size` (longer side exactly) or `max_size` (longer side at most), aspect kept."""
    if size:
        scale = size / max(width, height)
        return max(1, round(width * scale)), max(1, round(height * scale))
    return fit_size(width, height, max_size)


def source_size(image: Image.Image | torch.Tensor | str | Path) -> tuple[int, int]:
    """(width, height) of a PIL image, a (…, 3, H, W) tensor or an image file (its header only)."""
    if isinstance(image, Image.Image):
        return image.size
    if isinstance(image, (str, Path)):
        with open_image(image, "image") as header:
            return header.size
    return image.shape[-1], image.shape[-2]


def load_image(
    path: str | Path, max_size: int | None = None, what: str = "image", size_option: str = "max_size"
) -> torch.Tensor:
    """Load `path` as a (1, 3, H, W) tensor in [0, 1], longer side at most `max_size` (the option `size_option`,
    named when it shrinks the image below what the VGG takes)."""
    img = open_rgb(path, what)
    source, size = img.size, fit_size(*img.size, max_size)
    if size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS)
    if min(img.size) < MIN_SIDE:
        shrunk = f" at {size_option}={max_size}" if size != source else ""
        fix = f"raise {size_option}" if size != source else "use a larger image"
        raise TexnetError(
            f"{what} '{path}' is {img.size[0]}x{img.size[1]} px{shrunk}: VGG needs at least {MIN_SIDE} px per side; {fix}"
        )
    return pil_to_tensor(img)


def pil_to_array(img: Image.Image) -> np.ndarray:
    """Any PIL image as a contiguous (1, 3, H, W) float32 array in [0, 1] (what onnxruntime takes)."""
    arr = np.asarray(to_rgb(img), dtype=np.float32) / 255.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None])


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    import torch

    return torch.from_numpy(pil_to_array(img))


def numpy_to_pil(image: np.ndarray) -> Image.Image:
    """A numpy image as OpenCV (after BGR to RGB), scikit-image, matplotlib and Gradio hold one, as a PIL image:
    (H, W) grey or (H, W, 3|4) RGB(A), uint8 in 0..255 or float in [0, 1] (rounded to 256 levels)."""
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise TexnetError(f"numpy image has shape {image.shape}: expected (H, W), (H, W, 3) or (H, W, 4)")
    if image.dtype == np.uint8:
        return to_rgb(Image.fromarray(image))
    if not np.issubdtype(image.dtype, np.floating):
        raise TexnetError(f"numpy image has dtype {image.dtype}: expected uint8 in 0..255 or float in [0, 1]")
    check_unit_range(float(image.min()), float(image.max()), "numpy image")
    return to_rgb(Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)))


def pil_to_numpy_like(img: Image.Image, like: np.ndarray) -> np.ndarray:
    """An RGB result as (H, W, 3) of `like`'s kind: uint8 in 0..255, or float32 in [0, 1] for a float input."""
    arr = np.asarray(img.convert("RGB"))
    return arr if like.dtype == np.uint8 else arr.astype(np.float32) / np.float32(255)


def check_unit_range(low: float, high: float, what: str) -> None:
    """Refuse float pixels that are not in [0, 1] (beyond a resize's ringing): 0..255 or [-1, 1] images would
    be stylised as glare or darkness without a word."""
    if low < -0.1 or high > 1.1:
        raise TexnetError(
            f"{what} holds values from {low:.3g} to {high:.3g}: expected RGB in [0, 1] (divide 0..255 by 255; "
            "uint8 images are read as 0..255)"
        )


def array_to_pil(image: np.ndarray) -> Image.Image:
    """(3, H, W) float array in [0, 1] -> RGB PIL image, each value rounded to the nearest of 256 levels."""
    arr = np.rint(np.clip(image, 0, 1) * np.float32(255)).astype(np.uint8).transpose(1, 2, 0)
    return Image.fromarray(arr, "RGB")


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) tensor in [0, 1] -> RGB PIL image."""
    if image.dim() == 4:
        image = image[0]
    return array_to_pil(image.detach().float().cpu().numpy())


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
