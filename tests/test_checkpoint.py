"""texnet.checkpoint: the format train.py writes, read back, checked with one-line errors, and rebuilt."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_stylize import train_checkpoint

from texnet.checkpoint import (
    KIND,
    checkpoint_generator,
    checkpoint_texture,
    checkpoint_texture_name,
    describe_checkpoint,
    read_checkpoint,
)
from texnet.errors import TexnetError

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors: see conftest.one_thread


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory) -> Path:
    return train_checkpoint(tmp_path_factory.mktemp("checkpoint_net"))


def test_train_writes_the_texnet_entry_and_it_reads_back(ckpt_path):
    ckpt = read_checkpoint(ckpt_path)
    assert ckpt["texnet"] == {"kind": KIND, "texture_name": "mosaic"}
    assert describe_checkpoint(ckpt) == {
        "texture": "mosaic",
        "mode": "stylize",
        "arch": "pyramid",
        "steps": 2,
        "noise_factor": 0.05,
    }
    assert checkpoint_texture(ckpt, ckpt_path).shape[:2] == (1, 3)


def test_the_rebuilt_generator_has_the_trained_weights(ckpt_path):
    ckpt = read_checkpoint(ckpt_path)
    generator = checkpoint_generator(ckpt, ckpt_path)
    assert type(generator).__name__ == "PyramidGenerator" and generator.scales == 3
    trained = {k.removeprefix("generator."): v for k, v in ckpt["state_dict"].items() if k.startswith("generator.")}
    assert trained.keys() == generator.state_dict().keys()
    assert all(torch.equal(v, generator.state_dict()[k]) for k, v in trained.items())


def test_settings_that_do_not_match_the_weights_are_one_line_errors(ckpt_path, tmp_path):
    ckpt = read_checkpoint(ckpt_path)
    ckpt["hyper_parameters"]["model"]["scales"] = 4
    with pytest.raises(TexnetError, match="does not match its model settings") as err:
        checkpoint_generator(ckpt, ckpt_path)
    assert "\n" not in str(err.value)
    del ckpt["state_dict"]["texture"]
    with pytest.raises(TexnetError, match="holds no texture image"):
        checkpoint_texture(ckpt, ckpt_path)


def test_texture_name_falls_back_to_the_training_config():
    assert (
        checkpoint_texture_name(
            {"texnet": {"kind": KIND, "texture_name": "a"}, "hyper_parameters": {"texture": {"name": "b"}}}
        )
        == "a"
    )
    assert checkpoint_texture_name({"texnet": {"kind": KIND}, "hyper_parameters": {"texture": {"name": "b"}}}) == "b"
    assert checkpoint_texture_name({"texnet": {"kind": KIND}}) == "texture"


@pytest.mark.parametrize(
    "content,message",
    [
        (None, "does not exist"),
        (b"not a checkpoint\n", "is not a PyTorch checkpoint"),
        ({"state_dict": {}}, "is not a texnet checkpoint"),
        ({"texnet": {"kind": "other"}}, "its texnet.kind is 'other'"),
        ({"texnet": {"kind": KIND}, "path": Path("x")}, "holds Python objects"),
    ],
)
def test_files_that_are_not_texnet_checkpoints_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "model.ckpt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(TexnetError, match=message) as err:
        read_checkpoint(path)
    assert str(path) in str(err.value) and "train.py" in str(err.value) and "\n" not in str(err.value)
