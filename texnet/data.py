"""Content photos for training texture networks, as a Lightning DataModule (the sources: texnet.content_sources).

Three sources, picked by ``source``:

* ``builtin``: scikit-image's colour sample photos (in its wheel: no download); with seven training
  photos, every item is a random scale/crop/flip and ``builtin_length`` sets the epoch length.
* ``coco``: MSCOCO as laid out by ``python -m texnet.coco_download``
  (``root/{split}/*.jpg`` + ``root/annotations/instances_{split}.json``), the content set of
  Ulyanov et al.'s instance-norm follow-up and of Johnson et al.
* ``folder``: every image below a folder, recursively (your own photos).

Train batches are plain float tensors (B, 3, image_size, image_size) in [0, 1]. Validation photos
are a fixed handful, centre-cropped, identical across calls and runs, and never trained on, so the
validation losses and sample grids show how the network does on photos it has not seen: builtin
holds out ``BUILTIN_VAL_PHOTOS``; ``coco`` takes them from ``val_split`` (``val2014``) when that folder
exists; otherwise ``coco`` and ``folder`` hold out the images whose file names rank first by hash
(:func:`held_out_order`: the same files give the same split, whatever their listing order).

Unreadable images never stop an epoch: the dataset (texnet.content_sources.ImageFiles) logs a warning (once
per file and process), records the path in a set shared with the DataModule (``ContentDataModule.skipped``) and
returns the next readable image instead. Worker processes (``num_workers > 0``) each count their own skips; the
log lines name every skipped file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import pytorch_lightning as pl
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from texnet.content_sources import (
    BUILTIN_MAX_SCALE,
    BUILTIN_PHOTOS,
    BUILTIN_TRAIN_PHOTOS,
    BUILTIN_VAL_PHOTOS,
    BuiltinPhotos,
    ImageFiles,
    builtin_photo_dir,
    check_root,
    coco_images,
    held_out_order,
    list_images,
    shrink,
)
from texnet.errors import TexnetError
from texnet.image import open_rgb, pil_to_tensor
from texnet.sampling import EpochSampler, ResumableLoader
from texnet.schedule import check_schedule, settings_at

log = logging.getLogger(__name__)

SOURCES = ("builtin", "coco", "folder")


def transforms(option: str, steps: Sequence[Callable] | None) -> list[Callable]:
    """`steps` as a list, or a one-line TexnetError naming `option` and the step that is not a transform."""
    steps = list(steps or [])
    for i, step in enumerate(steps):
        if not callable(step):
            raise TexnetError(
                f"{option}[{i}]={step!r} is not a transform: give each step a _target_, "
                "e.g. {_target_: torchvision.transforms.v2.ColorJitter, hue: 0.1}"
            )
    return steps


class ContentDataModule(pl.LightningDataModule):
    """Content photos for texture-network training; see the module docstring for sources and skipping."""

    def __init__(
        self,
        source: str = "builtin",
        root: str | None = None,
        split: str = "train2014",
        val_split: str | None = "val2014",
        image_size: int = 256,
        batch_size: int = 4,
        num_workers: int = 0,
        num_val: int = 2,
        val_size: int = 256,
        builtin_length: int = 512,
        seed: int = 0,
        schedule: list[dict] | None = None,
        augment: Sequence[Callable] | None = None,
        resize: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if source not in SOURCES:
            raise TexnetError(f"data.source='{source}' is unknown: use one of {', '.join(SOURCES)}")
        if source != "builtin" and not root:
            raise TexnetError(
                f"data.source={source} needs data.root=/path/to/{'coco' if source == 'coco' else 'images'}"
            )
        for name, value in (
            ("image_size", image_size),
            ("batch_size", batch_size),
            ("num_val", num_val),
            ("val_size", val_size),
            ("builtin_length", builtin_length),
        ):
            if value < 1:
                raise TexnetError(f"data.{name}={value} must be at least 1")
        if num_workers < 0:
            raise TexnetError(f"data.num_workers={num_workers} must be 0 or more")
        if source == "builtin" and num_val > len(BUILTIN_VAL_PHOTOS):
            raise TexnetError(
                f"data.num_val={num_val}: the builtin set holds out {len(BUILTIN_VAL_PHOTOS)} validation photos "
                f"({', '.join(BUILTIN_VAL_PHOTOS)}); use data.num_val={len(BUILTIN_VAL_PHOTOS)} or fewer"
            )
        self.source, self.split, self.val_split = source, split, val_split
        self.root = Path(root).expanduser() if root else None
        self.image_size, self.batch_size, self.num_workers = image_size, batch_size, num_workers
        self.num_val, self.val_size, self.builtin_length, self.seed = num_val, val_size, builtin_length, seed
        self.schedule = check_schedule(schedule)  # crop size, batch size and augmentation by step (texnet.schedule)
        self.augment = transforms("data.augment", augment)
        for i, stage in enumerate(schedule or []):  # as typed: check_schedule returns the stages sorted by step
            if "augment" in stage:
                transforms(f"data.schedule[{i}].augment", stage["augment"])
        self.resize = self._checked_resize(resize)
        self._skipped: set[str] = set()
        self._train: Dataset | None = None
        self._val: torch.Tensor | None = None
        self.train_files: list[str] = []  # what training draws from (names for builtin, paths otherwise)
        self.val_files: list[str] = []  # the validation photos, disjoint from train_files

    @property
    def largest_crop(self) -> int:
        """The largest training crop of the run: data.image_size or a schedule stage's."""
        return max([self.image_size, *(stage.get("image_size", 0) for stage in self.schedule)])

    def _checked_resize(self, resize: Sequence[int] | None) -> tuple[int, int] | None:
        """``data.resize`` as (smallest, largest) shorter side, or a one-line TexnetError saying what fits."""
        if resize is None:
            return None
        sides = list(resize)
        if len(sides) != 2 or not all(isinstance(side, int) and side > 0 for side in sides) or sides[0] > sides[1]:
            raise TexnetError(
                f"data.resize={sides} must be two whole numbers [smallest, largest] (pixels, the photo's shorter "
                "side before the crop), e.g. [256, 384]; null: each source's default"
            )
        return sides[0], sides[1]

    def scale_range(self, size: int) -> tuple[int, int]:
        """The photo's shorter side before a `size` px crop, a random size in this range: ``data.resize``, scaled
        up with its ratio kept where the crop is larger than its first number (so one setting serves every stage and
        any data.image_size); without it, builtin photos at 1x..BUILTIN_MAX_SCALE of the crop, others at the crop."""
        if self.resize:
            smallest, largest = self.resize
            if size > smallest:  # largest >= smallest, so the grown largest (rounded up) is >= size
                smallest, largest = size, (largest * size + smallest - 1) // smallest
            return smallest, largest
        if self.source == "builtin":
            return size, int(size * BUILTIN_MAX_SCALE)
        return size, size

    @property
    def skipped(self) -> int:
        """Number of unreadable images skipped so far in this process (see module docstring)."""
        return len(self._skipped)

    @property
    def skipped_paths(self) -> list[str]:
        return sorted(self._skipped)

    def setup(self, stage: str | None = None) -> None:
        """List the images (raises TexnetError for a missing/empty source) and load the validation photos."""
        if self._train is not None:
            return
        val_tf = v2.Compose([v2.Resize(self.val_size, antialias=True), v2.CenterCrop(self.val_size)])
        if self.source == "builtin":
            folder = builtin_photo_dir()
            photos = {name: open_rgb(folder / name, "scikit-image sample photo") for name in BUILTIN_PHOTOS}
            largest = self.scale_range(self.largest_crop)[1] + 1
            # Shrunk once up front so each random crop resizes a small image, not a 1411 px one.
            small = [shrink(photos[name], largest) for name in BUILTIN_TRAIN_PHOTOS]
            self._train = BuiltinPhotos(small, self.train_transform(self.image_size), self.builtin_length)
            self.train_files = list(BUILTIN_TRAIN_PHOTOS)
            self.val_files = list(BUILTIN_VAL_PHOTOS[: self.num_val])
            val = [pil_to_tensor(val_tf(photos[name]))[0] for name in self.val_files]
        else:
            assert self.root is not None
            paths, val_pool = self._listing()
            train_tf = self.train_transform(self.image_size)
            val, val_paths = self._first_readable(ImageFiles(val_pool, train_tf, self._skipped), val_tf)
            held = set(val_paths)
            train_paths = [path for path in paths if path not in held]
            if not train_paths:
                raise TexnetError(
                    f"'{self.root}' has {len(paths)} images and data.num_val={self.num_val} of them are held "
                    "out for validation: add photos or lower data.num_val"
                )
            self._train = ImageFiles(train_paths, train_tf, self._skipped)
            self.train_files, self.val_files = [str(p) for p in train_paths], [str(p) for p in val_paths]
        self._val = torch.stack(val)

    def train_transform(
        self, size: int, augment: Sequence[Callable] | None = None
    ) -> Callable[[Image.Image], Image.Image]:
        """Random crop + flip at `size`, then `augment`'s steps (``data.augment``'s by default), the photo's
        shorter side first scaled to a random size in :meth:`scale_range`."""
        smallest, largest = self.scale_range(size)
        # Folders and COCO keep a fixed Resize: a RandomResize would draw a number and move the crops' random stream.
        if self.resize or self.source == "builtin":
            resize = v2.RandomResize(smallest, largest + 1, antialias=True)
        else:
            resize = v2.Resize(size, antialias=True)
        steps = self.augment if augment is None else augment
        return v2.Compose([resize, v2.RandomCrop(size), v2.RandomHorizontalFlip(), *steps])

    def _listing(self) -> tuple[list[Path], list[Path]]:
        """(training candidates, validation candidates in the order they are taken)."""
        assert self.root is not None
        if self.source == "folder":
            check_root("folder", self.root)
            paths = list_images(self.root)
            return paths, held_out_order(paths, self.root)
        paths = coco_images(self.root, self.split)
        if self.val_split and self.val_split != self.split and (self.root / self.val_split).is_dir():
            return paths, coco_images(self.root, self.val_split)
        log.info(
            "no '%s' folder in '%s': validation photos are held out of '%s' by file name",
            self.val_split,
            self.root,
            self.split,
        )
        return paths, held_out_order(paths, self.root)

    def _first_readable(
        self, dataset: ImageFiles, transform: Callable[[Image.Image], Image.Image]
    ) -> tuple[list[torch.Tensor], list[Path]]:
        """Centre crops of the first `num_val` readable images of `dataset`, and their paths."""
        val: list[torch.Tensor] = []
        paths: list[Path] = []
        for index in range(len(dataset)):
            img = dataset.open(index)
            if img is not None:
                val.append(pil_to_tensor(transform(img))[0])
                paths.append(dataset.paths[index])
                if len(val) == self.num_val:
                    return val, paths
        if not val:
            raise TexnetError(f"no readable image in '{self.root}': every file failed to open (see the warnings above)")
        log.warning("only %d readable images for %d validation photos", len(val), self.num_val)
        return val, paths

    def train_dataloader(self) -> ResumableLoader:
        """Batches at the crop and batch size in force at the trainer's step (see texnet.schedule), in an order
        and with crops drawn from (``seed``, epoch) alone, resumable mid-epoch (texnet.sampling).

        Lightning calls this again at every epoch when a schedule is set (train.py sets
        reload_dataloaders_every_n_epochs) and sets the sampler's epoch before each.
        """
        self.setup()
        assert self._train is not None
        trainer = self.trainer
        step = trainer.global_step if trainer is not None else 0
        settings = settings_at(
            self.schedule,
            step,
            {"image_size": self.image_size, "batch_size": self.batch_size, "augment": self.augment},
        )
        self._train.transform = self.train_transform(settings["image_size"], settings["augment"])
        return ResumableLoader(
            self._train,
            batch_size=settings["batch_size"],
            sampler=EpochSampler(len(self._train), self.seed),
            num_workers=self.num_workers,
            # Tiny folders (fewer photos than a batch) still yield one short batch per epoch.
            drop_last=len(self._train) > settings["batch_size"],
            # Own generator: without one, the loader draws its workers' base seed from the global RNG.
            generator=torch.Generator(),
            persistent_workers=self.num_workers > 0 and not self.schedule,
        )

    def val_dataloader(self) -> DataLoader:
        """The fixed validation photos as a single batch. Its own generator: a DataLoader without one draws its
        base seed from the global RNG at every pass, which moved the training crops, so how often a run validated
        changed the network it trained."""
        images = self.val_images()
        return DataLoader(list(images), batch_size=len(images), shuffle=False, generator=torch.Generator())

    def val_images(self) -> torch.Tensor:
        """(num_val, 3, val_size, val_size) in [0, 1]: the same photos on every call and every run."""
        self.setup()
        assert self._val is not None
        return self._val.clone()
