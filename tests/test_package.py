"""``pip install .`` (not editable) gives a texnet that works from any folder: the library never reads the repository.

Slow (a wheel build and a fresh virtual environment, ~1 min): ``pytest -m slow tests/test_package.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import venv
from pathlib import Path

import pytest
from conftest import ROOT
from test_stylize import train_checkpoint

SCRIPT = """
import json, sys
from pathlib import Path
import torch
import texnet
from texnet.gatys import stylize
from texnet.app import build_app

ckpt, photo, out = sys.argv[1:4]
stylizer = texnet.load(ckpt, device="cpu")
image = stylizer.stylize(photo, seed=0)
result = stylize(photo, "mosaic", Path(out) / "gatys", iterations=2, max_size=48, texture_size=48, save_every=0,
                 progress=False, accelerator="cpu")
demo = build_app(Path(out) / "runs", None, repo=out)
from texnet.models import cards
shipped = {name: texnet.load(name, device="cpu").texture_name for name in cards()}
from texnet.graph_stylize import GraphModel, checkpoint_digest
from texnet.models import MODELS_DIR
graph = GraphModel.find(MODELS_DIR / "mosaic.ckpt", checkpoint_digest(MODELS_DIR / "mosaic.ckpt"))
print(json.dumps({"texnet": texnet.__file__, "size": image.size, "texture": stylizer.texture_name,
                  "gatys": result.image_path.is_file(), "blocks": len(demo.blocks), "shipped": shipped,
                  "graph": graph is not None}))
"""


@pytest.mark.slow
def test_a_non_editable_install_works_from_another_folder(tmp_path, photo_path):
    """A copy of the project is installed into a fresh venv that reuses this environment's packages (torch, gradio,
    ...) but not its texnet; the script then runs from an empty folder with no repository on its path."""
    ckpt = train_checkpoint(tmp_path / "net")
    source = tmp_path / "source"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".*", "__pycache__", "*.egg-info", "build", "runs", "tests", "bench", "docs", "outputs"
        ),
    )
    env_dir = tmp_path / "venv"
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # this environment's packages as plain paths: their .pth files (e.g. an editable texnet) are not run
    (Path(purelib) / "reuse_test_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip = subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(source)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    shutil.rmtree(source)  # nothing of the repository is left to read
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = subprocess.run(
        [python, "-c", SCRIPT, str(ckpt), str(photo_path), str(elsewhere)],
        capture_output=True,
        text=True,
        timeout=600,
        env={**env, "TEXNET_OFFLINE": "1"},
        cwd=elsewhere,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(report["texnet"]).is_relative_to(env_dir) and not Path(report["texnet"]).is_relative_to(ROOT)
    assert report["size"] == [512, 512] and report["texture"] == "mosaic" and report["gatys"] and report["blocks"] > 10
    assert report["shipped"]["mosaic"] == "mosaic"  # the shipped models are package data of the installed copy
    assert report["graph"]  # ... and so is the graph that stylises a photo without torch
