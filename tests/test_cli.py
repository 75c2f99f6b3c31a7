"""A mistyped option or config-group choice on train.py / stylize.py is one line saying what to write instead, and
nothing is created (Hydra's own report is several lines ending in its search path)."""

import pytest
from conftest import run_script


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "texture=bench/textures/strokes.jpg",
            "texture=bench/textures/strokes.jpg is not one of mosaic, pebbles, starry; for an image file use "
            "texture.image=bench/textures/strokes.jpg",
        ),
        (
            "texture=[mosaic,strokes.jpg]",
            "texture=[mosaic,strokes.jpg]: strokes.jpg is not one of mosaic, pebbles, starry; for image files (or names "
            "and files) use texture.images=[mosaic,strokes.jpg]",
        ),
        (
            "experiment=qualty",
            "experiment=qualty is not one of add_texture, finetune, multi_texture, paper, quality, texture; did you mean "
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


def test_train_py_answers_a_typo_before_importing_torch():
    """train.py imports torch, Lightning and the training code only after Hydra composed the config (those imports take
    seconds), so a mistyped option or --help answers at once."""
    code = "import sys, train; print(sorted({'torch', 'pytorch_lightning', 'texnet.training'} & set(sys.modules)))"
    result = run_script("-c", code)
    assert (result.returncode, result.stdout.strip()) == (0, "[]"), result.stderr
