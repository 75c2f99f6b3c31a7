"""Run folders that never lose a run: a used folder is refused, and a start that fails leaves no folder behind.

Hydra creates the run folder and writes ``.hydra/`` and ``train.log`` into it before ``train.py`` runs, so the
check has to happen earlier: :class:`RunFolderGuard` is a Hydra callback (registered in conf/train.yaml) that
looks at the folder in ``on_run_start``, before Hydra touches it, and records the folders this process creates.
``train()`` applies the same rule when it is called directly (tests, notebooks). The folder's name
(:func:`run_name`) and the check that ``run_dir`` is Hydra's folder live here too: train.py uses them before it
imports torch.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from texnet.errors import TexnetError

# What train() writes into a run folder; any of them means the folder already holds a run.
RUN_ENTRIES = ("config.yaml", "checkpoints", "csv", "samples")
# Before Hydra writes, its own .hydra/ counts too (the web app makes a run folder with train.log in it first;
# Hydra appends to train.log, so that is never lost).
HYDRA_RUN_ENTRIES = (*RUN_ENTRIES, ".hydra")

_created: set[Path] = set()  # run folders that did not exist before this process started its run
_created_above: set[Path] = set()  # folders above them made for them (runs/<new texture name>/): removed if left empty


def resumes_inside(folder: Path, ckpt_path: str | None) -> bool:
    """Whether `ckpt_path` is a checkpoint inside `folder` (a resume continues its own run folder)."""
    return bool(ckpt_path) and Path(str(ckpt_path)).expanduser().resolve().is_relative_to(folder.resolve())


def check_run_folder(folder: Path, ckpt_path: str | None, entries: tuple[str, ...] = RUN_ENTRIES) -> None:
    """Refuse `folder` if it already holds a run (any of `entries`), unless the run resumes from a checkpoint in it."""
    folder = Path(folder)
    if not folder.is_dir() or resumes_inside(folder, ckpt_path):
        return
    used = sorted(p.name for p in folder.iterdir() if p.name in entries)
    if used:
        raise TexnetError(
            f"run folder '{folder}' already holds a run ({', '.join(used[:4])}): pass a new hydra.run.dir=, "
            f"or resume that run with ckpt_path={folder / 'checkpoints' / 'last.ckpt'}"
        )


def record_start(folder: Path) -> bool:
    """Note whether `folder` is new (call it before anything creates it); returns whether this process created it
    (it, or a sweep folder above it)."""
    folder = Path(folder).resolve()
    if not folder.exists():
        _created.add(folder)
        for parent in folder.parents:
            if parent.exists():
                break
            _created_above.add(parent)
    return any(p in _created for p in (folder, *folder.parents))


def remove_failed_start(folder: Path) -> bool:
    """Delete `folder` if this process created it (a failed start), and the folders above it that were made for it
    if they are left empty; a folder that existed before is never touched."""
    folder = Path(folder).resolve()
    if not folder.exists() or not record_start(folder):
        return False
    shutil.rmtree(folder, ignore_errors=True)
    _created.discard(folder)
    for parent in folder.parents:  # a typo'd texture name leaves no empty runs/<typo>/ behind; nothing else is touched
        if parent not in _created_above or any(parent.iterdir()):
            break
        parent.rmdir()
        _created_above.discard(parent)
    return True


class RunFolderGuard(Callback):
    """Hydra callback: refuse a run (or sweep) folder that already holds a run, before Hydra writes into it.

    DDP worker processes, which Lightning starts into the folder rank 0 already made, are let through.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        # The default run folder interpolates ${hydra:runtime.choices.texture}, which resolves only once Hydra's
        # config is set; Hydra sets it after this callback (run_job sets the same config again, so this changes nothing).
        HydraConfig.instance().set_config(config)
        folder, ckpt_path = Path(str(config.hydra.run.dir)), config.get("ckpt_path")
        checked = self._guard(folder, ckpt_path, HYDRA_RUN_ENTRIES)
        if checked and resumes_inside(folder, ckpt_path) and config.hydra.output_subdir:
            keep_hydra_files(folder / str(config.hydra.output_subdir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._guard(Path(str(config.hydra.sweep.dir)), None, ("multirun.yaml",))

    @staticmethod
    def _guard(folder: Path, ckpt_path: str | None, entries: tuple[str, ...]) -> bool:
        """Check `folder` (rank 0 only: DDP workers start in rank 0's folder); returns whether it was checked."""
        from pytorch_lightning.utilities import rank_zero_only

        if rank_zero_only.rank != 0:
            return False
        try:
            check_run_folder(folder, ckpt_path, entries)
        except TexnetError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(1)
        record_start(folder)
        return True


def keep_hydra_files(hydra_dir: Path) -> Path | None:
    """A resume in the run's folder: move the files Hydra is about to rewrite (its config, overrides: the command
    that started the run) into ``.hydra/start_<k>/``, k counting the earlier starts; returns that folder."""
    files = [hydra_dir / name for name in ("config.yaml", "hydra.yaml", "overrides.yaml")]
    if not any(f.is_file() for f in files):
        return None
    k = 1
    while (hydra_dir / f"start_{k}").exists():
        k += 1
    kept = hydra_dir / f"start_{k}"
    kept.mkdir()
    for f in files:
        if f.is_file():
            f.rename(kept / f.name)
    return kept


def run_name(choice: str, images: list[str] | None, add: str | None) -> str:
    """The run folder's name (conf/train.yaml's hydra.run.dir): the texture, the textures joined by "+", or
    ``add-<name>`` for ``texture.add``; a texture image's name is its file name's stem (texnet.textures)."""
    if add:
        return f"add-{Path(add).stem}"
    return "+".join(Path(image).stem for image in images) if images else choice


def resume_folder(ckpt_path: str | None, new: str) -> str:
    """The run folder (conf/train.yaml's hydra.run.dir): the checkpoint's own run folder when ``ckpt_path`` is in
    the ``checkpoints/`` of a run train.py wrote (its config.yaml beside it), so that a resume goes on in that
    folder with that run's options (texnet.resume); otherwise `new`."""
    if ckpt_path:
        folder = Path(str(ckpt_path)).expanduser().parent
        if folder.name == "checkpoints" and (folder.parent / "config.yaml").is_file():
            return str(folder.parent)
    return new


def check_run_dir(cfg: DictConfig) -> None:
    """run_dir must be Hydra's run folder, or the run would be split in two (Hydra's log and .hydra/ stay behind)."""
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    if Path(cfg.run_dir).resolve() != output_dir.resolve():
        raise TexnetError(
            f"run_dir={cfg.run_dir} is not Hydra's run folder {output_dir}: choose the folder with "
            f"hydra.run.dir={cfg.run_dir} (hydra.sweep.dir= for -m sweeps) and leave run_dir alone"
        )
