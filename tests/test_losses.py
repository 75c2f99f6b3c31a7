import pytest
import torch

from texnet.errors import TexnetError
from texnet.image import load_image
from texnet.losses import ContentLoss, GramStyleLoss, PerceptualLoss, gram_matrix, total_variation
from texnet.vgg import VGGFeatures


def test_gram_matrix_by_hand():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    # channel 0 = [1, 2], channel 1 = [3, 4]: dot products 5, 11, 25 over C*H*W = 4
    assert torch.allclose(gram_matrix(f), torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4)


def test_total_variation_by_hand():
    x = torch.zeros(1, 3, 2, 2)
    x[..., 0, 0] = 1.0
    # vertical diffs: one 1 per channel of 2 -> mean 0.5; same horizontally
    assert torch.allclose(total_variation(x), torch.tensor([1.0]))
    assert total_variation(torch.ones(2, 3, 8, 8)).eq(0).all()


def test_style_loss_zero_for_identical_positive_otherwise():
    feats = {"a": torch.rand(1, 4, 8, 8)}
    loss = GramStyleLoss(["a"], [2.0], feats)
    assert loss(feats)["a"].item() == pytest.approx(0.0, abs=1e-12)
    other = {"a": torch.rand(3, 4, 8, 8)}
    expected = 2.0 * (gram_matrix(other["a"]) - gram_matrix(feats["a"])).pow(2).mean(dim=(1, 2))
    assert torch.allclose(loss(other)["a"], expected) and (expected > 0).all()


def test_content_loss_formula():
    a, b = torch.rand(2, 4, 5, 5), torch.rand(2, 4, 5, 5)
    loss = ContentLoss(["x"], [3.0])({"x": a}, {"x": b})
    assert torch.allclose(loss, 3.0 * (a - b).pow(2).mean(dim=(1, 2, 3)))


def test_mismatched_weights_are_a_clear_error():
    with pytest.raises(TexnetError, match="one weight per layer"):
        ContentLoss(["relu4_2"], [1.0, 2.0])


def test_perceptual_loss_terms_batch_and_cached_targets(mosaic_path):
    vgg = VGGFeatures(["relu1_1", "relu2_1", "relu2_2"], arch="vgg16", weights="random")
    texture = load_image(mosaic_path, max_size=64)
    loss = PerceptualLoss(vgg, texture, ["relu2_2"], [1.0], ["relu1_1", "relu2_1"], [1.0, 2.0], style_scale=3.0, tv_weight=0.5)
    batch = torch.rand(4, 3, 48, 48)
    terms = loss(batch, loss.content_targets(torch.rand(4, 3, 48, 48)))
    assert {"content", "style", "tv", "total", "style/relu1_1", "style/relu2_1"} <= set(terms)
    assert terms["total"].item() == pytest.approx((terms["content"] + terms["style"] + terms["tv"]).item(), rel=1e-5)
    assert terms["style"].item() == pytest.approx((terms["style/relu1_1"] + terms["style/relu2_1"]).item(), rel=1e-5)
    assert terms["tv"].item() == pytest.approx(0.5 * total_variation(batch).mean().item(), rel=1e-5)
    # the texture against itself: zero style loss (targets were cached from it)
    assert loss(texture)["style"].item() == pytest.approx(0.0, abs=1e-6)
    assert loss(batch)["content"].item() == 0.0  # no content targets: texture synthesis


def test_style_only_optimisation_with_offline_weights_drops_100x(vgg, mosaic_path):
    """The converted HED weights are real: a 64 px style-only L-BFGS run lowers the style loss >= 100x."""
    loss = PerceptualLoss(vgg, load_image(mosaic_path, max_size=64), [], [], ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
                          [1, 1, 1e2, 1e5, 1e7])
    torch.manual_seed(0)
    image = (0.5 + 0.05 * torch.randn(1, 3, 64, 64)).requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], max_iter=40, line_search_fn="strong_wolfe")
    start = loss(image)["style"].item()

    def closure():
        optimizer.zero_grad()
        value = loss(image)["style"]
        value.backward()
        return value

    optimizer.step(closure)
    assert loss(image)["style"].item() < start / 100
