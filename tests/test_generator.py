import pytest
import torch

from texnet.errors import TexnetError
from texnet.generator import ResidualGenerator, TextureGenerator, build_generator


@pytest.mark.parametrize("scales", [1, 3, 6])
@pytest.mark.parametrize("size", [(64, 64), (50, 77), (33, 32)])
def test_output_shape_and_range_for_any_size(scales, size):
    g = TextureGenerator(scales=scales)
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
    assert isinstance(build_generator(mode="stylize", channels=8, noise_factor=0.05), TextureGenerator)  # pre-`arch` checkpoints
    assert isinstance(build_generator(arch="residual"), ResidualGenerator)
    with pytest.raises(TexnetError, match="model.arch='unet' is unknown: use one of pyramid, residual"):
        build_generator(arch="unet")


def test_reference_architecture_size():
    g = TextureGenerator()
    assert 100_000 < sum(p.numel() for p in g.parameters()) < 140_000  # paper: ~120K (we count ~118K)
    assert g.to_rgb.in_channels == 48  # 8 channels x 6 scales


@pytest.mark.parametrize("arch", ["pyramid", "residual"])
def test_noise_factor_changes_output_and_zero_is_deterministic(arch):
    torch.manual_seed(0)
    g = build_generator(arch=arch)
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(g(x, noise_factor=0.0), g(x, noise_factor=0.0))
    assert not torch.allclose(g(x, noise_factor=0.0), g(x, noise_factor=1.0))
    assert not torch.allclose(g(x, noise_factor=1.0), g(x, noise_factor=1.0))  # fresh noise each call
    seeded = [g(x, generator=torch.Generator().manual_seed(3)) for _ in range(2)]
    assert torch.equal(*seeded)


@pytest.mark.parametrize("arch", ["pyramid", "residual"])
def test_texture_mode_makes_textures_from_noise_only(arch):
    g = build_generator(arch=arch, mode="texture", padding="circular")
    out = g(size=(40, 72), batch_size=3)
    assert out.shape == (3, 3, 40, 72)
    assert not torch.allclose(out[0], out[1])  # different noise, different textures
    with pytest.raises(TexnetError, match="content image"):
        TextureGenerator(mode="stylize")(None)


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
        TextureGenerator(norm="group")
    with pytest.raises(TexnetError, match="model.padding"):
        TextureGenerator(padding="mirror")
    with pytest.raises(TexnetError, match="model.mode"):
        TextureGenerator(mode="video")
