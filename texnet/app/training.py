"""The app's Train tab without its layout: checking the inputs, the ``python train.py`` command, one background
training process per app, and its progress read back from the run folder (``csv/metrics.csv``, the log).

Training runs the root script ``train.py`` of a texnet checkout (``--repo``, default the working directory),
with that checkout's Hydra configs; stylising needs only the installed package.
"""

from __future__ import annotations

import csv
import inspect
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from omegaconf import OmegaConf

from texnet.checkpoint import read_checkpoint
from texnet.cli import hydra_value
from texnet.content_sources import check_root
from texnet.errors import TexnetError
from texnet.generator import ARCHITECTURES, PyramidGenerator
from texnet.image import MIN_SIDE, next_free_dir, open_rgb
from texnet.losses import default_loss_config
from texnet.textures import available_textures, texture_path
from texnet.viz import DEFAULT_PORT

log = logging.getLogger(__name__)

TRAIN_LOG = "console.log"  # train.py's stdout and stderr, in its run folder
STOP_GRACE_S = 30  # after SIGTERM, Lightning finishes the step and exits; SIGKILL after this
DATA_SOURCES = [
    ("built-in photos (scikit-image samples, no download)", "builtin"),
    ("a folder of photos", "folder"),
    ("MSCOCO root (holds train2014/)", "coco"),
]


def find_repo(path: str | Path | None) -> Path | None:
    """`path` if it is a texnet checkout (train.py and conf/ in it), else None: the Train tab then explains."""
    repo = Path(path or ".").expanduser().resolve()
    return repo if (repo / "train.py").is_file() and (repo / "conf" / "train.yaml").is_file() else None


def require_repo(repo: Path | None) -> Path:
    if repo is None:
        raise TexnetError(
            "training runs train.py from a texnet checkout: start the app in its folder or pass --repo /path/to/texnet"
        )
    return repo


def train_defaults(repo: Path | None) -> dict[str, Any]:
    """The Train tab's starting values: those of ``python train.py`` in `repo` (its conf/), or the library's without one."""
    values = {
        "image_size": None,
        "max_steps": None,
        "style_scale": default_loss_config()["style_scale"],
        "noise_factor": inspect.signature(PyramidGenerator).parameters["noise_factor"].default,
    }
    if repo is not None:
        conf = repo / "conf"
        values["image_size"] = OmegaConf.select(OmegaConf.load(conf / "data" / "builtin.yaml"), "image_size")
        values["max_steps"] = OmegaConf.select(OmegaConf.load(conf / "trainer" / "cpu.yaml"), "max_steps")
        values["noise_factor"] = OmegaConf.select(OmegaConf.load(conf / "model" / "pyramid.yaml"), "noise_factor")
    return values


class TrainingJob:
    """The app's one training process (``python train.py``) and its run folder: one at a time per app."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.run_dir: Path | None = None
        self.max_steps = 0
        self.started = 0.0
        self.visdom_link: str | None = None
        self.stopped = False
        self.final_step: int | None = None
        self._lock = threading.Lock()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, command: list[str], run_dir: Path, max_steps: int, visdom_link: str | None, repo: Path) -> None:
        """Run `command` (``python train.py ...``) in the checkout `repo`, its output going to the run folder's log."""
        with self._lock:
            if self.running():
                raise TexnetError(f"a training is already running in '{self.run_dir}': stop it first (one at a time)")
            with (run_dir / TRAIN_LOG).open("ab") as log_file:
                log_file.write(f"$ {shlex.join(command)}\n".encode())
                log_file.flush()
                # its own session: Stop signals train.py and its data-loader workers together
                self.process = subprocess.Popen(
                    command,
                    cwd=repo,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )
            self.run_dir, self.max_steps, self.visdom_link = run_dir, max_steps, visdom_link
            self.started, self.stopped, self.final_step = time.monotonic(), False, None
            log.info("training started (pid %d) in %s", self.process.pid, run_dir)

    def saved_step(self) -> int:
        """The step of last.ckpt once the process has ended (metrics.csv only has every log_every_n_steps-th)."""
        if self.process is None or self.process.poll() is None:
            return 0
        if self.final_step is None:
            last = self.run_dir / "checkpoints" / "last.ckpt"
            try:
                self.final_step = int(read_checkpoint(last).get("global_step", 0)) if last.is_file() else 0
            except TexnetError:
                self.final_step = 0
        return self.final_step

    def stop(self) -> bool:
        """SIGTERM to the training's process group (Lightning stops cleanly), SIGKILL if it lingers."""
        with self._lock:
            process = self.process
            if process is None or process.poll() is not None:
                return False
            self.stopped = True
            self._signal(process, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._signal(process, signal.SIGKILL)
                process.wait()
            self._signal(process, signal.SIGKILL)  # data-loader workers left behind by the group leader
            return True

    @staticmethod
    def _signal(process: subprocess.Popen, sig: signal.Signals) -> None:
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def read_progress(run_dir: Path) -> tuple[int, dict[str, float]]:
    """(steps done, latest value of every metric) from the run's CSVLogger file (flushed every 10 steps)."""
    path = run_dir / "csv" / "metrics.csv"
    steps, latest = 0, {}
    try:
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                for key, value in row.items():
                    try:
                        number = float(value)
                    except (TypeError, ValueError):
                        continue
                    if key == "step":
                        steps = max(steps, int(number) + 1)  # Lightning logs the 0-based index of the step
                    elif key:
                        latest[key] = number
    except OSError:
        pass
    return steps, latest


def log_tail(path: Path, lines: int = 12) -> str:
    """The last `lines` lines of a log that may be large and is still being written."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 16384))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def validate_data(source: str, path: str) -> list[str]:
    """train.py overrides for the chosen content photos, after checking the folder is usable."""
    if source == "builtin":
        return []
    if not path.strip():
        raise TexnetError(f"data={source} needs a folder path")
    root = Path(path.strip()).expanduser().resolve()
    if not root.is_dir():
        raise TexnetError(f"folder '{root}' does not exist: give an existing folder")
    if source not in ("folder", "coco"):
        raise TexnetError(f"data source '{source}' is unknown: use builtin, folder or coco")
    check_root(source, root)
    return [f"data={source}", f"data.root={hydra_value(root)}"]


def visdom_overrides(visdom_url: str | None, env: str) -> tuple[list[str], str | None]:
    """train.py overrides that send the run to the Visdom server at `visdom_url`, and the run's dashboard link."""
    if not visdom_url:
        return [], None
    url = urlsplit(visdom_url if "://" in visdom_url else f"http://{visdom_url}")
    server = f"{url.scheme}://{url.hostname}"
    overrides = [
        "logger=visdom",
        f"logger.visdom.server={hydra_value(server)}",
        f"logger.visdom.port={url.port or DEFAULT_PORT}",
        f"logger.visdom.env={hydra_value(env)}",
    ]
    return overrides, f"{server}:{url.port or DEFAULT_PORT}/env/{env}"


def builtin_texture_path(name: str) -> Path:
    """The image file of the built-in texture `name` (``texture=<name>`` of train.py)."""
    if name not in available_textures():
        raise TexnetError(
            f"texture '{name}' is unknown: pick one of {', '.join(available_textures())} or upload an image"
        )
    return texture_path(name)


def train_command(
    runs_dir: Path,
    visdom_url: str | None,
    texture: str,
    texture_upload: str | None,
    data_source: str,
    data_path: str,
    image_size: float,
    steps: float,
    style_scale: float,
    noise_factor: float,
    generator: str,
    extra: str,
) -> tuple[list[str], Path, int, str | None]:
    """Validate the Train tab's inputs; returns (train.py command, new run folder, steps, Visdom link).

    The run folder is created here and an uploaded texture is copied into it, so the run does not depend on
    gradio's temporary upload folder.
    """
    if texture_upload:
        open_rgb(texture_upload, "texture image")
        name = re.sub(r"[^\w.-]+", "_", Path(texture_upload).stem)  # a plain run-folder (and Visdom env) name
    else:
        builtin_texture_path(texture)
        name = texture
    data = validate_data(data_source, data_path or "")
    if not steps or steps < 1:
        raise TexnetError(f"steps={steps} must be at least 1")
    if not image_size or image_size < MIN_SIDE:
        raise TexnetError(f"image size {image_size} is too small: VGG needs at least {MIN_SIDE} px")
    if generator not in ARCHITECTURES:
        raise TexnetError(f"generator '{generator}' is unknown: use one of {', '.join(ARCHITECTURES)}")
    try:
        extra_overrides = shlex.split(extra or "")
    except ValueError as err:
        raise TexnetError(f"more options: {err} (write key=value pairs separated by spaces)") from None
    for override in extra_overrides:
        if "=" not in override or override.split("=")[0].lstrip("+~") in ("run_dir", "hydra.run.dir"):
            raise TexnetError(
                f"more options: '{override}' is not a key=value override of train.py (run_dir is set by the app)"
            )
    run_dir = next_free_dir(runs_dir.resolve() / "app" / f"{name}_{time.strftime('%Y-%m-%d_%H-%M-%S')}")
    run_dir.mkdir(parents=True)
    if texture_upload:
        copy = run_dir / "texture" / Path(texture_upload).name
        copy.parent.mkdir()
        shutil.copyfile(texture_upload, copy)
        texture_override = f"texture.image={hydra_value(copy)}"
    else:
        texture_override = f"texture={texture}"
    visdom, link = visdom_overrides(visdom_url, run_dir.name)
    command = [
        sys.executable,
        "train.py",
        texture_override,
        *data,
        f"model={generator}",
        f"data.image_size={int(image_size)}",
        f"trainer.max_steps={int(steps)}",
        f"loss.style_scale={float(style_scale)}",
        f"model.noise_factor={float(noise_factor)}",
        "trainer.enable_progress_bar=false",
        "+logger.csv.flush_logs_every_n_steps=10",
        *visdom,
        f"run_dir={hydra_value(run_dir)}",
        f"hydra.run.dir={hydra_value(run_dir)}",
        *extra_overrides,
    ]
    return command, run_dir, int(steps), link


def training_report(job: TrainingJob) -> str:
    """Markdown: state, step / max, latest losses, where the model is, the Visdom link."""
    if job.run_dir is None:
        return "No training started in this app yet."
    steps, metrics = read_progress(job.run_dir)
    steps = max(steps, job.saved_step())
    returncode = job.process.poll()
    last = job.run_dir / "checkpoints" / "last.ckpt"
    if returncode is None:
        state = f"**Running** for {(time.monotonic() - job.started) / 60:.1f} min"
    elif job.stopped:  # Lightning exits cleanly on SIGTERM, so the exit code does not tell
        state = "**Stopped**" + (
            f": `{last}` holds step {job.saved_step()} (resume with `ckpt_path=`)" if last.is_file() else ""
        )
    elif returncode == 0:
        state = f"**Finished**: the model `{last}` is in the Stylise tab after ↻"
    else:
        errors = [
            line for line in log_tail(job.run_dir / TRAIN_LOG, 200).splitlines() if line.lower().startswith("error")
        ]
        state = f"**Failed** (exit code {returncode}): " + (errors[-1] if errors else "see the log below")
    lines = [
        state,
        f"Step **{steps}** / {job.max_steps} ({100 * steps / max(1, job.max_steps):.0f} %) · run folder `{job.run_dir}`",
    ]
    losses = [
        f"{label} {metrics[key]:.4g}"
        for key, label in (
            ("train/total", "loss"),
            ("train/content", "content"),
            ("train/style", "style"),
            ("val/total", "validation loss"),
        )
        if key in metrics
    ]
    rate = metrics.get(
        "train/samples_per_sec", metrics.get("train/device/samples_per_sec")
    )  # ThroughputMonitor's (all devices)
    if rate is not None:
        losses.append(f"{rate:.2f} images/s")
    if losses:
        lines.append(" · ".join(losses))
    if job.visdom_link:
        lines.append(f"[Visdom dashboard]({job.visdom_link}) (needs `python -m texnet.viz serve` running)")
    return "\n\n".join(lines)
