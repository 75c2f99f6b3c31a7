"""The web app (texnet/app.py) served on 127.0.0.1 and driven through gradio_client, with a tiny checkpoint made here."""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import gradio_client.client
import numpy as np
import pytest
from conftest import CONFIG_DIR
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from hydra import compose, initialize_config_dir
from PIL import Image

from texnet import app
from texnet.training import train

# Overrides that make train.py finish in seconds, for the fixture and for the app's Train tab.
TINY = [
    "data.val_size=64",
    "data.batch_size=1",
    "data.num_val=1",
    "data.builtin_length=4",
    "model.scales=3",
    "trainer.enable_model_summary=false",
    "trainer.accelerator=cpu",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    """A runs folder holding one tiny trained model at x/checkpoints/last.ckpt."""
    runs = tmp_path_factory.mktemp("runs")
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"run_dir={runs / 'x'}",
                "data.image_size=64",
                "trainer.max_steps=2",
                "trainer.enable_progress_bar=false",
                *TINY,
            ],
        )
    train(cfg)
    return runs


@pytest.fixture(scope="module")
def photo(tmp_path_factory, photo_path) -> Path:
    """A small, non-square JPEG photo (96x72), so sizes are checked in both directions and Gatys stays quick."""
    path = tmp_path_factory.mktemp("photos") / "small.jpg"
    Image.open(photo_path).convert("RGB").resize((96, 72)).save(path, quality=90)
    return path


@pytest.fixture(scope="module")
def bad_upload(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bad") / "notes.jpg"
    path.write_text("this is a text file, not a JPEG\n")
    return path


@pytest.fixture(scope="module", autouse=True)
def gradio_temp(tmp_path_factory) -> Path:
    """Gradio's files go to a pytest folder: the server's uploads and outputs (GRADIO_TEMP_DIR, else
    /tmp/gradio) and the client's downloads. The client's download step also makes an empty folder per file in
    tempfile.gettempdir() and never removes it (gradio_client 2.x): only the client module's tempfile is pointed
    at the pytest folder (the server in this process keeps the real one), so the tests leave nothing in /tmp."""
    folder = tmp_path_factory.mktemp("gradio")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(folder))
        patch.setattr(
            gradio_client.client,
            "tempfile",
            SimpleNamespace(gettempdir=lambda: str(folder), TemporaryDirectory=tempfile.TemporaryDirectory),
        )
        yield folder


@pytest.fixture(scope="module")
def client(runs_dir, gradio_temp) -> Client:
    demo = app.build_app(runs_dir, None)
    url = app.launch(demo, port=free_port(), block=False)
    try:
        yield Client(url, verbose=False, download_files=gradio_temp / "downloads")
    finally:
        demo.close()


def stylize(client: Client, photos: list[Path], checkpoint: str, **options) -> tuple[list, list[str], str]:
    args = {"noise_factor": 0.05, "preserve_color": False, "max_size": 1024, "seed": 0, **options}
    return client.predict(
        [handle_file(str(p)) for p in photos],
        checkpoint,
        None,
        args["noise_factor"],
        args["preserve_color"],
        args["max_size"],
        args["seed"],
        api_name="/stylize",
    )


def test_lists_models_found_under_the_runs_folder(client, runs_dir):
    from texnet.models import cards

    models = client.predict(api_name="/list_models")
    shipped = sorted(cards())  # the shipped models come first, by name, then the runs
    assert [m["checkpoint"] for m in models] == [*shipped, str(runs_dir / "x" / "checkpoints" / "last.ckpt")]
    assert [m["label"] for m in models[: len(shipped)]] == [f"{name} · shipped" for name in shipped]
    assert models[-1]["texture"] == "mosaic" and models[-1]["label"] == "mosaic · x · last"


def test_stylize_returns_an_image_of_the_input_size(client, runs_dir, photo):
    checkpoint = str(runs_dir / "x" / "checkpoints" / "last.ckpt")
    gallery, downloads, status = stylize(client, [photo], checkpoint)
    assert len(gallery) == 2 and gallery[0]["caption"] == "small.jpg"  # the photo, then its stylisation
    assert len(downloads) == 1 and "mosaic" in status
    with Image.open(downloads[0]) as result:
        assert result.format == "PNG" and result.size == (96, 72)
    _, again, _ = stylize(client, [photo], checkpoint, preserve_color=True)
    assert Path(again[0]).name != Path(downloads[0]).name  # a new file, the first one is kept


def test_an_uploaded_animation_comes_back_animated(client, runs_dir, tmp_path):
    from test_animation import frames_of, write_animation

    clip = write_animation(tmp_path / "clip.gif", frames_of(0))
    _, downloads, _ = stylize(client, [clip], str(runs_dir / "x" / "checkpoints" / "last.ckpt"))
    with Image.open(downloads[0]) as result:
        assert Path(downloads[0]).name == "clip_mosaic.gif" and result.format == "GIF" and result.n_frames == 3


def test_an_uploaded_video_comes_back_as_a_video(client, runs_dir, tmp_path):
    from test_animation import frames_of
    from test_video import write_video

    clip = write_video(tmp_path / "clip.mp4", frames_of(0, 4))
    gallery, downloads, _ = stylize(client, [clip], str(runs_dir / "x" / "checkpoints" / "last.ckpt"))
    assert Path(downloads[0]).name == "clip_mosaic.mp4" and "video" in gallery[1]
    import av

    with av.open(downloads[0]) as result:
        assert sum(1 for _ in result.decode(video=0)) == 4


def test_webcam_frames_come_out_stylised_with_one_noise_draw(runs_dir, photo):
    """The Live section's function (gradio_client cannot drive a streaming event, so it is called directly)."""
    from texnet.app.stylise import stylize_frame
    from texnet.inference import load

    stylizer = load(runs_dir / "x" / "checkpoints" / "last.ckpt")
    frame = np.asarray(Image.open(photo).convert("RGB"))
    first, second = (stylize_frame(stylizer, frame, 0.05, None, 64) for _ in "ab")
    assert first.shape == (48, 64, 3) and np.array_equal(first, second)  # no flicker
    assert np.abs(first.astype(int) - np.asarray(Image.fromarray(frame).resize((64, 48)), dtype=int)).mean() > 5


def test_bad_upload_is_a_readable_error_and_the_app_keeps_answering(client, runs_dir, photo, bad_upload):
    checkpoint = str(runs_dir / "x" / "checkpoints" / "last.ckpt")
    with pytest.raises(AppError, match="'notes.jpg' is not a readable image") as err:
        stylize(client, [bad_upload], checkpoint)
    assert "\n" not in str(err.value) and "gradio" not in str(err.value)  # one line, no temp-folder path
    _, downloads, status = stylize(client, [bad_upload, photo], checkpoint)
    assert len(downloads) == 1 and "Skipped 1" in status and "notes.jpg" in status
    fake_checkpoint = bad_upload.with_suffix(".ckpt")
    fake_checkpoint.write_bytes(bad_upload.read_bytes())
    with pytest.raises(AppError, match="'notes.ckpt' is not a PyTorch checkpoint"):
        client.predict(
            [handle_file(str(photo))],
            None,
            handle_file(str(fake_checkpoint)),
            0.05,
            False,
            1024,
            0,
            api_name="/stylize",
        )


def test_compare_with_gatys_times_both_methods(client, runs_dir, photo):
    checkpoint = str(runs_dir / "x" / "checkpoints" / "last.ckpt")
    network, gatys, report = client.predict(
        [handle_file(str(photo))], checkpoint, None, 0.05, 0, 10, api_name="/compare_gatys"
    )
    for path in (network, gatys):
        with Image.open(path) as image:
            assert image.size == (96, 72)
    assert "L-BFGS, 10 iterations" in report and "faster" in report


def test_train_tab_validates_before_launching(client, tmp_path, bad_upload):
    def start(texture_upload=None, source="builtin", path="") -> str:
        upload = handle_file(str(texture_upload)) if texture_upload else None
        return client.predict("mosaic", upload, source, path, 64, 2, 1.0, 0.05, "pyramid", "", api_name="/train_start")

    with pytest.raises(AppError, match="does not exist"):
        start(source="folder", path=str(tmp_path / "missing"))
    with pytest.raises(AppError, match="COCO image folder '.*train2014' does not exist"):
        start(source="coco", path=str(tmp_path))
    with pytest.raises(AppError, match="has no images"):
        start(source="folder", path=str(tmp_path))
    with pytest.raises(AppError, match="'notes.jpg' is not a readable image"):
        start(texture_upload=bad_upload)
    assert "No training started" in client.predict(api_name="/train_status")[0]


def test_app_accepts_the_data_layouts_the_loader_accepts(tmp_path):
    """One layout check for app and loader: a COCO root without annotations trains (the loader lists train2014/)."""
    (tmp_path / "train2014").mkdir()
    assert app.validate_data("coco", str(tmp_path)) == ["data=coco", f"data.root={tmp_path}"]
    nested = tmp_path / "photos" / "2024"
    nested.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(nested / "a.JPG")
    assert app.validate_data("folder", str(tmp_path / "photos")) == ["data=folder", f"data.root={tmp_path / 'photos'}"]


def test_train_command_quotes_paths_and_adds_visdom(tmp_path):
    photos = tmp_path / "my photos, 2024"
    photos.mkdir()
    Image.new("RGB", (64, 64)).save(photos / "a.png")
    command, run_dir, steps, link = app.train_command(
        tmp_path / "runs",
        "http://127.0.0.1:8097",
        "starry",
        None,
        "folder",
        str(photos),
        96,
        10,
        2.0,
        0.1,
        "residual",
        "optim.optimizer.lr=0.01",
    )
    assert (
        command[1:3] == ["train.py", "texture=starry"] and run_dir.parent == tmp_path / "runs" / "app" and steps == 10
    )
    assert (
        f"data.root='{photos}'" in command
        and "loss.style_scale=2.0" in command
        and command[-1] == "optim.optimizer.lr=0.01"
    )
    assert (
        "logger=visdom" in command
        and link == f"http://127.0.0.1:8097/env/{run_dir.name}"
        and "model=residual" in command
    )
    with pytest.raises(app.TexnetError, match="generator 'unet' is unknown: use one of pyramid, residual"):
        app.train_command(tmp_path / "runs", None, "starry", None, "builtin", "", 96, 10, 1.0, 0.05, "unet", "")
    with pytest.raises(app.TexnetError, match="not a key=value override"):
        app.train_command(
            tmp_path / "runs", None, "starry", None, "builtin", "", 96, 10, 1.0, 0.05, "pyramid", "run_dir=/elsewhere"
        )


def test_training_from_the_app_adds_a_model(client, runs_dir):
    """train.py as the app's subprocess (2 tiny steps); its checkpoint then shows up in the model list; Stop ends a run."""
    throughput = ["trainer.log_every_n_steps=1", "callbacks.throughput.window_size=2"]  # images/s from step 2
    report = client.predict(
        "pebbles",
        None,
        "builtin",
        "",
        64,
        2,
        1.0,
        0.05,
        "pyramid",
        " ".join([*TINY, *throughput]),
        api_name="/train_start",
    )
    assert "Running" in report and "/ 2" in report
    assert "already running" in client.predict(
        "mosaic", None, "builtin", "", 64, 2, 1.0, 0.05, "pyramid", "", api_name="/train_start"
    )
    deadline = time.monotonic() + 120
    while "Running" in (status := client.predict(api_name="/train_status"))[0] and time.monotonic() < deadline:
        time.sleep(1)
    report, sample, log = status
    assert "Finished" in report and "Step **2** / 2" in report and " images/s" in report, log
    assert sample is not None and "pebbles" in log
    labels = [m["label"] for m in client.predict(api_name="/list_models")]
    assert any(label.startswith("pebbles · app/pebbles_") and label.endswith("· last") for label in labels), labels

    assert "Running" in client.predict(
        "mosaic", None, "builtin", "", 64, 1000, 1.0, 0.05, "pyramid", "", api_name="/train_start"
    )
    assert "Stopped" in client.predict(api_name="/train_stop")
    assert "No training is running" in client.predict(api_name="/train_stop")


def test_port_in_use_is_a_one_line_error(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert app.main(["--port", str(port)]) == 2
    assert capsys.readouterr().err == f"error: port {port} is in use: pick another with --port\n"
