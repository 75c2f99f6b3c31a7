"""Loss curves of a training run (its csv/metrics.csv) as one PNG, with the Gatys baseline as reference lines.

    .venv/bin/python bench/loss_curves.py runs/mosaic/<date> [--gatys-content 82.4 --gatys-style 25.7] [--out curves.png]

Prints the validation table too. The Gatys values are what bench/quality_vs_gatys.py reported for the same
photos and loss weights; with them the plot marks the quality target (style <= Gatys, content <= 1.5x Gatys).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def read_metrics(run_dir: Path) -> tuple[dict[str, list[tuple[int, float]]], dict[str, list[tuple[int, float]]]]:
    """(train, val) series: name -> [(step, value)] from Lightning's CSVLogger file."""
    path = run_dir / "csv" / "metrics.csv"
    if not path.is_file():
        raise SystemExit(f"error: '{path}' not found: pass a run folder written by train.py")
    train: dict[str, list[tuple[int, float]]] = {}
    val: dict[str, list[tuple[int, float]]] = {}
    with path.open() as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if value and key.startswith(("train/", "val/")) and "per_s" not in key:
                    split, name = key.split("/", 1)
                    (train if split == "train" else val).setdefault(name, []).append(
                        (int(row["step"]) + 1, float(value))
                    )
    return train, val


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--gatys-content", type=float)
    parser.add_argument("--gatys-style", type=float)
    parser.add_argument("--out", type=Path, help="PNG path (default: <run_dir>/loss_curves.png)")
    args = parser.parse_args()
    train, val = read_metrics(args.run_dir)
    if "total" not in val:
        raise SystemExit(f"error: no validation losses in '{args.run_dir}/csv/metrics.csv' yet")

    print(f"{'step':>6} {'content':>9} {'style':>9} {'total':>9}")
    for (step, total), (_, content), (_, style) in zip(val["total"], val["content"], val["style"]):
        print(f"{step:6d} {content:9.1f} {style:9.1f} {total:9.1f}")

    gatys = {"content": args.gatys_content, "style": args.gatys_style, "total": None}
    if args.gatys_content is not None and args.gatys_style is not None:
        gatys["total"] = args.gatys_content + args.gatys_style
    fig, axes = plt.subplots(1, 3, figsize=(15, 4), constrained_layout=True)
    for ax, name in zip(axes, ("content", "style", "total")):
        steps, values = zip(*train[name])
        ax.plot(steps, values, color="0.75", linewidth=0.8, label="train (batch)")
        steps, values = zip(*val[name])
        ax.plot(steps, values, "o-", color="C0", label="validation (4 photos, 256 px)")
        reference = gatys[name]
        if reference is not None:
            ax.axhline(reference, color="C3", linestyle="--", label="Gatys L-BFGS x100")
            if name == "content":
                ax.axhline(1.5 * reference, color="C3", linestyle=":", label="1.5x Gatys (target)")
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
    out = args.out or args.run_dir / "loss_curves.png"
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
