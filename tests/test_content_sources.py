"""texnet.content_sources: listing photo folders, the hash-ranked held-out order, layout checks, skipping bad files."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from conftest import make_coco, write_photo
from PIL import Image

from texnet.content_sources import ImageFiles, check_root, coco_images, held_out_order, list_images, shrink
from texnet.errors import TexnetError
from texnet.image import pil_to_tensor


def test_list_images_is_recursive_case_insensitive_and_sorted(tmp_path: Path) -> None:
    files = [
        write_photo(tmp_path / "b" / "one.JPG", (8, 8), 1),
        write_photo(tmp_path / "a" / "c" / "two.png", (8, 8), 2),
    ]
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "folder.jpg").mkdir()  # a folder named like an image is no image
    assert list_images(tmp_path) == sorted(files)


def test_held_out_order_depends_on_the_names_not_the_listing(tmp_path: Path) -> None:
    paths = [tmp_path / f"p{i}.png" for i in range(8)]
    order = held_out_order(paths, tmp_path)
    assert held_out_order(list(reversed(paths)), tmp_path) == order and sorted(order) == sorted(paths)
    assert order != paths  # ranked by hash, not by name
    grown = held_out_order([*paths, tmp_path / "new.png"], tmp_path)
    assert [p for p in grown if p.name != "new.png"] == order  # a new file does not reshuffle the others


def test_check_root_names_the_folder_and_the_fix(tmp_path: Path) -> None:
    with pytest.raises(TexnetError, match=r"COCO image folder '.*train2014' does not exist: .*texnet\.coco_download"):
        check_root("coco", tmp_path)
    with pytest.raises(TexnetError, match="has no images"):
        check_root("folder", tmp_path)
    with pytest.raises(TexnetError, match="has no root to check"):
        check_root("builtin", tmp_path)
    write_photo(tmp_path / "deep" / "x.png", (8, 8), 0)
    check_root("folder", tmp_path)


def test_coco_images_keeps_only_listed_files_on_disk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    names = make_coco(tmp_path)
    (tmp_path / "train2014" / names[1]).unlink()
    with caplog.at_level(logging.WARNING, logger="texnet.content_sources"):
        assert coco_images(tmp_path, "train2014") == [
            tmp_path / "train2014" / names[0],
            tmp_path / "train2014" / names[2],
        ]
    assert "1 of 3 images" in caplog.text


def test_image_files_replaces_an_unreadable_file_by_the_next(tmp_path: Path) -> None:
    bad = tmp_path / "a.png"
    bad.write_bytes(b"nope")
    good = write_photo(tmp_path / "b.png", (6, 4), 0)
    dataset = ImageFiles([bad, good], transform=lambda img: img)
    assert torch.equal(dataset[0], pil_to_tensor(Image.open(good).convert("RGB"))[0])
    assert dataset.skipped == {str(bad)} and dataset.open(0) is None
    with pytest.raises(TexnetError, match="consecutive content images"):
        ImageFiles([bad], transform=lambda img: img)[0]


def test_shrink_only_scales_down() -> None:
    img = Image.new("RGB", (300, 200))
    assert shrink(img, 100).size == (150, 100) and shrink(img, 400) is img
