"""A CSVLogger that continues a resumed run's metrics.csv.

Lightning's CSVLogger deletes an existing metrics.csv when it starts ("Previous log files in this directory will
be deleted"), so resuming a run in its own folder (``ckpt_path=<run>/checkpoints/last.ckpt``) lost every row before
the resumed step; it has no option to append, hence this subclass. Rows logged after the checkpoint by the
interrupted process (from a step the resumed run logs again) are dropped, so each step appears once.
"""

from __future__ import annotations

import csv

from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment


class AppendingExperimentWriter(ExperimentWriter):
    """ExperimentWriter that keeps an existing metrics.csv and appends to it."""

    def __init__(self, log_dir: str) -> None:
        self._continued = False
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        """Lightning deletes metrics.csv here; instead keep it and continue its columns."""
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])
            self._continued = True

    def save(self) -> None:
        if self._continued and self.metrics:  # first save of a resumed run: drop the old rows it is about to redo
            self._drop_rows_from(min(int(m["step"]) for m in self.metrics))
            self._continued = False
        super().save()

    def _drop_rows_from(self, step: int) -> None:
        with self._fs.open(self.metrics_file_path, "r", newline="") as file:
            rows = list(csv.DictReader(file))
        kept = [r for r in rows if not r.get("step") or int(float(r["step"])) < step]
        if len(kept) == len(rows):
            return
        with self._fs.open(self.metrics_file_path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.metrics_keys)
            writer.writeheader()
            writer.writerows(kept)


class AppendingCSVLogger(CSVLogger):
    """CSVLogger (same options) whose metrics.csv survives a resume: earlier rows are kept, new ones appended."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
