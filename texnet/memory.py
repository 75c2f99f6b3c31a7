"""Memory a whole-image forward pass of a generator needs, and memory this machine has free; without torch, so that
texnet.graph_stylize can decide whether a photo fits before torch is ever imported."""

from __future__ import annotations

import os
from pathlib import Path

# Peak memory growth of one forward pass, in units of the generator's full_res_channels float32 maps per pixel
# (measured at 1024x1024: pyramid 0.63 / 1.19 KB per pixel, residual net 1.16 / 0.94 KB: onnxruntime's 9x9
# first convolution unfolds its input; the encoder network 1.18 / 1.30 KB, its 64-channel maps).
PEAK_MAPS = {
    "pyramid": {"onnxruntime": 4, "eager": 7},
    "residual": {"onnxruntime": 10, "eager": 8},
    "encoder": {"onnxruntime": 5, "eager": 6},
}


def bytes_per_pixel(arch: str, full_res_channels: int, backend: str) -> int:
    """Peak bytes per pixel (of the padded image) of one forward pass of a generator on `backend`."""
    return full_res_channels * 4 * PEAK_MAPS[arch][backend]


def cpu_memory_available() -> int:
    """Bytes free for tensors on this machine: on Linux MemAvailable, capped by a container's cgroup limit."""
    free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            free = min(free, int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return free
