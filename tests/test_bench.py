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
    side by side; a run folder that failed before its checkpoint is kept aside; run again, nothing is retrained;
    an arm whose options changed under the same name is refused in one line."""
    import json

    import torch

    out = tmp_path / "ab"
    (out / "a" / "mosaic_s0").mkdir(parents=True)
    (out / "a" / "mosaic_s0" / "train.log").write_text("a start that failed\n")

    def compare(b: str):
        return run_script(
            "bench/recipe_ab.py",
            *("--name", "t", "--out", str(out), "--seeds", "0", "--arm", "a=", "--arm", f"b={b}"),
            *("--train-args", TINY_RUN, "--quality-args", f"--size 64 --iterations 2 --cache {tmp_path / 'cache'}"),
            timeout=600,
        )

    done = compare("loss.tv_weight=0.25")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "a" / "mosaic_s0.failed1" / "train.log").read_text() == "a start that failed\n"
    row = next(line for line in done.stdout.splitlines() if line.startswith("| mosaic, 0 |"))
    a, b = (json.loads((out / arm / "mosaic_s0.json").read_text())["ratio"]["total"] for arm in "ab")
    assert f"**{a:.2f}**" in row.split("|")[2] and f"**{b:.2f}**" in row.split("|")[3]
    assert f"({100 * (b / a - 1):+.0f}%)" in row
    hp = torch.load(out / "b" / "mosaic_s0" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert hp["hyper_parameters"]["loss"]["tv_weight"] == 0.25 and hp["global_step"] == 2
    assert (out / "summary.md").read_text() in done.stdout and (out / "picture_mosaic.jpg").is_file()

    trained = {arm: (out / arm / "mosaic_s0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns for arm in "ab"}
    again = compare("loss.tv_weight=0.25")
    assert again.returncode == 0 and "2 runs (2 already scored)" in again.stdout
    assert trained == {a: (out / a / "mosaic_s0" / "checkpoints" / "last.ckpt").stat().st_mtime_ns for a in "ab"}

    changed = compare("loss.tv_weight=0.5")
    assert changed.returncode == 1 and "Traceback" not in changed.stderr
    assert (
        changed.stderr.strip().splitlines()[-1].startswith(f"error: {out / 'b' / 'mosaic_s0'} was started with other")
    )
