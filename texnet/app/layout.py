"""The app's page: a title and two tabs, :mod:`texnet.app.stylise_tab` and :mod:`texnet.app.train_tab`; the work is
done in :mod:`texnet.app.stylise` and :mod:`texnet.app.training`, whose TexnetErrors show as one-line page errors."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

import gradio as gr

from texnet.app.models import ModelCache
from texnet.app.stylise_tab import stylise_tab
from texnet.app.train_tab import train_tab
from texnet.app.training import TrainingJob, find_repo, train_defaults


def build_app(runs_dir: Path, visdom_url: str | None = None, repo: str | Path | None = ".") -> gr.Blocks:
    """The two-tab app. `runs_dir` is scanned for models and receives the Train tab's runs under ``app/``; the Train
    tab runs `repo`'s train.py (:func:`texnet.app.training.find_repo`: without a checkout it says how to get one)."""
    runs_dir = Path(runs_dir).expanduser()
    repo = find_repo(repo)
    defaults = train_defaults(repo)
    cache = ModelCache()
    job = TrainingJob()
    atexit.register(job.stop)  # no orphaned training when the app exits
    out_root = Path(tempfile.mkdtemp(prefix="texnet-app-"))  # the stylised images the page shows
    atexit.register(shutil.rmtree, out_root, ignore_errors=True)

    with gr.Blocks(title="texnet", analytics_enabled=False) as demo:
        gr.Markdown(
            "# texnet: texture networks\nStylise photos in one forward pass with a trained network, compare it with "
            "the Gatys et al. optimisation, or train a new network on your texture."
        )
        stylise_tab(demo, runs_dir, cache, out_root)
        train_tab(demo, runs_dir, repo, defaults, job, visdom_url)
    return demo
