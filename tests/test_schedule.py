"""The training schedule: crop size and style scale change at the configured steps, and survive a resume."""

import csv
from pathlib import Path

import pytest
import torch
from conftest import CONFIG_DIR
from hydra import compose, initialize_config_dir

from texnet.errors import TexnetError
from texnet.schedule import check_schedule, settings_at
from texnet.training import train

SCHEDULE = "data.schedule=[{step:0,image_size:48},{step:3,image_size:64,batch_size:1,style_scale:2.5}]"


def builtin_cfg(run: Path, *overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose(
            "train",
            overrides=[
                f"run_dir={run}",
                "data.image_size=32",
                "data.val_size=48",
                "data.batch_size=2",
                "data.num_val=1",
                "data.builtin_length=64",
                "model.scales=3",
                "trainer.accelerator=cpu",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                "trainer.log_every_n_steps=1",
                "trainer.val_check_interval=3",
                "checkpoint_every=3",
                "sample_every=0",
                *overrides,
            ],
        )


def logged(run: Path, key: str) -> list[tuple[int, float]]:
    rows = csv.DictReader((run / "csv" / "metrics.csv").open())
    return [(int(r["step"]), float(r[key])) for r in rows if r.get(key)]


def test_settings_follow_the_stages():
    stages = check_schedule([{"step": 10, "image_size": 256, "batch_size": 1}, {"step": 0, "style_scale": 2.0}])
    defaults = {"image_size": 128, "batch_size": 4, "style_scale": 1.0}
    assert settings_at(stages, 0, defaults) == {"image_size": 128, "batch_size": 4, "style_scale": 2.0}
    assert settings_at(stages, 10, defaults) == {"image_size": 256, "batch_size": 1, "style_scale": 2.0}
    for bad, message in (
        ([{"image_size": 64}], "needs 'step'"),
        ([{"step": 0, "lr": 1}], "unknown: lr"),
        ([{"step": 0, "image_size": 0}], "image_size=0 must be"),
        ([{"step": 0, "image_size": 16}], "image_size=16 must be a whole number >= 32"),
        ([{"step": 1}, {"step": 1}], "same step"),
        ([{"step": 0, "augment": "flip"}], "augment='flip' must be a list of transforms"),
    ):
        with pytest.raises(TexnetError, match=message):
            check_schedule(bad)


def test_schedule_changes_crop_size_and_style_scale_and_survives_resume(tmp_path, one_thread):
    run = tmp_path / "run"
    first = train(builtin_cfg(run, SCHEDULE, "trainer.max_steps=5"))
    assert first["global_step"] == 5
    sizes = logged(run, "train/image_size")
    assert [s for _, s in sizes] == [48.0, 48.0, 48.0, 64.0, 64.0] and [st for st, _ in sizes] == [0, 1, 2, 3, 4]
    assert [s for _, s in logged(run, "train/style_scale")] == [3.0] * 3 + [2.5] * 2  # 3: the default loss.style_scale
    # validation keeps the run's own style scale, so its losses compare across stages
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["schedule"][1]["image_size"] == 64

    # a run stopped in the first stage and resumed crosses into the second at the same step
    first_again = train(builtin_cfg(tmp_path / "short", SCHEDULE, "trainer.max_steps=2"))
    cont = train(builtin_cfg(tmp_path / "cont", SCHEDULE, "trainer.max_steps=4", f"ckpt_path={first_again['last']}"))
    assert cont["global_step"] == 4
    assert [s for _, s in logged(tmp_path / "cont", "train/image_size")] == [48.0, 64.0]
    assert [s for _, s in logged(tmp_path / "cont", "train/style_scale")] == [3.0, 2.5]
