"""A local web app: stylise photos with trained texture networks, compare with Gatys et al., train new networks.

    python -m texnet.app [--port 7860] [--host 127.0.0.1] [--runs-dir runs] [--repo .] [--visdom-url http://127.0.0.1:8097]

The app is a front end, not a second implementation: photos go through stylize.py's loop (:mod:`texnet.batch`),
the baseline through :func:`texnet.gatys.run_gatys`, and training is ``python train.py ...`` in a background process
whose progress is read back from its run folder. Modules: ``layout`` (the page), ``stylise`` (the Stylise tab's
work), ``training`` (the Train tab's command and process), ``models`` (checkpoints found and cached), ``launch``.
"""

from __future__ import annotations

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # read when gradio is imported: no calls home, no version check

from texnet.app.launch import launch, main, port_in_use
from texnet.app.layout import build_app
from texnet.app.training import TrainingJob, hydra_value, train_command, validate_data
from texnet.errors import TexnetError

__all__ = [
    "TexnetError",
    "TrainingJob",
    "build_app",
    "hydra_value",
    "launch",
    "main",
    "port_in_use",
    "train_command",
    "validate_data",
]
