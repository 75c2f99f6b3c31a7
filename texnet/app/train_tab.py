"""The app's Train tab: a texture (built-in or uploaded), content photos and a few options start `train.py` as a
background job (:mod:`texnet.app.training`); the tab polls its report, newest sample grid and log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from texnet.app.stylise import short_error
from texnet.app.training import (
    DATA_SOURCES,
    TRAIN_LOG,
    TrainingJob,
    builtin_texture_path,
    log_tail,
    require_repo,
    train_command,
    training_report,
)
from texnet.errors import TexnetError
from texnet.generator import ARCHITECTURES
from texnet.image import IMAGE_EXTENSIONS, open_rgb
from texnet.textures import available_textures

POLL_S = 2.0


def train_tab(
    demo: gr.Blocks, runs_dir: Path, repo: Path | None, defaults: dict, job: TrainingJob, visdom_url: str | None
) -> None:
    """Adds the tab and its events to `demo` (call inside its ``with`` block); runs go to `runs_dir` via `repo`'s
    train.py, one `job` at a time."""

    def texture_preview(texture: str, upload: str | None) -> Image.Image | None:
        try:
            path = upload or builtin_texture_path(texture)
            image = open_rgb(path, "texture image")
        except TexnetError as err:
            gr.Warning(short_error(err, upload or ""))
            return None
        image.thumbnail((256, 256))
        return image

    def start_training(
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
    ) -> str:
        if job.running():
            return (
                f"A training is already running in `{job.run_dir}` (one at a time per app): stop it first.\n\n"
                + training_report(job)
            )
        try:
            checkout = require_repo(repo)
            command, run_dir, max_steps, link = train_command(
                runs_dir,
                visdom_url,
                texture,
                texture_upload,
                data_source,
                data_path,
                image_size,
                steps,
                style_scale,
                noise_factor,
                generator,
                extra,
            )
            job.start(command, run_dir, max_steps, link, checkout)
        except TexnetError as err:
            raise gr.Error(short_error(err, texture_upload or "")) from None
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

    with gr.Tab("Train"):
        if repo is None:
            gr.Markdown(
                "Training runs `train.py` from a texnet checkout: start the app in its folder or pass "
                "`--repo /path/to/texnet`."
            )
        with gr.Row():
            with gr.Column():
                with gr.Row(equal_height=True):
                    with gr.Column(scale=2):
                        train_texture = gr.Dropdown(available_textures(), value="mosaic", label="Built-in texture")
                        texture_upload = gr.File(
                            label="…or your own texture image", file_types=list(IMAGE_EXTENSIONS), height=120
                        )
                    texture_view = gr.Image(label="Texture", height=180, interactive=False, scale=1)
                data_source = gr.Radio(DATA_SOURCES, value="builtin", label="Content photos")
                data_path = gr.Textbox(label="Folder (folder or MSCOCO root)", placeholder="~/Pictures or data/coco")
                with gr.Row():
                    image_size = gr.Number(defaults["image_size"], precision=0, label="Training image size (px)")
                    steps = gr.Number(defaults["max_steps"], precision=0, label="Steps")
                with gr.Row():
                    style_scale = gr.Number(defaults["style_scale"], label="Style scale (loss.style_scale)")
                    train_noise = gr.Number(defaults["noise_factor"], label="Noise factor (model.noise_factor)")
                generator = gr.Radio(
                    list(ARCHITECTURES),
                    value="pyramid",
                    label="Generator (pyramid: Ulyanov et al., the default; residual: Johnson et al.; encoder: a frozen VGG and a decoder)",
                )
                extra = gr.Textbox(
                    label="More train.py options (key=value ...)",
                    placeholder="optim.optimizer.lr=0.01 model.norm=batch",
                )
                with gr.Row():
                    start = gr.Button("Start training", variant="primary")
                    stop = gr.Button("Stop", variant="stop")
                    poll = gr.Button("↻ Status")
            with gr.Column():
                train_status = gr.Markdown(training_report(job))
                sample = gr.Image(
                    label="Latest samples: validation photos (top) and their stylisations (bottom)",
                    interactive=False,
                )
                train_log = gr.Textbox(label="Log (last lines)", lines=14, max_lines=14, autoscroll=True)
        shown_sample = gr.State(None)
        timer = gr.Timer(POLL_S)

    demo.load(texture_preview, [train_texture, texture_upload], texture_view, api_visibility="undocumented")
    for trigger in (train_texture.change, texture_upload.change):
        trigger(texture_preview, [train_texture, texture_upload], texture_view, api_name=False)
    start.click(
        start_training,
        [
            train_texture,
            texture_upload,
            data_source,
            data_path,
            image_size,
            steps,
            style_scale,
            train_noise,
            generator,
            extra,
        ],
        train_status,
        api_name="train_start",
    )
    stop.click(stop_training, None, train_status, api_name="train_stop")
    status_outputs = [train_status, sample, train_log, shown_sample]
    poll.click(training_status, shown_sample, status_outputs, api_name="train_status")
    timer.tick(training_status, shown_sample, status_outputs, api_visibility="undocumented", show_progress="hidden")
