"""The training photos' order and random crops as a function of (seed, epoch, position), and a DataLoader that
Lightning resumes mid-epoch where the interrupted run was.

Crops drawn from the global RNG depend on everything else that draws from it (the generator's noise, worker
processes' seeds) and on where an epoch was resumed. Here each item of an epoch comes with its own seed
(:class:`EpochSampler`), the datasets draw its scale, crop and flip from it (:func:`seeded`), and
:class:`ResumableLoader` tells Lightning how many items of the epoch were used (``state_dict``; torch's samplers
and DataLoader have no such state): a run resumed from a checkpoint trains on the batches the uninterrupted run
would have. The global RNG, which the generator's noise still draws from, is saved with the checkpoint and put
back on resume (:func:`rng_states`, :func:`set_rng_states`, called by texnet.module).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
from torch.utils.data import DataLoader, Sampler

log = logging.getLogger(__name__)

T = TypeVar("T")


def seeded(seed: int | None, draw: Callable[[Any], T], value: Any) -> T:
    """`draw(value)` with the global CPU RNG seeded by `seed` and put back afterwards (torchvision's random
    transforms take no generator); `seed` None: from the global RNG as it is."""
    if seed is None:
        return draw(value)
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        return draw(value)


def rng_states() -> dict[str, Any]:
    """The global RNGs' states: the CPU's, and each GPU's where CUDA is in use."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return {"cpu": torch.get_rng_state(), "cuda": cuda}


def set_rng_states(states: dict[str, Any]) -> None:
    """Put back what :func:`rng_states` returned (the GPUs' only where the same number is in use)."""
    torch.set_rng_state(states["cpu"])
    if states["cuda"] and torch.cuda.is_available() and torch.cuda.device_count() == len(states["cuda"]):
        torch.cuda.set_rng_state_all(states["cuda"])


class EpochSampler(Sampler[tuple[int, int]]):
    """Every index of a dataset of `length` items once per epoch, shuffled, each as ``(index, seed)``: the order
    and the seeds are drawn from (`seed`, epoch) alone. The epoch is Lightning's (``set_epoch``) or, iterated
    without it (Lightning's distributed wrapper), one more at every pass."""

    def __init__(self, length: int, seed: int) -> None:
        self.length, self.seed, self.epoch = length, seed, 0
        self._resume: tuple[int, int] | None = None  # (epoch, items to skip) for the next pass

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def resume(self, epoch: int, items: int) -> None:
        """The next pass, if it is `epoch`'s, starts after its first `items` items."""
        self._resume = (epoch, items)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, self.epoch = self.epoch, self.epoch + 1
        rng = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.length, generator=rng).tolist()
        seeds = torch.randint(2**62, (self.length,), generator=rng).tolist()
        start = self._resume[1] if self._resume is not None and self._resume[0] == epoch else 0
        self._resume = None
        return zip(order[start:], seeds[start:])


class ResumableLoader(DataLoader):
    """A DataLoader over an :class:`EpochSampler` whose state (epoch, items yielded in it) Lightning saves with each
    checkpoint and gives back on resume, so the resumed epoch skips what was trained on instead of starting over."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epoch, self._items = 0, 0

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        sampler = self.sampler
        self._epoch, self._items = (sampler.epoch if isinstance(sampler, EpochSampler) else 0), 0
        for batch in super().__iter__():
            self._items += len(batch)
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._epoch, "items": self._items}

    def load_state_dict(self, state: dict[str, int]) -> None:
        if isinstance(self.sampler, EpochSampler):  # Lightning sets the epoch itself before the next pass
            self.sampler.resume(state["epoch"], state["items"])
        elif state.get("items"):
            log.warning("the sampler is not texnet's (a distributed run?): the resumed epoch starts from its beginning")
