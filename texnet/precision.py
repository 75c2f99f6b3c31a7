"""Where bfloat16 pays: one answer for every part of texnet that picks bf16 by device (``precision: auto``).

A CPU's flags say whether it *can* run bf16 convolutions (AVX512-BF16, AMX), not whether they are faster than fp32:
on one AVX512-BF16 CPU texnet's bf16 path trained twice as fast, on another no faster (docs/results.md, sessions 40,
47 and 48). So on a bf16-capable CPU ``auto`` times a small VGG-shaped convolution stack both ways once per machine and
torch version, keeps the answer in ``$TEXNET_CACHE/precision.json``, and uses bf16 only where it measured faster.
Kept apart from texnet.vgg so that the generator can ask without importing torchvision.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import platform
import time
from pathlib import Path

import torch
from torch import nn

from texnet.cache import cache_dir, write_atomically
from texnet.errors import TexnetError, first_line

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
# bf16 must beat fp32 by this much on the probe: where it read 1.9-2.3x the whole training step ran 1.8-2.2x faster
# (docs/results.md, session 48); a CPU whose step ran 0.9-1.05x is expected below it; a noisy tie stays on fp32.
MIN_SPEEDUP = 1.25
CACHE_NAME = "precision.json"


def check_precision(option: str, value: str) -> None:
    """A one-line TexnetError naming the config `option` unless `value` is one of PRECISIONS."""
    if value not in PRECISIONS:
        raise TexnetError(f"{option}='{value}' is unknown: use one of {', '.join(PRECISIONS)}")


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 convolutions pay here: CUDA with bf16, or a CPU where they measured faster than fp32."""
    return _bf16_is_fast(device.type, device.index)


@functools.lru_cache(maxsize=None)
def _bf16_is_fast(kind: str, index: int | None) -> bool:
    """Asked once per device and process: the VGG's forward, run several times per training step, reads it."""
    if kind == "cuda":
        return torch.cuda.is_bf16_supported()
    if kind == "cpu":
        if not cpu_has_bf16():
            return False
        speedup = cpu_bf16_speedup()
        fast = speedup >= MIN_SPEEDUP
        log.info(
            "precision auto: %s on this CPU (bf16 convolutions measured %.2fx as fast as fp32); "
            "loss.precision and model.train_precision set to fp32 or bf16 choose instead",
            "bf16" if fast else "fp32",
            speedup,
        )
        return fast
    return False


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 convolutions natively (oneDNN: AVX512-BF16 or AMX), fast or not."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def uses_bf16(precision: str, device: torch.device) -> bool:
    """``precision`` (auto | fp32 | bf16) resolved on `device`: bf16 forced, or auto where bf16 is fast."""
    return precision == "bf16" or (precision == "auto" and bf16_is_fast(device))


def machine_key() -> str:
    """What the measured speed-up depends on: the CPU (model name and flags) and the torch build."""
    cpu = platform.processor()
    try:  # Linux: the processors' model name and flags
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().splitlines() if ":" in line)
        fields = {name.strip(): value.strip() for name, value in fields.items()}
        cpu = f"{fields.get('model name', cpu)} {fields.get('flags', '')}"
    except OSError:  # elsewhere the processor string is what there is
        pass
    return f"torch {torch.__version__} cpu {hashlib.sha1(cpu.encode()).hexdigest()[:12]}"


def cpu_bf16_speedup() -> float:
    """bf16 over fp32 speed of the probe on this CPU: read from the cache, else measured (under a second) and kept."""
    path, key = cache_dir() / CACHE_NAME, machine_key()
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):  # none yet, or not JSON: measured and written anew
        cached = {}
    cached = cached if isinstance(cached, dict) else {}
    if isinstance(cached.get(key), (int, float)):
        return float(cached[key])
    try:
        speedup = measure_cpu_bf16_speedup()
    except RuntimeError as error:  # a oneDNN build that claims bf16 and cannot run it: fp32, asked again next run
        log.warning("precision auto: bf16 convolutions failed on this CPU (%s); using fp32", first_line(error))
        return 0.0
    try:
        write_atomically(path, json.dumps({**cached, key: speedup}, indent=1).encode())
    except OSError:  # a cache that cannot be written costs a measurement per process, nothing else
        pass
    return speedup


def probe_stack() -> nn.Sequential:
    """VGG's first nine convolution shapes (to relu4_1), frozen: what texnet's training step spends most time in."""
    layers: list[nn.Module] = []
    channels = 3
    for out, pool in ((64, False), (64, True), (128, False), (128, True), (256, False), (256, True), (512, False)):
        layers += [nn.Conv2d(channels, out, 3, padding=1), nn.ReLU()]
        layers += [nn.MaxPool2d(2)] if pool else []
        channels = out
    return nn.Sequential(*layers).requires_grad_(False)


def measure_cpu_bf16_speedup(size: int = 64, rounds: int = 3, reps: int = 3) -> float:
    """Forward and backward to the input through the probe, fp32 (contiguous) against bf16 (channels_last, bf16
    weights: texnet.vgg's two paths), alternated so that a neighbour's load hits both; the best time of each.
    The first ask is inside no_grad (the loss's texture Gram targets) and may be in inference_mode: the probe is
    built and run in grad mode whatever the caller's."""
    with torch.inference_mode(False), torch.enable_grad(), torch.autocast("cpu", enabled=False):
        generator = torch.Generator().manual_seed(0)
        fp32 = probe_stack()
        bf16 = probe_stack().to(memory_format=torch.channels_last).bfloat16()
        x = torch.rand(1, 3, size, size, generator=generator)
        paths = ((fp32, x), (bf16, x.contiguous(memory_format=torch.channels_last).bfloat16()))
        best = [float("inf"), float("inf")]
        for _ in range(rounds):
            for i, (body, inputs) in enumerate(paths):
                for _ in range(reps):
                    leaf = inputs.detach().requires_grad_()
                    start = time.perf_counter()
                    body(leaf).float().square().sum().backward()
                    best[i] = min(best[i], time.perf_counter() - start)
    return best[0] / best[1]
