"""texnet.coco_download against a local mirror: fresh download, resumed .part files, one-line network errors."""

from __future__ import annotations

import functools
import io
import json
import socket
import threading
import zipfile
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import epoch
from PIL import Image

from texnet import coco_download
from texnet.data import ContentDataModule
from texnet.errors import TexnetError


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
    ann = {
        "images": [{"id": i, "file_name": f"COCO_train2014_{i:012d}.jpg"} for i in range(3)],
        "annotations": [],
        "categories": [],
    }
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
