"""texnet.image on the files real photo folders hold, end to end through stylize.py and Stylizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_stylize import stylize_cfg, train_checkpoint, write_photo

from stylize import stylize
from texnet.errors import TexnetError
from texnet.image import load_image, next_free_dir, open_rgb, pil_to_tensor, save_image, tensor_to_pil
from texnet.inference import load

EXIF_ORIENTATION = 0x0112


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


@pytest.fixture(scope="module")
def odd_images(tmp_path_factory) -> dict[str, Path]:
    """Grayscale, RGBA, palette with transparency, 16-bit grayscale PNG and an EXIF-rotated JPEG (60x40 stored, 40x60 upright)."""
    root = tmp_path_factory.mktemp("odd")
    rgb = np.asarray(Image.open(write_photo(root / "src.png", 60, 40)))
    paths = {
        "gray": root / "gray.png",
        "rgba": root / "rgba.png",
        "palette": root / "palette.png",
        "sixteen": root / "sixteen.png",
        "rotated": root / "rotated.jpg",
    }
    Image.fromarray(rgb).convert("L").save(paths["gray"])
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    rgba[:, :30, 3] = 0  # left half fully transparent
    Image.fromarray(rgba, "RGBA").save(paths["rgba"])
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(paths["palette"], transparency=0)
    ramp = (np.linspace(0, 65535, 60)[None, :].repeat(40, 0)).astype(np.uint16)
    Image.fromarray(ramp).save(paths["sixteen"])  # PIL mode I;16
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6  # stored sideways: viewers rotate it 90 degrees clockwise
    Image.fromarray(rgb).save(paths["rotated"], exif=exif)
    (root / "src.png").unlink()
    return paths


def test_open_rgb_normalises_every_mode(odd_images):
    images = {name: open_rgb(path) for name, path in odd_images.items()}
    assert {img.mode for img in images.values()} == {"RGB"}
    assert images["rotated"].size == (40, 60)  # EXIF orientation applied
    assert all(img.size == (60, 40) for name, img in images.items() if name != "rotated")
    rgba = np.asarray(images["rgba"])
    assert (rgba[:, :30] == 255).all()  # transparent pixels land on white
    ramp = np.asarray(images["sixteen"])[0, :, 0]
    assert ramp[0] == 0 and ramp[-1] == 255 and (np.diff(ramp.astype(int)) >= 0).all()  # 16-bit rescaled, not clipped


def test_odd_inputs_are_stylised_at_their_upright_size(tmp_path, odd_images):
    ckpt = train_checkpoint(tmp_path / "net")
    written = stylize(
        stylize_cfg(f"checkpoint={ckpt}", f"input={odd_images['gray'].parent}", f"output={tmp_path / 'out'}")
    )
    assert {p.stem: Image.open(p).size for p in written} == {
        "gray": (60, 40),
        "rgba": (60, 40),
        "palette": (60, 40),
        "sixteen": (60, 40),
        "rotated": (40, 60),
    }
    stylizer = load(ckpt)
    transparent = Image.new("RGBA", (48, 48), (10, 200, 30, 0))
    white = Image.new("RGB", (48, 48), (255, 255, 255))
    assert np.array_equal(
        np.asarray(stylizer.stylize(transparent, noise_factor=0)), np.asarray(stylizer.stylize(white, noise_factor=0))
    )
    sideways = Image.open(odd_images["rotated"])  # a PIL image keeps its EXIF tag: stylize applies it too
    assert sideways.size == (60, 40) and stylizer.stylize(sideways).size == (40, 60)


def test_unreadable_files_are_one_line_errors(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    for path, message in [(broken, "not a readable image"), (tmp_path / "missing.jpg", "does not exist")]:
        with pytest.raises(TexnetError, match=message) as err:
            open_rgb(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_load_image_keeps_aspect_and_refuses_tiny_images(tmp_path):
    path = write_photo(tmp_path / "p.png", 200, 100)
    assert load_image(path, max_size=64).shape == (1, 3, 32, 64)
    assert load_image(path).shape == (1, 3, 100, 200)
    with pytest.raises(TexnetError, match="at least 32 px"):
        load_image(write_photo(tmp_path / "tiny.png", 20, 40))


def test_tensor_round_trip_and_no_overwrite(tmp_path):
    img = Image.open(write_photo(tmp_path / "p.png", 30, 20))
    assert np.array_equal(np.asarray(tensor_to_pil(pil_to_tensor(img))), np.asarray(img))
    out = save_image(img, tmp_path / "out" / "x.png")
    with pytest.raises(TexnetError, match="already exists"):
        save_image(img, out)
    save_image(Image.new("RGB", (5, 5)), out, overwrite=True)
    assert Image.open(out).size == (5, 5)
    (tmp_path / "run").mkdir()
    assert next_free_dir(tmp_path / "run") == tmp_path / "run-2" and next_free_dir(tmp_path / "new") == tmp_path / "new"


def test_one_list_of_formats_from_pillow():
    """Folder listings go by IMAGE_EXTENSIONS, single files by the detected format: both come from READABLE_FORMATS."""
    from PIL import Image as PILImage

    from texnet.image import IMAGE_EXTENSIONS, READABLE_FORMATS

    assert {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"} <= set(IMAGE_EXTENSIONS)
    assert {PILImage.registered_extensions()[e] for e in IMAGE_EXTENSIONS} <= set(READABLE_FORMATS)
    assert ".pdf" not in IMAGE_EXTENSIONS and ".ico" not in IMAGE_EXTENSIONS


def test_other_pillow_formats_are_refused_by_name(tmp_path):
    icon = tmp_path / "icon.ico"
    Image.new("RGB", (48, 48), (200, 10, 10)).save(icon)
    with pytest.raises(
        TexnetError,
        match=r"'.*icon.ico' is a ICO file, which texnet does not read: convert it to one of JPEG, PNG, GIF",
    ):
        open_rgb(icon)


def test_large_images_decode_quietly_up_to_the_documented_limit(tmp_path, monkeypatch):
    """Above Pillow's decompression-bomb threshold no warning; above texnet.image.MAX_PIXELS one line (header only)."""
    import warnings

    from PIL import Image as PILImage

    from texnet import image

    path = tmp_path / "wide.png"
    Image.new("RGB", (400, 300), (0, 90, 200)).save(path)
    monkeypatch.setattr(
        PILImage, "MAX_IMAGE_PIXELS", 50_000
    )  # Pillow would warn from 50,000 px and refuse from 100,000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert open_rgb(path).size == (400, 300)
    assert PILImage.MAX_IMAGE_PIXELS == 50_000  # restored
    monkeypatch.setattr(image, "MAX_PIXELS", 100_000)
    with pytest.raises(
        TexnetError,
        match=r"is 400x300 px \(0 MP\), above texnet's limit of 0 MP \(texnet.image.MAX_PIXELS\): downscale it",
    ):
        open_rgb(path)


def test_check_output_refuses_unwritable_targets_before_any_work(tmp_path):
    from texnet.image import check_output

    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(
        TexnetError, match=r"output '.*file.txt/x.png' cannot be created: '.*file.txt' is a file, not a folder"
    ):
        check_output(tmp_path / "file.txt" / "x.png", folder=False)
    with pytest.raises(TexnetError, match=r"output '.*file.txt' exists and is not a folder"):
        check_output(tmp_path / "file.txt")
    check_output(tmp_path / "new" / "deeper")  # missing folders are fine: they are created on write
    check_output(tmp_path / "new" / "x.png", folder=False)
    assert not (tmp_path / "new").exists()
    with pytest.raises(TexnetError, match=r"output '/proc/texnet_out/x.png' cannot be written \(.* in '/proc'\)"):
        check_output(Path("/proc/texnet_out/x.png"), folder=False)  # /proc refuses new files even for root


def test_an_image_too_small_for_the_vgg_names_the_option_that_shrank_it(tmp_path):
    from texnet.textures import load_texture

    wide = tmp_path / "wide.png"
    Image.new("RGB", (600, 400), "red").save(wide)
    with pytest.raises(
        TexnetError, match=r"is 16x11 px at texture.size=16: VGG needs at least 32 px per side; raise texture.size$"
    ):
        load_texture(wide, 16)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (40, 20), "red").save(tiny)
    with pytest.raises(
        TexnetError, match=r"'.*tiny.png' is 40x20 px: VGG needs at least 32 px per side; use a larger image$"
    ):
        load_texture(tiny, 256)
