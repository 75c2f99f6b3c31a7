"""A mistyped option or config-group choice on train.py / stylize.py is one line saying what to write instead, and
nothing is created (Hydra's own report is several lines ending in its search path)."""

import re
import shlex

import pytest
from hydra import compose, initialize_config_dir

from tests.conftest import CONFIG_DIR, ROOT, run_script
from texnet.config import STYLIZE_SCHEMAS, TRAIN_SCHEMAS, validate


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "texture=bench/textures/strokes.jpg",
            "texture=bench/textures/strokes.jpg is not one of mosaic, pebbles, starry; for an image file use "
            "texture.image=bench/textures/strokes.jpg",
        ),
        (
            "experiment=qualty",
            "experiment=qualty is not one of add_texture, multi_texture, paper, quality, texture; did you mean "
            "experiment=quality?",
        ),
        (
            "trainer.max_step=3",
            "trainer.max_step=3: there is no option trainer.max_step; did you mean trainer.max_steps? (--cfg job "
            "prints every option)",
        ),
        ("foo=1", "foo=1: there is no option foo (--cfg job prints every option)"),
        (
            "texture.images=[a.jpg,",
            "cannot read the override 'texture.images=[a.jpg,': no viable alternative at input '[a.jpg,' (quote lists "
            "and dicts for the shell: 'texture.images=[a.jpg,b.jpg]')",
        ),
        (
            "data.root=~/photos",
            "cannot read the override 'data.root=~/photos': Hydra reads ~ as a deletion; write the path out "
            "($HOME/...)",
        ),
    ],
)
def test_train_py_says_what_to_write_instead(tmp_path, override, message):
    run = tmp_path / "run"
    result = run_script("train.py", override, f"hydra.run.dir={run}")
    assert (result.returncode, result.stderr.strip()) == (1, f"error: {message}") and not run.exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "chekpoint=mosaic",
            "chekpoint=mosaic: there is no option chekpoint; did you mean checkpoint? (--cfg job prints every option)",
        ),
        (
            "texture=strokes",
            "texture=strokes is not one of mosaic, pebbles, starry; for a trained network's texture use "
            "texture_mix=strokes, for an image (method=gatys) texture.image=strokes",
        ),
    ],
)
def test_stylize_py_says_what_to_write_instead(tmp_path, override, message):
    result = run_script("stylize.py", "checkpoint=mosaic", override, f"output={tmp_path / 'out.png'}")
    assert (result.returncode, result.stderr.strip()) == (1, f"error: {message}") and not any(tmp_path.iterdir())


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
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    commands = [
        line for block in blocks for line in block.splitlines() if re.match(r"(\S*/)?python (train|stylize)\.py ", line)
    ]
    assert check_commands(commands) >= 30
