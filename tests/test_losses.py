import pytest
import torch

from texnet.errors import TexnetError
from texnet.image import load_image
from texnet.losses import (
    ContentLoss,
    GramStyleLoss,
    PatchLoss,
    PerceptualLoss,
    build_perceptual_loss,
    diversity,
    gram_matrix,
    total_variation,
)
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


def test_diversity_is_lower_for_spread_samples_and_scale_free():
    torch.manual_seed(0)
    spread = torch.randn(3, 8, 4, 4)
    alike = spread[:1].repeat(3, 1, 1, 1) + 1e-3 * torch.randn(3, 8, 4, 4)
    assert (diversity(spread) < diversity(alike)).all()
    # -log of squared distances: doubling every feature lowers each term by log 4
    assert torch.allclose(diversity(2 * spread), diversity(spread) - torch.log(torch.tensor(4.0)), atol=1e-5)


def test_diversity_term_only_in_texture_batches(mosaic_path):
    vgg = VGGFeatures(["relu1_1", "relu2_1", "relu2_2"], arch="vgg16", weights="random")
    texture = load_image(mosaic_path, max_size=64)
    loss = PerceptualLoss(
        vgg, texture, ["relu2_2"], [1.0], ["relu1_1"], [1.0], diversity_weight=0.5, diversity_layer="relu2_1"
    )
    batch = torch.rand(3, 3, 32, 32)
    terms = loss(batch)
    assert terms["diversity"].item() == pytest.approx(0.5 * diversity(vgg(batch)["relu2_1"]).mean().item(), rel=1e-4)
    assert terms["total"].item() == pytest.approx((terms["style"] + terms["diversity"]).item(), rel=1e-5)
    assert loss(batch[:1])["diversity"].item() == 0.0  # one sample has no neighbour
    assert loss(batch, loss.content_targets(batch))["diversity"].item() == 0.0  # stylisation: photos differ anyway
    with pytest.raises(TexnetError, match="diversity_weight"):
        PerceptualLoss(vgg, texture, [], [], ["relu1_1"], [1.0], diversity_weight=-1)


def test_mismatched_weights_are_a_clear_error():
    with pytest.raises(TexnetError, match="one weight per layer"):
        ContentLoss(["relu4_2"], [1.0, 2.0])


def test_perceptual_loss_terms_batch_and_cached_targets(mosaic_path):
    vgg = VGGFeatures(["relu1_1", "relu2_1", "relu2_2"], arch="vgg16", weights="random")
    texture = load_image(mosaic_path, max_size=64)
    loss = PerceptualLoss(
        vgg, texture, ["relu2_2"], [1.0], ["relu1_1", "relu2_1"], [1.0, 2.0], style_scale=3.0, tv_weight=0.5
    )
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
    loss = PerceptualLoss(
        vgg,
        load_image(mosaic_path, max_size=64),
        [],
        [],
        ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
        [1, 1, 1e2, 1e5, 1e7],
    )
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


def test_target_normalisation_makes_each_layer_a_relative_error():
    """style_normalize=target: weight * MSE(G, G_t) / mean(G_t^2), the same loss for a texture scaled 10x."""
    feats = {"a": torch.rand(1, 4, 8, 8), "b": 1e-3 * torch.rand(1, 8, 4, 4)}
    other = {"a": torch.rand(2, 4, 8, 8), "b": 1e-3 * torch.rand(2, 8, 4, 4)}
    loss = GramStyleLoss(["a", "b"], [1.0, 2.0], feats, normalize="target")
    for name, weight in (("a", 1.0), ("b", 2.0)):
        target = gram_matrix(feats[name])
        expected = weight * (gram_matrix(other[name]) - target).pow(2).mean(dim=(1, 2)) / target.pow(2).mean()
        assert torch.allclose(loss(other)[name], expected, rtol=1e-5)
    # both layers are of the same order although their raw Gram MSEs differ by ~12 orders of magnitude
    values = loss(other)
    assert 1e-3 < (values["b"] / values["a"]).mean() < 1e3
    scaled = GramStyleLoss(["a"], [1.0], {"a": 10 * feats["a"]}, normalize="target")
    assert torch.allclose(scaled({"a": 10 * other["a"]})["a"], loss(other)["a"], rtol=1e-4)
    with pytest.raises(TexnetError, match="style_normalize='layer' is unknown"):
        GramStyleLoss(["a"], [1.0], feats, normalize="layer")
    with pytest.raises(TexnetError, match="no activation at a"):
        GramStyleLoss(["a"], [1.0], {"a": torch.zeros(1, 4, 8, 8)}, normalize="target")


def test_bf16_path_matches_fp32_reference(mosaic_path, photo_path):
    """loss.precision=bf16 (the fast path on CPUs with AVX512-BF16) gives the fp32 loss within 1% per term, and
    gradients pointing the same way (cosine > 0.99), on the real weights and a real photo."""
    texture = load_image(mosaic_path, max_size=96)
    photo = load_image(photo_path, max_size=96)
    layers = dict(
        content_layers=["relu4_2"],
        content_weights=[1.0],
        style_normalize="target",
        style_layers=["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"],
        style_weights=[1.0] * 5,
    )
    terms, grads = {}, {}
    for precision in ("fp32", "bf16"):
        vgg = VGGFeatures(
            ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1", "relu4_2"], arch="vgg16", precision=precision
        )
        loss = PerceptualLoss(vgg, texture, **layers)
        image = (0.7 * photo + 0.3 * torch.rand_like(photo, generator=torch.Generator().manual_seed(0))).requires_grad_(
            True
        )
        out = loss(image, loss.content_targets(photo))
        out["total"].backward()
        terms[precision], grads[precision] = {k: v.item() for k, v in out.items()}, image.grad.flatten()
    for name, value in terms["fp32"].items():
        assert terms["bf16"][name] == pytest.approx(value, rel=0.01, abs=1e-6), name
    assert torch.nn.functional.cosine_similarity(grads["fp32"], grads["bf16"], dim=0) > 0.99


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_bf16_gram_gradient_matches_autograd(layout):
    """gram_matrix(bf16_grad=True) on bf16-valued features (what a bf16 VGG returns, channels_last): the same fp32
    Gram exactly, and a gradient within bf16 rounding of autograd's fp32 one (relative error < 1%, cosine > 0.9999)."""
    torch.manual_seed(0)
    features = torch.rand(2, 16, 12, 10).bfloat16().float().contiguous(memory_format=layout)
    target = torch.rand(2, 16, 16) * 0.3
    grams, grads = [], []
    for bf16_grad in (False, True):
        x = features.clone().requires_grad_(True)
        gram = gram_matrix(x, bf16_grad)
        (gram - target).pow(2).mean().backward()
        grams.append(gram.detach())
        grads.append(x.grad.flatten())
    assert torch.equal(*grams)
    assert ((grads[1] - grads[0]).norm() / grads[0].norm()).item() < 0.01
    assert torch.nn.functional.cosine_similarity(*grads, dim=0) > 0.9999
    with torch.no_grad():  # no graph, no custom backward: the plain product
        assert torch.equal(gram_matrix(features, bf16_grad=True), grams[0])
        torch.testing.assert_close(gram_matrix(features.contiguous()), grams[0])  # either layout: the same Gram
    # The features as a bf16 VGG computes them (PerceptualLoss passes them uncast): the same Gram, and the same
    # gradient, already in bf16, as the fp32 copy's rounded to bf16 (what the VGG's backward does with it)
    x = features.bfloat16().requires_grad_(True)
    gram = gram_matrix(x, bf16_grad=True)
    (gram - target).pow(2).mean().backward()
    assert gram.dtype == torch.float32 and torch.equal(gram.detach(), grams[0])
    assert x.grad.dtype == torch.bfloat16 and torch.equal(x.grad.flatten(), grads[1].bfloat16())


def test_patch_loss_is_zero_on_the_textures_own_patches_and_finds_the_nearest():
    torch.manual_seed(0)
    texture = torch.rand(1, 4, 6, 6)
    loss = PatchLoss(texture)
    # |x|^2 - 2<x, p> + |p|^2 in float32: zero to ~1e-7 of the patches' scale, where other images score ~0.1-1
    assert loss(texture).item() == pytest.approx(0.0, abs=1e-6)
    assert loss(texture[..., 1:, 2:]).item() == pytest.approx(0.0, abs=1e-6)  # a crop: texture patches only
    other = torch.rand(2, 4, 7, 6, requires_grad=True)
    unfolded = torch.nn.functional.unfold(texture, 3)[0].t()  # (16 patches, 36)
    own = torch.nn.functional.unfold(other, 3).transpose(1, 2)
    cosine = torch.nn.functional.normalize(own, dim=2) @ torch.nn.functional.normalize(unfolded, dim=1).t()
    expected = (own - unfolded[cosine.argmax(dim=2)]).pow(2).mean(dim=(1, 2)) / unfolded.pow(2).mean()
    (expected_grad,) = torch.autograd.grad(expected.sum(), other)
    value = loss(other)
    (grad,) = torch.autograd.grad(value.sum(), other)
    assert torch.allclose(value, expected, rtol=1e-5) and (expected > 0.01).all()
    assert torch.allclose(grad, expected_grad, rtol=1e-4, atol=1e-7)  # the patches' MSE's own gradient
    assert torch.equal(loss.patches, unfolded)
    assert PatchLoss(torch.rand(1, 4, 12, 12), max_patches=10).patches.shape[0] <= 10


def test_patch_matching_in_the_textures_principal_directions_finds_the_same_patches():
    """Features with more patch dimensions (64 channels x 9) than the matching keeps (match_dims): patches that lie
    in the texture's own few directions, as VGG features mostly do, are matched as the full correlation would."""
    torch.manual_seed(0)
    mixing = torch.randn(64, 4)
    texture = torch.einsum("ck,bkhw->bchw", mixing, torch.rand(1, 4, 12, 12))  # patches span 36 of 576 dimensions
    other = torch.einsum("ck,bkhw->bchw", mixing, torch.rand(2, 4, 8, 8))
    torch.manual_seed(1)
    drawn = torch.rand(3)
    torch.manual_seed(1)
    loss = PatchLoss(texture, match_dims=40)
    assert torch.equal(torch.rand(3), drawn)  # the basis draws nothing from the run's random stream
    assert loss.basis.shape == (576, 40)
    assert loss(texture[..., 2:, 3:]).item() == pytest.approx(0.0, abs=1e-6)  # a crop: its own patches
    patches = torch.nn.functional.unfold(texture, 3)[0].t()
    own = torch.nn.functional.unfold(other, 3).transpose(1, 2)
    cosine = own @ torch.nn.functional.normalize(patches, dim=1).t()
    expected = (own - patches[cosine.argmax(dim=2)]).pow(2).mean(dim=(1, 2)) / patches.pow(2).mean()
    assert torch.allclose(loss(other), expected, rtol=1e-4)


def test_patch_term_adds_to_the_total_and_trains_the_image(mosaic_path):
    vgg = VGGFeatures(["relu1_1", "relu2_1"], arch="vgg16", weights="random")
    texture = load_image(mosaic_path, max_size=64)
    loss = PerceptualLoss(vgg, texture, [], [], ["relu1_1"], [1.0], patch_weight=2.0, patch_layer="relu2_1")
    image = torch.rand(2, 3, 32, 32, requires_grad=True)
    terms = loss(image)
    assert terms["patch"].item() == pytest.approx(2.0 * loss.patches[0](vgg(image)["relu2_1"]).mean().item(), rel=1e-4)
    assert terms["total"].item() == pytest.approx((terms["style"] + terms["patch"]).item(), rel=1e-5)
    terms["patch"].backward()
    assert image.grad.abs().sum() > 0
    assert PerceptualLoss(vgg, texture, [], [], ["relu1_1"], [1.0])(image)["patch"].item() == 0.0  # off by default
    with pytest.raises(TexnetError, match="patch_weight"):
        PerceptualLoss(vgg, texture, [], [], ["relu1_1"], [1.0], patch_weight=-1)


def test_images_too_small_for_the_patch_layer_name_the_option_and_the_size(mosaic_path):
    # the VGG takes 32 px and more; relu5_1's 3x3 patches need 48 (its stride is 16)
    vgg = VGGFeatures(["relu1_1", "relu5_1"], arch="vgg16", weights="random")
    texture = load_image(mosaic_path, max_size=64)
    loss = PerceptualLoss(vgg, texture, [], [], ["relu1_1"], [1.0], patch_weight=1.0, patch_layer="relu5_1")
    assert loss(torch.rand(1, 3, 48, 64))["patch"].item() > 0
    with pytest.raises(
        TexnetError, match=r"^loss.patch_layer=relu5_1 needs images of at least 48 px .* the image is 64x47"
    ):
        loss(torch.rand(1, 3, 47, 64))
    with pytest.raises(TexnetError, match=r"^loss.patch_layer=relu5_1 needs .* the texture is 40x40"):
        PerceptualLoss(
            vgg, torch.rand(1, 3, 40, 40), [], [], ["relu1_1"], [1.0], patch_weight=1.0, patch_layer="relu5_1"
        )


@pytest.mark.parametrize(
    "terms, key",
    [
        ({"style_layers": ["relu1_1", "relu9_9"], "style_weights": [1, 1]}, "loss.style_layers"),
        ({"content_layers": ["conv5_4"], "content_weights": [1]}, "loss.content_layers"),
        ({"patch_weight": 1, "patch_layer": "relu9_9"}, "loss.patch_layer"),
    ],
)
def test_an_unknown_layer_names_the_loss_option(terms, key):
    with pytest.raises(TexnetError, match=rf"^{key}: .* is no vgg16 layer: choose from conv1_1"):
        build_perceptual_loss(torch.rand(1, 3, 32, 32), vgg="vgg16", weights="random", **terms)
    assert isinstance(build_perceptual_loss(torch.rand(1, 3, 32, 32), vgg="vgg16", weights="random"), PerceptualLoss)
