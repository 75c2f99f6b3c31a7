"""ContentDataModule: builtin/coco/folder sources, held-out validation photos, corrupt-file skipping, errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import epoch, make_coco, write_photo
from PIL import Image

from texnet.data import ContentDataModule
from texnet.errors import TexnetError

# ---------------------------------------------------------------- builtin


def test_builtin_train_batch_shape_and_range() -> None:
    dm = ContentDataModule(image_size=64, batch_size=3, builtin_length=6, val_size=64)
    batches = epoch(dm)
    assert len(batches) == 2
    batch = batches[0]
    assert type(batch) is torch.Tensor and batch.shape == (3, 3, 64, 64) and batch.dtype == torch.float32
    assert 0.0 <= batch.min() and batch.max() <= 1.0 and batch.std() > 0.05


def test_builtin_val_images_fixed_distinct_and_held_out() -> None:
    a = ContentDataModule(num_val=2, val_size=64)
    b = ContentDataModule(num_val=2, val_size=64, image_size=32, seed=7)
    val = a.val_images()
    assert val.shape == (2, 3, 64, 64)
    assert torch.equal(val, b.val_images()) and torch.equal(val, a.val_images())
    (loader_batch,) = list(a.val_dataloader())
    assert torch.equal(loader_batch, val)
    assert (val[0] - val[1]).abs().mean() > 0.05
    assert a.val_files == ["astronaut.png", "coffee.png"]
    assert not set(a.val_files) & set(a.train_files) and len(a.train_files) == 7
    assert len(a._train.photos) == len(a.train_files)  # the training set holds only the training photos
    with pytest.raises(TexnetError, match="holds out 2 validation photos"):
        ContentDataModule(num_val=3)


# ---------------------------------------------------------------- coco and folder


def test_coco_tiny_set(tmp_path: Path) -> None:
    make_coco(tmp_path)
    dm = ContentDataModule(source="coco", root=str(tmp_path), image_size=32, batch_size=2, num_val=1, val_size=24)
    batches = epoch(dm)
    assert [b.shape for b in batches] == [(2, 3, 32, 32)]  # 3 images, one held out
    assert dm.val_images().shape == (1, 3, 24, 24)
    assert dm.skipped == 0


def test_coco_validation_from_val2014_else_held_out(tmp_path: Path) -> None:
    train_names = make_coco(tmp_path, sizes=((40, 40),) * 5)
    dm = ContentDataModule(source="coco", root=str(tmp_path), image_size=16, batch_size=1, num_val=2, val_size=16)
    dm.setup()
    assert len(dm.val_files) == 2 and len(dm.train_files) == 3
    assert not set(dm.val_files) & set(dm.train_files)
    assert {Path(f).name for f in dm.val_files + dm.train_files} == set(train_names)
    val_names = make_coco(tmp_path, split="val2014", sizes=((40, 40),) * 3)
    dm = ContentDataModule(source="coco", root=str(tmp_path), image_size=16, batch_size=1, num_val=2, val_size=16)
    dm.setup()
    assert [Path(f).name for f in dm.val_files] == val_names[:2]  # the val split, all of train2014 trains
    assert sorted(Path(f).name for f in dm.train_files) == train_names


def test_folder_validation_held_out_deterministically(tmp_path: Path) -> None:
    for i in range(6):
        write_photo(tmp_path / f"p{i}.png", (30, 30), i)
    first = ContentDataModule(source="folder", root=str(tmp_path), num_val=2, val_size=16)
    first.setup()
    assert len(first.val_files) == 2 and not set(first.val_files) & set(first.train_files)
    assert len(first.train_files) == 4 and len(epoch(first)) == 1
    write_photo(tmp_path / "zz_new.png", (30, 30), 9)  # a new file does not reshuffle the others' roles
    again = ContentDataModule(source="folder", root=str(tmp_path), num_val=2, val_size=16)
    again.setup()
    assert set(again.val_files) <= set(first.val_files) | {str(tmp_path / "zz_new.png")}
    assert not set(again.val_files) & set(again.train_files)
    with pytest.raises(TexnetError, match="held out for validation"):
        ContentDataModule(source="folder", root=str(tmp_path), num_val=7).setup()


def test_coco_without_annotations_lists_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_coco(tmp_path)
    (tmp_path / "annotations" / "instances_train2014.json").unlink()
    dm = ContentDataModule(source="coco", root=str(tmp_path), image_size=16, batch_size=1, num_val=1, val_size=16)
    with caplog.at_level(logging.WARNING, logger="texnet.content_sources"):
        assert len(epoch(dm)) == 2  # one of the three is held out
    assert "instances_train2014.json" in caplog.text


def test_folder_nested_case_insensitive(tmp_path: Path) -> None:
    write_photo(tmp_path / "a" / "one.JPG", (40, 30), 1)
    write_photo(tmp_path / "a" / "b" / "two.png", (30, 40), 2)
    write_photo(tmp_path / "c" / "d" / "e" / "three.jpeg", (50, 50), 3)
    (tmp_path / "notes.txt").write_text("not an image")
    dm = ContentDataModule(source="folder", root=str(tmp_path), image_size=16, batch_size=1, num_val=1, val_size=16)
    batches = epoch(dm)
    assert len(batches) == 2 and all(b.shape == (1, 3, 16, 16) for b in batches)
    assert dm.val_images().shape == (1, 3, 16, 16)


def test_corrupt_image_skipped_counted_epoch_completes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "a_broken.jpg").write_bytes(b"\x00garbage, not a jpeg" * 10)
    for i in range(5):
        write_photo(tmp_path / f"photo{i}.jpg", (40, 40), i)
    dm = ContentDataModule(source="folder", root=str(tmp_path), image_size=16, batch_size=2, num_val=2, val_size=16)
    with caplog.at_level(logging.WARNING, logger="texnet.content_sources"):
        val = dm.val_images()  # first two *readable* images in held-out order
        for _ in range(2):
            batches = epoch(dm)
            assert sum(len(b) for b in batches) == 4 and all(b.shape[1:] == (3, 16, 16) for b in batches)
    expected = ContentDataModule(source="folder", root=str(tmp_path), num_val=2, val_size=16)
    (tmp_path / "a_broken.jpg").unlink()
    assert torch.equal(val, expected.val_images())
    assert dm.skipped == 1 and dm.skipped_paths == [str(tmp_path / "a_broken.jpg")]
    assert len([r for r in caplog.records if "a_broken.jpg" in r.getMessage()]) == 1  # logged once per file


def test_corrupt_image_with_worker_processes(tmp_path: Path) -> None:
    (tmp_path / "zz_truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    for i in range(5):
        write_photo(tmp_path / f"photo{i}.png", (30, 30), i)
    dm = ContentDataModule(
        source="folder", root=str(tmp_path), image_size=16, batch_size=2, num_workers=1
    )  # 2 held out
    assert sum(len(b) for b in epoch(dm)) == 4


def test_all_images_corrupt_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"nope")
    with pytest.raises(TexnetError, match="no readable image"):
        ContentDataModule(source="folder", root=str(tmp_path)).setup()


@pytest.mark.parametrize("kind", ["empty", "missing"])
def test_folder_errors_name_the_folder(tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "photos"
    if kind == "empty":
        (folder / "sub").mkdir(parents=True)
    with pytest.raises(TexnetError) as err:
        ContentDataModule(source="folder", root=str(folder)).setup("fit")
    assert str(folder) in str(err.value) and "\n" not in str(err.value)


def test_missing_coco_names_folder_and_download_command(tmp_path: Path) -> None:
    with pytest.raises(TexnetError) as err:
        ContentDataModule(source="coco", root=str(tmp_path)).setup("fit")
    message = str(err.value)
    assert str(tmp_path / "train2014") in message and "python -m texnet.coco_download --root" in message
    assert "\n" not in message


def test_bad_annotation_json_names_file(tmp_path: Path) -> None:
    make_coco(tmp_path)
    ann = tmp_path / "annotations" / "instances_train2014.json"
    ann.write_text('{"images": [ {"id": 1, "file_name": ')
    with pytest.raises(TexnetError) as err:
        ContentDataModule(source="coco", root=str(tmp_path)).setup("fit")
    assert str(ann) in str(err.value) and "\n" not in str(err.value)


def test_bad_options() -> None:
    with pytest.raises(TexnetError, match="data.source"):
        ContentDataModule(source="imagenet")
    with pytest.raises(TexnetError, match="data.root"):
        ContentDataModule(source="folder")


def test_augment_changes_the_training_crops_and_not_the_validation_photos() -> None:
    """data.augment's transforms run on each training crop after the scale, crop and flip; the held-out photos
    stay as they are (they are scored); a step that is no transform is a one-line error naming it."""
    from torchvision.transforms import v2

    plain = ContentDataModule(image_size=32, batch_size=2, builtin_length=4, val_size=32, seed=5)
    inverted = ContentDataModule(
        image_size=32, batch_size=2, builtin_length=4, val_size=32, seed=5, augment=[v2.RandomInvert(p=1.0)]
    )
    for a, b in zip(epoch(plain), epoch(inverted)):
        assert torch.allclose(b, 1 - a, atol=1 / 255)  # the same crops, each inverted
    assert torch.equal(plain.val_images(), inverted.val_images())
    with pytest.raises(TexnetError, match=r"^data.augment\[1\]='hue' is not a transform: give each step a _target_"):
        ContentDataModule(augment=[v2.RandomInvert(), "hue"])


def test_a_schedule_stage_changes_the_augmentation_from_its_step() -> None:
    """A stage's ``augment`` replaces data.augment from its step on (e.g. a flip in the early stage only), and the
    stage in force follows the trainer's step, so a resumed run draws the crops of its step's stage."""
    from types import SimpleNamespace

    from torchvision.transforms import v2

    plain = ContentDataModule(image_size=32, batch_size=2, builtin_length=4, val_size=32, seed=5)
    staged = ContentDataModule(
        image_size=32,
        batch_size=2,
        builtin_length=4,
        val_size=32,
        seed=5,
        augment=[v2.RandomInvert(p=1.0)],
        schedule=[{"step": 3, "augment": []}, {"step": 6, "augment": [v2.RandomInvert(p=1.0)]}],
    )
    for step, inverted in ((0, True), (3, False), (5, False), (6, True)):
        staged.trainer = SimpleNamespace(global_step=step)
        for a, b in zip(epoch(plain), epoch(staged), strict=True):
            assert torch.allclose(b, 1 - a if inverted else a, atol=1 / 255), step
    with pytest.raises(TexnetError, match=r"^data.schedule\[1\].augment\[0\]='flip' is not a transform"):
        ContentDataModule(schedule=[{"step": 4}, {"step": 2, "augment": ["flip"]}])  # the index as typed


def test_resize_sets_the_scale_the_crops_see_the_photos_at(tmp_path: Path) -> None:
    """data.resize scales each photo's shorter side into its range before the crop: a 32 px crop of a left-to-right
    ramp photo resized to 128 px spans a quarter of the ramp, where by default (resized to the crop) it spans all. A
    range below the crop grows to it, its ratio kept: [8, 16] for 32 px crops is [32, 64], a span of 1/2..1."""
    ramp = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    for i in range(9):
        Image.fromarray(ramp).save(tmp_path / f"ramp{i}.png")
    options = dict(source="folder", root=str(tmp_path), image_size=32, batch_size=2, num_val=1, val_size=32)
    for resize, spans in ((None, (1.0, 1.0)), ([128, 128], (0.25, 0.25)), ([8, 16], (0.5, 1.0))):
        seen = torch.cat([epoch_batch[:, 0] for epoch_batch in epoch(ContentDataModule(**options, resize=resize))])
        across = (seen.amax(dim=-1) - seen.amin(dim=-1)) * 32 / 31  # each row's share of the ramp, red channel
        assert spans[0] - 0.03 <= across.min() and across.max() <= spans[1] + 0.03, resize
        assert across.max() - across.min() >= (spans[1] - spans[0]) / 2, resize  # the range drawn from, not one end
    staged = ContentDataModule(image_size=128, schedule=[{"step": 5, "image_size": 512}], resize=[256, 384])
    assert (staged.scale_range(128), staged.scale_range(512)) == ((256, 384), (512, 768))
    for resize, message in (
        ([256], r"^data.resize=\[256\] must be two whole numbers \[smallest, largest\]"),
        ([384, 256], r"^data.resize=\[384, 256\] must be two whole numbers"),
        ([0, 256], r"^data.resize=\[0, 256\] must be two whole numbers"),
    ):
        with pytest.raises(TexnetError, match=message):
            ContentDataModule(image_size=64, schedule=[{"step": 5, "image_size": 128}], resize=resize)


def test_an_augment_step_that_cannot_be_built_is_one_line(tmp_path: Path) -> None:
    from omegaconf import OmegaConf

    from texnet.instantiation import build_node

    for step, reason in (
        (
            "{_target_: torchvision.transforms.v2.ColorJiter}",
            "Error locating target 'torchvision.transforms.v2.ColorJiter'$",
        ),
        ("{_target_: torchvision.transforms.v2.ColorJitter, hue: 3}", "ColorJitter': hue values should be between"),
    ):
        node = OmegaConf.create(f"{{_target_: texnet.data.ContentDataModule, augment: [{step}]}}")
        with pytest.raises(TexnetError, match=rf"^data cannot be built: .*{reason}") as err:
            build_node(node, "data")
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(("name", "crop"), [("builtin", 128), ("coco", 256), ("folder", 256)])
def test_hydra_configs_instantiate(name: str, crop: int, tmp_path: Path) -> None:
    """The built-in set is the CPU default (128 px crops); real data trains at the reference's 256 px."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    data = OmegaConf.load(Path(__file__).parents[1] / "conf" / "data" / f"{name}.yaml")
    cfg = OmegaConf.create({"seed": 3, "data": data}).data  # as in train.yaml, whose seed data.seed follows
    if name != "builtin":
        assert OmegaConf.is_missing(cfg, "root")
        cfg.root = str(tmp_path)
    dm = instantiate(cfg)
    assert isinstance(dm, ContentDataModule) and dm.source == name and dm.image_size == crop and dm.seed == 3


def test_lightning_fit_uses_datamodule() -> None:
    import pytorch_lightning as pl

    class Probe(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)
            self.shapes: list[tuple[str, tuple[int, ...]]] = []

        def training_step(self, batch: torch.Tensor, _: int) -> torch.Tensor:
            self.shapes.append(("train", tuple(batch.shape)))
            return self.conv(batch).mean()

        def validation_step(self, batch: torch.Tensor, _: int) -> None:
            self.shapes.append(("val", tuple(batch.shape)))

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    probe = Probe()
    dm = ContentDataModule(image_size=32, batch_size=2, builtin_length=4, num_val=2, val_size=32)
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    trainer.fit(probe, dm)
    assert probe.shapes == [("train", (2, 3, 32, 32))] * 2 + [("val", (2, 3, 32, 32))]
