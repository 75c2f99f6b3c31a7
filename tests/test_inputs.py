"""What ``Stylizer.stylize`` takes: a path, a PIL image, a float or uint8 tensor, a numpy image (OpenCV, scikit-image,
Gradio), each coming back in its own kind; anything else, or pixels that are not in [0, 1], is a one-line error."""

import numpy as np
import pytest
import torch
from PIL import Image

import texnet
from texnet.errors import TexnetError


@pytest.fixture(scope="module")
def mosaic():
    return texnet.load("mosaic", device="cpu")


@pytest.fixture(scope="module")
def photo() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (72, 96, 3), dtype=np.uint8))


def test_numpy_images_give_the_pil_result_in_their_own_dtype(mosaic, photo):
    expected = np.asarray(mosaic.stylize(photo, seed=0))
    array = np.asarray(photo)
    out = mosaic.stylize(array, seed=0)
    assert out.dtype == np.uint8 and out.shape == (72, 96, 3) and np.array_equal(out, expected)
    out = mosaic.stylize(array.astype(np.float32) / 255, seed=0)
    assert out.dtype == np.float32 and np.abs(out * 255 - expected).max() < 1e-3
    grey = mosaic.stylize(array[..., 0], seed=0)  # (H, W): grey, as a photo file in mode L
    assert grey.shape == (72, 96, 3) and np.array_equal(grey, np.asarray(mosaic.stylize(photo.getchannel(0), seed=0)))


def test_a_uint8_tensor_is_read_as_0_to_255_and_comes_back_uint8(mosaic, photo):
    tensor = torch.from_numpy(np.asarray(photo).copy()).permute(2, 0, 1)
    out = mosaic.stylize(tensor, seed=0)
    expected = (mosaic.stylize(tensor.float() / 255, seed=0) * 255).round()
    assert out.dtype == torch.uint8 and out.shape == tensor.shape and torch.equal(out.float(), expected)


@pytest.mark.parametrize(
    "image, message",
    [
        (torch.rand(1, 3, 32, 32) * 255, r"image tensor holds values from .* to .*: expected RGB in \[0, 1\]"),
        (torch.rand(3, 32, 32) * 2 - 1, r"image tensor holds values from -.*: expected RGB in \[0, 1\]"),
        (np.full((32, 32, 3), 200.0), r"numpy image holds values from 200 to 200: expected RGB in \[0, 1\]"),
        (np.zeros((32, 32, 2), np.uint8), r"numpy image has shape \(32, 32, 2\): expected \(H, W\)"),
        (np.zeros((32, 32, 3), np.int64), r"numpy image has dtype int64: expected uint8"),
        ([[0, 1], [1, 0]], r"cannot stylise a list: pass a path, a PIL image, a tensor or a numpy image"),
    ],
)
def test_what_is_not_an_rgb_image_in_range_is_one_line(mosaic, image, message):
    with pytest.raises(TexnetError, match=f"^{message}") as err:
        mosaic.stylize(image)
    assert "\n" not in str(err.value)
