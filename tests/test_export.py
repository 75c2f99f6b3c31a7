"""ONNX / TorchScript exports and the onnxruntime fast path reproduce the eager generators."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from test_stylize import stylize_cfg, train_checkpoint
from torch import nn

import texnet.export as export_module
from stylize import stylize
from texnet.errors import TexnetError
from texnet.export import GraphInputs, export_onnx, export_torchscript, ort_session
from texnet.generator import build_generator
from texnet.inference import Stylizer, load
from texnet.noise_generator import NoiseGenerator

SIZES = [(40, 56), (29, 70)]  # not the traced size, not multiples of 2**(K-1)


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export_nets")
    return {mode: train_checkpoint(root / mode, mode) for mode in ("stylize", "texture")}


def eager(ckpt: Path) -> NoiseGenerator:
    return load(ckpt, backend="eager").generator


def seeded_noise(generator: NoiseGenerator, height: int, width: int, seed: int, batch: int = 1) -> list[torch.Tensor]:
    """The noise eager draws for `seed`, in its order (coarsest first), times the trained noise factor."""
    return generator.draw_noise(batch, height, width, rng=torch.Generator().manual_seed(seed))


def eager_output(
    generator: NoiseGenerator, height: int, width: int, seed: int, content: torch.Tensor | None = None
) -> torch.Tensor:
    with torch.no_grad():
        if content is None:
            return generator(size=(height, width), rng=torch.Generator().manual_seed(seed))
        return generator(content, rng=torch.Generator().manual_seed(seed))


def test_onnx_model_runs_at_any_size_and_matches_eager(tmp_path, ckpts):
    path = export_onnx(ckpts["stylize"], tmp_path / "net.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["content", "noise_factor"]
    g = eager(ckpts["stylize"])
    for height, width in SIZES:
        x = torch.rand(2, 3, height, width)
        out = session.run(None, {"content": x.numpy(), "noise_factor": np.zeros(1, np.float32)})[0]
        with torch.no_grad():
            ref = g(x, noise_factor=0.0)
        assert out.shape == (2, 3, height, width)
        np.testing.assert_allclose(out, ref.numpy(), atol=1e-4)
        noisy = session.run(None, {"content": x.numpy(), "noise_factor": np.full(1, 5.0, np.float32)})[0]
        assert np.abs(noisy - out).mean() > 1e-3 and 0 <= noisy.min() and noisy.max() <= 1
    with pytest.raises(TexnetError, match="already exists"):
        export_onnx(ckpts["stylize"], path)


@pytest.mark.parametrize("mode", ["stylize", "texture"])
def test_onnx_with_noise_inputs_reproduces_eager_noise_for_noise(tmp_path, ckpts, mode):
    path = export_onnx(ckpts[mode], tmp_path / "net.onnx", noise_inputs=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    g = eager(ckpts[mode])
    height, width = SIZES[1]
    content = torch.rand(1, 3, height, width) if mode == "stylize" else None
    feed = {f"noise_{i}": n.numpy() for i, n in enumerate(seeded_noise(g, height, width, seed=7))}
    if content is not None:
        feed["content"] = content.numpy()
    out = session.run(None, feed)[0][..., :height, :width]  # a texture model returns the padded size
    np.testing.assert_allclose(out, eager_output(g, height, width, 7, content).numpy(), atol=1e-4)


@pytest.mark.parametrize("mode", ["stylize", "texture"])
def test_torchscript_reproduces_eager(tmp_path, ckpts, mode):
    g = eager(ckpts[mode])
    model = torch.jit.load(str(export_torchscript(ckpts[mode], tmp_path / "net.pt", noise_inputs=mode == "texture")))
    for height, width in SIZES:
        with torch.no_grad():
            if mode == "stylize":
                x = torch.rand(1, 3, height, width)
                out, ref = model(x, torch.zeros(1)), g(x, noise_factor=0.0)
            else:
                out = model(*seeded_noise(g, height, width, seed=3))[..., :height, :width]
                ref = eager_output(g, height, width, 3)
        torch.testing.assert_close(out, ref, atol=1e-4, rtol=0)


def test_exported_models_run_without_texnet(tmp_path, ckpts):
    onnx_path = export_onnx(ckpts["stylize"], tmp_path / "net.onnx")
    ts_path = export_torchscript(ckpts["stylize"], tmp_path / "net.pt")
    script = f"""
import sys
sys.modules["texnet"] = None  # any import of texnet now fails
import numpy as np, onnxruntime, torch
x = np.random.rand(1, 3, 45, 67).astype(np.float32)
a = onnxruntime.InferenceSession({str(onnx_path)!r}).run(None, {{"content": x, "noise_factor": np.zeros(1, np.float32)}})[0]
b = torch.jit.load({str(ts_path)!r})(torch.from_numpy(x), torch.zeros(1)).numpy()
print(a.shape, float(np.abs(a - b).max()))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    shape, diff = proc.stdout.strip().rsplit(" ", 1)
    assert shape == "(1, 3, 45, 67)" and float(diff) < 1e-4


def test_stylize_cli_exports_with_free_names(tmp_path, ckpts, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = (f"checkpoint={ckpts['stylize']}", "export=onnx")
    assert stylize(stylize_cfg(*args)) == [Path("runs/exported/mosaic.onnx")]
    assert stylize(stylize_cfg(*args)) == [Path("runs/exported/mosaic-2.onnx")]
    assert stylize(stylize_cfg(f"checkpoint={ckpts['texture']}", "export=torchscript", "output=models/")) == [
        Path("models/mosaic.pt")
    ]
    with pytest.raises(TexnetError, match="onnx or torchscript"):
        stylize(stylize_cfg(*args[:1], "export=tflite"))


def test_onnxruntime_fast_path_matches_eager(ckpts):
    fast, slow = load(ckpts["stylize"]), load(ckpts["stylize"], backend="eager")
    assert (fast.backend, slow.backend) == ("onnxruntime", "eager")
    for shape in [(1, 3, 40, 56), (3, 3, 29, 70), (1, 3, 4, 9)]:  # a batch; an image too small for the graph (eager)
        x = torch.rand(shape)
        torch.testing.assert_close(fast.stylize(x, seed=5), slow.stylize(x, seed=5), atol=1e-4, rtol=0)
    # building the onnxruntime session leaves the generator its eager fallbacks use in eval mode
    assert not any(m.training for m in fast.generator.modules())
    tex_fast, tex_slow = load(ckpts["texture"]), load(ckpts["texture"], backend="eager")
    for a, b in zip(tex_fast.generate(size=(30, 50), num=2, seed=1), tex_slow.generate(size=(30, 50), num=2, seed=1)):
        assert a.size == (50, 30) and np.abs(np.asarray(a, int) - np.asarray(b, int)).max() <= 1


@pytest.mark.parametrize(
    "arch,norm,padding",
    [
        ("pyramid", "instance", "reflect"),
        ("pyramid", "batch", "circular"),
        ("residual", "instance", "reflect"),
        ("residual", "batch", "replicate"),
        ("encoder", "instance", "reflect"),
    ],
)
def test_fast_path_matches_eager_for_both_architectures(arch, norm, padding):
    """The default sizes (pyramid: K = 6, 8 channels; residual: 32 channels, 5 blocks) with non-trivial norm affines
    (a fresh network has weight 1, bias 0)."""
    torch.manual_seed(0)
    generator = build_generator(
        arch=arch, norm=norm, padding=padding, **({"encoder_weights": "random"} if arch == "encoder" else {})
    )
    with torch.no_grad():
        for module in generator.modules():
            if isinstance(module, (nn.InstanceNorm2d, nn.BatchNorm2d)):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    texture = torch.rand(1, 3, 32, 32)
    fast = Stylizer(generator, texture, "random", device="cpu")
    slow = Stylizer(generator, texture, "random", device="cpu", backend="eager")
    x = torch.rand(1, 3, 70, 97)
    torch.testing.assert_close(fast.stylize(x, seed=2), slow.stylize(x, seed=2), atol=1e-4, rtol=0)
    session = ort_session(GraphInputs(generator))  # the exported model draws its noise inside
    out = session.run(None, {"content": x.numpy(), "noise_factor": np.zeros(1, np.float32)})[0]
    with torch.no_grad():
        np.testing.assert_allclose(out, generator(x, noise_factor=0.0).numpy(), atol=1e-4)
    assert GraphInputs(generator).input_names == ["content", "noise_factor"]


def test_the_fast_path_traces_a_network_once_and_reuses_its_graph(tmp_path, monkeypatch):
    """A second process (here: a second load) of the same network reads its ONNX graph from $TEXNET_CACHE instead of
    tracing it again and stylises the same; other weights get their own graph, and only the newest graphs are kept;
    an unwritable cache only costs time."""
    traced = []
    real = export_module.onnx_bytes
    monkeypatch.setattr(export_module, "onnx_bytes", lambda module: traced.append(1) or real(module))
    monkeypatch.setenv("TEXNET_CACHE", str(tmp_path / "cache"))
    photo = torch.rand(1, 3, 70, 97)
    first, second = load("mosaic").stylize(photo, seed=3), load("mosaic").stylize(photo, seed=3)
    assert len(traced) == 1 and len(list((tmp_path / "cache" / "onnx").glob("*.onnx"))) == 1
    assert torch.equal(first, second)

    monkeypatch.setattr(export_module, "CACHED_GRAPHS", 1)  # the newest graph only
    other = load("mosaic")
    with torch.no_grad():
        other.generator.to_rgb.bias.add_(0.5)
    assert not torch.equal(other.stylize(photo, seed=3), first) and len(traced) == 2
    kept = [f.stem for f in (tmp_path / "cache" / "onnx").iterdir()]
    assert kept == [export_module.graph_key(GraphInputs(other.generator, noise_inputs=True))]

    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("TEXNET_CACHE", str(tmp_path / "file"))
    assert torch.equal(load("mosaic").stylize(photo, seed=3), first) and len(traced) == 3
