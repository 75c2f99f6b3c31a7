"""conf/: typed and bounded options (a wrong type or a number out of range is one line naming the key, before anything
runs); the trainer group's shared keys
live once, in trainer/default.yaml."""

import pytest
from conftest import CONFIG_DIR, run_script
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from texnet.config import STYLIZE_SCHEMAS, TRAIN_SCHEMAS, validate
from texnet.errors import TexnetError


def composed(name: str, *overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(name, overrides=list(overrides))


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_steps=abc", "trainer.max_steps=abc has the wrong type: pass an integer"),
        ("model.scales=2.5", "model.scales=2.5 has the wrong type: pass an integer"),
        ("optim.optimizer.lr=fast", "optim.optimizer.lr=fast has the wrong type: pass a number"),
        ("loss.style_scale=abc", "loss.style_scale=abc has the wrong type: pass a number"),
        (
            "trainer.enable_progress_bar=maybe",
            "trainer.enable_progress_bar=maybe has the wrong type: pass true or false",
        ),
        ("data.image_size=null", "data.image_size=null has the wrong type: pass an integer"),
        ("noise_multiples=[a,1]", 'noise_multiples=["a", 1] has the wrong type: pass a list of numbers such as [1, 2]'),
        (
            "trainer.val_check_interval=often",
            "trainer.val_check_interval=often has the wrong type: pass a number or null",
        ),
    ],
)
def test_wrong_type_names_the_key_and_the_type(override, message):
    with pytest.raises(TexnetError) as err:
        validate(composed("train", override), TRAIN_SCHEMAS)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.optimizer.lr=-1", "optim.optimizer.lr=-1 must be more than 0"),
        ("optim.optimizer.lr=0", "optim.optimizer.lr=0 must be more than 0"),
        ("optim.scheduler.gamma=0", "optim.scheduler.gamma=0 must be more than 0"),
        ("data.batch_size=0", "data.batch_size=0 must be at least 1"),
        ("data.image_size=16", "data.image_size=16 must be at least 32"),
        ("data.num_workers=-1", "data.num_workers=-1 must be at least 0"),
        ("model.noise_factor=-0.5", "model.noise_factor=-0.5 must be at least 0"),
        ("sample_every=-1", "sample_every=-1 must be at least 0"),
        ("loss.style_scale=-2", "loss.style_scale=-2 must be at least 0"),
        ("loss.style_weights=[1,1,-1,1,1]", "loss.style_weights=[1, 1, -1, 1, 1]: each must be at least 0"),
    ],
)
def test_a_number_out_of_range_names_the_key_and_the_bound(override, message):
    with pytest.raises(TexnetError) as err:
        validate(composed("train", override), TRAIN_SCHEMAS)
    assert str(err.value) == message


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["sample_every=0", "checkpoint_every=0", "model.noise_factor=0"],
        ["model=residual", "model.residual_blocks=0"],
        ["experiment=paper"],
        ["experiment=quality"],
        ["experiment=texture"],
        ["experiment=finetune"],
        ["experiment=add_texture", "texture.add=new.jpg"],
        ["model.skip=true"],
        ["trainer=ddp"],
        ["trainer=gpu"],
        ["model=residual"],
        ["model=encoder"],
        ["model.fine_channels=32", "model.fine_kernels=[3,1,1]"],
        ["data=folder"],
        ["trainer.val_check_interval=0.5"],
        ["trainer.val_check_interval=100"],
        ["optim.optimizer.lr=1"],
    ],
)
def test_shipped_configs_and_right_types_pass(overrides):
    validate(composed("train", *overrides), TRAIN_SCHEMAS)


def test_stylize_options_are_typed():
    validate(composed("stylize"), STYLIZE_SCHEMAS)
    with pytest.raises(TexnetError, match=r"^max_size=big has the wrong type: pass an integer or null$"):
        validate(composed("stylize", "max_size=big"), STYLIZE_SCHEMAS)
    with pytest.raises(TexnetError, match=r"^overwrite=yes please has the wrong type: pass true or false$"):
        validate(composed("stylize", "overwrite='yes please'"), STYLIZE_SCHEMAS)
    with pytest.raises(TexnetError, match=r"^max_size=-5 must be at least 1$"):
        validate(composed("stylize", "max_size=-5"), STYLIZE_SCHEMAS)
    with pytest.raises(TexnetError, match=r"^noise_factor=-1 must be at least 0$"):
        validate(composed("stylize", "noise_factor=-1"), STYLIZE_SCHEMAS)
    validate(composed("stylize", "max_size=null", "noise_factor=0"), STYLIZE_SCHEMAS)
    with pytest.raises(TexnetError, match=r"^gatys.lr=-1 must be more than 0$"):
        validate(composed("stylize", "gatys.lr=-1"), STYLIZE_SCHEMAS)
    with pytest.raises(TexnetError, match=r"^gatys.iterations=many has the wrong type: pass an integer$"):
        validate(composed("stylize", "gatys.iterations=many"), STYLIZE_SCHEMAS)


def test_command_line_wrong_type_is_one_line_and_leaves_no_folder(tmp_path):
    run = tmp_path / "run"
    done = run_script("train.py", "trainer.max_steps=abc", f"hydra.run.dir={run}")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: trainer.max_steps=abc has the wrong type: pass an integer"]
    assert not run.exists()


def test_bad_input_raised_inside_a_configs_target_is_one_line_and_leaves_no_folder(tmp_path):
    """Hydra's instantiate wraps what a _target_'s constructor raises (here texnet.data's check of the builtin
    set's held-out photos); train.py still prints the one line."""
    run = tmp_path / "run"
    done = run_script("train.py", "data.num_val=50", f"hydra.run.dir={run}")
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: data.num_val=50: the builtin set holds out"), done.stderr
    assert "Traceback" not in done.stderr and "Error in call to target" not in done.stderr, done.stderr
    assert not run.exists()


OWN = {
    "cpu": {"accelerator": "auto", "max_steps": 1000, "val_check_interval": 100},
    "gpu": {"accelerator": "gpu", "precision": "16-mixed", "max_steps": 3000, "val_check_interval": 250},
    "ddp": {
        "accelerator": "auto",
        "devices": "auto",
        "num_nodes": 1,
        "strategy": "ddp",
        "max_steps": 3000,
        "val_check_interval": 250,
    },
}


@pytest.mark.parametrize("trainer", list(OWN))
def test_each_trainer_is_default_yaml_plus_its_own_keys(trainer):
    default = OmegaConf.to_container(OmegaConf.load(CONFIG_DIR / "trainer" / "default.yaml"))
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        composed = OmegaConf.to_container(compose("train", overrides=[f"trainer={trainer}"]).trainer)
    assert composed == {**default, **OWN[trainer]}
    own_file = OmegaConf.load(CONFIG_DIR / "trainer" / f"{trainer}.yaml")
    assert list(own_file.defaults) == ["default", "_self_"] and not set(own_file) - {"defaults"} - set(OWN[trainer])
