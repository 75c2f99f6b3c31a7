"""The texture network against the Gatys baseline on held-out photos, the same loss and the same weights.

For each photo: the network's content, style and total loss (and per style layer) and forward time, and Gatys L-BFGS
from the photo after half and all of `--iterations`, scored by the same PerceptualLoss. The photos are the
builtin set's held-out validation photos (never trained on) unless `--photos DIR` names your own (use photos
the network did not train on). Prints per-photo rows, means, the ratios network / Gatys overall and per
layer, the target check, and writes a picture with one row per photo: photo | network | Gatys.

Where the photo has a frontal face (texnet.faces), it also says how much of the face each keeps: the content layer's
features inside the face against the photo's (0 keeps them), which the whole-image content loss does not show.

It also says where the network stands on Gatys' way (as Johnson et al. 2016, Fig. 5, did): after how many L-BFGS
iterations, and seconds, Gatys' total loss first gets to the network's, per photo.

Gatys results, with their loss per iteration, are cached in bench/results/quality_vs_gatys/ (keyed by photo,
texture, loss and iterations), so comparing more checkpoints costs only their forward passes; `--no-cache`
recomputes them, and so does an entry written before the curve was kept. Without `--checkpoint`, only Gatys runs
(a baseline for `--texture`).

    .venv/bin/python bench/quality_vs_gatys.py --checkpoint runs/mosaic/<date>/checkpoints/last.ckpt
    .venv/bin/python bench/quality_vs_gatys.py --checkpoint my.ckpt --photos ~/held_out --texture my_texture.jpg
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import torch
from torchvision.transforms import v2

from texnet.cache import write_atomically
from texnet.content_sources import BUILTIN_VAL_PHOTOS, builtin_photo_dir, list_images
from texnet.errors import TexnetError
from texnet.faces import face_error, find_faces
from texnet.gatys import run_gatys
from texnet.image import load_image, open_rgb, pil_to_tensor, save_image, tensor_to_pil
from texnet.inference import load, read_checkpoint
from texnet.losses import build_perceptual_loss, default_loss_config
from texnet.textures import load_texture, texture_name

CACHE_DIR = Path(__file__).parent / "results" / "quality_vs_gatys"
TARGET_STYLE, TARGET_CONTENT, TARGET_LAYER = 1.0, 1.25, 3.0  # issue 14's targets, as ratios to Gatys


def cache_result(png: Path, image: torch.Tensor, record: Path, data) -> None:
    """Cache a Gatys result: its image, then its JSON record (read only when both exist), each renamed into place
    whole, so that a bench run beside this one (the same texture and photos) never reads half a file."""
    encoded = io.BytesIO()
    tensor_to_pil(image).save(encoded, format="PNG")
    write_atomically(png, encoded.getvalue())
    write_atomically(record, json.dumps(data).encode())


def gatys_key(tensors: tuple[torch.Tensor, ...], loss_cfg: dict, *settings) -> str:
    """Identifies one Gatys run (also bench/texture_vs_gatys.py's): the same images (photo and texture, or the texture
    alone), loss and settings (iterations, ...) give the same result.

    The diversity keys are left out: Gatys optimises one image, which the diversity term never touches; so are the
    patch keys while that term is off (as before it existed)."""
    off = ("diversity_", *(() if loss_cfg.get("patch_weight") else ("patch_",)))
    loss_cfg = {k: v for k, v in loss_cfg.items() if not k.startswith(off)}
    digest = hashlib.sha1(json.dumps(loss_cfg, sort_keys=True).encode())
    for tensor in tensors:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    for setting in settings:
        digest.update(str(setting).encode())
    return digest.hexdigest()[:16]


def held_out_photos(folder: str | None, size: int) -> tuple[list[str], torch.Tensor]:
    """Names and centre crops (size x size) of the builtin validation photos, or of every image in `folder`."""
    paths = list_images(Path(folder).expanduser()) if folder else [builtin_photo_dir() / n for n in BUILTIN_VAL_PHOTOS]
    if not paths:
        raise SystemExit(f"error: --photos {folder} holds no images")
    crop = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])
    return [p.name for p in paths], torch.cat([pil_to_tensor(crop(open_rgb(p, "photo"))) for p in paths])


def terms_of(perceptual, image: torch.Tensor, photo: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        return {k: v.item() for k, v in perceptual(image, perceptual.content_targets(photo)).items()}


def run_baseline(
    photo: torch.Tensor,
    texture_path: Path,
    texture_size: int,
    loss_cfg: dict,
    iterations: int,
    tmp: Path,
    name: str,
    perceptual,
) -> tuple[dict, torch.Tensor]:
    """Gatys L-BFGS from the photo: its terms at the end, content/style at iterations/2, the total and seconds after
    each iteration (``curve``: [iteration, total, seconds], iteration 0 being the photo), seconds, and the image."""
    photo_path = save_image(photo, tmp / f"{name}.png", overwrite=True)
    result = run_gatys(
        texture_path,
        tmp / f"gatys_{name}",
        content=photo_path,
        loss=loss_cfg,
        iterations=iterations,
        max_size=max(photo.shape[-2:]),
        texture_size=texture_size,
        save_every=0,
        progress=False,
    )
    log = list(csv.DictReader(result.log_path.read_text().splitlines()))
    half = {int(r["iteration"]): r for r in log}[iterations // 2]
    image = load_image(result.image_path)
    return {
        "half_content": float(half["content"]),
        "half_style": float(half["style"]),
        "seconds": result.seconds,
        "curve": gatys_curve(log, "total"),
        "terms": terms_of(perceptual, image, photo),
    }, image


def gatys_curve(log: list[dict[str, str]], term: str) -> list[list[float]]:
    """[iteration, term, seconds] per row of a Gatys run's losses.csv (columns: texnet.gatys.LOG_COLUMNS), the
    curve :func:`iterations_to_reach` reads (bench/texture_vs_gatys.py's too)."""
    return [[int(r["iteration"]), float(r[term]), float(r["seconds"])] for r in log]


def iterations_to_reach(curve: list[list[float]], total: float) -> tuple[int, float] | None:
    """(iterations, seconds) after which Gatys' total first is at most `total`; None if it never is.

    Row k of the curve holds the loss after k iterations, and the time at which iteration k + 1 had computed it,
    so the seconds to reach row k are row k - 1's (the first's include setting up the run, as a user waits for it).
    """
    k = next((int(i) for i, t, _ in curve if t <= total), None)
    return None if k is None else (k, curve[k - 1][2] if k else 0.0)


def reach_text(reached: tuple[int, float] | None, iterations: int, start: str) -> str:
    """How :func:`iterations_to_reach`'s answer reads in a report; `start` names Gatys' starting image, which
    already scores at most the network's loss when the answer is 0 iterations."""
    if reached is None:
        return f"more than {iterations} iterations"
    if reached[0] == 0:
        return f"0 iterations ({start}, Gatys' start, scores lower)"
    return f"{reached[0]} L-BFGS iterations ({reached[1]:.1f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="the network to score (omit to run only Gatys)")
    parser.add_argument("--photos", help="folder of held-out photos (default: the builtin validation photos)")
    parser.add_argument("--texture", help="texture image (default: the checkpoint's texture)")
    parser.add_argument("--mix", help="a network of several textures: the one to score, by name (default: its first)")
    parser.add_argument("--size", type=int, default=256, help="side of the centre-cropped photos")
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--no-cache", action="store_true", help="recompute the Gatys results even if cached")
    parser.add_argument("--cache", default=str(CACHE_DIR), help="folder of the cached Gatys results")
    parser.add_argument(
        "--loss",
        choices=["default", "checkpoint"],
        default="default",
        help="weights both are scored with: texnet/resources/loss/default.yaml (default) or the network's training loss",
    )
    parser.add_argument("--picture", help="where to write photo | network | Gatys (default: bench/results/...png)")
    parser.add_argument(
        "--json", help="also write the means and ratios here (scripts/ship_model.py reads it for a model card)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if not args.checkpoint and not args.texture:
        raise SystemExit("error: give --checkpoint, --texture, or both")
    torch.manual_seed(0)

    ckpt = read_checkpoint(args.checkpoint) if args.checkpoint else None
    trained_with = ckpt["hyper_parameters"]["loss"] if ckpt else default_loss_config()
    loss_cfg = trained_with if args.loss == "checkpoint" else default_loss_config()
    stylizer = load(args.checkpoint, device="cpu", backend="eager") if ckpt else None
    pick = stylizer.textures.index(args.mix) if stylizer and args.mix in stylizer.textures else 0
    texture = load_texture(args.texture, 256) if args.texture else stylizer.texture_tensors[pick]
    # the scored texture's name (scripts/ship_model.py files a network of several textures' figures under it)
    scored = texture_name(args.texture) if args.texture else (stylizer.textures or [stylizer.texture_name])[pick]
    perceptual = build_perceptual_loss(texture, **loss_cfg)
    names, photos = held_out_photos(args.photos, args.size)
    layers = list(perceptual.style.layers)
    content_layer = perceptual.content.layers[0]  # the face figure's layer

    rows, cached, picture = [], 0, []
    cache_dir = Path(args.cache)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        texture_path = save_image(texture, Path(tmp) / "texture.png")
        for i, (name, photo) in enumerate(zip(names, photos)):
            photo = photo[None]
            row: dict = {}
            if stylizer is not None:
                stylizer.stylize(
                    photo, seed=0, mix=args.mix
                )  # warm-up (an unknown --mix: one line naming the textures)
                start = time.perf_counter()
                output = stylizer.stylize(photo, seed=0, mix=args.mix)
                row["net_s"] = time.perf_counter() - start
                row["net"] = terms_of(perceptual, output, photo)
            key = gatys_key((photo, texture), loss_cfg, args.iterations)
            cache, cache_png = cache_dir / f"gatys_{key}.json", cache_dir / f"gatys_{key}.png"
            gatys = json.loads(cache.read_text()) if cache.is_file() and cache_png.is_file() else {}
            from_cache = "curve" in gatys and not args.no_cache  # entries from before the curve was kept: recomputed
            if from_cache:
                gatys_image = load_image(cache_png)
                cached += 1
            else:
                gatys, gatys_image = run_baseline(
                    photo,
                    texture_path,
                    max(texture.shape[-2:]),
                    loss_cfg,
                    args.iterations,
                    Path(tmp),
                    f"photo{i}",
                    perceptual,
                )
                cache_result(cache_png, gatys_image, cache, gatys)
            row["gatys"] = gatys
            faces = find_faces(photo)
            row["face"] = {
                who: face_error(perceptual.extractor, content_layer, image, photo, faces)
                for who, image in ((("network", output),) if stylizer else ()) + (("gatys", gatys_image),)
            }
            rows.append(row)
            picture.append(torch.cat([photo, *([output] if stylizer else []), gatys_image], dim=3))
            g = gatys["terms"]
            net = (
                (
                    f"network content {row['net']['content']:.2f} style {row['net']['style']:.3g} "
                    f"({row['net_s'] * 1e3:.0f} ms) | "
                )
                if stylizer
                else ""
            )
            face = " | face error " + ", ".join(f"{who} {err:.2f}" for who, err in row["face"].items()) if faces else ""
            print(
                f"{name}: {net}Gatys@{args.iterations} content {g['content']:.2f} style {g['style']:.3g} "
                f"({gatys['seconds']:.1f} s{', cached' if from_cache else ''}){face}",
                flush=True,
            )

    def mean(get) -> float:
        return sum(get(r) for r in rows) / len(rows)

    where = f"{args.photos} ({len(rows)} photos)" if args.photos else f"the builtin held-out photos {', '.join(names)}"
    print(
        f"\n{where} at {args.size} px; both scored with "
        f"{'the checkpoint' if args.loss == 'checkpoint' else 'texnet/resources/loss/default.yaml'}'s loss weights"
    )
    # keys the checkpoint predates (e.g. diversity_*, off before they existed) are not differences
    changed = sorted(k for k in trained_with if loss_cfg.get(k) != trained_with.get(k)) if ckpt else []
    if changed:
        print(
            f"the network was trained with other loss settings: {', '.join(f'{k}={trained_with.get(k)}' for k in changed)}"
        )
    # total: content + style (+ tv), the loss itself; recipes trade content for style, the total is what one lowers
    keys = ["content", "style", "total", *(f"style/{layer}" for layer in layers)]
    print(f"{'':18}" + "".join(f"{k.removeprefix('style/'):>11}" for k in keys))
    gatys_mean = {k: mean(lambda r, k=k: r["gatys"]["terms"][k]) for k in keys}
    print(f"{'Gatys x' + str(args.iterations):18}" + "".join(f"{gatys_mean[k]:11.4g}" for k in keys))
    if stylizer is None:
        return
    net_mean = {k: mean(lambda r, k=k: r["net"][k]) for k in keys}
    ratio = {k: net_mean[k] / max(gatys_mean[k], 1e-12) for k in keys}
    print(f"{'texture network':18}" + "".join(f"{net_mean[k]:11.4g}" for k in keys))
    print(f"{'network / Gatys':18}" + "".join(f"{ratio[k]:11.2f}" for k in keys))
    worst = max(layers, key=lambda layer: ratio[f"style/{layer}"])
    seconds = mean(lambda r: r["gatys"]["seconds"]) / mean(lambda r: r["net_s"])
    reached = {name: iterations_to_reach(r["gatys"]["curve"], r["net"]["total"]) for name, r in zip(names, rows)}
    print(
        "the network's total is reached by Gatys after "
        + ", ".join(f"{reach_text(n, args.iterations, 'the unchanged photo')} on {name}" for name, n in reached.items())
    )
    print(
        f"network {mean(lambda r: r['net_s']):.3f} s per photo, {seconds:.0f}x faster than Gatys"
        + (f" (Gatys seconds of {cached} photo(s) come from an earlier run)" if cached else "")
    )
    with_faces = [(name, r["face"]) for name, r in zip(names, rows) if r["face"]["gatys"] is not None]
    face_means = (
        {who: sum(f[who] for _, f in with_faces) / len(with_faces) for who in ("network", "gatys")}
        if with_faces
        else None
    )
    if face_means:
        print(
            f"faces kept ({content_layer} error inside the faces found in {', '.join(n for n, _ in with_faces)}, relative to "
            f"the photo's; 0 keeps them): network {face_means['network']:.2f}, Gatys {face_means['gatys']:.2f}"
        )
    met = (
        ratio["style"] <= TARGET_STYLE
        and ratio["content"] <= TARGET_CONTENT
        and ratio[f"style/{worst}"] <= TARGET_LAYER
    )
    print(
        f"quality target (style <= {TARGET_STYLE:g}x, content <= {TARGET_CONTENT:g}x, every style layer <= "
        f"{TARGET_LAYER:g}x Gatys x{args.iterations}): {'met' if met else 'not met'} (style {ratio['style']:.2f}x, "
        f"content {ratio['content']:.2f}x, worst layer {worst} {ratio[f'style/{worst}']:.2f}x)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "texture": scored,
                    "photos": names,
                    "size": args.size,
                    "iterations": args.iterations,
                    "network": net_mean,
                    "gatys": gatys_mean,
                    "ratio": ratio,
                    "gatys_iterations_to_network_total": {name: n and n[0] for name, n in reached.items()},
                    "target_met": met,
                    "face_error": face_means and {**face_means, "photos": [n for n, _ in with_faces]},
                },
                indent=2,
            )
        )
    out = (
        Path(args.picture)
        if args.picture
        else CACHE_DIR.parent / f"quality_{Path(args.checkpoint).parent.parent.name}.png"
    )
    path = save_image(torch.cat(picture, dim=2), out, overwrite=True)
    print(f"picture (photo | network | Gatys, one row per photo): {path}")


if __name__ == "__main__":
    try:
        main()
    except TexnetError as err:  # a bad --checkpoint, --texture or photo: one line, as stylize.py says it
        raise SystemExit(f"error: {err}") from None
