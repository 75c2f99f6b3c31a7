"""``precision: auto`` on a CPU: bf16 only where it measured faster than fp32, measured once per machine and kept."""

from __future__ import annotations

import json

import pytest
import torch

from texnet import precision

CPU = torch.device("cpu")
needs_bf16_cpu = pytest.mark.skipif(
    not precision.cpu_has_bf16(), reason="this CPU has no bf16 convolutions: auto is fp32 without measuring"
)


@pytest.fixture
def own_cache(tmp_path, monkeypatch):
    """An empty $TEXNET_CACHE, and the per-process answer forgotten before and after."""
    monkeypatch.setenv("TEXNET_CACHE", str(tmp_path))
    precision._bf16_is_fast.cache_clear()
    yield tmp_path
    precision._bf16_is_fast.cache_clear()


@needs_bf16_cpu
@pytest.mark.parametrize(("speedup", "bf16"), [(0.9, False), (1.1, False), (2.3, True)])
def test_auto_follows_the_measured_speedup_not_the_cpu_flags(own_cache, monkeypatch, speedup, bf16):
    """A CPU with AVX512-BF16 where bf16 measured no faster (session 47's Intel Xeon: 0.9x) trains in fp32."""
    monkeypatch.setattr(precision, "measure_cpu_bf16_speedup", lambda: speedup)
    assert precision.bf16_is_fast(CPU) is bf16
    assert precision.uses_bf16("auto", CPU) is bf16
    assert precision.uses_bf16("bf16", CPU) and not precision.uses_bf16("fp32", CPU)  # forced either way


@needs_bf16_cpu
def test_the_measurement_is_kept_per_machine_and_a_broken_cache_is_measured_again(own_cache, monkeypatch):
    calls = []
    monkeypatch.setattr(precision, "measure_cpu_bf16_speedup", lambda: calls.append(1) or 2.0)
    assert precision.cpu_bf16_speedup() == 2.0 and precision.cpu_bf16_speedup() == 2.0
    assert len(calls) == 1  # the second process (here: call) reads the file
    kept = json.loads((own_cache / precision.CACHE_NAME).read_text())
    assert kept == {precision.machine_key(): 2.0}
    # another machine's (or torch's) entry is not this one's: measured, and both kept
    (own_cache / precision.CACHE_NAME).write_text(json.dumps({"torch 0 cpu other": 0.5}))
    assert precision.cpu_bf16_speedup() == 2.0 and len(calls) == 2
    assert json.loads((own_cache / precision.CACHE_NAME).read_text()) == {"torch 0 cpu other": 0.5, **kept}
    (own_cache / precision.CACHE_NAME).write_text("{half a fi")  # a truncated file: measured, replaced
    assert precision.cpu_bf16_speedup() == 2.0 and len(calls) == 3
    assert json.loads((own_cache / precision.CACHE_NAME).read_text()) == kept


@needs_bf16_cpu
@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_the_first_ask_measures_inside_no_grad_and_inference_mode(own_cache, mode):
    """The first ask is inside no_grad (the loss's texture Gram targets, training and Gatys alike) and may be in
    inference_mode: the probe's backward failed there, so every run on a fresh machine fell back to fp32."""
    with mode():
        precision.bf16_is_fast(CPU)
    assert json.loads((own_cache / precision.CACHE_NAME).read_text())[precision.machine_key()] > 0


def test_an_unwritable_cache_costs_a_measurement_not_a_failure(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("TEXNET_CACHE", str(tmp_path / "file"))  # a file where the folder should be
    monkeypatch.setattr(precision, "measure_cpu_bf16_speedup", lambda: 1.5)
    assert precision.cpu_bf16_speedup() == 1.5
    folder = tmp_path / "cache"
    (folder / precision.CACHE_NAME).mkdir(parents=True)  # a folder where the file should be: the rename fails
    monkeypatch.setenv("TEXNET_CACHE", str(folder))
    assert precision.cpu_bf16_speedup() == 1.5
    assert [entry.name for entry in folder.iterdir()] == [precision.CACHE_NAME]  # no half-written file left


@needs_bf16_cpu
def test_bf16_that_fails_on_this_cpu_means_fp32_not_a_crash(own_cache, monkeypatch, caplog):
    def broken():
        raise RuntimeError("could not create a primitive\ndetails")

    monkeypatch.setattr(precision, "measure_cpu_bf16_speedup", broken)
    assert not precision.bf16_is_fast(CPU) and "(could not create a primitive); using fp32" in caplog.text
    assert not (own_cache / precision.CACHE_NAME).exists()  # not kept: the next run measures again


@needs_bf16_cpu
def test_a_failure_without_a_message_is_named_by_its_type(own_cache, monkeypatch, caplog):
    def broken():
        raise RuntimeError()

    monkeypatch.setattr(precision, "measure_cpu_bf16_speedup", broken)
    assert not precision.bf16_is_fast(CPU) and "(RuntimeError); using fp32" in caplog.text


def test_the_probe_times_both_paths_of_the_vgg():
    """The real measurement: a positive, finite ratio in well under the time of one training step."""
    speedup = precision.measure_cpu_bf16_speedup(size=32, rounds=1, reps=1)
    assert 0 < speedup < float("inf")
    convs = [m for m in precision.probe_stack() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512]  # VGG's to relu4_1
