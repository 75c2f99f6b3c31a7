"""TextureNetModule: the optimiser and schedule come from the optim config group (Hydra partials)."""

from __future__ import annotations

import pytest
import torch
from conftest import CONFIG_DIR
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from texnet.errors import TexnetError
from texnet.module import TextureNetModule
from texnet.textures import texture_path

TINY_MODEL = {"arch": "pyramid", "scales": 2, "channels": 4}


def module_with(*overrides: str) -> TextureNetModule:
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    return TextureNetModule(
        model=TINY_MODEL,
        loss={},
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        texture={"image": str(texture_path("mosaic")), "size": 32},
    )


def test_default_optim_is_adam_with_step_decay():
    module = module_with()
    configured = module.configure_optimizers()
    optimizer, scheduler = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    assert type(optimizer) is torch.optim.Adam and optimizer.defaults["lr"] == 0.01
    assert type(scheduler) is torch.optim.lr_scheduler.StepLR and (scheduler.step_size, scheduler.gamma) == (400, 0.8)
    assert configured["lr_scheduler"]["interval"] == "step"
    assert optimizer.param_groups[0]["params"] == list(module.generator.parameters())


def test_optimizer_and_schedule_are_swapped_from_the_command_line():
    configured = module_with(
        "optim.optimizer._target_=torch.optim.SGD",
        "optim.optimizer.lr=0.5",
        "optim.scheduler.step_size=7",
        "experiment=paper",
    ).configure_optimizers()
    assert type(configured["optimizer"]) is torch.optim.SGD and configured["optimizer"].defaults["lr"] == 0.5
    assert (
        configured["lr_scheduler"]["scheduler"].step_size == 7 and configured["lr_scheduler"]["scheduler"].gamma == 0.8
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["optim.optimizer._target_=torch.optim.Nope"],
            r"^optim\.optimizer\._target_=torch\.optim\.Nope cannot be built: ",
        ),
        (["optim.scheduler._partial_=false"], r"^optim\.scheduler needs _partial_: true "),
        (["~optim.scheduler"], r"^optim\.scheduler is missing or has no _target_"),
    ],
)
def test_bad_optim_config_is_one_line_naming_the_option(overrides, message):
    with pytest.raises(TexnetError, match=message) as err:
        module_with(*overrides).configure_optimizers()
    assert "\n" not in str(err.value)


def test_train_precision_comes_from_config_and_reaches_the_generator():
    """conf/model/pyramid.yaml trains the join in bf16 where it is fast (auto, like loss.precision); an override
    (fp32) reaches the generator, auto resolves per device, and unknown values are rejected in the option's words."""
    from texnet.precision import bf16_is_fast, uses_bf16

    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        default = compose("train")
        cfg = compose("train", overrides=["model.train_precision=fp32"])
    assert default.model.train_precision == "auto" and default.loss.precision == "auto"
    module = TextureNetModule(
        model={**OmegaConf.to_container(cfg.model), "scales": 2, "channels": 4},
        loss={},
        optim=OmegaConf.to_container(cfg.optim, resolve=True),
        texture={"image": str(texture_path("mosaic")), "size": 32},
    )
    cpu = torch.device("cpu")
    assert module.generator.train_precision == "fp32" and not uses_bf16("fp32", cpu)
    assert uses_bf16(default.model.train_precision, cpu) == bf16_is_fast(cpu)
    with pytest.raises(TexnetError, match="model.train_precision='fp16' is unknown"):
        TextureNetModule(model={**TINY_MODEL, "train_precision": "fp16"}, loss={}, optim={}, texture={})


def test_bf16_join_gives_the_reference_loss_and_leaves_eval_exact(vgg, photo_path, mosaic_path):
    """model.train_precision=bf16 (what ``auto`` picks on a bf16 CPU/GPU) against fp32 on a fixed batch of real
    photos, same weights and noise: every loss term within 1%, generator gradients pointing the same way (cosine >
    0.99), the training output not bit-identical (the join did run in bf16); eval mode bit-identical (inference,
    validation and export never see the option)."""
    from texnet.generator import PyramidGenerator
    from texnet.image import load_image
    from texnet.losses import PerceptualLoss

    photo = torch.nn.functional.interpolate(
        load_image(photo_path, max_size=128), size=(96, 96), antialias=True, mode="bilinear"
    )
    batch = torch.cat([photo, photo.flip(-1)])
    loss = PerceptualLoss(vgg, load_image(mosaic_path, max_size=96), style_normalize="target", style_scale=3.0)
    targets = loss.content_targets(batch)
    torch.manual_seed(0)
    reference = PyramidGenerator(train_precision="fp32")
    fast = PyramidGenerator(train_precision="bf16")
    fast.load_state_dict(reference.state_dict())
    terms, grads, outputs = {}, {}, {}
    for name, generator in (("fp32", reference), ("bf16", fast)):
        outputs[name] = generator(batch, rng=torch.Generator().manual_seed(0))
        out = loss(outputs[name], targets)
        out["total"].backward()
        terms[name] = {k: v.item() for k, v in out.items()}
        grads[name] = torch.cat([p.grad.flatten() for p in generator.parameters()])
    for name, value in terms["fp32"].items():
        assert terms["bf16"][name] == pytest.approx(value, rel=0.01, abs=1e-6), name
    assert torch.nn.functional.cosine_similarity(grads["fp32"], grads["bf16"], dim=0) > 0.99
    assert not torch.equal(outputs["fp32"], outputs["bf16"])
    with torch.no_grad():
        evals = [g.eval()(batch, rng=torch.Generator().manual_seed(0)) for g in (reference, fast)]
    assert torch.equal(*evals)
