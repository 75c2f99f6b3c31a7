"""texnet.run_folder through train(): a used run folder is refused before anything is written, a failed start
leaves no folder behind (through train() and through train.py)."""

import pytest
from conftest import tiny_cfg

from texnet.errors import TexnetError
from texnet.training import train


def test_second_run_into_a_used_folder_is_refused(tmp_path, coco_root):
    """A run folder that holds a run is never trained into again (it overwrote metrics, config and samples)."""
    run = tmp_path / "run"
    train(tiny_cfg(run, coco_root, "trainer.max_steps=2", "trainer.val_check_interval=2"))
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()}
    with pytest.raises(
        TexnetError,
        match=r"run folder '.*run' already holds a run \(checkpoints, config.yaml, csv, samples\): "
        r"pass a new hydra.run.dir=, or resume that run with ckpt_path=.*last.ckpt",
    ) as err:
        train(tiny_cfg(run, coco_root, "trainer.max_steps=2", "trainer.val_check_interval=2"))
    assert "\n" not in str(err.value)
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*") if p.is_file()} == before


def test_failed_start_leaves_no_run_folder(tmp_path, coco_root):
    """A start that fails removes the folder it created, never one that existed (here: with a file of the user's)."""
    new = tmp_path / "new"
    with pytest.raises(
        TexnetError, match="COCO image folder .* does not exist"
    ):  # found in fit, after config.yaml was written
        train(tiny_cfg(new, tmp_path / "no_coco"))
    assert not new.exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(TexnetError, match="missing.jpg"):
        train(tiny_cfg(mine, coco_root, f"texture.image={tmp_path / 'missing.jpg'}"))
    assert (mine / "notes.txt").read_text() == "mine"
    # the folders made for it above it go too (rmdir: only while empty, so nothing written meanwhile is lost)
    above = tmp_path / "above"
    with pytest.raises(TexnetError, match="COCO image folder .* does not exist"):  # after config.yaml was written
        train(tiny_cfg(above / "a" / "run", tmp_path / "no_coco"))
    assert not above.exists()


def test_command_line_refuses_a_used_folder_before_hydra_writes_and_cleans_failed_starts(tmp_path):
    """Through train.py: Hydra's .hydra/ of the earlier run is untouched, and a failed start leaves no folder."""
    from conftest import run_script

    def train_py(*overrides: str):
        return run_script("train.py", *overrides)

    used = tmp_path / "used"
    (used / ".hydra").mkdir(parents=True)
    (used / ".hydra" / "config.yaml").write_text("earlier run\n")
    done = train_py(f"hydra.run.dir={used}")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: run folder '{used}' already holds a run (.hydra)")
    assert (used / ".hydra" / "config.yaml").read_text() == "earlier run\n" and sorted(used.iterdir()) == [
        used / ".hydra"
    ]

    # the default folder's form: interpolated from the texture's name (it used to escape the check with a warning)
    texture_named = tmp_path / "named" / "mosaic"
    (texture_named / ".hydra").mkdir(parents=True)
    (texture_named / ".hydra" / "config.yaml").write_text("earlier run\n")
    done = train_py("hydra.run.dir=" + str(tmp_path / "named") + "/${hydra:runtime.choices.texture}")
    assert done.returncode == 1 and "already holds a run (.hydra)" in done.stderr.strip().splitlines()[-1]
    assert (texture_named / ".hydra" / "config.yaml").read_text() == "earlier run\n"

    # runs/<texture name>/<date>, as the default folder: a start that fails leaves no runs/<name>/ behind either
    runs = tmp_path / "runs"
    runs.mkdir()
    fresh = runs / "missing" / "2026-01-01_00-00-00"
    done = train_py(f"texture.image={tmp_path / 'missing.jpg'}", f"hydra.run.dir={fresh}")
    assert done.returncode == 1 and "missing.jpg" in done.stderr.strip().splitlines()[-1]
    assert runs.is_dir() and list(runs.iterdir()) == []


@pytest.mark.parametrize("case", ["missing", "shipped_model"])
def test_a_ckpt_path_that_cannot_resume_is_one_line_and_leaves_no_folder(tmp_path, coco_root, case):
    """ckpt_path= resumes a run: a missing file, or a shipped model (no optimiser state: init_from's job), is said in
    one line before the run starts, not Lightning's traceback from inside fit."""
    from texnet.models import resolve_checkpoint

    ckpt = tmp_path / "nope.ckpt" if case == "missing" else resolve_checkpoint("mosaic")
    message = (
        "is not a file: pass a run's checkpoint" if case == "missing" else "start a new run from it with init_from="
    )
    run = tmp_path / "run"
    with pytest.raises(TexnetError, match=f"^ckpt_path '.*' .*{message}") as err:
        train(tiny_cfg(run, coco_root, f"ckpt_path={ckpt}"))
    assert "\n" not in str(err.value)
    assert not run.exists()


def test_each_resume_keeps_the_hydra_files_of_the_start_before_it(tmp_path):
    """Hydra rewrites .hydra/ at every start: a resume moves the previous start's files aside, numbered."""
    from texnet.run_folder import keep_hydra_files

    hydra = tmp_path / ".hydra"
    assert keep_hydra_files(hydra) is None  # a run Hydra never wrote into: nothing to keep
    for start in ("texture=starry", "trainer.max_steps=2000"):
        hydra.mkdir(exist_ok=True)
        (hydra / "overrides.yaml").write_text(f"- {start}\n")
        (hydra / "config.yaml").write_text("seed: 0\n")
        keep_hydra_files(hydra)
    assert (hydra / "start_1" / "overrides.yaml").read_text() == "- texture=starry\n"
    assert (hydra / "start_2" / "overrides.yaml").read_text() == "- trainer.max_steps=2000\n"
    assert not (hydra / "overrides.yaml").exists()


def test_a_resume_goes_on_in_the_checkpoints_run_folder_only_if_train_py_wrote_it(tmp_path):
    from texnet.run_folder import resume_folder

    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.touch()
    assert resume_folder(str(ckpt), "runs/new") == "runs/new"  # no config.yaml: not a texnet run folder
    (tmp_path / "run" / "config.yaml").write_text("seed: 0\n")
    assert resume_folder(str(ckpt), "runs/new") == str(tmp_path / "run")
    assert resume_folder(None, "runs/new") == "runs/new"
    assert resume_folder(str(tmp_path / "elsewhere.ckpt"), "runs/new") == "runs/new"
