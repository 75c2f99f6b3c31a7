"""Where content photos come from, and the datasets that read them (texnet.data.ContentDataModule picks one).

* builtin: scikit-image's colour sample photos (in its wheel: no download), held in memory as random crops.
* coco: MSCOCO as laid out by ``python -m texnet.coco_download``, listed from its annotation file.
* folder: every image below a folder, recursively.

Validation photos of ``coco`` and ``folder`` without a separate split are those whose file names rank first by hash
(:func:`held_out_order`). An unreadable image never stops an epoch: :class:`ImageFiles` logs it once, records it in
its ``skipped`` set and returns the next readable image instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset

from texnet.errors import TexnetError, first_line
from texnet.image import IMAGE_EXTENSIONS, open_rgb, pil_to_tensor
from texnet.sampling import seeded

log = logging.getLogger(__name__)

# Colour photographs in skimage.data, in the order validation photos are taken from (distinct
# scenes first; motorcycle_right is the stereo twin of motorcycle_left, so it only trains).
# The other colour files there (color.png, chessboard_RGB.png, phantom.png) are synthetic charts.
BUILTIN_PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "retina.jpg",
    "motorcycle_right.png",
)
# Held out from training: the only portrait (a face must stay recognisable) and an object close up.
BUILTIN_VAL_PHOTOS = ("astronaut.png", "coffee.png")
BUILTIN_TRAIN_PHOTOS = tuple(name for name in BUILTIN_PHOTOS if name not in BUILTIN_VAL_PHOTOS)
BUILTIN_MAX_SCALE = 1.5  # builtin crops see the photo at 1x..1.5x the crop size (shorter side)
MAX_CONSECUTIVE_SKIPS = 50  # a run this long of unreadable files means a broken dataset, not a few bad files
DOWNLOAD_HINT = "python -m texnet.coco_download --root {root}"


def builtin_photo_dir() -> Path:
    """Folder of scikit-image's bundled sample photos (part of the installed wheel)."""
    import skimage.data

    return Path(os.path.dirname(skimage.data.__file__))


def _image_files(folder: Path) -> Iterator[Path]:
    return (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def list_images(folder: Path) -> list[Path]:
    """All files below `folder` (recursively) with an image extension, sorted for reproducibility."""
    return sorted(_image_files(folder))


def check_root(source: str, root: Path, split: str = "train2014") -> None:
    """Cheap layout check of a `coco` or `folder` root, shared by the loader and the web app.

    Raises TexnetError naming the folder and the fix. It reads no annotation file and stops at the
    first image found, so the app can call it before launching a run on a large dataset.
    """
    if source == "coco":
        image_dir = root / split
        if not image_dir.is_dir():
            raise TexnetError(
                f"COCO image folder '{image_dir}' does not exist: download MSCOCO with "
                f"`{DOWNLOAD_HINT.format(root=root)}`"
            )
    elif source == "folder":
        if not root.is_dir():
            raise TexnetError(f"image folder '{root}' does not exist: check data.root")
        if next(_image_files(root), None) is None:
            raise TexnetError(f"image folder '{root}' has no images ({', '.join(IMAGE_EXTENSIONS)}): check data.root")
    else:
        raise TexnetError(f"data.source='{source}' has no root to check: use coco or folder")


def coco_images(root: Path, split: str) -> list[Path]:
    """Image paths of a COCO split, from its instances annotation file.

    Only file names are kept: the parsed annotations of train2014 take gigabytes, which every
    DataLoader worker would otherwise inherit. Images listed but absent on disk are dropped with a
    warning (a partly extracted zip). Without an annotation file, the image folder is listed instead.
    """
    check_root("coco", root, split)
    image_dir = root / split
    ann_file = root / "annotations" / f"instances_{split}.json"
    hint = DOWNLOAD_HINT.format(root=root)
    if not ann_file.is_file():
        log.warning(
            "COCO annotation file '%s' is missing: using every image in '%s' (get it with `%s`)",
            ann_file,
            image_dir,
            hint,
        )
        return list_images(image_dir)
    from pycocotools.coco import COCO

    try:
        coco = COCO(str(ann_file))
        names = sorted(img["file_name"] for img in coco.imgs.values())
    except (ValueError, AssertionError, KeyError, TypeError, OSError) as err:
        raise TexnetError(
            f"COCO annotation file '{ann_file}' is not valid COCO JSON ({first_line(err)}): delete it and rerun `{hint}`"
        ) from None
    on_disk = set(os.listdir(image_dir))
    paths = [image_dir / name for name in names if name in on_disk]
    if len(paths) < len(names):
        log.warning(
            "%d of %d images listed in '%s' are missing from '%s' (incomplete extraction? rerun `%s`)",
            len(names) - len(paths),
            len(names),
            ann_file,
            image_dir,
            hint,
        )
    if not paths:
        raise TexnetError(
            f"COCO image folder '{image_dir}' has none of the images listed in '{ann_file}': rerun `{hint}`"
        )
    return paths


def held_out_order(paths: list[Path], root: Path) -> list[Path]:
    """`paths` ranked by the SHA-1 of their path below `root`: the validation photos are taken from the front."""

    def rank(path: Path) -> str:
        return hashlib.sha1(path.relative_to(root).as_posix().encode()).hexdigest()

    return sorted(paths, key=rank)


def shrink(img: Image.Image, shorter_side: int) -> Image.Image:
    """`img` scaled down so its shorter side is `shorter_side` (never scaled up)."""
    if min(img.size) <= shorter_side:
        return img
    scale = shorter_side / min(img.size)
    return img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.LANCZOS)


class ImageFiles(Dataset):
    """Images read from disk and transformed; an unreadable file is replaced by the next readable one.

    The replacement is deterministic (next index in listing order), so a corrupt file costs one
    duplicate sample instead of a crashed epoch. `skipped` is the set of paths found unreadable.
    """

    def __init__(
        self, paths: list[Path], transform: Callable[[Image.Image], Image.Image], skipped: set[str] | None = None
    ) -> None:
        self.paths = paths
        self.transform = transform
        self.skipped: set[str] = skipped if skipped is not None else set()

    def __len__(self) -> int:
        return len(self.paths)

    def open(self, index: int) -> Image.Image | None:
        """The image at `index`, or None (logged once, recorded in `skipped`) if it cannot be read."""
        path = str(self.paths[index])
        if path in self.skipped:
            return None
        try:
            return open_rgb(path, "content image")
        except (TexnetError, Image.DecompressionBombError) as err:
            self.skipped.add(path)
            log.warning("skipping unreadable file: %s", err)
            return None

    def __getitem__(self, item: int | tuple[int, int]) -> torch.Tensor:
        """The image at an index, transformed; an ``(index, seed)`` item (texnet.sampling) draws from `seed`."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        tries = min(len(self.paths), MAX_CONSECUTIVE_SKIPS)
        for step in range(tries):
            img = self.open((index + step) % len(self.paths))
            if img is not None:
                return pil_to_tensor(seeded(seed, self.transform, img))[0]
        raise TexnetError(
            f"{tries} consecutive content images from '{self.paths[index]}' on are unreadable: check the dataset folder"
        )


class BuiltinPhotos(Dataset):
    """Random crops of scikit-image's sample photos, held in memory; `length` items per epoch."""

    def __init__(self, photos: list[Image.Image], transform: Callable[[Image.Image], Image.Image], length: int) -> None:
        self.photos, self.transform, self.length = photos, transform, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: int | tuple[int, int]) -> torch.Tensor:
        """A random crop of photo ``index % len(photos)``; an ``(index, seed)`` item (texnet.sampling) draws it
        from `seed`."""
        index, seed = item if isinstance(item, tuple) else (item, None)
        photo = self.photos[index % len(self.photos)]
        return pil_to_tensor(seeded(seed, self.transform, photo))[0]
