"""texnet's cache folder, ``$TEXNET_CACHE`` (default ``~/.cache/texnet``): converted VGG weights, the offline Visdom
front-end, the ONNX graphs of the inference fast path, the measured bf16 speed. No torch import here: the offline
Visdom server uses it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("TEXNET_CACHE", Path.home() / ".cache" / "texnet"))


def write_atomically(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all, through a per-process partial file renamed over it: a reader, or a run
    starting beside this one, never sees half a file. On OSError the partial file is removed and the error raised."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        os.replace(partial, path)
    except OSError:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
