"""The benchmarks users run on their own networks and photos (bench/quality_vs_gatys.py, bench/texture_vs_gatys.py)
say what is wrong with a bad argument in one line, as stylize.py does."""

import pytest
from conftest import run_script


@pytest.mark.parametrize("script", ["quality_vs_gatys.py", "texture_vs_gatys.py"])
def test_an_unknown_checkpoint_is_one_line(script):
    done = run_script(f"bench/{script}", "--checkpoint", "no-such-model")
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("error: 'no-such-model' is neither a checkpoint file nor a shipped model")
    ), done.stderr
    assert "Traceback" not in done.stderr


TINY_RUN = (
    "trainer.max_steps=2 trainer.val_check_interval=2 data.image_size=32 data.val_size=64 data.batch_size=2 "
    "model.scales=3 data.schedule=null sample_every=2 checkpoint_every=2 trainer.enable_progress_bar=false"
)


def test_recipe_ab_trains_scores_and_tables_each_arm_and_reruns_only_what_is_missing(tmp_path):
    """bench/recipe_ab.py: one run per arm and seed with the arm's options, each scored against Gatys and tabled
    side by side (a network of several textures on each of them); a run folder that failed before its checkpoint
    is kept aside; run again, nothing is retrained; an arm whose options changed under the same name is refused."""
    import json

    import torch

    out = tmp_path / "a b,c"  # characters Hydra parses in an override: the runs' paths are quoted for it
    (out / "a" / "mosaic_s0").mkdir(parents=True)
    (out / "a" / "mosaic_s0" / "train.log").write_text("a start that failed\n")

    def compare(b: str):
        return run_script(
            "bench/recipe_ab.py",
            *("--name", "t", "--out", str(out), "--seeds", "0", "--arm", "a=", "--arm", f"b={b}"),
            *("--train-args", TINY_RUN, "--quality-args", f"--size 64 --iterations 2 --cache {tmp_path / 'cache'}"),
            timeout=600,
        )

    two_textures = "loss.tv_weight=0.25 'texture.images=[mosaic,starry]'"
    done = compare(two_textures)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "a" / "mosaic_s0.failed1" / "train.log").read_text() == "a start that failed\n"
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in done.stdout.splitlines() if "|" in line}
    a, b = (json.loads((out / arm / "mosaic_s0.json").read_text()) for arm in "ab")
    assert sorted(a) == ["mosaic"] and sorted(b) == ["mosaic", "starry"]  # the second network scored on both
    assert f"**{a['mosaic']['ratio']['total']:.2f}**" in rows["mosaic, 0"][0]
    assert f"**{b['mosaic']['ratio']['total']:.2f}**" in rows["mosaic, 0"][1]
    assert (
        f"({100 * (b['mosaic']['ratio']['total'] / a['mosaic']['ratio']['total'] - 1):+.0f}%)" in rows["mosaic, 0"][1]
    )
    assert (
        rows["starry, 0"][0].strip() == "not run" and f"**{b['starry']['ratio']['total']:.2f}**" in rows["starry, 0"][1]
    )
    assert b["starry"]["texture"] == "starry"
    hp = torch.load(out / "b" / "mosaic_s0" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert hp["hyper_parameters"]["loss"]["tv_weight"] == 0.25 and hp["global_step"] == 2
    assert (out / "summary.md").read_text() in done.stdout
    assert (out / "picture_mosaic.jpg").is_file() and (out / "picture_starry.jpg").is_file()

    trained = {arm: (out / arm / "mosaic_s0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns for arm in "ab"}
    again = compare(two_textures)
    assert again.returncode == 0 and "2 runs (2 already scored)" in again.stdout
    assert trained == {arm: (out / arm / "mosaic_s0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns for arm in "ab"}

    changed = compare("loss.tv_weight=0.5")
    assert changed.returncode == 1 and "Traceback" not in changed.stderr
    assert (
        changed.stderr.strip().splitlines()[-1].startswith(f"error: {out / 'b' / 'mosaic_s0'} was started with other")
    )


def test_texture_diversity_up_to_shift_sees_one_picture_moved(monkeypatch):
    """bench/texture_vs_gatys.py: two samples that are one picture moved (what a circular-padded generator draws
    when its noise moves) score as fully diverse aligned, and near 0 up to shift; two different pictures do not."""
    from types import SimpleNamespace

    import torch
    import torch.nn.functional as F

    from texnet.vgg import VGGFeatures

    monkeypatch.syspath_prepend("bench")
    from texture_vs_gatys import diversity, diversity_up_to_shift

    perceptual = SimpleNamespace(extractor=VGGFeatures(["relu4_1"], arch="vgg16", weights="random"))
    torch.manual_seed(0)
    a, b = (F.interpolate(torch.rand(1, 3, 16, 16), size=64, mode="bilinear") for _ in range(2))
    moved = a.roll((20, 42), (-2, -1))  # not a multiple of relu4_1's 8 px in either direction
    assert diversity(perceptual, [a, moved]) > 0.3
    assert diversity_up_to_shift(perceptual, [a, moved]) < 0.2 * diversity(perceptual, [a, moved])
    assert diversity_up_to_shift(perceptual, [a, b]) > 0.5 * diversity(perceptual, [a, b])


def test_iterations_to_reach_counts_from_gatys_start(monkeypatch):
    """bench/quality_vs_gatys.py's "reached by Gatys after N iterations": row k of Gatys' curve is the loss after k
    iterations, reached at the time row k - 1 was written; 0 means the unchanged photo (Gatys' start) already
    scores at most the network's total; None, never within the run."""
    monkeypatch.syspath_prepend("bench")
    from quality_vs_gatys import iterations_to_reach, reach_text

    curve = [[0, 10.0, 1.5], [1, 6.0, 2.5], [2, 4.0, 3.5], [3, 3.0, 4.5]]
    assert iterations_to_reach(curve, 5.0) == (2, 2.5)
    assert iterations_to_reach(curve, 3.0) == (3, 3.5)
    assert iterations_to_reach(curve, 12.0) == (0, 0.0)
    assert iterations_to_reach(curve, 2.0) is None
    assert reach_text(iterations_to_reach(curve, 5.0), 3, "the photo") == "2 L-BFGS iterations (2.5 s)"
    assert (
        reach_text(iterations_to_reach(curve, 12.0), 3, "the photo")
        == "0 iterations (the photo, Gatys' start, scores lower)"
    )
    assert reach_text(iterations_to_reach(curve, 2.0), 3, "the photo") == "more than 3 iterations"
