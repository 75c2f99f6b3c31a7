"""VisdomLogger in real Lightning runs: against a real Visdom server started by texnet.viz (offline), and without one."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import visdom
from torch.utils.data import DataLoader, TensorDataset

from texnet.errors import TexnetError
from texnet.visdom_logger import VisdomLogger, route
from texnet.viz import free_port, start_server

STEPS = 5
LOSS_TERMS = {"content", "style", "tv", "total"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """A real Visdom server on a free loopback port, saving envs to a temp folder; stopped afterwards."""
    env_path = tmp_path_factory.mktemp("visdom_envs")
    port = free_port()
    proc = start_server(port, env_path, install=False)  # tests never reach for the npm registry
    yield port, env_path
    proc.terminate()
    proc.wait(timeout=10)


class TinyModule(pl.LightningModule):
    """A linear layer whose made-up loss terms carry the metric names texnet logs."""

    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.layer(batch[0])
        content = out.pow(2).mean() + 1e-3
        style = (out - 1).abs().mean() + 1e-3
        tv = self.layer.weight.abs().sum() * 0.01 + 1e-3
        total = content + style + tv
        self.log_dict(
            {
                "train/content": content,
                "train/style": style,
                "train/tv": tv,
                "train/total": total,
                "train/style/relu1_1": style / 2,
            }
        )
        return total

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(torch.randn(64, 4)), batch_size=8)


class LogSamples(pl.Callback):
    """Sends an image grid once, the way training code logs generated textures."""

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if trainer.global_step == 2:
            for logger in trainer.loggers:
                if isinstance(logger, VisdomLogger):
                    logger.log_images("samples", torch.rand(4, 3, 16, 16), caption="step 2")


def fit(logger: VisdomLogger, root: Path) -> float:
    """Train TinyModule for STEPS steps with `logger`; returns the seconds fit() took."""
    trainer = pl.Trainer(
        max_steps=STEPS,
        accelerator="cpu",
        logger=[logger],
        callbacks=[LogSamples()],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=root,
    )
    started = time.monotonic()
    trainer.fit(TinyModule())
    return time.monotonic() - started


def traces(client: visdom.Visdom, win: str, env: str) -> dict[str, list[float]]:
    window = json.loads(client.get_window_data(win, env=env))
    return {trace["name"]: trace["x"] for trace in window["content"]["data"]}


def test_training_run_plots_losses_layers_and_images(server: tuple[int, Path], tmp_path: Path) -> None:
    port, env_path = server
    logger = VisdomLogger(env="texnet_test_run", port=port)
    fit(logger, tmp_path)
    assert logger.flush(10)

    client = visdom.Visdom(port=port, env=logger.env, use_incoming_socket=False, raise_exceptions=True)
    for win in ("train_losses", "train_style_layers", "images_samples"):
        assert client.win_exists(win, env=logger.env), win

    losses = traces(client, "train_losses", logger.env)
    assert set(losses) == LOSS_TERMS
    for steps in losses.values():
        assert len(steps) == STEPS and steps == sorted(steps)
    layers = traces(client, "train_style_layers", logger.env)
    assert list(layers) == ["relu1_1"] and len(layers["relu1_1"]) == STEPS

    assert (env_path / f"{logger.env}.json").is_file()  # finalize() saved the env


def test_no_server_warns_once_and_costs_nothing(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    port = free_port()  # nobody listens here
    logger = VisdomLogger(env="texnet_test_offline", port=port)
    with caplog.at_level(logging.WARNING, logger="texnet.visdom_logger"):
        seconds = fit(logger, tmp_path)
        assert logger.flush(5)
        started = time.monotonic()
        for step in range(1000):  # later calls are no-ops
            logger.log_metrics({"train/total": 1.0}, step=step)
            logger.log_images("samples", torch.rand(2, 3, 8, 8))
        assert time.monotonic() - started < 1.0

    warnings = [r.getMessage() for r in caplog.records if r.name == "texnet.visdom_logger"]
    assert len(warnings) == 1, warnings
    assert f"127.0.0.1:{port}" in warnings[0] and "python -m texnet.viz serve" in warnings[0]
    assert seconds < 15


def test_port_taken_is_a_one_line_error(server: tuple[int, Path]) -> None:
    port, env_path = server
    with pytest.raises(TexnetError, match=rf"port {port} .*--port"):
        start_server(port, env_path, install=False)

    cli = subprocess.run(
        [sys.executable, "-m", "texnet.viz", "serve", "--port", str(port), "--no-install"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cli.returncode == 2
    assert cli.stderr.strip().splitlines() == [cli.stderr.strip()]
    assert f"port {port}" in cli.stderr and "--port" in cli.stderr


@pytest.mark.parametrize(
    ("key", "win", "trace"),
    [
        ("train/total", "train_losses", "total"),
        ("val/content", "val_losses", "content"),
        ("train/style/relu3_1", "train_style_layers", "relu3_1"),
        ("lr-Adam", "lr", "lr-Adam"),
        ("train/device/samples_per_sec", "throughput", "train/device/samples_per_sec"),
        ("train/samples_per_sec", "throughput", "train/samples_per_sec"),
        ("val/psnr", "val_psnr", "psnr"),
    ],
)
def test_metric_keys_are_grouped_into_windows(key: str, win: str, trace: str) -> None:
    window, name = route(key)
    assert (window.win, name) == (win, trace)


def test_epoch_key_and_throughput_counters_are_not_plotted() -> None:
    for key in (
        "epoch",
        "train/time",
        "train/samples",
        "train/batches",
        "validate/time",
        "train/device/batches_per_sec",
    ):
        assert route(key) is None, key


def test_train_py_with_logger_visdom(server: tuple[int, Path], tmp_path: Path) -> None:
    """`python train.py logger=visdom`: losses, samples, noise-factor panel and config reach the dashboard."""
    from conftest import CONFIG_DIR
    from hydra import compose, initialize_config_dir

    from texnet.training import train

    port, env_path = server
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"run_dir={tmp_path}",
                "logger=visdom",
                f"logger.visdom.port={port}",
                "logger.visdom.env=texnet_test_train",
                "data.image_size=64",
                "data.val_size=64",
                "data.num_val=2",
                "data.batch_size=2",
                "model.scales=3",
                "trainer.max_steps=4",
                "trainer.val_check_interval=2",
                "trainer.log_every_n_steps=1",
                "sample_every=2",
                "trainer.enable_progress_bar=false",
                "trainer.accelerator=cpu",
                "callbacks.throughput.window_size=2",
            ],
        )
    train(cfg)
    client = visdom.Visdom(port=port, env="texnet_test_train", use_incoming_socket=False, raise_exceptions=True)
    for win in (
        "train_losses",
        "train_style_layers",
        "val_losses",
        "lr",
        "throughput",
        "images_samples",
        "images_texture",
        "images_noise_factors",
    ):
        assert client.win_exists(win, env="texnet_test_train"), win
    assert len(traces(client, "train_losses", "texnet_test_train")["total"]) == 4
    assert (tmp_path / "csv" / "metrics.csv").is_file()  # the CSV logger still runs beside Visdom
    assert (env_path / "texnet_test_train.json").is_file()


def test_gatys_iterations_reach_the_dashboard(server: tuple[int, Path], tmp_path: Path, photo_path: Path) -> None:
    from texnet.gatys import stylize
    from texnet.losses import default_loss_config

    port, _ = server
    logger = VisdomLogger(env="texnet_test_gatys", port=port)
    loss = {**default_loss_config(), "vgg": "vgg16"}
    stylize(
        photo_path,
        "mosaic",
        tmp_path / "g",
        loss=loss,
        iterations=4,
        save_every=2,
        max_size=64,
        texture_size=64,
        progress=False,
        accelerator="cpu",
        loggers=[logger],
    )
    client = visdom.Visdom(port=port, env="texnet_test_gatys", use_incoming_socket=False, raise_exceptions=True)
    assert set(traces(client, "gatys_losses", "texnet_test_gatys")) == LOSS_TERMS
    assert len(traces(client, "gatys_losses", "texnet_test_gatys")["total"]) == 5  # iterations 0..4
    assert client.win_exists("images_gatys/current", env="texnet_test_gatys")
