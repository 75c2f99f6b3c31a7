"""stylize.py through Hydra's compose API, and texnet.load / Stylizer, on tiny checkpoints trained here."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIG_DIR, ROOT
from hydra import compose, initialize_config_dir
from PIL import Image

import texnet.batch
from stylize import stylize
from texnet import inference
from texnet.errors import TexnetError
from texnet.inference import load, transfer_luminance
from texnet.training import train


def train_checkpoint(root: Path, mode: str = "stylize", *overrides: str) -> Path:
    """A 3-scale network trained for 2 steps on the built-in photos (random VGG weights: seconds, not minutes)."""
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[
                f"run_dir={root}",
                "data=builtin",
                "data.image_size=64",
                "data.val_size=64",
                "data.batch_size=1",
                "data.num_val=1",
                "trainer.max_steps=2",
                "trainer.val_check_interval=2",
                "trainer.accelerator=cpu",
                "trainer.enable_progress_bar=false",
                "trainer.enable_model_summary=false",
                "checkpoint_every=2",
                "sample_every=100",
                "logger={}",
                "loss.weights=random",
                "texture.size=64",
                "model.scales=3",
                f"model.mode={mode}",
                *overrides,
            ],
        )
    return train(cfg)["last"]


def stylize_cfg(*overrides: str):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("stylize", overrides=[*overrides, "progress=false"])


def write_photo(path: Path, width: int, height: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 255, (1, 1, 3))
    arr = np.clip(base + rng.normal(0, 40, (height, width, 3)), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return train_checkpoint(tmp_path_factory.mktemp("stylize_net"))


@pytest.fixture(scope="module")
def texture_ckpt(tmp_path_factory) -> Path:
    return train_checkpoint(tmp_path_factory.mktemp("texture_net"), "texture")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Three photos of different sizes, one in a subfolder, plus a non-image file."""
    root = tmp_path_factory.mktemp("photos")
    write_photo(root / "a.jpg", 48, 40, 1)
    write_photo(root / "b.png", 70, 52, 2)
    write_photo(root / "sub" / "c.png", 37, 61, 3)
    (root / "notes.txt").write_text("not a photo")
    return root


def sizes(paths) -> dict[str, tuple[int, int]]:
    return {Path(p).stem: Image.open(p).size for p in paths}


def test_file_folder_and_glob_inputs_keep_each_photos_size(tmp_path, ckpt, photos, caplog):
    one = stylize(
        stylize_cfg(f"checkpoint={ckpt}", f"input={photos / 'a.jpg'}", f"output={tmp_path / 'one' / 'out.jpg'}")
    )
    assert one == [tmp_path / "one" / "out.jpg"] and Image.open(one[0]).size == (48, 40)

    with caplog.at_level(logging.WARNING):
        folder = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={photos}", f"output={tmp_path / 'folder'}"))
    assert sorted(p.relative_to(tmp_path / "folder").as_posix() for p in folder) == ["a.png", "b.png", "sub/c.png"]
    assert sizes(folder) == {"a": (48, 40), "b": (70, 52), "c": (37, 61)}
    assert sum("notes.txt" in r.getMessage() for r in caplog.records) == 1  # skipped with one warning

    globbed = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={photos}/**/*.png", f"output={tmp_path / 'glob'}"))
    assert sizes(globbed) == {"b": (70, 52), "c": (37, 61)}


def test_default_output_folder_and_no_overwrite(tmp_path, ckpt, photos, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = (f"checkpoint={ckpt}", f"input={photos / 'a.jpg'}", "noise_factor=0")
    first = stylize(stylize_cfg(*args))
    assert first == [Path("runs/stylized/mosaic/a.png")]
    Image.new("RGB", (48, 40)).save(first[0])  # pretend the user edited it
    second = stylize(stylize_cfg(*args))
    assert second == [Path("runs/stylized/mosaic/a-2.png")]
    assert np.asarray(Image.open(first[0])).max() == 0  # the existing file was kept
    third = stylize(stylize_cfg(*args, "overwrite=true"))
    assert third == first and np.array_equal(np.asarray(Image.open(third[0])), np.asarray(Image.open(second[0])))


def test_corrupt_and_non_image_files_are_reported_and_skipped(tmp_path, ckpt, caplog):
    write_photo(tmp_path / "in" / "good.png", 40, 40)
    (tmp_path / "in" / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    (tmp_path / "in" / "readme.md").write_text("hello")
    with caplog.at_level(logging.WARNING):
        written = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}"))
    assert [p.name for p in written] == ["good.png"]
    messages = [r.getMessage() for r in caplog.records]
    assert any("readme.md" in m and "not an image" in m for m in messages)
    assert any("broken.jpg" in m and "not a readable image" in m for m in messages)  # reported at the end
    assert messages[-1].strip().startswith(str(tmp_path / "in" / "broken.jpg"))


@pytest.mark.parametrize("make", ["missing", "text", "state_dict", "lightning"])
def test_bad_checkpoints_are_one_line_errors(tmp_path, photos, make):
    path = tmp_path / "model.ckpt"
    if make == "text":
        path.write_text("not a checkpoint")
    elif make == "state_dict":
        torch.save(torch.nn.Linear(2, 2).state_dict(), path)
    elif make == "lightning":  # what any other LightningModule writes
        torch.save(
            {
                "epoch": 0,
                "global_step": 1,
                "pytorch-lightning_version": "2.6.0",
                "state_dict": {"w": torch.zeros(1)},
                "hyper_parameters": {"lr": 0.1},
            },
            path,
        )
    with pytest.raises(TexnetError) as err:
        stylize(stylize_cfg(f"checkpoint={path}", f"input={photos / 'a.jpg'}"))
    assert str(path) in str(err.value) and "train.py" in str(err.value) and "\n" not in str(err.value)


def test_cli_prints_one_line_error_and_exits_1(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stylize.py"), f"checkpoint={tmp_path / 'nope.ckpt'}", "input=x.jpg"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: checkpoint '{tmp_path / 'nope.ckpt'}' does not exist: "
        "expected a texture-network checkpoint written by train.py "
        "(runs/<texture>/<date>/checkpoints/last.ckpt)"
    ]


def test_missing_input_is_an_error(tmp_path, ckpt):
    with pytest.raises(TexnetError, match="does not exist"):
        stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={tmp_path / 'nothing.jpg'}"))
    with pytest.raises(TexnetError, match="holds no images"):
        stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={tmp_path}/*.jpg"))
    # said before the model is loaded: a checkpoint that cannot load is not reached
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a checkpoint")
    with pytest.raises(TexnetError, match=r"^input '.*nothing.jpg' does not exist"):
        stylize(stylize_cfg(f"checkpoint={broken}", f"input={tmp_path / 'nothing.jpg'}"))


def test_size_max_size_and_batches(tmp_path, ckpt, photos):
    out = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={photos / 'b.png'}", f"output={tmp_path / 's'}", "size=35"))
    assert Image.open(out[0]).size == (35, 26)
    out = stylize(
        stylize_cfg(f"checkpoint={ckpt}", f"input={photos / 'b.png'}", f"output={tmp_path / 'm'}", "max_size=100")
    )
    assert Image.open(out[0]).size == (70, 52)  # never upscaled
    for i in range(3):
        write_photo(tmp_path / "same" / f"{i}.png", 40, 32, i)
    batched = stylize(
        stylize_cfg(
            f"checkpoint={ckpt}",
            f"input={tmp_path / 'same'}",
            f"output={tmp_path / 'b2'}",
            "batch_size=2",
            "noise_factor=0",
        )
    )
    single = stylize(
        stylize_cfg(f"checkpoint={ckpt}", f"input={tmp_path / 'same'}", f"output={tmp_path / 'b1'}", "noise_factor=0")
    )
    for a, b in zip(batched, single):
        assert np.abs(np.asarray(Image.open(a), int) - np.asarray(Image.open(b), int)).max() <= 1


def test_preserve_color_keeps_the_photos_chroma(ckpt, photo_path):
    stylizer = load(ckpt)
    photo = inference.prepare_image(photo_path, max_size=96)
    plain = stylizer.stylize(photo, seed=0)
    kept = stylizer.stylize(photo, seed=0, preserve_color=True)

    def ycbcr(x: torch.Tensor) -> torch.Tensor:
        r, g, b = x.unbind(1)
        return torch.stack(
            [
                0.299 * r + 0.587 * g + 0.114 * b,
                -0.168736 * r - 0.331264 * g + 0.5 * b,
                0.5 * r - 0.418688 * g - 0.081312 * b,
            ],
            1,
        )

    assert (ycbcr(plain)[:, 1:] - ycbcr(photo)[:, 1:]).abs().mean() > 0.02  # the network changes colours ...
    assert (ycbcr(kept)[:, 1:] - ycbcr(photo)[:, 1:]).abs().mean() < 0.005  # ... preserve_color keeps them
    # ... and the luminance is the network's, wherever the photo's chroma on it fits in [0, 1] (elsewhere it is clipped)
    fits = ((kept > 0) & (kept < 1)).all(1)
    assert fits.float().mean() > 0.9
    assert torch.allclose(ycbcr(kept)[:, 0][fits], ycbcr(plain)[:, 0][fits], atol=1e-4)
    assert torch.allclose(transfer_luminance(photo, photo), photo, atol=1e-4)
    pil = stylizer.stylize(photo_path, max_size=64, preserve_color=True)
    assert isinstance(pil, Image.Image) and pil.size == (64, 64)


def test_noise_factor_and_seed(ckpt):
    stylizer = load(ckpt)
    photo = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    zero_a, zero_b = stylizer.stylize(photo, noise_factor=0, seed=1), stylizer.stylize(photo, noise_factor=0, seed=2)
    assert torch.equal(zero_a, zero_b)  # no noise: deterministic whatever the seed
    strong = stylizer.stylize(photo, noise_factor=5.0, seed=1)
    assert (strong - zero_a).abs().mean() > 0.01
    assert torch.equal(strong, stylizer.stylize(photo, noise_factor=5.0, seed=1))  # a seed makes it reproducible
    assert not torch.equal(strong, stylizer.stylize(photo, noise_factor=5.0, seed=2))
    assert stylizer.stylize(photo[0]).shape == (3, 40, 56)  # tensor in, tensor out


def test_texture_mode_generates_num_textures_of_size(tmp_path, ckpt, texture_ckpt):
    out = stylize(stylize_cfg(f"checkpoint={texture_ckpt}", f"output={tmp_path}", "num=3", "size=[40,56]", "seed=0"))
    assert [p.name for p in out] == ["mosaic_000.png", "mosaic_001.png", "mosaic_002.png"]
    assert {Image.open(p).size for p in out} == {(56, 40)}
    stylizer = load(texture_ckpt)
    assert stylizer.mode == "texture" and stylizer.texture_name == "mosaic" and stylizer.texture.size == (64, 64)
    with pytest.raises(TexnetError, match="generate"):
        stylizer.stylize(torch.rand(3, 32, 32))
    with pytest.raises(TexnetError, match=r"stylize\(photo\)"):
        load(ckpt).generate(size=32)
    for size in (2.5, (40,), (40, 0), "40", [40, True]):  # one line, not a TypeError
        with pytest.raises(TexnetError, match=r"^size=.* is not a texture size: give N or \(H, W\) in whole pixels"):
            stylizer.generate(size=size)
    for num in (0, 1.5, "2"):
        with pytest.raises(TexnetError, match=r"^num=.* is not a number of textures: give a whole number >= 1$"):
            stylizer.generate(size=40, num=num)
    assert stylizer.generate(size=np.int64(40))[0].size == (40, 40)


@pytest.mark.parametrize("size", ["[64]", "[64,64,3]", "[64,x]", "0", "[64,-1]"])
def test_a_texture_size_that_is_not_n_or_h_w_is_one_line(tmp_path, size):
    with pytest.raises(
        TexnetError,
        match=r"^size=\[?.*\]? is not a texture size: give N or \[H, W\] in whole pixels, e.g. size=\[256,512\]$",
    ):
        stylize(stylize_cfg("checkpoint=pebbles-texture", f"size={size}", f"output={tmp_path / 'out'}"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("size", ["abc", "0", "[64,64]"])
def test_a_photo_size_that_is_not_a_positive_length_is_one_line(tmp_path, ckpt, photo_path, size):
    """size= is the output's longer side: anything else was a TypeError from deep inside (abc) or ignored (0)."""
    with pytest.raises(TexnetError, match=r"^size=.* is not a photo size: give the output's longer side in pixels"):
        stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={photo_path}", f"size={size}", f"output={tmp_path / 'out'}"))
    assert not (tmp_path / "out").exists()


def test_images_too_large_for_memory_are_refused_with_the_limit(ckpt, monkeypatch):
    monkeypatch.setattr(inference, "available_memory", lambda device: 64 * 2**20)
    with pytest.raises(TexnetError, match=r"limit here: about \d+ MP\); pass max_size=\d+") as err:
        load(ckpt).stylize(torch.rand(1, 3, 1000, 1500))
    assert "\n" not in str(err.value)


def test_gatys_method_writes_its_result(tmp_path, photo_path):
    out = stylize(
        stylize_cfg(
            "method=gatys",
            f"input={photo_path}",
            "texture=mosaic",
            f"output={tmp_path}",
            "loss.weights=random",
            "texture.size=64",
            "gatys.max_size=64",
            "gatys.iterations=3",
            "gatys.save_every=0",
            "device=cpu",
        )
    )
    assert out == [tmp_path / "astronaut" / "result.png"]
    assert Image.open(out[0]).size == (64, 64) and (tmp_path / "astronaut" / "losses.csv").is_file()


@pytest.mark.parametrize(
    "option, message",
    [
        ("gatys.optimizer=sgd", "gatys.optimizer='sgd' is unknown: use one of lbfgs, adam"),
        ("gatys.init=zeros", "gatys.init='zeros' is unknown: use one of content, noise, style"),
    ],
)
def test_a_bad_gatys_option_is_said_once_before_any_photo(tmp_path, photos, option, message):
    with pytest.raises(TexnetError) as err:
        stylize(stylize_cfg("method=gatys", f"input={photos}", option, f"output={tmp_path / 'out'}"))
    assert str(err.value) == message
    assert not (tmp_path / "out").exists()


def test_gif_in_a_folder_is_stylised_like_a_single_gif(tmp_path, ckpt):
    """One list of formats: a .gif is read in a folder as it is on its own (the folder skipped it before)."""
    Image.open(write_photo(tmp_path / "in" / "a.png", 40, 36)).convert("P").save(tmp_path / "in" / "anim.gif")
    folder = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}"))
    assert sorted(p.name for p in folder) == ["a.png", "anim.png"]
    single = stylize(
        stylize_cfg(f"checkpoint={ckpt}", f"input={tmp_path / 'in' / 'anim.gif'}", f"output={tmp_path / 'one'}")
    )
    assert [p.name for p in single] == ["anim.png"]


@pytest.mark.parametrize("case", ["file_as_folder", "read_only"])
def test_unwritable_output_is_one_line_before_any_work(tmp_path, ckpt, photos, case, monkeypatch):
    """The output is checked before anything is stylised: no traceback after minutes of work."""
    import os

    (tmp_path / "file.txt").write_text("x")
    if case == "file_as_folder":
        output, message = tmp_path / "file.txt" / "out", r"'.*file.txt' is a file, not a folder: choose another output="
    else:
        if os.geteuid() == 0:  # root writes into a mode-555 folder, so take a folder the kernel refuses to root too
            output = Path("/proc/texnet_out")
        else:
            output = tmp_path / "locked"
            output.mkdir(mode=0o555)
        message = r"cannot be written \(.*\): choose another output= or make that folder writable"
    monkeypatch.setattr(
        texnet.batch, "prepare_image", lambda *a, **k: pytest.fail("stylised before checking the output")
    )
    with pytest.raises(TexnetError, match=message) as err:
        stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={photos}", f"output={output}"))
    assert "\n" not in str(err.value)


def test_an_output_name_with_an_unknown_suffix_is_refused_not_made_a_folder(tmp_path, ckpt, photo_path):
    with pytest.raises(
        TexnetError, match=r"^output '.*out.txt' ends in .txt, which texnet cannot write: name an image"
    ):
        stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={photo_path}", f"output={tmp_path / 'out.txt'}"))
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "results.v2").mkdir()  # a folder that exists may have a dot in its name
    written = stylize(stylize_cfg(f"checkpoint={ckpt}", f"input={photo_path}", f"output={tmp_path / 'results.v2'}"))
    assert [p.parent.name for p in written] == ["results.v2"]


@pytest.mark.parametrize("path", ["graph", "torch"])
def test_a_photo_with_a_video_output_is_one_line_before_any_work(tmp_path, photo_path, path):
    """Both paths of one photo (the shipped model's graph without torch, and torch's with a seed)."""
    seed = ["seed=0"] if path == "torch" else []
    with pytest.raises(TexnetError, match=r"^output '.*out.mp4' is a video but '.*' is a photo: name an image file"):
        stylize(stylize_cfg("checkpoint=mosaic", f"input={photo_path}", f"output={tmp_path / 'out.mp4'}", *seed))
    assert list(tmp_path.iterdir()) == []


def test_a_texture_output_file_takes_one_still_texture(tmp_path, texture_ckpt):
    with pytest.raises(
        TexnetError, match=r"^output '.*t.png' is a file but there are 4 textures to generate \(num=4\)"
    ):
        stylize(stylize_cfg(f"checkpoint={texture_ckpt}", "num=4", f"output={tmp_path / 't.png'}"))
    with pytest.raises(
        TexnetError, match=r"^output '.*t.mp4' is a video but a texture-mode network draws still images"
    ):
        stylize(stylize_cfg(f"checkpoint={texture_ckpt}", "num=1", f"output={tmp_path / 't.mp4'}"))
    assert list(tmp_path.iterdir()) == []


def test_tile_size_option_gives_the_untiled_result(tmp_path, ckpt):
    """stylize.py tile_size=: tiles with the whole photo's statistics, the same image as untiled (to 8-bit rounding)."""
    src = write_photo(tmp_path / "p.png", 150, 110)
    whole = stylize(
        stylize_cfg(f"checkpoint={ckpt}", f"input={src}", f"output={tmp_path / 'whole.png'}", "noise_factor=0")
    )
    tiled = stylize(
        stylize_cfg(
            f"checkpoint={ckpt}", f"input={src}", f"output={tmp_path / 'tiled.png'}", "noise_factor=0", "tile_size=32"
        )
    )
    a, b = (np.asarray(Image.open(p[0])).astype(int) for p in (whole, tiled))
    assert a.shape == b.shape == (110, 150, 3) and np.abs(a - b).max() <= 1
