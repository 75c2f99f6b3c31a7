import pytest
import torch
from torch import nn

from texnet.errors import TexnetError
from texnet.vgg import VGGFeatures, layer_names
from texnet.weights import VGG16_CONV_INDICES, VGGWeights


def test_layer_names_follow_vgg_blocks():
    names16, names19 = layer_names("vgg16"), layer_names("vgg19")
    assert names16[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert "conv5_3" in names16 and "conv5_4" not in names16
    assert "conv5_4" in names19 and names19[-1] == "pool5"
    assert [i for i, n in enumerate(names16) if n.startswith("conv")] == list(VGG16_CONV_INDICES)


def test_returns_requested_layers_and_stops_early():
    vgg = VGGFeatures(["relu1_1", "relu2_1"], arch="vgg19", weights="random")
    out = vgg(torch.rand(2, 3, 64, 48))
    assert set(out) == {"relu1_1", "relu2_1"}
    assert out["relu1_1"].shape == (2, 64, 64, 48) and out["relu2_1"].shape == (2, 128, 32, 24)
    assert len(vgg.body) == layer_names("vgg19").index("relu2_1") + 1  # cut after the deepest layer


def test_pooling_choice_and_frozen_eval():
    avg = VGGFeatures(["relu3_1"], arch="vgg16", pooling="avg", weights="random")
    mx = VGGFeatures(["relu3_1"], arch="vgg16", pooling="max", weights="random")
    assert any(isinstance(m, nn.AvgPool2d) for m in avg.body) and not any(isinstance(m, nn.MaxPool2d) for m in avg.body)
    assert any(isinstance(m, nn.MaxPool2d) for m in mx.body)
    assert all(not p.requires_grad for p in avg.parameters())
    parent = nn.Sequential(avg).train()
    assert not avg.training and not parent[0].training


def test_gradients_flow_to_input_but_not_weights(vgg):
    x = torch.rand(1, 3, 40, 40, requires_grad=True)
    vgg(x)["relu4_2"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_unknown_layer_and_small_input_are_clear_errors():
    with pytest.raises(TexnetError, match="conv5_4"):
        VGGFeatures(["conv5_4"], arch="vgg16", weights="random")
    vgg = VGGFeatures(["relu1_1"], arch="vgg16", weights="random")
    with pytest.raises(TexnetError, match="at least 32"):
        vgg(torch.rand(1, 3, 16, 64))


def test_caffe_preprocessing_is_bgr_0_255_mean_subtracted():
    vgg = VGGFeatures(["relu1_1"], arch="vgg16", weights=VGGWeights("vgg16", None, "caffe", "test"))
    x = torch.zeros(1, 3, 32, 32)
    x[:, 0] = 1.0  # pure red
    y = vgg.preprocess(x)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255 - 123.68]), atol=1e-3)


def test_real_weights_give_natural_feature_statistics(vgg, photo_path):
    from texnet.image import load_image

    feats = vgg(load_image(photo_path, max_size=128))
    # measured on natural photos with these weights (../shared/FINDINGS.md): relu1_1 mean ~19, relu5_1 ~1
    assert 5 < feats["relu1_1"].mean().item() < 60
    assert 0.05 < feats["relu5_1"].mean().item() < 5


def test_precision_option_selects_bf16_where_fast_and_returns_fp32():
    from texnet.precision import bf16_is_fast

    auto = VGGFeatures(["relu1_1", "relu2_1"], arch="vgg16", weights="random", precision="auto")
    fp32 = VGGFeatures(["relu1_1", "relu2_1"], arch="vgg16", weights="random", precision="fp32")
    cpu = torch.device("cpu")
    assert not fp32.uses_bf16(cpu) and auto.uses_bf16(cpu) == bf16_is_fast(cpu)
    forced = VGGFeatures(["relu1_1", "relu2_1"], arch="vgg16", weights="random", precision="bf16")
    x = torch.rand(1, 3, 40, 40)
    out = forced(x)
    assert forced.uses_bf16(cpu) and all(v.dtype == torch.float32 for v in out.values())
    raw = forced(x, fp32=False)  # as computed, for callers that cast themselves
    assert all(v.dtype == torch.bfloat16 and torch.equal(v.float(), out[k]) for k, v in raw.items())
    with pytest.raises(TexnetError, match="loss.precision='fp16' is unknown"):
        VGGFeatures(["relu1_1"], arch="vgg16", weights="random", precision="fp16")


def test_bf16_path_matches_autocast_and_follows_new_weights():
    """The bf16 copy of the weights gives autocast's features and input gradient bit for bit, and a weight change
    (load_state_dict) reaches it: a stale copy would score with the old network."""
    vgg = VGGFeatures(["relu1_1", "relu2_1", "relu3_1"], arch="vgg16", weights="random", precision="bf16")

    def autocast_features(x: torch.Tensor) -> dict[str, torch.Tensor]:  # the path before the copy
        h = vgg.preprocess(x).contiguous(memory_format=torch.channels_last)
        out = {}
        with torch.autocast("cpu", dtype=torch.bfloat16):
            for name, module in zip(vgg.names, vgg.body):
                h = module(h)
                out[name] = h.float()
        return {name: out[name] for name in vgg.layers}

    x = torch.rand(2, 3, 48, 40)
    for _ in range(2):  # the second time after new weights
        grads = []
        for features in (vgg, autocast_features):
            xi = x.clone().requires_grad_()
            out = features(xi)
            sum(v.square().mean() for v in out.values()).backward()
            grads.append((out, xi.grad))
        (new, new_grad), (old, old_grad) = grads
        assert all(torch.equal(new[k], old[k]) for k in vgg.layers) and torch.equal(new_grad, old_grad)
        vgg.load_state_dict({k: v * 1.5 for k, v in vgg.state_dict().items()})
    assert not any(k.startswith("_bf16") for k in vgg.state_dict())
