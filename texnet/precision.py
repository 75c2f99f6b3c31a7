"""Where bfloat16 pays: one answer for every part of texnet that picks bf16 by device (``precision: auto``).

Kept apart from texnet.vgg so that the generator can ask without importing torchvision.
"""

from __future__ import annotations

import functools

import torch

PRECISIONS = ("auto", "fp32", "bf16")


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 convolutions run natively here (CUDA with bf16, or a CPU with AVX512-BF16/AMX)."""
    return _bf16_is_fast(device.type, device.index)


@functools.lru_cache(maxsize=None)
def _bf16_is_fast(kind: str, index: int | None) -> bool:
    """Asked once per device: the VGG's forward, run several times per training step, reads it every time."""
    if kind == "cuda":
        return torch.cuda.is_bf16_supported()
    if kind == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def uses_bf16(precision: str, device: torch.device) -> bool:
    """``precision`` (auto | fp32 | bf16) resolved on `device`: bf16 forced, or auto where bf16 is fast."""
    return precision == "bf16" or (precision == "auto" and bf16_is_fast(device))
