"""texnet.batch: the photo loop stylize.py and the app share (batching, names, failures)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image
from test_stylize import write_photo

from texnet.batch import check_failures, stylize_files
from texnet.errors import TexnetError
from texnet.generator import build_generator
from texnet.inference import Stylizer

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


@pytest.fixture(scope="module")
def stylizer() -> Stylizer:
    torch.manual_seed(0)
    return Stylizer(build_generator(scales=3), torch.rand(1, 3, 32, 32), "random", device="cpu", backend="eager")


def test_photos_are_batched_by_size_and_failures_do_not_stop_the_others(tmp_path, stylizer, monkeypatch):
    photos = [
        write_photo(tmp_path / "in" / f"{name}.png", *size)
        for name, size in [("a", (40, 30)), ("b", (40, 30)), ("c", (50, 30)), ("d", (40, 30))]
    ]
    broken = tmp_path / "in" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    batches = []
    original = stylizer.stylize
    monkeypatch.setattr(stylizer, "stylize", lambda x, **kw: batches.append(tuple(x.shape)) or original(x, **kw))
    inputs = [(p, Path(p.name)) for p in [photos[0], photos[1], broken, photos[2], photos[3]]]
    result = stylize_files(stylizer, inputs, lambda name: tmp_path / "out" / name, seed=0, batch_size=2)
    assert batches == [(2, 3, 30, 40), (1, 3, 30, 50), (1, 3, 30, 40)]  # a, b together; c alone (its size); d
    assert [item.output.name for item in result.done] == ["a.png", "b.png", "c.png", "d.png"]
    assert all(Image.open(item.output).size == (item.width, item.height) for item in result.done)
    assert [(src, "not a readable image" in reason) for src, reason in result.failures] == [(broken, True)]
    check_failures(result.failures, len(inputs))  # some worked: logged, no error
    with pytest.raises(TexnetError, match="none of the 1 input"):
        check_failures(result.failures, 1)


def test_the_same_photos_seed_and_batch_size_give_the_same_images(tmp_path, stylizer):
    photo = write_photo(tmp_path / "p.png", 40, 30)
    runs = [
        stylize_files(
            stylizer,
            [(photo, Path(f"{run}a.png")), (photo, Path(f"{run}b.png"))],
            lambda name: tmp_path / name,
            seed=3,
            batch_size=2,
        )
        for run in (1, 2)
    ]
    first, second = ([torch.tensor(list(Image.open(item.output).getdata())) for item in run.done] for run in runs)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(*first)  # the two images of a batch get different noise
