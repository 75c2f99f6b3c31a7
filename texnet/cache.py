"""texnet's cache folder, ``$TEXNET_CACHE`` (default ``~/.cache/texnet``): converted VGG weights, the offline Visdom
front-end, the ONNX graphs of the inference fast path. No torch import here: the offline Visdom server uses it."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    return Path(os.environ.get("TEXNET_CACHE", Path.home() / ".cache" / "texnet"))
