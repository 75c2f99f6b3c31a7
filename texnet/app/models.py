"""The trained models the app offers: checkpoints found under the runs folder, loaded once and cached."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

from texnet.checkpoint import checkpoint_texture_name, read_checkpoint
from texnet.errors import TexnetError
from texnet.inference import Stylizer, load

log = logging.getLogger(__name__)

CHECKPOINT_NAMES = ("last.ckpt", "best.ckpt")


def find_checkpoints(runs_dir: Path) -> list[Path]:
    """Every ``checkpoints/last.ckpt`` and ``best.ckpt`` below `runs_dir`: newest run first, last before best."""
    found = [p for name in CHECKPOINT_NAMES for p in runs_dir.glob(f"**/checkpoints/{name}") if p.is_file()]
    newest = {p.parent: 0.0 for p in found}
    for p in found:
        newest[p.parent] = max(newest[p.parent], p.stat().st_mtime)
    return sorted(found, key=lambda p: (-newest[p.parent], str(p.parent), CHECKPOINT_NAMES.index(p.name)))


class ModelCache:
    """Loaded Stylizers by (path, modification time): a checkpoint rewritten by training is reloaded."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._models: OrderedDict[tuple[str, int], Stylizer] = OrderedDict()
        self._names: dict[tuple[str, int], str | None] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(path: str | Path) -> tuple[str, int]:
        from texnet.models import resolve_checkpoint  # a shipped model's name is its file in the package

        path = resolve_checkpoint(path).resolve()
        if not path.is_file():
            raise TexnetError(f"checkpoint '{path}' does not exist: pick another model or press refresh")
        return str(path), path.stat().st_mtime_ns

    def get(self, path: str | Path) -> Stylizer:
        key = self._key(path)
        with self._lock:
            if key not in self._models:
                self._models[key] = load(key[0])
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
            self._models.move_to_end(key)
            return self._models[key]

    def texture_name(self, path: Path) -> str | None:
        """The texture a checkpoint was trained on (None: not a texnet checkpoint), remembered for the model list."""
        key = self._key(path)
        if key not in self._names:
            try:
                self._names[key] = checkpoint_texture_name(read_checkpoint(path))
            except TexnetError as err:
                log.warning("not listed: %s", err)
                self._names[key] = None
        return self._names[key]


def model_choices(runs_dir: Path, cache: ModelCache) -> list[tuple[str, str]]:
    """(label, path) for the model dropdown: the shipped models ('mosaic · shipped'), then the user's runs
    ('texture · run folder · last|best')."""
    from texnet.models import cards

    choices = [(f"{name} · shipped", name) for name in sorted(cards())]
    for path in find_checkpoints(runs_dir):
        name = cache.texture_name(path)
        if name is not None:
            run = path.parent.parent
            where = run.relative_to(runs_dir) if run != runs_dir else run.name
            choices.append((f"{name} · {where} · {path.stem}", str(path)))
    return choices
