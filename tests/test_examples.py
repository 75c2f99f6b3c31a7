"""The examples users copy: every train.py / stylize.py command in the README and in `--help` has options that exist
with valid values, and the README's Python example runs against the API as it is."""

import inspect
import re
import shlex

import numpy as np
import pytest
from conftest import CONFIG_DIR, ROOT, run_script
from hydra import compose, initialize_config_dir
from PIL import Image

import texnet.gatys
from texnet.config import STYLIZE_SCHEMAS, TRAIN_SCHEMAS, validate

README = (ROOT / "README.md").read_text()


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


SCHEMAS = {"train.py": TRAIN_SCHEMAS, "stylize.py": STYLIZE_SCHEMAS}


def check_commands(commands: list[str]) -> int:
    """Compose and validate each `python train.py|stylize.py <options>  <description>` command; how many there were.
    <texture> and <date> stand for a run folder's names; -m sweeps are left out."""
    checked = 0
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        for command in commands:
            words = shlex.split(re.sub(r"<\w+>", "x", command.split("  #")[0]))
            script = next(w for w in words if w in SCHEMAS)
            options = [w for w in words[words.index(script) + 1 :] if re.match(r"^[\w.]+=", w)]
            if "-m" not in words:
                validate(compose(script.removesuffix(".py"), overrides=options), SCHEMAS[script])
                checked += 1
    return checked


@pytest.mark.parametrize("script", SCHEMAS)
def test_the_examples_in_help_are_valid_options(script):
    """`--help` opens with example commands: each one's options exist and have valid values."""
    result = run_script(script, "--help")
    assert result.returncode == 0
    examples = [line.strip() for line in result.stdout.splitlines() if line.strip().startswith(f"python {script} ")]
    assert check_commands(examples) >= 5


def test_the_commands_in_the_readme_are_valid_options():
    commands = [
        line
        for block in code_blocks("bash")
        for line in block.splitlines()
        if re.match(r"(\S*/)?python (train|stylize)\.py ", line)
    ]
    assert check_commands(commands) >= 30


def test_the_python_example_in_the_readme_runs(tmp_path, monkeypatch):
    """Run as written, on a small photo, with the run folder's checkpoint standing for the shipped mosaic; the Gatys
    calls (minutes each) are only bound to their functions' signatures."""
    (block,) = code_blocks("python")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(tmp_path / "photo.jpg")
    calls = []
    for name in ("stylize", "synthesize"):
        signature = inspect.signature(getattr(texnet.gatys, name))
        monkeypatch.setattr(texnet.gatys, name, lambda *a, s=signature, **k: calls.append(s.bind(*a, **k)))
    monkeypatch.chdir(tmp_path)
    namespace = {"numpy_rgb": np.asarray(Image.open(tmp_path / "photo.jpg"))}
    exec(block.replace("runs/mosaic/<date>/checkpoints/last.ckpt", "mosaic"), namespace)
    assert (tmp_path / "photo_mosaic.png").is_file() and len(calls) == 2
    assert namespace["array"].shape == (48, 64, 3) and namespace["blend"].size == (64, 48)
