"""train.py through Hydra's compose API on a tiny COCO-format set (conftest.coco_root)."""

import csv
import os
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from conftest import CONFIG_DIR, ROOT, tiny_cfg, tiny_overrides
from hydra import compose, initialize_config_dir
from hydra.errors import MissingConfigException
from pytorch_lightning.callbacks import RichProgressBar

from texnet.errors import TexnetError
from texnet.progress import RICH
from texnet.textures import texture_path
from texnet.training import train


def val_totals(run_dir: Path) -> list[float]:
    """The validation totals a run logged to its metrics.csv, in order."""
    return [
        float(r["val/total"]) for r in csv.DictReader((run_dir / "csv" / "metrics.csv").open()) if r.get("val/total")
    ]


def test_training_lowers_loss_writes_checkpoints_and_resumes(tmp_path, coco_root):
    cfg = tiny_cfg(
        tmp_path / "run",
        coco_root,
        "optim.optimizer.lr=0.05",
        "trainer.max_steps=16",
        "trainer.val_check_interval=8",
        "trainer.log_every_n_steps=1",
    )
    result = train(cfg)
    run = tmp_path / "run"
    assert result["global_step"] == 16
    assert (run / "checkpoints" / "last.ckpt").is_file() and Path(result["best"]).is_file()
    assert (run / "config.yaml").is_file() and sorted((run / "samples").glob("step_*.png"))
    val = val_totals(run)
    assert len(val) == 2 and val[-1] < val[0], val  # the same fixed photos and noise: the loss fell

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    hp = ckpt["hyper_parameters"]
    assert hp["model"]["scales"] == 3 and hp["model"]["noise_factor"] == 0.05
    assert hp["texture"]["name"] == "mosaic" and hp["loss"]["content_layers"] == ["relu4_2"]
    assert ckpt["texnet"]["kind"] == "texnet.TextureNetModule"
    assert "texture" in ckpt["state_dict"] and not any(k.startswith("_perceptual") for k in ckpt["state_dict"])

    resumed = train(
        tiny_cfg(
            tmp_path / "resumed", coco_root, "trainer.max_steps=20", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"
        )
    )
    assert resumed["global_step"] == 20  # continued from step 16, not from 0


def resume_run(run: Path, coco_root: Path, *typed: str) -> dict:
    """train.py's resume of `run` from its last.ckpt, in process, with the options `typed` on the command."""
    command = tiny_overrides(run, coco_root, f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", *typed)
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return train(compose("train", overrides=command), overrides=command)


def test_a_run_resumed_in_its_folder_keeps_its_own_options(tmp_path, coco_root):
    """The resume command needs only ckpt_path (and the folder): the run's texture and options come from its
    config.yaml, not from today's defaults; options typed on the command change it; a group that would change the
    run is one line."""
    run = tmp_path / "run"
    train(tiny_cfg(run, coco_root, "texture=starry", "loss.tv_weight=0.5", "trainer.max_steps=4"))

    with pytest.raises(
        TexnetError, match=r"^texture=pebbles would change the run .*texture.image \(the run has 'starry'\)"
    ):
        resume_run(run, coco_root, "texture=pebbles", "trainer.max_steps=6")
    # finished (last.ckpt was saved before its step's validation wrote best.ckpt): no step to train, its best kept
    finished = resume_run(run, coco_root, "trainer.max_steps=4")
    assert finished["global_step"] == 4 and finished["best"] == str(run / "checkpoints" / "best.ckpt")
    resumed = resume_run(run, coco_root, "trainer.max_steps=6")  # no texture=starry, no loss.tv_weight: the run's own
    assert resumed["global_step"] == 6
    hp = torch.load(resumed["last"], map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hp["texture"]["name"] == "starry" and hp["loss"]["tv_weight"] == 0.5
    saved = (run / "config.yaml").read_text()
    assert "max_steps: 6" in saved and "tv_weight: 0.5" in saved


def test_an_experiment_typed_again_on_resume_is_blamed_only_for_the_keys_it_sets(tmp_path, coco_root):
    """The run's own start command plus ckpt_path resumes it, experiment= included: an option the run has that the
    experiment does not set (loss.tv_weight) is not the experiment's doing; an experiment that would change the run
    is named with its own keys only."""
    run = tmp_path / "run"
    train(tiny_cfg(run, coco_root, "experiment=quality", "loss.tv_weight=0.5", "trainer.max_steps=4"))

    with pytest.raises(
        TexnetError, match=r"^experiment=texture would change the run .*data\.schedule \(the run has "
    ) as err:
        resume_run(run, coco_root, "experiment=texture", "trainer.max_steps=6")
    assert "tv_weight" not in str(err.value)
    resumed = resume_run(run, coco_root, "experiment=quality", "trainer.max_steps=6")
    hp = torch.load(resumed["last"], map_location="cpu", weights_only=False)["hyper_parameters"]
    assert resumed["global_step"] == 6 and hp["loss"]["tv_weight"] == 0.5


def test_train_py_resumes_a_run_from_its_checkpoint_alone(tmp_path, coco_root):
    """`python train.py ckpt_path=<run>/checkpoints/last.ckpt` goes on in that run's folder with its options."""
    import subprocess
    import sys

    run = tmp_path / "run"
    train(tiny_cfg(run, coco_root, "texture=starry", "trainer.max_steps=4"))
    (run / ".hydra").mkdir()
    (run / ".hydra" / "overrides.yaml").write_text("- texture=starry\n")  # as Hydra wrote it at the run's start
    cmd = [sys.executable, "train.py", f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "trainer.max_steps=6"]
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=180, env={**os.environ, "TEXNET_OFFLINE": "1"}
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"done: {run} at step 6" in done.stdout + done.stderr
    hp = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)["hyper_parameters"]
    assert hp["texture"]["name"] == "starry" and hp["model"]["scales"] == 3
    assert "trainer.max_steps=6" in (run / ".hydra" / "overrides.yaml").read_text()  # Hydra's files there too
    assert (run / ".hydra" / "start_1" / "overrides.yaml").read_text() == "- texture=starry\n"  # the first start's kept


def test_how_often_a_run_validates_does_not_change_what_it_trains(tmp_path, coco_root):
    weights = []
    for every in (2, 6):
        run = tmp_path / f"every_{every}"
        train(
            tiny_cfg(
                run, coco_root, "trainer.max_steps=6", f"trainer.val_check_interval={every}", f"sample_every={every}"
            )
        )
        weights.append(
            torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
        )
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


class InterruptAt(pl.Callback):
    """Presses Ctrl-C once `step` training steps are done."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer: pl.Trainer, *args) -> None:
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "stop, overrides",
    [
        (3, []),  # mid-epoch (two batches per epoch)
        (4, []),  # at an epoch's end
        # past a stage change (which ends an epoch early), photos read by a worker process
        (6, ["data.schedule=[{step:0},{step:4,image_size:48,batch_size:1}]", "data.num_workers=1"]),
    ],
)
def test_a_stopped_and_resumed_run_trains_as_the_uninterrupted_one(tmp_path, coco_root, stop, overrides):
    """Resumed with ckpt_path=, a run stopped at step `stop` ends with the uninterrupted run's weights, bit for
    bit: the same crops (the loader resumes mid-epoch), the same noise (the RNG is in the checkpoint)."""
    common = ["trainer.max_steps=9", "trainer.val_check_interval=3", *overrides]
    whole = train(tiny_cfg(tmp_path / "whole", coco_root, *common))
    stopped = tmp_path / "stopped"
    stop_at = ["+callbacks.stop._target_=test_train.InterruptAt", f"+callbacks.stop.step={stop}"]
    with pytest.raises(SystemExit):
        train(tiny_cfg(stopped, coco_root, *common, *stop_at))
    resumed = train(
        tiny_cfg(tmp_path / "resumed", coco_root, *common, f"ckpt_path={stopped / 'checkpoints' / 'last.ckpt'}")
    )
    weights = [torch.load(r["last"], map_location="cpu", weights_only=True)["state_dict"] for r in (whole, resumed)]
    assert resumed["global_step"] == 9 and weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


class ShownProgress(pl.Callback):
    """Records, after every training step, the step and title the run's progress bar shows."""

    shown: list[tuple[str, str]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, *args) -> None:
        bar = trainer.progress_bar_callback
        title = bar._get_train_description(trainer.current_epoch) if isinstance(bar, RichProgressBar) else ""
        ShownProgress.shown.append((bar.get_metrics(trainer, module)["step"], title.strip()))


def test_the_progress_bar_counts_the_run_in_steps(tmp_path, coco_root):
    """The console shows how far the run is (step 5/8), and no negative epoch total (Lightning 2.6's rich bar wrote
    "Epoch 1/-2" for runs limited by steps)."""
    ShownProgress.shown = []
    progress = ["trainer.enable_progress_bar=true", "+callbacks.shown._target_=test_train.ShownProgress"]
    train(tiny_cfg(tmp_path / "run", coco_root, *progress))
    assert [step for step, _ in ShownProgress.shown] == [f"{n}/8" for n in range(1, 9)]
    if RICH:  # tqdm titles its bar "Epoch N" itself
        assert {title for _, title in ShownProgress.shown} == {"Epoch 0", "Epoch 1", "Epoch 2", "Epoch 3"}


def test_a_stopped_run_keeps_its_last_step_and_says_how_to_resume(tmp_path, coco_root, caplog):
    run = tmp_path / "run"
    cfg = tiny_cfg(
        run,
        coco_root,
        "trainer.max_steps=20",
        "+callbacks.stop._target_=test_train.InterruptAt",
        "+callbacks.stop.step=3",
    )
    with pytest.raises(SystemExit), caplog.at_level("WARNING", logger="texnet.train"):
        train(cfg)
    last = run / "checkpoints" / "last.ckpt"
    assert torch.load(last, map_location="cpu", weights_only=False)["global_step"] == 3  # not step 0 or a lost run
    assert "stopped at step 3: " in caplog.text and f"python train.py ckpt_path={last} (it goes on" in caplog.text


def test_init_from_fine_tunes_a_trained_generator(tmp_path, coco_root):
    """init_from: a new run (step 0, its own loss settings) that starts from a checkpoint's generator weights."""
    from texnet.module import TextureNetModule
    from texnet.training import init_generator

    first = train(
        tiny_cfg(
            tmp_path / "first",
            coco_root,
            "optim.optimizer.lr=0.05",
            "trainer.max_steps=16",
            "trainer.val_check_interval=16",
        )
    )
    tuned = train(
        tiny_cfg(
            tmp_path / "tuned",
            coco_root,
            "loss.style_scale=2",
            "trainer.max_steps=4",
            "trainer.val_check_interval=4",
            f"init_from={first['last']}",
        )
    )
    fresh = train(
        tiny_cfg(
            tmp_path / "fresh", coco_root, "loss.style_scale=2", "trainer.max_steps=4", "trainer.val_check_interval=4"
        )
    )
    ckpts = {
        name: torch.load(run["last"], map_location="cpu", weights_only=False)
        for name, run in (("first", first), ("tuned", tuned), ("fresh", fresh))
    }
    assert tuned["global_step"] == 4  # a new run, not a resume at step 16
    assert ckpts["tuned"]["hyper_parameters"]["loss"]["style_scale"] == 2
    # it started from the trained weights: 4 steps from them end nearer to them than 4 steps from a fresh start do
    # (a weight distance, not the validation loss, which 16 tiny steps lower on some CPUs and not on others)
    weights = {name: ckpt["state_dict"] for name, ckpt in ckpts.items()}

    def distance_to_first(run: str) -> float:
        return sum(
            (weights[run][k].float() - v.float()).pow(2).sum().item()
            for k, v in weights["first"].items()
            if k.startswith("generator.") and v.is_floating_point()
        )

    assert distance_to_first("tuned") < distance_to_first("fresh") / 4
    # resumed with its own command plus ckpt_path (experiment=finetune sets init_from): it goes on from step 4
    resumed = train(
        tiny_cfg(
            tmp_path / "tuned",
            coco_root,
            "loss.style_scale=2",
            "trainer.max_steps=6",
            "trainer.val_check_interval=2",
            f"init_from={first['last']}",
            f"ckpt_path={tuned['last']}",
        )
    )
    assert resumed["global_step"] == 6

    module = TextureNetModule(
        model={"arch": "pyramid", "scales": 3, "channels": 4},
        loss={},
        optim={},
        texture={"image": str(texture_path("mosaic"))},
    )
    cfg = tiny_cfg(tmp_path / "x", coco_root, f"init_from={first['last']}")
    with pytest.raises(TexnetError, match=r"init_from=.*layers differ from this run's model \(pyramid\)"):
        init_generator(module, cfg)
    # a fine-tune resumed with its own command plus ckpt_path: the checkpoint's weights, not init_from's
    both = tiny_cfg(tmp_path / "y", coco_root, f"init_from={first['last']}", f"ckpt_path={first['last']}")
    before = {k: v.clone() for k, v in module.generator.state_dict().items()}
    init_generator(module, both)
    assert all(torch.equal(before[k], v) for k, v in module.generator.state_dict().items())


def test_init_from_takes_the_checkpoints_layers(tmp_path, coco_root, caplog):
    """A fine-tune's network has init_from's layers whatever the run's model options say (a model trained with
    other options fine-tunes with the plain command), the run's own options for the rest; config.yaml, which a
    resume reads, says which. A checkpoint of the other mode is a one-line error."""
    from omegaconf import OmegaConf

    from texnet.training import build

    steps = ("trainer.max_steps=2", "trainer.val_check_interval=2")
    first = train(tiny_cfg(tmp_path / "first", coco_root, "model.fine_channels=6", "model.fine_kernels=[3,1]", *steps))
    with caplog.at_level("INFO", logger="texnet.train"):
        tuned = train(
            tiny_cfg(
                tmp_path / "tuned",
                coco_root,
                "model.fine_channels=5",
                "model.fine_kernels=[1]",
                "model.noise_factor=0.1",
                f"init_from={first['last']}",
                *steps,
            )
        )
    model = torch.load(tuned["last"], map_location="cpu", weights_only=True)["hyper_parameters"]["model"]
    assert (model["fine_channels"], model["fine_kernels"], model["noise_factor"]) == (6, [3, 1], 0.1)
    saved = OmegaConf.load(tmp_path / "tuned" / "config.yaml").model
    assert (saved.fine_channels, list(saved.fine_kernels), saved.noise_factor) == (6, [3, 1], 0.1)
    assert "model.fine_channels=6 (not 5), model.fine_kernels=[3, 1] (not [1])" in caplog.text
    cfg = tiny_cfg(tmp_path / "texture", coco_root, "model.mode=texture", f"init_from={first['last']}")
    with pytest.raises(
        TexnetError, match=r"^init_from=\S+ is a stylize-mode network and this run trains texture mode: start from a "
    ):
        build(cfg, tmp_path / "texture")


def test_fine_tune_model_keeps_the_run_options_its_architecture_has():
    """A residual network's layer options into a pyramid run's config: the residual network's layers, the run's
    noise factor, and none of the pyramid's own options (the residual class takes no scales or train_precision)."""
    from texnet.checkpoint import fine_tune_model

    ckpt = {"hyper_parameters": {"model": {"arch": "residual", "channels": 8, "residual_blocks": 1}}}
    run = {
        "arch": "pyramid",
        "mode": "stylize",
        "scales": 3,
        "channels": 8,
        "noise_factor": 0.2,
        "train_precision": "auto",
    }
    model, differ = fine_tune_model(ckpt, "res.ckpt", run)
    assert model == {
        "arch": "residual",
        "mode": "stylize",
        "channels": 8,
        "residual_blocks": 1,
        "noise_channels": 3,
        "norm": "instance",
        "noise_factor": 0.2,
    }
    assert differ == {"arch": ("pyramid", "residual")}


def test_texture_mode_trains(tmp_path, coco_root):
    result = train(
        tiny_cfg(tmp_path, coco_root, "model.mode=texture", "trainer.max_steps=2", "trainer.val_check_interval=2")
    )
    assert result["global_step"] == 2 and result["metrics"]["val/content"] == 0.0


@pytest.mark.parametrize(
    "model", [["model=residual", "model.residual_blocks=2"], ["model=encoder", "model.encoder_weights=random"]]
)
def test_other_generators_train_and_their_checkpoints_stylize(tmp_path, coco_root, model):
    """model=residual (Johnson et al.'s network) and model=encoder (a frozen VGG and a decoder): the loss falls, and
    the checkpoint alone rebuilds the network for inference."""
    from texnet.generator import ARCHITECTURES
    from texnet.inference import load

    cfg = tiny_cfg(
        tmp_path,
        coco_root,
        *model,
        "model.channels=8",
        "optim.optimizer.lr=0.01",
        "trainer.max_steps=16",
        "trainer.val_check_interval=8",
    )
    result = train(cfg)
    val = val_totals(tmp_path)
    assert len(val) == 2 and val[-1] < val[0], val
    fast, slow = load(result["last"]), load(result["last"], backend="eager")
    assert isinstance(slow.generator, ARCHITECTURES[cfg.model.arch]) and fast.backend == "onnxruntime"
    photo = torch.rand(1, 3, 45, 70)
    torch.testing.assert_close(fast.stylize(photo, seed=3), slow.stylize(photo, seed=3), atol=1e-4, rtol=0)
    assert fast.stylize(photo, seed=3).shape == (1, 3, 45, 70)


def test_unknown_texture_lists_available_ones():
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        with pytest.raises(MissingConfigException) as err:
            compose("train", overrides=["texture=nope"])
    assert "mosaic" in str(err.value) and "starry" in str(err.value)


def test_missing_texture_file_is_one_line_error(tmp_path, coco_root):
    cfg = tiny_cfg(tmp_path, coco_root, f"texture.image={tmp_path / 'missing.jpg'}")
    with pytest.raises(TexnetError, match="missing.jpg") as err:
        train(cfg)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "callbacks.lr_monitor._target_=pytorch_lightning.callbacks.LearningRateMonitr",
            "callbacks.lr_monitor cannot be built: Error locating target 'pytorch_lightning.callbacks.LearningRateMonitr'",
        ),
        ("callbacks.lr_monitor.logging_interval=minute", "callbacks.lr_monitor cannot be built: .*logging_interval"),
        ("++logger.csv._target_=pytorch_lightning.loggers.CSVLoggr", "logger.csv cannot be built: Error locating"),
        ("trainer.precision=bogus", "trainer cannot be built: .*Precision 'bogus' is invalid"),
        ("+trainer.max_step=5", "trainer cannot be built: .*unexpected keyword argument 'max_step'"),
    ],
)
def test_a_trainer_callback_or_logger_that_cannot_be_built_is_one_line(tmp_path, coco_root, override, message):
    """A mistyped _target_ or an option Lightning rejects names its config node, and leaves no run folder behind."""
    run = tmp_path / "run"
    with pytest.raises(TexnetError, match=f"^{message}") as err:
        train(tiny_cfg(run, coco_root, override))
    assert "\n" not in str(err.value)
    assert not run.exists()


def test_any_image_file_is_a_texture(tmp_path, coco_root, photo_path):
    result = train(tiny_cfg(tmp_path, coco_root, f"texture.image={photo_path}", "trainer.max_steps=1"))
    ckpt = torch.load(result["last"], map_location="cpu", weights_only=False)
    assert ckpt["hyper_parameters"]["texture"]["name"] == "astronaut"


def test_every_config_group_composes():
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        for override in [
            "experiment=paper",
            "trainer=ddp",
            "model=residual",
            "trainer=gpu",
            "logger=visdom",
            "data=folder",
            "texture=starry",
            "texture=pebbles",
            "loss.style_scale=10",
        ]:
            cfg = compose("train", overrides=[override])
            assert cfg.model.arch == ("residual" if override == "model=residual" else "pyramid")
        paper = compose("train", overrides=["experiment=paper"])
        assert paper.optim.optimizer.lr == 0.1 and paper.data.batch_size == 16 and paper.trainer.max_steps == 3000
        assert set(compose("train", overrides=["logger=visdom"]).logger) == {"csv", "visdom"}
        texture = compose("train", overrides=["experiment=texture"])
        assert (texture.model.mode, texture.model.padding, texture.model.scales, texture.texture.size) == (
            "texture",
            "circular",
            7,
            512,
        )
        assert [dict(stage) for stage in texture.data.schedule] == [{"step": 0, "image_size": 256, "batch_size": 1}]
        multi = compose("train", overrides=["experiment=multi_texture"])
        assert list(multi.texture.images) == ["mosaic", "starry", "pebbles"] and multi.trainer.max_steps == 2000
        assert multi.texture.balance and not compose("train").texture.balance  # the recipe's, not train.yaml's default
        assert [dict(stage) for stage in multi.data.schedule][1] == {"step": 1400, "image_size": 256, "batch_size": 1}
        # twice the steps, the same ten validations and sample grids per run as the default's
        assert (multi.trainer.val_check_interval, multi.sample_every) == (200, 200)
        assert (compose("train").trainer.val_check_interval, compose("train").sample_every) == (100, 100)


def test_ddp_two_cpu_processes(tmp_path):
    """`trainer=ddp` on 2 CPU processes (gloo) through the real command line."""
    import subprocess
    import sys

    cmd = [
        sys.executable,
        "train.py",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_steps=3",
        "trainer.val_check_interval=3",
        "trainer.enable_progress_bar=false",
        "data.image_size=64",
        "data.val_size=64",
        "data.num_val=2",
        "data.batch_size=2",
        "data.builtin_length=16",
        "model.scales=3",
        f"run_dir={tmp_path}",
        f"hydra.run.dir={tmp_path}",
    ]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        "distributed_backend=gloo" in done.stderr + done.stdout
        and "All distributed processes registered" in done.stderr + done.stdout
    )
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == 3


def test_run_dir_apart_from_hydra_folder_is_refused(tmp_path):
    """`run_dir=` alone would split a run from Hydra's log and .hydra/: a one-line error names hydra.run.dir instead."""
    import subprocess
    import sys

    cmd = [sys.executable, "train.py", f"run_dir={tmp_path / 'mine'}", f"hydra.run.dir={tmp_path / 'hydra'}"]
    done = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=120, env={**os.environ, "TEXNET_OFFLINE": "1"}
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: run_dir={tmp_path / 'mine'} is not Hydra's run folder {tmp_path / 'hydra'}: "
        f"choose the folder with hydra.run.dir={tmp_path / 'mine'} (hydra.sweep.dir= for -m sweeps) "
        "and leave run_dir alone"
    )
    assert not (tmp_path / "mine").exists()
