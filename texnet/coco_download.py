"""Download and extract MSCOCO content photos: ``python -m texnet.coco_download --root data/coco``.

Result: ``root/{split}/*.jpg`` and ``root/annotations/instances_{split}.json``, the layout
``texnet.data.ContentDataModule(source="coco")`` reads. train2014 is a 13 GB zip, so downloads are
resumable: bytes go to ``<zip>.part`` and a rerun continues it with an HTTP Range request (starting
over if the server ignores Range). Finished steps are skipped: a complete zip is not downloaded
again, and an extracted zip leaves a ``.<name>.extracted`` marker in ``root``. Only the stdlib
(urllib) is used, so this works wherever texnet installs.
"""

from __future__ import annotations

import argparse
import http.client
import logging
import re
import shutil
import socket
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm import tqdm

from texnet.errors import TexnetError

log = logging.getLogger(__name__)

BASE_URL = "http://images.cocodataset.org"
CHUNK = 1 << 20
TIMEOUT_S = 60.0
NETWORK_HINT = "check your internet connection or proxy (HTTP_PROXY), then rerun the same command to resume"


def coco_urls(split: str, base_url: str = BASE_URL) -> list[str]:
    """URLs of the image zip of `split` and of the annotation zip of its year (e.g. 2014 for train2014)."""
    match = re.fullmatch(r"(train|val|test)(\d{4})", split)
    if not match:
        raise TexnetError(f"--split '{split}' is not a COCO split name such as train2014 or val2017")
    base = base_url.rstrip("/")
    return [f"{base}/zips/{split}.zip", f"{base}/annotations/annotations_trainval{match.group(2)}.zip"]


def _range_total(headers) -> int | None:
    """The full size in a Content-Range header ("bytes 0-9/100" or, with 416, "bytes */100")."""
    total = headers.get("Content-Range", "").rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _total_size(response, offset: int) -> int | None:
    """Full size of the remote file, from Content-Range (206) or Content-Length (200)."""
    if (total := _range_total(response.headers)) is not None:
        return total
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def download(url: str, dest: Path, progress: bool = True) -> Path:
    """Download `url` to `dest`, resuming `dest.part` if present; a complete `dest` is kept as is."""
    if dest.is_file():
        log.info("%s already downloaded", dest)
        return dest
    part = dest.with_name(dest.name + ".part")
    offset = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        try:
            response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as err:
            if err.code != 416 or not offset:
                raise
            # Range not satisfiable: the .part already holds the whole file (an earlier run stopped
            # before renaming it), or it is longer than the file (a different file): start over.
            if _range_total(err.headers) == offset:
                return part.replace(dest)
            part.unlink()
            return download(url, dest, progress)
        with response:
            if offset and response.status != 206:
                log.warning("server ignored the Range request for %s: downloading it from the start", url)
                offset = 0
            total = _total_size(response, offset)
            with (
                open(part, "ab" if offset else "wb") as out,
                tqdm(
                    total=total,
                    initial=offset,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=dest.name,
                    disable=not progress,
                ) as bar,
            ):
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise TexnetError(
            f"downloading {url} failed: HTTP {err.code} {err.reason}: check --base-url / --split"
        ) from None
    except (urllib.error.URLError, socket.timeout, ConnectionError, http.client.HTTPException) as err:
        reason = str(getattr(err, "reason", None) or err) or type(err).__name__
        raise TexnetError(f"downloading {url} failed ({reason}): {NETWORK_HINT}") from None
    except OSError as err:  # local disk: full, not writable
        raise TexnetError(
            f"writing '{part}' failed ({err.strerror or err}): free disk space or choose another --root"
        ) from None
    size = part.stat().st_size
    if total is not None and size != total:
        raise TexnetError(f"downloading {url} stopped at {size} of {total} bytes: {NETWORK_HINT}")
    part.replace(dest)
    return dest


def extract(archive: Path, root: Path, expected: Path, progress: bool = True) -> None:
    """Unzip `archive` into `root` unless its marker says it was done; `expected` must exist afterwards."""
    marker = root / f".{archive.stem}.extracted"
    if marker.is_file() and expected.exists():
        log.info("%s already extracted", archive)
        return
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in tqdm(zf.infolist(), desc=f"extracting {archive.name}", unit="file", disable=not progress):
                zf.extract(member, root)
    except zipfile.BadZipFile:
        archive.unlink()
        raise TexnetError(
            f"'{archive}' is not a valid zip (corrupt download): it was deleted; rerun to download it again"
        ) from None
    if not expected.exists():
        raise TexnetError(f"'{archive}' did not contain '{expected.relative_to(root)}': check --split / --base-url")
    marker.touch()


def download_coco(
    root: str | Path, split: str = "train2014", base_url: str = BASE_URL, keep_zips: bool = False, progress: bool = True
) -> Path:
    """Fetch and extract the images and annotations of `split` into `root`; returns `root`."""
    root = Path(root)
    images_url, annotations_url = coco_urls(split, base_url)
    expected = {images_url: root / split, annotations_url: root / "annotations" / f"instances_{split}.json"}
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TexnetError(f"cannot create --root '{root}' ({err.strerror}): choose a writable folder") from None
    for url, target in expected.items():
        archive = root / url.rsplit("/", 1)[1]
        marker = root / f".{archive.stem}.extracted"
        if marker.is_file() and target.exists():
            log.info("%s is complete", target)
            continue
        free = shutil.disk_usage(root).free
        log.info("downloading %s (%.1f GB free in %s)", url, free / 1e9, root)
        download(url, archive, progress)
        extract(archive, root, target, progress)
        if not keep_zips:
            archive.unlink()
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m texnet.coco_download", description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="target folder, e.g. data/coco (then use data.root=data/coco)")
    parser.add_argument("--split", default="train2014", help="COCO image split (default: train2014)")
    parser.add_argument("--base-url", default=BASE_URL, help=f"mirror to download from (default: {BASE_URL})")
    parser.add_argument("--keep-zips", action="store_true", help="keep the zip files after extraction")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        root = download_coco(args.root, args.split, args.base_url, args.keep_zips, progress=not args.quiet)
    except TexnetError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to resume the download", file=sys.stderr)
        return 130
    print(f"MSCOCO {args.split} is ready in {root}: train with data=coco data.root={root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
