"""texnet.csv_logger: a run resumed in its own folder keeps its metrics.csv rows, each step once."""

import csv
from pathlib import Path

from conftest import tiny_cfg

from texnet.training import train


def metric_steps(run_dir: Path) -> list[int]:
    """The step of every row in a run's metrics.csv, in file order."""
    return [int(r["step"]) for r in csv.DictReader((run_dir / "csv" / "metrics.csv").open())]


def test_resume_in_its_own_folder_keeps_the_metrics_rows(tmp_path, coco_root):
    """Resuming after a kill: rows before the checkpoint stay, rows the killed run logged after it are redone once."""
    run = tmp_path / "run"
    steps = ("trainer.log_every_n_steps=1", "trainer.val_check_interval=4")
    train(tiny_cfg(run, coco_root, "trainer.max_steps=4", *steps))
    ckpt4 = run / "checkpoints" / "step4.ckpt"  # what last.ckpt held when the run was "killed" at step 8
    ckpt4.write_bytes((run / "checkpoints" / "last.ckpt").read_bytes())
    train(tiny_cfg(run, coco_root, "trainer.max_steps=8", *steps, f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}"))
    assert sorted(set(metric_steps(run))) == list(range(8))
    first = metric_steps(run)
    result = train(tiny_cfg(run, coco_root, "trainer.max_steps=10", *steps, f"ckpt_path={ckpt4}"))
    assert result["global_step"] == 10
    again = metric_steps(run)
    assert again[: first.index(4)] == first[: first.index(4)]  # the rows before the resumed step, untouched
    assert sorted(set(again)) == list(range(10)) and again.count(5) == first.count(5)  # steps 4-7 once, not twice
    val_steps = [int(r["step"]) for r in csv.DictReader((run / "csv" / "metrics.csv").open()) if r.get("val/total")]
    assert val_steps == [3, 7]  # validations after steps 4 and 8 (logged at steps 3 and 7), each once
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt", "step4.ckpt"]
