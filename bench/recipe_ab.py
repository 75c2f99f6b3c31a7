"""Two or more training recipes side by side over seeds and textures, each run scored against Gatys-100.

The comparison every recipe change in docs/results.md rests on, as one command: each (arm, texture, seed) is one
``train.py`` run (the arm's options, the texture, the seed) on one core, as many at once as ``--cores`` lists, then
``bench/quality_vs_gatys.py`` on its last checkpoint (held-out photos; Gatys' results cached per texture, computed
once before the runs). Runs of the same seed are paired: a seed's outcome survives rounding-level changes, so the
table shows each seed's total beside the first arm's, then each arm's mean per texture. Stopped and started again
with the same arguments, it scores what is finished, resumes a stopped run from its last checkpoint, and starts
the rest; a run that failed before its first checkpoint is moved aside (``<folder>.failed<k>``), never deleted.

    JITTER='{_target_:torchvision.transforms.v2.ColorJitter,brightness:0.3,contrast:0.3,saturation:0.3,hue:0.1}'
    FLIP='{_target_:torchvision.transforms.v2.RandomVerticalFlip,p:0.25}'
    .venv/bin/python bench/recipe_ab.py --name vflip --texture mosaic --texture bench/textures/stained.jpg \\
        --seeds 0 1 2 --arm default= --arm "vflip='data.augment=[$JITTER,$FLIP]'"

(docs/results.md's session 42 comparison: a list option replaces the default's list, so the arm repeats the jitter.)

Each ``--arm NAME=OPTIONS`` holds train.py options as typed in a shell (quoted as a shell would split them); the
first arm is the one the others are compared with. An arm that trains a network of several textures
(``experiment=multi_texture``, ``'texture.images=[...]'``) is scored on each of them (``--mix``), and one of
``texture.add`` on the added texture: the table has a row per texture scored. Outputs in
``bench/results/recipe_ab/<name>/``: the run folders (``<arm>/<texture>_s<seed>``), each run's scores (``.json``,
by texture; ``.<texture>.png``) and log, ``summary.md`` (the table), ``summary.json`` and one picture per texture
(photo | each arm's seeds | Gatys-100, a row per held-out photo).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from texnet.cli import hydra_value  # noqa: E402
from texnet.errors import TexnetError  # noqa: E402
from texnet.textures import builtin_textures, texture_name  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "recipe_ab"


@dataclass(frozen=True)
class Job:
    arm: str
    options: tuple[str, ...]
    texture: str
    seed: int
    folder: Path

    @property
    def scores(self) -> Path:
        return self.folder.with_suffix(".json")

    @property
    def recipe(self) -> Path:
        """What the run was started with (options, texture, seed), to refuse reusing it for another recipe."""
        return self.folder.with_suffix(".recipe.json")

    def recipe_data(self) -> dict:
        return {"options": list(self.options), "texture": self.texture, "seed": self.seed}

    def texture_option(self) -> str:
        if self.texture in builtin_textures():
            return f"texture={self.texture}"
        return f"texture.image={hydra_value(self.texture)}"


def parse_arm(spec: str) -> tuple[str, tuple[str, ...]]:
    name, sep, options = spec.partition("=")
    if not sep or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise TexnetError(f"--arm '{spec}' must be NAME=OPTIONS (NAME letters, digits, - or _; OPTIONS may be empty)")
    try:
        return name, tuple(shlex.split(options))
    except ValueError as err:
        raise TexnetError(f"--arm '{spec}': its options cannot be split as a shell would ({err})") from None


def plan(args: argparse.Namespace, out: Path) -> list[Job]:
    arms = [parse_arm(spec) for spec in args.arm]
    names = [name for name, _ in arms]
    if len(set(names)) != len(names) or len(arms) < 2:
        raise TexnetError(f"--arm: give two or more arms with different names (got {', '.join(names) or 'none'})")
    for texture in args.texture:
        if texture not in builtin_textures() and not Path(texture).is_file():
            raise TexnetError(
                f"--texture '{texture}' is neither a built-in texture ({', '.join(builtin_textures())}) nor an image file"
            )
    # the runs start in the project root: paths given relative to where this command runs are made absolute
    textures = list(dict.fromkeys(t if t in builtin_textures() else str(Path(t).resolve()) for t in args.texture))
    stems = [texture_name(t) for t in textures]
    if len(set(stems)) != len(stems):
        raise TexnetError(
            f"--texture: two textures share a file name ({', '.join(stems)}); their runs would share folders"
        )
    extra = tuple(shlex.split(args.train_args))
    jobs = [
        Job(name, (*options, *extra), texture, seed, out / name / f"{texture_name(texture)}_s{seed}")
        for seed in dict.fromkeys(args.seeds)
        for texture in textures
        for name, options in arms
    ]
    for job in jobs:
        if job.recipe.is_file() and json.loads(job.recipe.read_text()) != job.recipe_data():
            raise TexnetError(
                f"{job.folder} was started with other options ({job.recipe.read_text().strip()}): give this "
                "comparison another --name, or move that folder away"
            )
    return jobs


def run(command: list[str], log: Path, core: int | None, threads: int) -> int:
    """`command` from the project root, its output to `log`, pinned to `core` where the OS allows it."""
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None and hasattr(os, "sched_setaffinity") else None
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with log.open("a") as out:
        return subprocess.run(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env, preexec_fn=pin
        ).returncode


def train_command(job: Job) -> list[str]:
    """A new run in the job's folder, or the resume of the one there (it goes on with its own options)."""
    last = job.folder / "checkpoints" / "last.ckpt"
    if last.is_file():
        return [sys.executable, "train.py", f"ckpt_path={hydra_value(last)}"]
    if job.folder.exists():  # failed before its first checkpoint: kept aside, not deleted
        k = 1
        while job.folder.with_name(f"{job.folder.name}.failed{k}").exists():
            k += 1
        job.folder.rename(job.folder.with_name(f"{job.folder.name}.failed{k}"))
    return [
        sys.executable,
        "train.py",
        job.texture_option(),
        f"seed={job.seed}",
        *job.options,
        f"hydra.run.dir={hydra_value(job.folder)}",
    ]


def network_textures(job: Job) -> list[str | None]:
    """The textures to score the job's network on, by name for ``--mix``: each texture of a network of several
    (``texture.images`` in its config.yaml), the added one of ``texture.add``, or [None]: its only texture."""
    from omegaconf import OmegaConf

    texture = OmegaConf.load(job.folder / "config.yaml").get("texture", {})
    if texture.get("add"):
        return [texture_name(texture.add)]
    images = texture.get("images") or []
    return [texture_name(image) for image in images] if len(images) > 1 else [None]


def score(job: Job, core: int | None, args: argparse.Namespace, log: Path) -> bool:
    """bench/quality_vs_gatys.py on the job's last checkpoint, once per texture of its network; the scores by
    texture name in ``job.scores`` (written last: a job is done when it exists)."""
    scores = {}
    for mix in network_textures(job):
        name = mix or texture_name(job.texture)
        result, picture = (job.folder.with_suffix(f".{name}{suffix}") for suffix in (".json", ".png"))
        command = [
            *(
                sys.executable,
                "bench/quality_vs_gatys.py",
                "--checkpoint",
                str(job.folder / "checkpoints" / "last.ckpt"),
            ),
            *(("--mix", mix) if mix else ()),
            *("--json", str(result), "--picture", str(picture), *shlex.split(args.quality_args)),
        ]
        if run(command, log, core, args.threads) != 0:
            return False
        scores[name] = json.loads(result.read_text())
    job.scores.write_text(json.dumps(scores, indent=2))
    return True


def work(
    jobs: queue.Queue, core: int | None, args: argparse.Namespace, failed: list[str], stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            job = jobs.get_nowait()
        except queue.Empty:
            return
        name = f"{job.arm}/{job.folder.name}"
        log = job.folder.with_suffix(".log")
        start = time.time()
        job.folder.parent.mkdir(parents=True, exist_ok=True)
        job.recipe.write_text(json.dumps(job.recipe_data()))
        if run(train_command(job), log, core, args.threads) != 0:
            failed.append(f"{name}: training failed (see {log})")
        elif not score(job, core, args, log):
            failed.append(f"{name}: scoring failed (see {log})")
        else:
            print(f"{name} trained and scored in {time.time() - start:.0f} s (core {core})", flush=True)


def gatys_first(textures: list[str], cores: list[int | None], args: argparse.Namespace, out: Path) -> None:
    """Each texture's Gatys results computed once, a texture per core, so that two runs scored at the same time do
    not both compute them (bench/quality_vs_gatys.py caches them; a cached texture takes seconds)."""
    quality_args = shlex.split(args.quality_args)
    threads = []
    for i, texture in enumerate(textures):
        command = [sys.executable, "bench/quality_vs_gatys.py", "--texture", texture, *quality_args]
        log = out / f"gatys_{texture_name(texture)}.log"
        core = cores[i % len(cores)]
        threads.append(threading.Thread(target=run, args=(command, log, core, args.threads)))
    for start in range(0, len(threads), len(cores)):
        batch = threads[start : start + len(cores)]
        for thread in batch:
            thread.start()
        for thread in batch:
            thread.join()


def summarise(jobs: list[Job], out: Path) -> str:
    """The table: per scored texture and seed each arm's content / style / total against Gatys-100 (and its face
    figure), then each arm's means; the first arm is the reference. A network of several textures has a row per
    texture."""
    arms = list(dict.fromkeys(job.arm for job in jobs))
    scores = {
        (j.arm, name, j.seed): entry
        for j in jobs
        if j.scores.is_file()
        for name, entry in json.loads(j.scores.read_text()).items()
    }
    iterations = {s["iterations"] for s in scores.values()} or {100}
    lines = [
        f"Content / style / **total** against Gatys-{'/'.join(map(str, sorted(iterations)))} on the held-out photos "
        "(lower is better); face: the content layer's error inside the faces (0 = the photo's); (+x%): the total "
        "against the first arm's, same seed.",
        "",
        "| texture, seed | " + " | ".join(arms) + " |",
        "|---|" + "---|" * len(arms),
    ]
    means: dict[tuple[str, str], list[dict]] = {}
    for texture in dict.fromkeys(name for _, name, _ in scores):
        for seed in dict.fromkeys(j.seed for j in jobs):
            cells = []
            base = scores.get((arms[0], texture, seed))
            for arm in arms:
                s = scores.get((arm, texture, seed))
                if s is None:
                    cells.append("not run")
                    continue
                means.setdefault((arm, texture), []).append(s)
                cells.append(cell(s, base if arm != arms[0] else None))
            lines.append(f"| {texture}, {seed} | " + " | ".join(cells) + " |")
        row = []
        for arm in arms:
            runs = means.get((arm, texture), [])
            row.append(mean_cell(runs, means.get((arms[0], texture), []) if arm != arms[0] else None))
        lines.append(f"| **{texture}, mean** | " + " | ".join(row) + " |")
    table = "\n".join(lines) + "\n"
    (out / "summary.md").write_text(table)
    summary = {f"{arm}/{texture}_s{seed}": v for (arm, texture, seed), v in scores.items()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return table


def face(s: dict) -> float | None:
    return (s.get("face_error") or {}).get("network")


def cell(s: dict, base: dict | None) -> str:
    r = s["ratio"]
    change = f" ({100 * (r['total'] / base['ratio']['total'] - 1):+.0f}%)" if base else ""
    figure = f"; face {face(s):.2f}" if face(s) is not None else ""
    return f"{r['content']:.2f} / {r['style']:.2f} / **{r['total']:.2f}**{change}{figure}"


def mean_cell(runs: list[dict], base: list[dict]) -> str:
    if not runs:
        return "not run"
    total = sum(s["ratio"]["total"] for s in runs) / len(runs)
    change = ""
    if base:
        change = f" ({100 * (total / (sum(s['ratio']['total'] for s in base) / len(base)) - 1):+.0f}%)"
    faces = [face(s) for s in runs if face(s) is not None]
    figure = f", face {sum(faces) / len(faces):.2f}" if faces else ""
    return f"total **{total:.2f}**{change}{figure} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"


def pictures(jobs: list[Job], out: Path) -> list[Path]:
    """Per scored texture: photo | each arm's networks, seed by seed | Gatys-100, a row per held-out photo, cut
    from the runs' quality_vs_gatys.py pictures (photo | network | Gatys side by side, a row per photo)."""
    from PIL import Image

    arms = list(dict.fromkeys(job.arm for job in jobs))
    by_arm = sorted(
        (j for j in jobs if j.scores.is_file()), key=lambda j: arms.index(j.arm)
    )  # stable: seeds keep order
    scored = [(j, name) for j in by_arm for name in json.loads(j.scores.read_text())]
    written = []
    for texture in dict.fromkeys(name for _, name in scored):
        pngs = [j.folder.with_suffix(f".{texture}.png") for j, name in scored if name == texture]
        images = [Image.open(png).convert("RGB") for png in pngs if png.is_file()]
        if not images:
            continue
        side = images[0].width // 3
        rows = images[0].height // side
        sheet = Image.new("RGB", (side * (len(images) + 2), side * rows), "white")
        for r in range(rows):
            cut = [(c * side, r * side, (c + 1) * side, (r + 1) * side) for c in range(3)]  # photo | network | Gatys
            sheet.paste(images[0].crop(cut[0]), (0, r * side))
            for i, image in enumerate(images, start=1):
                sheet.paste(image.crop(cut[1]), (i * side, r * side))
            sheet.paste(images[0].crop(cut[2]), ((len(images) + 1) * side, r * side))
        path = out / f"picture_{texture}.jpg"
        sheet.save(path, quality=88)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the comparison's folder under bench/results/recipe_ab/")
    parser.add_argument("--arm", action="append", default=[], help="NAME=OPTIONS (train.py options); two or more")
    parser.add_argument("--texture", action="append", default=[], help="a built-in name or an image (repeatable)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--cores", type=int, nargs="+", help="one run per core, pinned (default: every core)")
    parser.add_argument("--threads", type=int, default=1, help="threads per run (OMP_NUM_THREADS)")
    parser.add_argument("--train-args", default="", help="train.py options added to every run")
    parser.add_argument("--quality-args", default="", help="bench/quality_vs_gatys.py options (e.g. '--size 128')")
    parser.add_argument("--out", help="folder (default: bench/results/recipe_ab/<name>)")
    args = parser.parse_args()
    if not args.texture:
        args.texture = ["mosaic"]
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [None]
    if args.cores and allowed != [None] and not set(args.cores) <= set(allowed):
        raise TexnetError(f"--cores {' '.join(map(str, args.cores))}: this process may run on cores {allowed} only")
    if args.threads < 1:
        raise TexnetError(f"--threads {args.threads} must be at least 1")
    cores: list[int | None] = list(dict.fromkeys(args.cores)) if args.cores else allowed
    out = Path(args.out).resolve() if args.out else RESULTS / args.name
    jobs = plan(args, out)
    out.mkdir(parents=True, exist_ok=True)
    todo = [j for j in jobs if not j.scores.is_file()]
    print(f"{len(jobs)} runs ({len(jobs) - len(todo)} already scored) on {len(cores)} core(s): {out}", flush=True)
    if todo:
        gatys_first(list(dict.fromkeys(j.texture for j in todo)), cores, args, out)
    pending: queue.Queue = queue.Queue()
    for job in todo:
        pending.put(job)
    failed: list[str] = []
    stop = threading.Event()
    workers = [threading.Thread(target=work, args=(pending, core, args, failed, stop)) for core in cores]
    for worker in workers:
        worker.start()
    try:
        for worker in workers:
            worker.join()
    except KeyboardInterrupt:  # the runs got Ctrl-C too and save their last step; no new run starts
        stop.set()
        for worker in workers:
            worker.join()
        raise SystemExit("stopped: the same command resumes the stopped runs and starts the rest") from None
    print(summarise(jobs, out))
    for path in pictures(jobs, out):
        print(f"picture: {path}")
    if failed:
        raise SystemExit("error: " + "; ".join(failed))


if __name__ == "__main__":
    try:
        main()
    except TexnetError as err:
        raise SystemExit(f"error: {err}") from None
