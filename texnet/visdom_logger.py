"""Live training plots in Visdom, as a PyTorch Lightning logger.

One Visdom environment per run. Metric keys are grouped into a few readable windows (losses,
style loss per layer, learning rate, throughput). Everything is sent from a background thread
through a bounded queue, so a slow or missing server never slows training: if the server is
unreachable, one warning says how to start it and every later call is a no-op.
"""

from __future__ import annotations

import html
import json
import logging
import math
import threading
import time
from argparse import Namespace
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import requests
import torch
import visdom
import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only
from torchvision.utils import make_grid

log = logging.getLogger(__name__)

LOSS_TERMS = frozenset({"content", "style", "tv", "total", "loss"})
THROUGHPUT_STAGES = frozenset({"train", "validate", "test", "predict"})  # the key prefixes of ThroughputMonitor
THROUGHPUT_COUNTERS = frozenset({"time", "batches", "samples", "lengths"})
MAX_IMAGE_WINDOW_PX = 640  # big grids are shown scaled down; the full image is still sent


class _DropSocketNotice(logging.Filter):
    """visdom warns on every connection made without its incoming socket, which texnet never needs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Without the incoming socket")


logging.getLogger("visdom").addFilter(_DropSocketNotice())


class _Client(visdom.Visdom):
    """`visdom.Visdom` whose HTTP calls time out (the stock client can wait forever) and that
    raises on connection errors instead of printing tracebacks."""

    def __init__(self, server: str, port: int, env: str, timeout: float) -> None:
        self._timeout = timeout
        super().__init__(server=server, port=port, env=env, raise_exceptions=True, use_incoming_socket=False)

    @property
    def session(self) -> requests.Session:
        # The stock property logs "Setting up a new session..." as a warning.
        if self._session is None:
            self._session = requests.Session()
        return self._session

    def _handle_post(self, url: str, data: Any = None) -> str:
        return self.session.post(url, data=data or {}, timeout=self._timeout).text


@dataclass(frozen=True)
class _Window:
    win: str
    title: str
    ylabel: str
    log_y: bool

    def opts(self) -> dict[str, Any]:
        opts = {"title": self.title, "xlabel": "step", "ylabel": self.ylabel, "showlegend": True}
        if self.log_y:  # content, style and TV terms differ by orders of magnitude
            opts["ytype"] = "log"
        return opts


@dataclass(frozen=True)
class _Point:
    window: _Window
    trace: str
    step: int
    value: float


def route(key: str) -> tuple[_Window, str] | None:
    """The window and trace name a metric key is plotted in; None for keys not worth plotting."""
    if key == "epoch":  # Lightning adds it to every call
        return None
    parts = key.split("/")
    leaf = parts[-1]
    if key == "lr" or key.startswith(("lr-", "lr/")) or leaf == "lr":
        return _Window("lr", "learning rate", "learning rate", log_y=False), key
    if (
        leaf == "samples_per_sec"
    ):  # ThroughputMonitor: train/device/samples_per_sec (and train/samples_per_sec with DDP)
        return _Window("throughput", "throughput", "images/s", log_y=False), key
    if parts[0] in THROUGHPUT_STAGES and (leaf in THROUGHPUT_COUNTERS or leaf.endswith("_per_sec")):
        return None  # its running totals and batches/s (images/s divided by the batch size)
    if len(parts) == 3 and parts[1] == "style":
        return _Window(f"{parts[0]}_style_layers", f"{parts[0]} style loss per layer", "loss", log_y=True), leaf
    if len(parts) <= 2 and (leaf in LOSS_TERMS or leaf.endswith("loss")):
        prefix = parts[0] if len(parts) == 2 else ""
        return _Window(f"{prefix}_losses", f"{prefix} losses".strip(), "loss", log_y=True), leaf
    return _Window(key.replace("/", "_"), key, leaf, log_y=False), leaf


def _plain(params: Any) -> dict[str, Any]:
    """Hyperparameters (dict, Namespace, Hydra DictConfig, nested configs) as plain YAML-able data."""

    def to_container(cfg: DictConfig | ListConfig) -> Any:
        try:
            return OmegaConf.to_container(cfg, resolve=True)
        except OmegaConfBaseException:  # e.g. ${hydra:...} outside a Hydra run: show it unresolved
            return OmegaConf.to_container(cfg, resolve=False)

    if isinstance(params, Namespace):
        params = vars(params)
    if isinstance(params, (DictConfig, ListConfig)):
        params = to_container(params)
    if not isinstance(params, Mapping):
        return {}

    def default(obj: Any) -> Any:
        return to_container(obj) if isinstance(obj, (DictConfig, ListConfig)) else str(obj)

    return json.loads(json.dumps(dict(params), default=default))


class VisdomLogger(Logger):
    """Sends Lightning metrics, the run config, images and text to a Visdom server.

    Args:
        env: Visdom environment for this run; default ``texnet_<date>-<time>``.
        server, port: where ``python -m texnet.viz serve`` listens.
        save_env: save the environment to the server's env folder when training ends.
        log_every_n: plot at most one point per metric every `n` steps.
        queue_size: pending sends kept when the server is slower than training (oldest dropped).
        timeout: seconds one HTTP call to the server may take, connection check included.
    """

    def __init__(
        self,
        env: str | None = None,
        server: str = "http://127.0.0.1",
        port: int = 8097,
        save_env: bool = True,
        log_every_n: int = 1,
        queue_size: int = 10_000,
        timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self.env = env or time.strftime("texnet_%Y%m%d-%H%M%S")
        self.server = server
        self.port = port
        self.save_env = save_env
        self.log_every_n = max(1, log_every_n)
        self.timeout = timeout
        self._queue: deque[_Point | Callable[[_Client], Any]] = deque(maxlen=queue_size)
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._client: _Client | None = None
        self._disabled = False
        self._warned_drop = False
        self._warned_send = False
        self._last_step: dict[str, int] = {}
        self._calls = 0
        self._hparams: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return "visdom"

    @property
    def version(self) -> str:
        return self.env

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self._disabled:
            return
        step = self._calls if step is None else int(step)
        self._calls += 1
        points = []
        for key, value in metrics.items():
            routed = route(key)
            last = self._last_step.get(key)
            if routed is None or (last is not None and step - last < self.log_every_n):
                continue
            value = float(value)
            if not math.isfinite(value):  # NaN/inf would break the page's JSON
                continue
            self._last_step[key] = step
            points.append(_Point(routed[0], routed[1], step, value))
        self._enqueue(*points)

    @rank_zero_only
    def log_hyperparams(self, params: Mapping[str, Any] | Namespace | DictConfig, *args: Any, **kwargs: Any) -> None:
        """Show the (merged) run config as YAML in a text window."""
        if self._disabled:
            return
        params = _plain(params)
        if not params:  # Lightning logs {} when the module saved no hparams
            return
        self._hparams.update(params)
        text = yaml.safe_dump(self._hparams, sort_keys=False)
        self._enqueue(lambda c: c.text(f"<pre>{html.escape(text)}</pre>", win="config", opts={"title": "config"}))

    @rank_zero_only
    def log_images(self, name: str, images: torch.Tensor, caption: str | None = None, nrow: int | None = None) -> None:
        """Show `images` ((N, 3, H, W) or (3, H, W), values in [0, 1]) as one grid, replacing the last one."""
        if self._disabled:
            return
        batch = images.detach().float().cpu()
        if batch.ndim == 3:
            batch = batch.unsqueeze(0)
        grid = make_grid(batch.clamp(0, 1), nrow=nrow or math.ceil(math.sqrt(len(batch))), padding=2, pad_value=1.0)
        pixels = grid.mul(255).round().to(torch.uint8).numpy()
        scale = min(1.0, MAX_IMAGE_WINDOW_PX / max(pixels.shape[1:]))
        opts: dict[str, Any] = {
            "title": name,
            "width": round(pixels.shape[2] * scale),
            "height": round(pixels.shape[1] * scale),
        }
        if caption:
            opts["caption"] = caption
        self._enqueue(lambda c: c.image(pixels, win=f"images_{name}", opts=opts))

    @rank_zero_only
    def finalize(self, status: str) -> None:
        """Send what is queued, save the env (also after a failed run: the curves show what went
        wrong), and let the sender thread end."""
        if self.save_env:
            self._enqueue(lambda c: c.save([self.env]))
        if not self.flush(max(10.0, 2 * self.timeout)):
            log.warning("Visdom: some updates were still unsent when training ended")
        with self._cond:
            self._thread = None
            self._cond.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued update was sent (or dropped); False if `timeout` ran out first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def _enqueue(self, *items: _Point | Callable[[_Client], Any]) -> None:
        with self._cond:
            if self._disabled or not items:  # disabled: set by the sender thread after a failed connection
                return
            if len(self._queue) + len(items) > (self._queue.maxlen or 0) and not self._warned_drop:
                self._warned_drop = True
                log.warning("Visdom server is slower than training: dropping the oldest queued updates")
            self._queue.extend(items)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="visdom-logger", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        """Sender thread: takes everything queued, sends it, repeats; ends when finalize() asks."""
        me = threading.current_thread()
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._thread is not me)
                if self._thread is not me:  # finalize() ran; a later call starts a fresh thread
                    return
                batch = list(self._queue)
                self._queue.clear()
                self._busy = True
            try:
                self._send(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _send(self, batch: list[_Point | Callable[[_Client], Any]]) -> None:
        if self._disabled or (self._client is None and not self._connect()):
            return
        lines: dict[_Window, dict[str, tuple[list[int], list[float]]]] = {}
        for item in batch:
            if isinstance(item, _Point):
                steps, values = lines.setdefault(item.window, {}).setdefault(item.trace, ([], []))
                steps.append(item.step)
                values.append(item.value)
            else:  # keep the order: points logged before e.g. a save are sent before it
                self._send_lines(lines)
                lines = {}
                self._call(item)
        self._send_lines(lines)

    def _send_lines(self, lines: dict[_Window, dict[str, tuple[list[int], list[float]]]]) -> None:
        """One append per trace, however many steps piled up (visdom creates missing windows/traces)."""
        for window, traces in lines.items():
            for trace, (steps, values) in traces.items():
                line = {
                    "Y": np.asarray(values, dtype=float),
                    "X": np.asarray(steps, dtype=float),
                    "win": window.win,
                    "name": trace,
                    "update": "append",
                    "opts": window.opts(),
                }
                self._call(lambda c, line=line: c.line(**line))

    def _call(self, fn: Callable[[_Client], Any]) -> None:
        assert self._client is not None
        try:
            fn(self._client)
        except Exception as exc:  # noqa: BLE001 - a plot must never end training; say so once
            if not self._warned_send:
                self._warned_send = True
                log.warning(
                    "Visdom update to %s:%d failed (%s); later failures are not reported", self.server, self.port, exc
                )

    def _connect(self) -> bool:
        try:
            self._client = _Client(self.server, self.port, self.env, self.timeout)
            return True
        except Exception as exc:  # noqa: BLE001 - any failure to connect means no live plots, never a failed run
            with self._cond:
                self._disabled = True
                self._queue.clear()
            log.warning(
                "Visdom server %s:%d is not reachable (%s): no live plots for this run. "
                "Start one with `python -m texnet.viz serve --port %d`.",
                self.server,
                self.port,
                type(exc).__name__,
                self.port,
            )
            return False
