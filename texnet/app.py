"""A local web app: stylise photos with trained texture networks, compare with Gatys et al., train new networks.

    python -m texnet.app [--port 7860] [--host 127.0.0.1] [--runs-dir runs] [--visdom-url http://127.0.0.1:8097]

The app is a front end, not a second implementation: photos go through ``texnet.load(...).stylize``, the baseline
through :func:`texnet.gatys.run_gatys`, and training is ``python train.py ...`` in a background process whose
progress is read back from its run folder (``csv/metrics.csv``, ``samples/``, the log). It works offline:
analytics are off, the theme uses system fonts, and no share link is made.
"""
from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio is imported: no calls home, no version check

import argparse
import atexit
import csv
import errno
import logging
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import gradio as gr
import pytorch_lightning as pl
from omegaconf import OmegaConf
from PIL import Image

from texnet.data import check_root
from texnet.errors import TexnetError
from texnet.gatys import run_gatys
from texnet.generator import ARCHITECTURES
from texnet.image import IMAGE_EXTENSIONS, next_free_dir, next_free_file, open_rgb
from texnet.inference import Stylizer, load, read_checkpoint
from texnet.textures import CONFIG_DIR, PROJECT_ROOT, available_textures
from texnet.textures import texture_path as named_texture_path
from texnet.viz import DEFAULT_PORT

log = logging.getLogger(__name__)

THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
CHECKPOINT_NAMES = ("last.ckpt", "best.ckpt")
GATYS_MAX_SIZE = 256  # every L-BFGS iteration costs ~2 s at 256 px on 2 CPU cores (conf/stylize.yaml)
TRAIN_LOG = "console.log"  # train.py's stdout and stderr, in its run folder
STOP_GRACE_S = 30  # after SIGTERM, Lightning finishes the step and exits; SIGKILL after this
POLL_S = 2.0
DATA_SOURCES = [("built-in photos (scikit-image samples, no download)", "builtin"), ("a folder of photos", "folder"),
                ("MSCOCO root (holds train2014/)", "coco")]


def _config_default(group_file: str, key: str) -> Any:
    """A default from conf/, so the Train tab starts from the same values as `python train.py`."""
    return OmegaConf.select(OmegaConf.load(CONFIG_DIR / group_file), key)


def _short_error(err: Exception, *paths: str | Path) -> str:
    """The error's one line with upload paths (deep gradio temp folders) cut to their file names."""
    message = str(err)
    for path in paths:
        message = message.replace(str(path), Path(path).name)
    return message


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
        path = Path(path).expanduser().resolve()
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
                ckpt = read_checkpoint(path)
                self._names[key] = ckpt["texnet"].get("texture_name") or ckpt.get("hyper_parameters", {}).get("texture", {}).get("name", "?")
            except TexnetError as err:
                log.warning("not listed: %s", err)
                self._names[key] = None
        return self._names[key]


def model_choices(runs_dir: Path, cache: ModelCache) -> list[tuple[str, str]]:
    """(label, path) for the model dropdown: 'texture · run folder · last|best'."""
    choices = []
    for path in find_checkpoints(runs_dir):
        name = cache.texture_name(path)
        if name is not None:
            run = path.parent.parent
            where = run.relative_to(runs_dir) if run != runs_dir else run.name
            choices.append((f"{name} · {where} · {path.stem}", str(path)))
    return choices


class GatysProgress(pl.Callback):
    """Forwards each L-BFGS iteration of run_gatys to the page's progress bar."""

    def __init__(self, progress: gr.Progress, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def on_train_batch_end(self, *args: Any) -> None:
        self.done += 1
        self.progress((self.done, self.total), desc="Gatys (L-BFGS)", unit="iterations")


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

    def start(self, command: list[str], run_dir: Path, max_steps: int, visdom_link: str | None) -> None:
        with self._lock:
            if self.running():
                raise TexnetError(f"a training is already running in '{self.run_dir}': stop it first (one at a time)")
            with (run_dir / TRAIN_LOG).open("ab") as log_file:
                log_file.write(f"$ {shlex.join(command)}\n".encode())
                log_file.flush()
                # its own session: Stop signals train.py and its data-loader workers together
                self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log_file,
                                                stderr=subprocess.STDOUT, start_new_session=True,
                                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
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


def hydra_value(value: str | Path) -> str:
    """A path as a Hydra override value, quoted when it holds characters (spaces, commas, '=') Hydra would parse."""
    text = str(value)
    if re.fullmatch(r"[\w./:+-]+", text):
        return text
    escaped = re.sub(r"(\\+)(?='|$)", r"\1\1", text).replace("'", "\\'")  # Hydra: backslashes are literal unless before a quote
    return f"'{escaped}'"


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
    overrides = ["logger=visdom", f"logger.visdom.server={hydra_value(server)}", f"logger.visdom.port={url.port or DEFAULT_PORT}",
                 f"logger.visdom.env={hydra_value(env)}"]
    return overrides, f"{server}:{url.port or DEFAULT_PORT}/env/{env}"


def builtin_texture_path(name: str) -> Path:
    """The image file behind `texture=<name>` (conf/texture/<name>.yaml)."""
    if name not in available_textures():
        raise TexnetError(f"texture '{name}' is unknown: pick one of {', '.join(available_textures())} or upload an image")
    return named_texture_path(name)


def train_command(runs_dir: Path, visdom_url: str | None, texture: str, texture_upload: str | None, data_source: str,
                  data_path: str, image_size: float, steps: float, style_scale: float, noise_factor: float,
                  generator: str, extra: str) -> tuple[list[str], Path, int, str | None]:
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
    if not image_size or image_size < 32:
        raise TexnetError(f"image size {image_size} is too small: VGG needs at least 32 px")
    if generator not in ARCHITECTURES:
        raise TexnetError(f"generator '{generator}' is unknown: use one of {', '.join(ARCHITECTURES)}")
    try:
        extra_overrides = shlex.split(extra or "")
    except ValueError as err:
        raise TexnetError(f"more options: {err} (write key=value pairs separated by spaces)") from None
    for override in extra_overrides:
        if "=" not in override or override.split("=")[0].lstrip("+~") in ("run_dir", "hydra.run.dir"):
            raise TexnetError(f"more options: '{override}' is not a key=value override of train.py (run_dir is set by the app)")
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
    command = [sys.executable, "train.py", texture_override, *data, f"model={generator}", f"data.image_size={int(image_size)}",
               f"trainer.max_steps={int(steps)}", f"loss.style_scale={float(style_scale)}", f"model.noise_factor={float(noise_factor)}",
               "trainer.enable_progress_bar=false", "+logger.csv.flush_logs_every_n_steps=10", *visdom,
               f"run_dir={hydra_value(run_dir)}", f"hydra.run.dir={hydra_value(run_dir)}", *extra_overrides]
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
        state = "**Stopped**" + (f": `{last}` holds step {job.saved_step()} (resume with `ckpt_path=`)" if last.is_file() else "")
    elif returncode == 0:
        state = f"**Finished**: the model `{last}` is in the Stylise tab after ↻"
    else:
        errors = [line for line in log_tail(job.run_dir / TRAIN_LOG, 200).splitlines() if line.lower().startswith("error")]
        state = f"**Failed** (exit code {returncode}): " + (errors[-1] if errors else "see the log below")
    lines = [state, f"Step **{steps}** / {job.max_steps} ({100 * steps / max(1, job.max_steps):.0f} %) · run folder `{job.run_dir}`"]
    losses = [f"{label} {metrics[key]:.4g}" for key, label in (("train/total", "loss"), ("train/content", "content"),
                                                                ("train/style", "style"), ("val/total", "validation loss"))
              if key in metrics]
    if "train/images_per_s" in metrics:
        losses.append(f"{metrics['train/images_per_s']:.2f} images/s")
    if losses:
        lines.append(" · ".join(losses))
    if job.visdom_link:
        lines.append(f"[Visdom dashboard]({job.visdom_link}) (needs `python -m texnet.viz serve` running)")
    return "\n\n".join(lines)


def build_app(runs_dir: Path, visdom_url: str | None = None) -> gr.Blocks:
    """The two-tab app. `runs_dir` is scanned for models and receives the Train tab's runs under ``app/``."""
    runs_dir = Path(runs_dir).expanduser()
    cache = ModelCache()
    job = TrainingJob()
    atexit.register(job.stop)  # no orphaned training when the app exits
    out_root = Path(tempfile.mkdtemp(prefix="texnet-app-"))

    def session_dir(request: gr.Request | None) -> Path:
        folder = out_root / ((request.session_hash if request else None) or "default")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def selected_model(model: str | None, model_upload: str | None) -> str:
        if model_upload:
            return model_upload
        if not model:
            raise TexnetError("no model selected: train one in the Train tab, press ↻ after training, or upload a .ckpt")
        return model

    def list_models() -> list[dict[str, str]]:
        """Every trained model found under the runs folder: label, checkpoint path, texture name."""
        return [{"label": label, "checkpoint": path, "texture": label.split(" · ")[0]} for label, path in model_choices(runs_dir, cache)]

    def refresh_models(current: str | None) -> dict:
        choices = model_choices(runs_dir, cache)
        paths = [path for _, path in choices]
        return gr.update(choices=choices, value=current if current in paths else (paths[0] if paths else None))

    def describe_model(model: str | None, model_upload: str | None) -> tuple[Image.Image | None, str, Any]:
        """Texture thumbnail, a line about the model, and its trained noise factor as the slider's value."""
        if not model and not model_upload:
            return None, "No model yet: train one in the **Train** tab or upload a `.ckpt`.", gr.skip()
        path = selected_model(model, model_upload)
        try:
            stylizer = cache.get(path)
            steps = read_checkpoint(path).get("global_step", "?")
        except TexnetError as err:
            gr.Warning(_short_error(err, path))
            return None, f"⚠️ {_short_error(err, path)}", gr.skip()
        shown = Path(path).name if model_upload else Path(path).relative_to(runs_dir) if Path(path).is_relative_to(runs_dir) else path
        info = (f"**{stylizer.texture_name}** · {stylizer.mode} network · {steps} training steps · "
                f"trained noise factor {stylizer.noise_factor:g}\n\n`{shown}`")
        return stylizer.texture, info, stylizer.noise_factor

    def stylize(photos: list[str] | None, model: str | None, model_upload: str | None, noise_factor: float, preserve_color: bool,
                max_size: float | None, seed: float | None, request: gr.Request) -> tuple[list, list[str], str]:
        """Stylise every uploaded photo; unreadable ones are reported and skipped, like stylize.py does."""
        try:
            stylizer = cache.get(selected_model(model, model_upload))
        except TexnetError as err:
            raise gr.Error(_short_error(err, model_upload or "")) from None
        seed = None if seed is None else int(seed)
        out = session_dir(request)
        if stylizer.mode == "texture":  # noise -> texture networks need no photo
            written = []
            for image in stylizer.generate(size=256, num=4, seed=seed):
                path = next_free_file(out / f"{stylizer.texture_name}_texture.png")
                image.save(path)
                written.append(str(path))
            return [(p, "new texture") for p in written], written, f"{len(written)} textures from a texture-mode network."
        if not photos:
            raise gr.Error("upload one or more photos first")
        gallery, written, failures = [], [], []
        for file in photos:
            name = Path(file).name
            try:
                start = time.perf_counter()
                result = stylizer.stylize(file, noise_factor=noise_factor, seed=seed, max_size=int(max_size) if max_size else None,
                                          preserve_color=preserve_color)
                seconds = time.perf_counter() - start
            except TexnetError as err:
                failures.append((name, _short_error(err, file)))
                continue
            path = next_free_file(out / f"{Path(file).stem}_{stylizer.texture_name}.png")
            result.save(path)
            gallery += [(file, name), (str(path), f"{stylizer.texture_name} · {result.width}x{result.height} · {seconds:.2f} s")]
            written.append(str(path))
        if not written:
            raise gr.Error(f"{failures[0][0]}: {failures[0][1]}")
        status = f"Stylised {len(written)} photo(s) with **{stylizer.texture_name}**."
        if failures:
            status += f"\n\nSkipped {len(failures)}:\n" + "\n".join(f"- `{name}`: {reason}" for name, reason in failures)
        return gallery, written, status

    def compare(photos: list[str] | None, model: str | None, model_upload: str | None, noise_factor: float, seed: float | None,
                iterations: float, request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[str, str, str]:
        """The first photo through the network and through Gatys' L-BFGS on the same loss, at the same size, timed."""
        if not photos:
            raise gr.Error("upload a photo first")
        photo = photos[0]
        try:
            path = selected_model(model, model_upload)
            stylizer = cache.get(path)
            loss = read_checkpoint(path)["hyper_parameters"]["loss"]
            seed = None if seed is None else int(seed)
            stylizer.stylize(photo, noise_factor=noise_factor, seed=seed, max_size=GATYS_MAX_SIZE)  # warm-up: first call builds the runtime
            start = time.perf_counter()
            network = stylizer.stylize(photo, noise_factor=noise_factor, seed=seed, max_size=GATYS_MAX_SIZE)
            network_s = time.perf_counter() - start
            out = session_dir(request)
            network_path = next_free_file(out / f"{Path(photo).stem}_{stylizer.texture_name}_network.png")
            network.save(network_path)
            texture = stylizer.texture
            texture_path = next_free_file(out / f"{stylizer.texture_name}.png")
            texture.save(texture_path)
            progress((0, int(iterations)), desc="Gatys (L-BFGS)", unit="iterations")
            result = run_gatys(texture_path, out / f"gatys_{Path(photo).stem}", content=photo, loss=loss, optimizer="lbfgs",
                               iterations=int(iterations), max_size=GATYS_MAX_SIZE, texture_size=max(texture.size),
                               save_every=0, progress=False, callbacks=[GatysProgress(progress, int(iterations))])
        except TexnetError as err:
            raise gr.Error(_short_error(err, photo, model_upload or "")) from None
        report = (f"| {Path(photo).name}, {network.width}x{network.height} px | time |\n|---|---|\n"
                  f"| texture network (one forward pass) | **{network_s:.3f} s** |\n"
                  f"| Gatys et al. (L-BFGS, {result.iterations} iterations) | **{result.seconds:.1f} s** |\n\n"
                  f"The network is {result.seconds / max(network_s, 1e-6):,.0f}x faster here; both minimise the "
                  f"same perceptual loss (Gatys ends at {result.final['total']:.4g}).")
        return str(network_path), str(result.image_path), report

    def texture_preview(texture: str, upload: str | None) -> Image.Image | None:
        try:
            path = upload or builtin_texture_path(texture)
            image = open_rgb(path, "texture image")
        except TexnetError as err:
            gr.Warning(_short_error(err, upload or ""))
            return None
        image.thumbnail((256, 256))
        return image

    def start_training(texture: str, texture_upload: str | None, data_source: str, data_path: str, image_size: float,
                       steps: float, style_scale: float, noise_factor: float, generator: str, extra: str) -> str:
        if job.running():
            return f"A training is already running in `{job.run_dir}` (one at a time per app): stop it first.\n\n" + training_report(job)
        try:
            command, run_dir, max_steps, link = train_command(runs_dir, visdom_url, texture, texture_upload, data_source, data_path,
                                                              image_size, steps, style_scale, noise_factor, generator, extra)
            job.start(command, run_dir, max_steps, link)
        except TexnetError as err:
            raise gr.Error(_short_error(err, texture_upload or "")) from None
        return training_report(job)

    def stop_training() -> str:
        return training_report(job) if job.stop() else "No training is running."

    def training_status(shown: str | None) -> tuple[str, Any, str, str | None]:
        """Report, newest sample grid (only when it changed: the timer polls every 2 s), log tail."""
        if job.run_dir is None:
            return training_report(job), gr.skip(), "", shown
        samples = sorted((job.run_dir / "samples").glob("step_*.png"))
        newest = str(samples[-1]) if samples else None
        sample = gr.skip() if newest == shown else (open_rgb(newest, "sample grid") if newest else None)
        return training_report(job), sample, log_tail(job.run_dir / TRAIN_LOG), newest

    with gr.Blocks(title="texnet", analytics_enabled=False) as demo:
        gr.Markdown("# texnet: texture networks\nStylise photos in one forward pass with a trained network, compare it with "
                    "the Gatys et al. optimisation, or train a new network on your texture.")
        with gr.Tab("Stylise"):
            with gr.Row():
                with gr.Column(scale=2):
                    photos = gr.File(label="Photos", file_count="multiple", file_types=list(IMAGE_EXTENSIONS))
                    with gr.Row(equal_height=True):
                        model_choice = gr.Dropdown(model_choices(runs_dir, cache), label="Trained model", scale=5, allow_custom_value=True,
                                            info=f"checkpoints found under {runs_dir}")
                        refresh = gr.Button("↻", scale=0, min_width=48)
                    model_upload = gr.File(label="…or upload a .ckpt", file_types=[".ckpt"], height=120)
                    with gr.Row(equal_height=True):
                        texture = gr.Image(label="Texture", height=140, width=140, interactive=False, scale=0, min_width=140)
                        model_info = gr.Markdown()
                    noise = gr.Slider(0.0, 1.0, value=0.05, step=0.005, label="Noise factor",
                                      info="style strength; 0 = deterministic (the model's trained value is preselected)")
                    preserve = gr.Checkbox(label="Preserve the photo's colours")
                    with gr.Accordion("More", open=False):
                        max_size = gr.Number(1024, precision=0, label="Longer side at most (px, 0 = full size)")
                        seed = gr.Number(None, precision=0, label="Seed (empty: new noise each time)")
                    run = gr.Button("Stylise", variant="primary")
                with gr.Column(scale=3):
                    gallery = gr.Gallery(label="Photo | stylised", columns=2, height=560, object_fit="contain")
                    status = gr.Markdown()
                    downloads = gr.File(label="Download", file_count="multiple", interactive=False)
            with gr.Accordion("Compare with Gatys et al. (first photo, up to 256 px)", open=False):
                with gr.Row():
                    iterations = gr.Slider(10, 500, value=100, step=10, label="L-BFGS iterations", scale=3,
                                           info="about 2 s each at 256 px on a 2-core CPU")
                    compare_button = gr.Button("Compare with Gatys", scale=1)
                with gr.Row():
                    network_image = gr.Image(label="Texture network", interactive=False)
                    gatys_image = gr.Image(label="Gatys et al. (L-BFGS)", interactive=False)
                timing = gr.Markdown()

        with gr.Tab("Train"):
            with gr.Row():
                with gr.Column():
                    with gr.Row(equal_height=True):
                        with gr.Column(scale=2):
                            train_texture = gr.Dropdown(available_textures(), value="mosaic", label="Built-in texture")
                            texture_upload = gr.File(label="…or your own texture image", file_types=list(IMAGE_EXTENSIONS), height=120)
                        texture_view = gr.Image(label="Texture", height=180, interactive=False, scale=1)
                    data_source = gr.Radio(DATA_SOURCES, value="builtin", label="Content photos")
                    data_path = gr.Textbox(label="Folder (folder or MSCOCO root)", placeholder="~/Pictures or data/coco")
                    with gr.Row():
                        image_size = gr.Number(_config_default("data/builtin.yaml", "image_size"), precision=0,
                                               label="Training image size (px)")
                        steps = gr.Number(_config_default("trainer/cpu.yaml", "max_steps"), precision=0, label="Steps")
                    with gr.Row():
                        style_scale = gr.Number(_config_default("loss/default.yaml", "style_scale"), label="Style scale (loss.style_scale)")
                        train_noise = gr.Number(_config_default("model/pyramid.yaml", "noise_factor"),
                                                label="Noise factor (model.noise_factor)")
                    generator = gr.Radio(list(ARCHITECTURES), value="pyramid", label="Generator (pyramid: Ulyanov et al., "
                                         "the default; residual: Johnson et al.)")
                    extra = gr.Textbox(label="More train.py options (key=value ...)", placeholder="optim.lr=0.01 model.norm=batch")
                    with gr.Row():
                        start = gr.Button("Start training", variant="primary")
                        stop = gr.Button("Stop", variant="stop")
                        poll = gr.Button("↻ Status")
                with gr.Column():
                    train_status = gr.Markdown(training_report(job))
                    sample = gr.Image(label="Latest samples: validation photos (top) and their stylisations (bottom)",
                                      interactive=False)
                    train_log = gr.Textbox(label="Log (last lines)", lines=14, max_lines=14, autoscroll=True)
            shown_sample = gr.State(None)
            timer = gr.Timer(POLL_S)

        gr.api(list_models, api_name="list_models")
        model_inputs = [model_choice, model_upload]
        refresh.click(refresh_models, model_choice, model_choice, api_name="refresh_models")
        describe_outputs = [texture, model_info, noise]
        demo.load(refresh_models, model_choice, model_choice, api_visibility="undocumented").then(
            describe_model, model_inputs, describe_outputs, api_visibility="undocumented")
        for trigger in (model_choice.change, model_upload.change):
            trigger(describe_model, model_inputs, describe_outputs, api_name=False)
        run.click(stylize, [photos, *model_inputs, noise, preserve, max_size, seed], [gallery, downloads, status], api_name="stylize")
        compare_button.click(compare, [photos, *model_inputs, noise, seed, iterations], [network_image, gatys_image, timing],
                             api_name="compare_gatys")

        demo.load(texture_preview, [train_texture, texture_upload], texture_view, api_visibility="undocumented")
        for trigger in (train_texture.change, texture_upload.change):
            trigger(texture_preview, [train_texture, texture_upload], texture_view, api_name=False)
        start.click(start_training, [train_texture, texture_upload, data_source, data_path, image_size, steps, style_scale,
                                     train_noise, generator, extra], train_status, api_name="train_start")
        stop.click(stop_training, None, train_status, api_name="train_stop")
        status_outputs = [train_status, sample, train_log, shown_sample]
        poll.click(training_status, shown_sample, status_outputs, api_name="train_status")
        timer.tick(training_status, shown_sample, status_outputs, api_visibility="undocumented", show_progress="hidden")
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True) -> str:
    """Serve `demo` locally with the offline theme and no share link; returns the local URL."""
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(server_name=host, server_port=port, share=False, theme=THEME, show_error=True, ssr_mode=False,
                            prevent_thread_lock=not block, quiet=not block, footer_links=["api"])
    return url


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            return err.errno == errno.EADDRINUSE
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m texnet.app", description="texnet's local web app: stylise, compare, train")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where trained models are found and new runs go")
    parser.add_argument("--visdom-url", default=None, help="Visdom server for live training plots, e.g. http://127.0.0.1:8097")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up requests
    message = f"error: port {args.port} is in use: pick another with --port"
    if port_in_use(args.host, args.port):
        print(message, file=sys.stderr)
        return 2
    demo = build_app(args.runs_dir, args.visdom_url)
    try:
        launch(demo, args.host, args.port)
    except OSError:  # taken between the check and the bind
        print(message, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
