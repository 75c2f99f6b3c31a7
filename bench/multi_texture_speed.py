"""Training time of a network of several textures against a single-texture one: where issue 18's time budget goes.

Builds the default run's module (``texture=mosaic``) and ``experiment=multi_texture``'s (mosaic, starry, pebbles;
conditional instance norm) from conf/, and times in alternation, so a busy machine slows both alike: the training
step at each stage's crop and batch size (each step drawing its texture as training does), one validation pass
(every trained texture on the held-out photos) and one sample grid. From these and each config's steps, schedule,
``trainer.val_check_interval`` and ``sample_every`` it projects the two runs' wall time and their ratio.

    .venv/bin/python bench/multi_texture_speed.py [--steps 8] [extra overrides for both, e.g. model=residual]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from texnet.callbacks import SampleGrid
from texnet.module import TextureNetModule, build_module
from texnet.schedule import check_schedule, settings_at

CONFIG_DIR = Path(__file__).resolve().parents[1] / "conf"
ARMS = {
    "single (texture=mosaic)": ["texture=mosaic"],
    "three textures (experiment=multi_texture)": ["experiment=multi_texture"],
}


def compose_run(overrides: list[str]):
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


def build(cfg, size: int, batch: int) -> tuple[TextureNetModule, object]:
    torch.manual_seed(0)
    module, _ = build_module(cfg)
    module.setup("fit")
    data = instantiate(cfg.data, image_size=size, batch_size=batch, schedule=None)
    data.setup("fit")
    return module, data


def stages(cfg) -> list[tuple[int, int, int]]:
    """(steps, image_size, batch_size) of each stage of the run `cfg` trains, as texnet.schedule applies them."""
    total = cfg.trainer.max_steps
    schedule = check_schedule(OmegaConf.to_container(cfg.data.schedule) if cfg.data.get("schedule") else [])
    defaults = {"image_size": cfg.data.image_size, "batch_size": cfg.data.batch_size}
    starts = sorted({0, *(stage["step"] for stage in schedule if stage["step"] < total)})
    out = []
    for start, end in zip(starts, [*starts[1:], total]):
        settings = settings_at(schedule, start, defaults)
        out.append((end - start, settings["image_size"], settings["batch_size"]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8, help="timed steps per arm and stage")
    parser.add_argument("overrides", nargs="*", help="extra config overrides for both arms")
    args = parser.parse_args()
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    cfgs = {name: compose_run([*extra, *args.overrides]) for name, extra in ARMS.items()}
    plans = {name: stages(cfg) for name, cfg in cfgs.items()}
    shapes = sorted({(size, batch) for plan in plans.values() for _, size, batch in plan})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} timed steps per arm and stage")
    step_s: dict[tuple[str, int, int], float] = {}
    for size, batch in shapes:
        built = {name: build(cfg, size, batch) for name, cfg in cfgs.items()}
        loops = {}
        for name, (module, data) in built.items():
            loops[name] = (module, iter(data.train_dataloader()), module.configure_optimizers()["optimizer"])
        totals = {name: 0.0 for name in loops}
        for step in range(args.steps + 2):  # the first two warm up (allocator, oneDNN kernels)
            for name, (module, batches, optimizer) in loops.items():
                start = time.perf_counter()
                photos = next(batches)
                loss = module.model_step(photos, texture=module.drawn_textures(step, photos.shape[0]))["total"]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                totals[name] += (time.perf_counter() - start) if step >= 2 else 0.0
        for name in loops:
            step_s[name, size, batch] = totals[name] / args.steps
        print(f"\n{size} px, batch {batch}: seconds per training step")
        for name in loops:
            print(f"  {name:45} {step_s[name, size, batch]:.3f}")
        print(f"  {'ratio':45} {step_s[list(loops)[1], size, batch] / step_s[list(loops)[0], size, batch]:.3f}x")
    checks: dict[str, tuple[float, float]] = {}
    print("\nseconds per validation pass and per sample grid (held-out photos, every trained texture)")
    for name, cfg in cfgs.items():
        module, data = build(cfg, cfg.data.image_size, cfg.data.batch_size)
        grid = SampleGrid(out_dir=".", noise_multiples=cfg.noise_multiples)
        photos = data.val_images()
        start = time.perf_counter()
        with torch.no_grad():
            module.validation_step(photos, 0)  # the run's own pass (its logging needs a trainer: skipped here)
        middle = time.perf_counter()
        grid.render(SimpleNamespace(datamodule=data), module)
        checks[name] = (middle - start, time.perf_counter() - middle)
        print(f"  {name:45} {checks[name][0]:.2f} + {checks[name][1]:.2f}")
    print("\nprojected run (steps x step time + validations + sample grids), seconds")
    projected = {}
    for name, cfg in cfgs.items():
        steps = sum(n * step_s[name, size, batch] for n, size, batch in plans[name])
        validations, grids = (
            cfg.trainer.max_steps // cfg.trainer.val_check_interval,
            cfg.trainer.max_steps // cfg.sample_every + 1,
        )
        projected[name] = steps + validations * checks[name][0] + grids * checks[name][1]
        plan = " + ".join(f"{n} x {size} px" for n, size, _ in plans[name])
        print(f"  {name:45} {projected[name]:7.0f}  ({plan}, {validations} validations, {grids} grids)")
    single, multi = projected.values()
    print(f"  {'ratio':45} {multi / single:7.2f}x  (issue 18's budget: 2x)")


if __name__ == "__main__":
    main()
