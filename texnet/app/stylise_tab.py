"""The app's Stylise tab: pick or upload a trained model, stylise uploaded photos, animations and videos with it
(texture mode: new textures), blend a multi-texture network's textures, compare with Gatys et al. on the first
photo, and stylise the webcam live."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import numpy as np

from texnet.app.models import ModelCache, model_choices
from texnet.app.stylise import (
    MIX_SLIDERS,
    compare_with_gatys,
    describe_model,
    new_textures,
    short_error,
    slider_mix,
    stylize_frame,
    stylize_uploads,
)
from texnet.errors import TexnetError
from texnet.image import IMAGE_EXTENSIONS
from texnet.motion import SceneTracker
from texnet.video import VIDEO_SUFFIXES


def stylise_tab(demo: gr.Blocks, runs_dir: Path, cache: ModelCache, out_root: Path) -> None:
    """Adds the tab and its events to `demo` (call inside its ``with`` block). Models are found under `runs_dir` (and
    the shipped ones); each browser session writes its outputs to its own folder under `out_root`."""

    def session_dir(request: gr.Request | None) -> Path:
        folder = out_root / ((request.session_hash if request else None) or "default")
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def selected_model(model: str | None, model_upload: str | None) -> str:
        if model_upload:
            return model_upload
        if not model:
            raise TexnetError(
                "no model selected: train one in the Train tab, press ↻ after training, or upload a .ckpt"
            )
        return model

    def list_models() -> list[dict[str, str]]:
        """Every trained model found under the runs folder: label, checkpoint path, texture name."""
        return [
            {"label": label, "checkpoint": path, "texture": label.split(" · ")[0]}
            for label, path in model_choices(runs_dir, cache)
        ]

    def refresh_models(current: str | None) -> dict:
        choices = model_choices(runs_dir, cache)
        paths = [path for _, path in choices]
        return gr.update(choices=choices, value=current if current in paths else (paths[0] if paths else None))

    def describe(model: str | None, model_upload: str | None) -> tuple:
        """Texture thumbnail, a line about the model, its trained noise factor as the slider's value, and for a network
        of several textures one mix slider per texture (the first at 1)."""
        hidden = (gr.update(visible=False), *[gr.update(visible=False)] * MIX_SLIDERS, None)
        if not model and not model_upload:
            return None, "No model yet: train one in the **Train** tab or upload a `.ckpt`.", gr.skip(), *hidden
        path = selected_model(model, model_upload)
        shown = (
            Path(path).name
            if model_upload
            else Path(path).relative_to(runs_dir)
            if Path(path).is_relative_to(runs_dir)
            else path
        )
        try:
            stylizer = cache.get(path)
            info = describe_model(stylizer, path, shown)
        except TexnetError as err:
            gr.Warning(short_error(err, path))
            return None, f"⚠️ {short_error(err, path)}", gr.skip(), *hidden
        names = stylizer.textures if 1 < len(stylizer.textures) <= MIX_SLIDERS else []
        sliders = [
            gr.update(visible=i < len(names), label=names[i] if i < len(names) else "", value=float(i == 0))
            for i in range(MIX_SLIDERS)
        ]
        return stylizer.texture, info, stylizer.noise_factor, gr.update(visible=bool(names)), *sliders, None

    def stylize(
        photos: list[str] | None,
        model: str | None,
        model_upload: str | None,
        noise_factor: float,
        preserve_color: bool,
        max_size: float | None,
        seed: float | None,
        mix_values: list[float] | None,
        request: gr.Request,
    ) -> tuple[list, list[str], str]:
        """Stylise every uploaded photo (or, texture mode, make new textures), with the sliders' mix of textures."""
        try:
            stylizer = cache.get(selected_model(model, model_upload))
            seed, mix = None if seed is None else int(seed), slider_mix(stylizer, mix_values)
            if stylizer.mode == "texture":  # noise -> texture networks need no photo
                return new_textures(stylizer, session_dir(request), seed, mix)
            if not photos:
                raise TexnetError("upload one or more photos first")
            return stylize_uploads(
                stylizer,
                photos,
                session_dir(request),
                noise_factor,
                seed,
                int(max_size) if max_size else None,
                preserve_color,
                mix,
            )
        except TexnetError as err:
            raise gr.Error(short_error(err, model_upload or "", *(photos or []))) from None

    def live(
        frame: np.ndarray | None,
        model: str | None,
        model_upload: str | None,
        noise_factor: float,
        mix_values: list[float] | None,
        size: float,
        tracker: SceneTracker | None,
    ) -> tuple[np.ndarray | None, SceneTracker | None]:
        if frame is None:
            return None, tracker
        tracker = tracker or SceneTracker()  # this browser's stream: where its frames lie in the scene
        try:
            stylizer = cache.get(selected_model(model, model_upload))
            mix = slider_mix(stylizer, mix_values)
            return stylize_frame(stylizer, frame, noise_factor, mix, int(size), tracker), tracker
        except TexnetError as err:
            raise gr.Error(short_error(err, model_upload or "")) from None

    def compare(
        photos: list[str] | None,
        model: str | None,
        model_upload: str | None,
        noise_factor: float,
        seed: float | None,
        iterations: float,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[str, str, str]:
        """The first photo through the network and through Gatys' L-BFGS on the same loss, at the same size, timed."""
        if not photos:
            raise gr.Error("upload a photo first")
        try:
            path = selected_model(model, model_upload)
            return compare_with_gatys(
                cache.get(path),
                path,
                photos[0],
                session_dir(request),
                noise_factor,
                None if seed is None else int(seed),
                int(iterations),
                progress,
            )
        except TexnetError as err:
            raise gr.Error(short_error(err, photos[0], model_upload or "")) from None

    with gr.Tab("Stylise"):
        with gr.Row():
            with gr.Column(scale=2):
                photos = gr.File(
                    label="Photos, animations or videos",
                    file_count="multiple",
                    file_types=[*IMAGE_EXTENSIONS, *VIDEO_SUFFIXES],
                )
                with gr.Row(equal_height=True):
                    model_choice = gr.Dropdown(
                        model_choices(runs_dir, cache),
                        label="Trained model",
                        scale=5,
                        allow_custom_value=True,
                        info=f"checkpoints found under {runs_dir}",
                    )
                    refresh = gr.Button("↻", scale=0, min_width=48)
                model_upload = gr.File(label="…or upload a .ckpt", file_types=[".ckpt"], height=120)
                with gr.Row(equal_height=True):
                    texture = gr.Image(
                        label="Texture", height=140, width=140, interactive=False, scale=0, min_width=140
                    )
                    model_info = gr.Markdown()
                noise = gr.Slider(
                    0.0,
                    1.0,
                    value=0.05,
                    step=0.005,
                    label="Noise factor",
                    info="style strength; 0 = deterministic (the model's trained value is preselected)",
                )
                with gr.Column(
                    visible=False
                ) as mix_box:  # networks of several textures: one weight each (scaled to sum to 1)
                    gr.Markdown(
                        "**Textures**: blend them (weights are scaled to sum to 1; one at 1 and the rest at 0 picks it)"
                    )
                    mix_sliders = [gr.Slider(0.0, 1.0, value=0.0, step=0.05, visible=False) for _ in range(MIX_SLIDERS)]
                mix_values = gr.State(None)  # the sliders' values, or None: the network's first texture
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
                iterations = gr.Slider(
                    10,
                    500,
                    value=100,
                    step=10,
                    label="L-BFGS iterations",
                    scale=3,
                    info="about 2 s each at 256 px on a 2-core CPU",
                )
                compare_button = gr.Button("Compare with Gatys", scale=1)
            with gr.Row():
                network_image = gr.Image(label="Texture network", interactive=False)
                gatys_image = gr.Image(label="Gatys et al. (L-BFGS)", interactive=False)
            timing = gr.Markdown()
        with gr.Accordion("Live: your webcam through the network", open=False):
            gr.Markdown(
                "The noise stays on the picture: a still scene stays still, and when the camera pans the texture "
                "moves with the picture (bench/temporal_consistency.py)."
            )
            tracker = gr.State(None)
            with gr.Row():
                webcam = gr.Image(label="Webcam", sources=["webcam"], streaming=True, type="numpy")
                live_image = gr.Image(label="Stylised", interactive=False)
            live_size = gr.Slider(
                128, 1024, value=256, step=32, label="Longer side at most (px)", info="smaller: more frames/s"
            )

    gr.api(list_models, api_name="list_models")
    model_inputs = [model_choice, model_upload]
    refresh.click(refresh_models, model_choice, model_choice, api_name="refresh_models")
    describe_outputs = [texture, model_info, noise, mix_box, *mix_sliders, mix_values]
    demo.load(refresh_models, model_choice, model_choice, api_visibility="undocumented").then(
        describe, model_inputs, describe_outputs, api_visibility="undocumented"
    )
    for trigger in (model_choice.change, model_upload.change):
        trigger(describe, model_inputs, describe_outputs, api_name=False)
    for slider in mix_sliders:
        slider.change(lambda *values: list(values), mix_sliders, mix_values, api_name=False)
    run.click(
        stylize,
        [photos, *model_inputs, noise, preserve, max_size, seed, mix_values],
        [gallery, downloads, status],
        api_name="stylize",
    )
    webcam.stream(
        live,
        [webcam, *model_inputs, noise, mix_values, live_size, tracker],
        [live_image, tracker],
        stream_every=0.1,
        concurrency_limit=1,
        trigger_mode="always_last",  # while a frame is stylised only the newest one waits: no backlog, no lag
        show_progress="hidden",
        api_name="live",
    )
    compare_button.click(
        compare,
        [photos, *model_inputs, noise, seed, iterations],
        [network_image, gatys_image, timing],
        api_name="compare_gatys",
    )
