"""Several textures in one network (conditional instance norm): picking, blending, adding a texture, export, errors."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import ROOT
from test_stylize import stylize_cfg, train_checkpoint, write_photo

from stylize import stylize
from texnet.checkpoint import checkpoint_generator, read_checkpoint
from texnet.conditional_norm import (
    ConditionalInstanceNorm,
    add_texture,
    make_conditional,
    mix_weights,
    texture_parameters,
)
from texnet.errors import TexnetError
from texnet.export import export_onnx, export_torchscript
from texnet.generator import build_generator
from texnet.image import load_image
from texnet.inference import Stylizer, load
from texnet.losses import PerceptualLoss
from texnet.module import TextureNetModule
from texnet.textures import load_texture, texture_path
from texnet.vgg import VGGFeatures

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread

NAMES = ["mosaic", "starry", "pebbles"]


def perturbed(generator: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every texture's scales and shifts moved apart, as training would (fresh ones are all 1 and 0)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in generator.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=gen))
    return generator.eval()


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> Path:
    """A 3-texture network trained 2 steps through train.py (random VGG weights)."""
    return train_checkpoint(tmp_path_factory.mktemp("multi"), "stylize", f"texture.images=[{','.join(NAMES)}]")


@pytest.mark.parametrize("arch", ["pyramid", "residual"])
def test_textures_differ_and_a_pure_mix_is_that_texture(arch):
    options = {"scales": 3} if arch == "pyramid" else {"channels": 4, "residual_blocks": 1}
    g = perturbed(build_generator(arch, textures=NAMES, **options))
    photo = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        outs = [g(photo, rng=torch.Generator().manual_seed(1), texture=i) for i in range(3)]
        pure = g(photo, rng=torch.Generator().manual_seed(1), texture=mix_weights(NAMES, {"starry": 1.0}))
        blend = g(
            photo, rng=torch.Generator().manual_seed(1), texture=mix_weights(NAMES, {"mosaic": 0.5, "starry": 0.5})
        )
    assert (outs[0] - outs[1]).abs().mean() > 1e-3 and (outs[1] - outs[2]).abs().mean() > 1e-3
    assert torch.equal(pure, outs[1])
    assert not torch.equal(blend, outs[0]) and not torch.equal(blend, outs[1])
    norms = [m for m in g.modules() if isinstance(m, ConditionalInstanceNorm)]
    assert norms and all(
        len(m.weights) == 3 and m.texture == 0 for m in norms
    )  # the selection is restored after a call


def test_texture_mode_generates_each_texture_on_both_backends():
    g = perturbed(build_generator(mode="texture", scales=3, textures=NAMES))
    fast = Stylizer(g, [torch.rand(1, 3, 16, 16)] * 3, "+".join(NAMES), device="cpu")
    slow = Stylizer(copy.deepcopy(g), [torch.rand(1, 3, 16, 16)] * 3, "+".join(NAMES), device="cpu", backend="eager")
    assert fast.backend == "onnxruntime"
    images = {name: np.asarray(fast.generate(size=40, seed=0, mix=name)[0], dtype=float) for name in NAMES[:2]}
    assert np.abs(images["mosaic"] - images["starry"]).mean() > 1
    eager = np.asarray(slow.generate(size=40, seed=0, mix="starry")[0], dtype=float)
    assert np.abs(eager - images["starry"]).max() <= 1  # the same noise and mix: equal to a grey level of rounding


def test_single_texture_networks_are_unchanged():
    g = build_generator(scales=3)
    assert g.textures == () and not any(isinstance(m, ConditionalInstanceNorm) for m in g.modules())
    assert "branches.0.1.weight" in g.state_dict()
    with pytest.raises(TexnetError, match="model.norm=batch has no per-texture parameters"):
        build_generator(scales=3, norm="batch", textures=NAMES)


def test_adding_a_texture_trains_only_its_parameters_and_keeps_the_others_bit_exact():
    g = perturbed(build_generator(scales=3, textures=NAMES[:2]))
    photo = torch.rand(1, 3, 40, 52)
    with torch.no_grad():
        before = [g(photo, rng=torch.Generator().manual_seed(2), texture=i) for i in range(2)]
    add_texture(g, "new")
    params = texture_parameters(g, 2)
    optimizer = torch.optim.Adam(params, lr=0.1)
    for _ in range(3):
        optimizer.zero_grad()
        g(photo, texture=2).mean().backward()
        optimizer.step()
    with torch.no_grad():
        after = [g(photo, rng=torch.Generator().manual_seed(2), texture=i) for i in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(before, after))
    assert g.textures == [*NAMES[:2], "new"] and not torch.equal(after[2], after[0])


@pytest.mark.parametrize("arch", ["pyramid", "residual"])
def test_each_sample_of_a_batch_takes_its_own_texture(arch):
    """texture.draw=sample: each sample's output is what its texture gives the whole batch; a texture no sample drew
    gets no gradient, and an index out of range is the one-line error."""
    options = {"scales": 3} if arch == "pyramid" else {"channels": 4, "residual_blocks": 1}
    g = perturbed(build_generator(arch, textures=NAMES, **options))
    photos, drawn = torch.rand(4, 3, 40, 52), torch.tensor([2, 0, 2, 0])
    with torch.no_grad():
        each = g(photos, rng=torch.Generator().manual_seed(3), texture=drawn)
        whole = [g(photos, rng=torch.Generator().manual_seed(3), texture=i) for i in range(3)]
    expected = torch.stack([whole[t][k] for k, t in enumerate(drawn.tolist())])
    torch.testing.assert_close(each, expected, atol=1e-5, rtol=0)  # affine after the norm vs fused: rounding only
    g.train()
    g(photos, texture=drawn).mean().backward()
    norms = [m for m in g.modules() if isinstance(m, ConditionalInstanceNorm)]
    assert all(
        m.weights[1].grad is None and m.weights[0].grad is not None and m.biases[2].grad is not None for m in norms
    )
    with pytest.raises(TexnetError, match="^texture index 3 is out of range: this network holds 3 textures$"):
        g(photos, texture=torch.tensor([0, 3, 1, 1]))


def test_the_loss_compares_each_sample_with_its_own_texture(mosaic_path):
    vgg = VGGFeatures(["relu1_1", "relu2_1", "relu2_2"], arch="vgg16", weights="random")
    textures = [load_image(mosaic_path, max_size=48), torch.rand(1, 3, 40, 40), torch.rand(1, 3, 32, 48)]
    loss = PerceptualLoss(
        vgg, textures, ["relu2_2"], [1.0], ["relu1_1", "relu2_1"], [1.0, 1.0], style_normalize="target"
    )
    images, photos, drawn = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32), torch.tensor([1, 2, 1])
    terms = loss(images, loss.content_targets(photos), texture=drawn)
    one_by_one = [
        loss(images[k : k + 1], loss.content_targets(photos[k : k + 1]), texture=int(t)) for k, t in enumerate(drawn)
    ]
    for name in ("style", "style/relu1_1", "content", "total"):
        assert terms[name].item() == pytest.approx(torch.stack([t[name] for t in one_by_one]).mean().item(), rel=1e-5)


def test_training_draws_every_texture_equally_per_sample_or_per_step():
    def module(draw: str) -> TextureNetModule:
        m = TextureNetModule(
            model={"arch": "pyramid", "scales": 2, "channels": 4, "textures": NAMES},
            loss={"vgg": "vgg16", "weights": "random"},
            optim={},
            texture={"names": NAMES, "images": [str(texture_path(n)) for n in NAMES], "size": 32, "draw": draw},
        )
        m.setup("fit")
        return m

    per_sample, per_step = module("sample"), module("step")
    draws = [per_sample.drawn_textures(step, 4) for step in range(6)]
    assert all(d.shape == (4,) for d in draws if isinstance(d, torch.Tensor))
    counts = torch.bincount(torch.cat([torch.as_tensor(d).reshape(-1) for d in draws]), minlength=3)
    assert counts.tolist() == [8, 8, 8]
    assert [str(per_sample.drawn_textures(s, 4)) for s in range(6)] == [str(d) for d in draws]  # the same on resume
    per_sample.model_step(torch.rand(4, 3, 32, 32), texture=draws[0])["total"].backward()  # the training step's loss
    drawn = set(torch.as_tensor(draws[0]).tolist())
    assert {i for i in range(3) if texture_parameters(per_sample.generator, i)[0].grad is not None} == drawn
    steps = [per_step.drawn_textures(step, 4) for step in range(6)]
    assert all(isinstance(d, int) for d in steps) and sorted(steps) == [0, 0, 1, 1, 2, 2]
    with pytest.raises(TexnetError, match="^texture.draw=each is unknown"):
        module("each")


def test_balance_weighs_each_texture_by_its_running_loss_and_resumes(tmp_path):
    """texture.balance: a texture whose running loss is twice another's gets half its weight; the running losses
    are in the state_dict, so a resumed run weighs its steps as the uninterrupted one."""
    texture = {"names": NAMES, "images": [str(texture_path(n)) for n in NAMES], "size": 32, "balance": True}
    m = TextureNetModule(
        model={"arch": "pyramid", "scales": 2, "channels": 4, "textures": NAMES},
        loss={"vgg": "vgg16", "weights": "random"},
        optim={},
        texture=texture,
    )
    assert m.balance_weight(0, torch.tensor(4.0)) == 1  # the only texture seen so far
    assert m.balance_weight(1, torch.tensor(2.0)) == pytest.approx(1.5)  # mean(4, 2) / 2
    assert m.balance_weight(0, torch.tensor(4.0)) == pytest.approx(0.75)  # mean(4, 2) / 4
    running = m.balance_weight(2, torch.tensor(6.0))  # mean(4, 2, 6) / 6
    assert running == pytest.approx(2 / 3)
    resumed = TextureNetModule(m.hparams.model, m.hparams.loss, {}, texture)
    resumed.load_state_dict(m.state_dict())
    assert resumed.balance_weight(1, torch.tensor(3.0)) == m.balance_weight(1, torch.tensor(3.0))
    assert m.texture_losses[1] == pytest.approx(0.9 * 2 + 0.1 * 3)  # a running mean over the texture's draws
    with pytest.raises(TexnetError, match="^texture.balance=true weighs each step .*: use texture.draw=step$"):
        TextureNetModule(m.hparams.model, m.hparams.loss, {}, {**texture, "draw": "sample"})
    trained = train_checkpoint(tmp_path, "stylize", f"texture.images=[{','.join(NAMES)}]", "texture.balance=true",
                               "trainer.max_steps=3")  # fmt: skip
    assert (torch.load(trained, weights_only=True)["state_dict"]["texture_losses"] > 0).all()  # each drawn once
    assert load(trained, device="cpu").textures == NAMES


def test_a_single_texture_network_becomes_texture_0_bit_exact():
    """The shipped mosaic model, made conditional to take a texture more, still gives the same image for mosaic."""
    g = checkpoint_generator(read_checkpoint("mosaic"), "mosaic").eval()
    photo = torch.rand(1, 3, 70, 90)
    with torch.no_grad():
        ref = g(photo, rng=torch.Generator().manual_seed(3))
        cond = make_conditional(copy.deepcopy(g), ["mosaic"])
        add_texture(cond, "other")
        out = cond(photo, rng=torch.Generator().manual_seed(3), texture=mix_weights(cond.textures, "mosaic"))
    assert torch.equal(ref, out)


@pytest.mark.parametrize(
    "mix, message",
    [
        (
            {"mosaic": 0.5, "nope": 0.5},
            r"^texture_mix: 'nope' is not a texture of this network: use mosaic, starry, pebbles$",
        ),
        ({"mosaic": 1.2, "starry": -0.2}, r"^texture_mix: the weight of 'starry' is -0.2; mix weights must be >= 0"),
        (
            {"mosaic": 0.5, "starry": 0.2},
            r"^texture_mix: the weights sum to 0.7; they must sum to 1 \(textures: mosaic, starry, pebbles\)$",
        ),
        ("nope", r"^texture_mix: 'nope' is not a texture"),
        (["mosaic"], r"^texture_mix=\['mosaic'\] is not a texture name nor a mix"),
    ],
)
def test_a_bad_mix_is_a_one_line_error(mix, message):
    with pytest.raises(TexnetError, match=message) as err:
        mix_weights(NAMES, mix, "texture_mix")
    assert "\n" not in str(err.value)


def test_train_py_writes_a_checkpoint_that_texnet_load_blends(multi, tmp_path):
    ckpt = torch.load(multi, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["model"]["textures"] == NAMES and ckpt["texnet"]["texture_name"] == "+".join(NAMES)
    assert [f"texture_images.{i}" in ckpt["state_dict"] for i in range(3)] == [True] * 3
    assert len(list((multi.parent.parent / "samples").glob("step_*.png"))) == 1
    stylizer = load(multi, device="cpu")
    assert stylizer.textures == NAMES and stylizer.backend == "onnxruntime"
    photo = torch.rand(1, 3, 40, 52)
    first = stylizer.stylize(photo, seed=1)
    assert torch.equal(first, stylizer.stylize(photo, seed=1, mix="mosaic"))
    blend = stylizer.stylize(photo, seed=1, mix={"mosaic": 0.7, "starry": 0.3})
    eager = load(multi, device="cpu", backend="eager")
    torch.testing.assert_close(
        blend, eager.stylize(photo, seed=1, mix={"mosaic": 0.7, "starry": 0.3}), atol=1e-4, rtol=0
    )
    whole = eager.stylize(photo, noise_factor=0, mix={"mosaic": 0.7, "starry": 0.3})
    tiled = eager.stylize(
        photo, noise_factor=0, mix={"mosaic": 0.7, "starry": 0.3}, tile_size=8
    )  # texnet.tiling, same mix
    torch.testing.assert_close(tiled, whole, atol=1e-4, rtol=0)
    assert (whole - eager.stylize(photo, noise_factor=0)).abs().mean() > 1e-4
    with pytest.raises(
        TexnetError, match=r"^mix: 'nope' is not a texture of this network: use mosaic, starry, pebbles$"
    ):
        stylizer.stylize(photo, mix={"nope": 1.0})


def test_stylize_py_takes_a_texture_mix(multi, tmp_path):
    photo = write_photo(tmp_path / "in" / "photo.png", 48, 40)
    [mixed] = stylize(
        stylize_cfg(
            f"checkpoint={multi}",
            f"input={photo}",
            f"output={tmp_path / 'mix.png'}",
            "seed=0",
            "texture_mix={mosaic: 0.7, starry: 0.3}",
        )
    )
    [starry] = stylize(
        stylize_cfg(
            f"checkpoint={multi}", f"input={photo}", f"output={tmp_path / 'starry.png'}", "seed=0", "texture_mix=starry"
        )
    )
    assert not np.array_equal(np.asarray(Image_open(mixed)), np.asarray(Image_open(starry)))
    with pytest.raises(TexnetError, match=r"^texture_mix: the weights sum to 0.5;"):
        stylize(
            stylize_cfg(
                f"checkpoint={multi}", f"input={photo}", f"output={tmp_path / 'x.png'}", "texture_mix={mosaic: 0.5}"
            )
        )


def test_stylize_py_command_line_texture_picks_one(multi, tmp_path):
    """`texture=pebbles` on the command line is texture_mix=pebbles for a trained network; an unknown one is one line."""
    photo = write_photo(tmp_path / "photo.png", 48, 40)
    run = [
        sys.executable,
        str(ROOT / "stylize.py"),
        f"checkpoint={multi}",
        f"input={photo}",
        "seed=0",
        "progress=false",
    ]
    env = {
        "PYTHONPATH": str(ROOT),
        "TEXNET_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "PATH": "/usr/bin:/bin",
        "TEXNET_CACHE": os.environ["TEXNET_CACHE"],  # the tests' own (conftest), not the user's
    }
    ok = subprocess.run(
        [*run, "texture=pebbles", f"output={tmp_path / 'p.png'}"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert ok.returncode == 0, ok.stderr
    single = subprocess.run(
        [*run, "checkpoint=mosaic", "texture=starry", f"output={tmp_path / 's.png'}"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert (
        single.returncode == 1
        and single.stderr.strip()
        == "error: texture=starry is not a texture of this network: use mosaic; the shipped network for starry is "
        "checkpoint=starry"
    )


def Image_open(path: Path):
    from PIL import Image

    return Image.open(path).convert("RGB")


def test_export_takes_the_mix_as_an_input(multi, tmp_path):
    eager = load(multi, device="cpu", backend="eager").generator
    session = ort.InferenceSession(
        str(export_onnx(multi, tmp_path / "m.onnx", noise_inputs=True)), providers=["CPUExecutionProvider"]
    )
    assert [i.name for i in session.get_inputs()][-1] == "mix"
    scripted = torch.jit.load(str(export_torchscript(multi, tmp_path / "m.pt", noise_inputs=True)))
    photo = torch.rand(1, 3, 37, 45)
    noise = eager.draw_noise(1, 37, 45, rng=torch.Generator().manual_seed(4))
    for mix in ({"starry": 1.0}, {"mosaic": 0.2, "starry": 0.3, "pebbles": 0.5}):
        weights = mix_weights(NAMES, mix)
        with torch.no_grad():
            ref = eager(photo, noise=noise, texture=weights)
            traced = scripted(photo, *noise, weights)
        feed = {
            "content": photo.numpy(),
            **{f"noise_{i}": n.numpy() for i, n in enumerate(noise)},
            "mix": weights.numpy(),
        }
        np.testing.assert_allclose(session.run(None, feed)[0], ref.numpy(), atol=1e-4)
        torch.testing.assert_close(traced, ref, atol=1e-5, rtol=0)
    plain = ort.InferenceSession(str(export_onnx(multi, tmp_path / "plain.onnx")), providers=["CPUExecutionProvider"])
    assert [i.name for i in plain.get_inputs()] == ["content", "noise_factor", "mix"]
    weights = mix_weights(NAMES, {"mosaic": 0.5, "pebbles": 0.5})
    out = plain.run(None, {"content": photo.numpy(), "noise_factor": np.zeros(1, np.float32), "mix": weights.numpy()})[
        0
    ]
    with torch.no_grad():
        np.testing.assert_allclose(out, eager(photo, noise_factor=0.0, texture=weights).numpy(), atol=1e-4)


def test_texture_add_through_train_py_keeps_the_old_textures(multi, tmp_path, photo_path):
    added = train_checkpoint(tmp_path / "add", "stylize", f"init_from={multi}", f"texture.add={photo_path}")
    old, new = load(multi, device="cpu", backend="eager"), load(added, device="cpu", backend="eager")
    assert new.textures == [*NAMES, "astronaut"]
    old_state, new_state = old.generator.state_dict(), new.generator.state_dict()
    assert all(torch.equal(v, new_state[k]) for k, v in old_state.items())  # shared weights and old textures untouched
    assert any(
        not torch.equal(new_state[k.removesuffix("0") + "3"], v)
        for k, v in old_state.items()
        if k.endswith("weights.0")
    )  # it trained
    photo = torch.rand(1, 3, 40, 52)
    for name in NAMES:
        assert torch.equal(old.stylize(photo, seed=5, mix=name), new.stylize(photo, seed=5, mix=name))
    assert all(torch.equal(a, b) for a, b in zip(old.texture_tensors, new.texture_tensors))
    assert torch.equal(new.texture_tensors[3], load_texture(photo_path, 64))


def test_init_from_several_textures_starts_one_texture_from_their_mean(multi):
    """init_from=<a network of several textures> into a one-texture run: the run's generator is the base with the
    mean of its textures' scales and shifts, so it draws what the base draws for the even mix."""
    from omegaconf import OmegaConf

    from texnet.module import TextureNetModule
    from texnet.training import init_generator

    base = load(multi, device="cpu", backend="eager").generator
    options = {k: v for k, v in read_checkpoint(multi)["hyper_parameters"]["model"].items() if k != "textures"}
    module = TextureNetModule(model=options, loss={}, optim={}, texture={"image": "mosaic"})
    init_generator(module, OmegaConf.create({"init_from": str(multi), "ckpt_path": None, "model": options}))
    assert not module.generator.textures
    photo, mean = torch.rand(1, 3, 40, 52), mix_weights(NAMES, {name: 1 / 3 for name in NAMES})
    with torch.no_grad():
        torch.testing.assert_close(
            module.generator.eval()(photo, rng=torch.Generator().manual_seed(2)),
            base(photo, rng=torch.Generator().manual_seed(2), texture=mean),
            atol=1e-6,
            rtol=0,
        )
        assert not torch.equal(
            module.generator(photo, rng=torch.Generator().manual_seed(2)),
            base(photo, rng=torch.Generator().manual_seed(2), texture=0),
        )


def test_texture_options_are_checked(multi, tmp_path, photo_path):
    with pytest.raises(
        TexnetError, match=r"^texture.add=.* adds a texture to a trained network: pass init_from=<its checkpoint>$"
    ):
        train_checkpoint(tmp_path / "a", "stylize", f"texture.add={photo_path}")
    with pytest.raises(TexnetError, match=r"^texture.balance=true balances the losses of several textures"):
        train_checkpoint(tmp_path / "c", "stylize", "texture.balance=true")
    with pytest.raises(TexnetError, match=r"^texture.balance=true balances the losses of several textures"):
        train_checkpoint(tmp_path / "d", "stylize", f"texture.add={photo_path}", "texture.balance=true")
    with pytest.raises(TexnetError, match="two textures are named 'mosaic'"):
        train_checkpoint(tmp_path / "b", "stylize", "texture.images=[mosaic,mosaic]")


def test_app_sliders_blend_the_textures(multi, tmp_path):
    """The web app's texture sliders: any non-negative weights, scaled to a convex mix, through the app's photo loop."""
    from texnet.app.stylise import slider_mix, stylize_uploads

    stylizer = load(multi, device="cpu")
    assert slider_mix(stylizer, None) is None
    assert slider_mix(stylizer, [0.6, 0.2, 0.0, 0.0]) == pytest.approx({"mosaic": 0.75, "starry": 0.25})
    with pytest.raises(TexnetError, match="move at least one texture slider above 0"):
        slider_mix(stylizer, [0.0] * 8)
    photo = write_photo(tmp_path / "photo.png", 48, 40)
    _, files, status = stylize_uploads(stylizer, [str(photo)], tmp_path, 0.05, 0, None, False, {"starry": 1.0})
    _, first, _ = stylize_uploads(stylizer, [str(photo)], tmp_path, 0.05, 0, None, False, None)
    assert "100% starry" in status
    assert not np.array_equal(np.asarray(Image_open(files[0])), np.asarray(Image_open(first[0])))


def test_blend_picture_runs_from_one_texture_to_the_other(multi):
    """scripts/blend_picture.py (the README's picture): the ends of the strip are the two textures alone."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("blend_picture", ROOT / "scripts" / "blend_picture.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    stylizer, photo = load(multi, device="cpu"), torch.rand(3, 40, 52)
    strip = script.blend_strip(stylizer, photo, "mosaic", "pebbles", steps=3)
    assert strip.shape == (3, 40, 3 * 52)
    assert torch.equal(strip[..., :52], stylizer.stylize(photo, seed=0, mix="mosaic"))
    assert torch.equal(strip[..., -52:], stylizer.stylize(photo, seed=0, mix="pebbles"))
