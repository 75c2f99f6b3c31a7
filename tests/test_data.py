"""Content data: builtin/coco/folder sources, corrupt-file skipping, errors, and the COCO downloader."""
from __future__ import annotations

import functools
import io
import json
import logging
import socket
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from texnet import coco_download
from texnet.data import ContentDataModule
from texnet.errors import TexnetError


def write_photo(path: Path, size: tuple[int, int], seed: int) -> Path:
    """A small random RGB image (distinct per seed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path)
    return path


def make_coco(root: Path, split: str = "train2014", sizes=((60, 40), (40, 50), (48, 48))) -> list[str]:
    names = [f"COCO_{split}_{i:012d}.jpg" for i in range(len(sizes))]
    for i, (name, size) in enumerate(zip(names, sizes)):
        write_photo(root / split / name, size, seed=i)
    images = [{"id": i + 1, "file_name": n, "width": w, "height": h} for i, (n, (w, h)) in enumerate(zip(names, sizes))]
    ann = root / "annotations" / f"instances_{split}.json"
    ann.parent.mkdir(parents=True, exist_ok=True)
    ann.write_text(json.dumps({"images": images, "annotations": [], "categories": []}))
    return names


def epoch(dm: ContentDataModule) -> list[torch.Tensor]:
    return list(dm.train_dataloader())


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
    with caplog.at_level(logging.WARNING, logger="texnet.data"):
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
    with caplog.at_level(logging.WARNING, logger="texnet.data"):
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
    dm = ContentDataModule(source="folder", root=str(tmp_path), image_size=16, batch_size=2, num_workers=1)  # 2 held out
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


@pytest.mark.parametrize(("name", "crop"), [("builtin", 128), ("coco", 256), ("folder", 256)])
def test_hydra_configs_instantiate(name: str, crop: int, tmp_path: Path) -> None:
    """The built-in set is the CPU default (128 px crops); real data trains at the reference's 256 px."""
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(__file__).parents[1] / "conf" / "data" / f"{name}.yaml")
    if name != "builtin":
        assert OmegaConf.is_missing(cfg, "root")
        cfg.root = str(tmp_path)
    dm = instantiate(cfg)
    assert isinstance(dm, ContentDataModule) and dm.source == name and dm.image_size == crop


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
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, accelerator="cpu")
    trainer.fit(probe, dm)
    assert probe.shapes == [("train", (2, 3, 32, 32))] * 2 + [("val", (2, 3, 32, 32))]


# ---------------------------------------------------------------- coco_download


class RangeHandler(SimpleHTTPRequestHandler):
    """Static files with single-range `Range: bytes=N-` support; records each request's Range header."""

    requests: list[tuple[str, str | None]] = []
    honour_range = True

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self.requests.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        range_header = self.headers.get("Range")
        if range_header and self.honour_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            data = data[start:]
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def coco_server(tmp_path: Path):
    """A local mirror of images.cocodataset.org serving tiny train2014 + annotation zips."""
    served = tmp_path / "mirror"
    (served / "zips").mkdir(parents=True)
    (served / "annotations").mkdir()
    with zipfile.ZipFile(served / "zips" / "train2014.zip", "w", zipfile.ZIP_STORED) as zf:
        for i in range(3):
            buf = io.BytesIO()
            Image.fromarray(np.full((40, 40, 3), 60 * i, np.uint8)).save(buf, "JPEG")
            zf.writestr(f"train2014/COCO_train2014_{i:012d}.jpg", buf.getvalue())
    ann = {"images": [{"id": i, "file_name": f"COCO_train2014_{i:012d}.jpg"} for i in range(3)],
           "annotations": [], "categories": []}
    with zipfile.ZipFile(served / "annotations" / "annotations_trainval2014.zip", "w") as zf:
        zf.writestr("annotations/instances_train2014.json", json.dumps(ann))
        zf.writestr("annotations/instances_val2014.json", json.dumps(ann))
    RangeHandler.requests = []
    RangeHandler.honour_range = True
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()
    server.server_close()
    thread.join()


def check_coco_layout(root: Path) -> None:
    assert sorted(p.name for p in (root / "train2014").iterdir()) == [f"COCO_train2014_{i:012d}.jpg" for i in range(3)]
    dm = ContentDataModule(source="coco", root=str(root), image_size=16, batch_size=2, num_val=1, val_size=16)
    assert epoch(dm)[0].shape == (2, 3, 16, 16)


def test_download_fresh_then_skips(coco_server, tmp_path: Path) -> None:
    url, _ = coco_server
    root = tmp_path / "coco"
    assert coco_download.main(["--root", str(root), "--base-url", url, "--quiet"]) == 0
    check_coco_layout(root)
    assert not list(root.glob("*.zip")) and not list(root.glob("*.part"))
    assert [r for r in RangeHandler.requests if r[1]] == []
    RangeHandler.requests.clear()
    coco_download.download_coco(root, base_url=url, progress=False)
    assert RangeHandler.requests == []  # everything complete: no request at all


@pytest.mark.parametrize("honour_range", [True, False])
def test_download_resumes_part_file(coco_server, tmp_path: Path, honour_range: bool) -> None:
    url, served = coco_server
    RangeHandler.honour_range = honour_range
    root = tmp_path / "coco"
    root.mkdir()
    full = (served / "zips" / "train2014.zip").read_bytes()
    half = len(full) // 2
    (root / "train2014.zip.part").write_bytes(full[:half])
    coco_download.download_coco(root, base_url=url, keep_zips=True, progress=False)
    assert (root / "train2014.zip").read_bytes() == full
    assert ("/zips/train2014.zip", f"bytes={half}-") in RangeHandler.requests
    check_coco_layout(root)


def test_download_complete_part_file_is_kept(coco_server, tmp_path: Path) -> None:
    url, served = coco_server
    full = (served / "zips" / "train2014.zip").read_bytes()
    dest = tmp_path / "train2014.zip"
    (tmp_path / "train2014.zip.part").write_bytes(full)
    coco_download.download(f"{url}/zips/train2014.zip", dest, progress=False)
    assert dest.read_bytes() == full


def test_download_network_failure_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    rc = coco_download.main(["--root", str(tmp_path / "coco"), "--base-url", f"http://127.0.0.1:{port}", "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("error: downloading") and "rerun" in err and "\n" not in err


def test_download_http_404_is_one_line(coco_server, tmp_path: Path) -> None:
    url, _ = coco_server
    with pytest.raises(TexnetError, match="HTTP 404"):
        coco_download.download_coco(tmp_path, split="val2017", base_url=url, progress=False)
