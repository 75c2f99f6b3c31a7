"""A texture-mode network (noise -> texture) against Gatys texture synthesis: style per layer and diversity.

Samples `--seeds` textures of `--size` px from the network and runs Gatys synthesis from noise (L-BFGS,
`--iterations`, two seeds) for the same texture, all scored by the same style loss (the checkpoint's
texture, texnet/resources/loss/default.yaml). Diversity is the mean pairwise distance between the samples'
relu4_1 features, relative to their mean norm (0: every seed draws the same image); Gatys' two seeds give the
reference. A texture network with circular padding draws the same picture moved when its noise moves, so the
same distance is also taken at the best circular shift of one sample against the other ("up to shift"): low where
seeds draw one layout in different places, which the aligned figure scores as fully diverse. The texture's own
random crops of the same size, scored against the whole texture, are the third reference: what a true sample of
the texture scores (Gatys fits each sample's statistics closer than that).
Structure: each sample's 3x3 relu3_1 feature patches' mean squared distance to their nearest patch of the
texture (texnet.losses.PatchLoss, relative to the texture patches' mean square), which Grams do not see.
Also how many Gatys iterations (and seconds) first reach the network's style loss, per Gatys seed: Gatys-100 from
noise is far from converged, so a ratio against it alone says little about the two methods' time.
Writes a picture: texture | network seeds | Gatys seeds, and with `--json` the figures.

    .venv/bin/python bench/texture_vs_gatys.py --checkpoint runs/strokes/<date>/checkpoints/last.ckpt
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import logging
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from quality_vs_gatys import (  # bench/ is on sys.path here
    cache_result,
    gatys_curve,
    gatys_key,
    iterations_to_reach,
    reach_text,
)

from texnet.checkpoint import checkpoint_texture
from texnet.errors import TexnetError
from texnet.gatys import synthesize
from texnet.image import load_image, pil_to_tensor, save_image
from texnet.inference import load, read_checkpoint
from texnet.losses import PatchLoss, build_perceptual_loss, default_loss_config

CACHE_DIR = Path(__file__).parent / "results" / "texture_vs_gatys"
TARGET_LAYER = 3.0  # issue 14: no style layer worse than 3x Gatys-100 texture synthesis
DIVERSITY_LAYER = "relu4_1"
PATCH_LAYER = "relu3_1"
# Part of the cache key: how texnet.gatys.texture_noise starts (mid-grey noise before session 34, the mean colour
# for a while in it).
GATYS_START = "texture-smooth-noise"


def style_terms(perceptual, image: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        return {k: v.item() for k, v in perceptual(image).items() if k.startswith("style")}


def diversity(perceptual, images: list[torch.Tensor]) -> float:
    """Mean pairwise L2 distance of the images' relu4_1 features over their mean L2 norm."""
    with torch.no_grad():
        feats = [perceptual.extractor(image, [DIVERSITY_LAYER])[DIVERSITY_LAYER].flatten() for image in images]
    norm = sum(f.norm() for f in feats) / len(feats)
    pairs = list(itertools.combinations(feats, 2))
    return (sum((a - b).norm() for a, b in pairs) / len(pairs) / norm).item()


def shifted_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """min over circular shifts s of ||a - roll(b, s)|| for feature maps (C, H, W), by FFT cross-correlation."""
    a, b = a.double(), b.double()
    correlation = torch.fft.irfft2((torch.fft.rfft2(a) * torch.fft.rfft2(b).conj()).sum(0), s=a.shape[-2:])
    return (a.pow(2).sum() + b.pow(2).sum() - 2 * correlation).min().clamp(min=0).sqrt()


def diversity_up_to_shift(perceptual, images: list[torch.Tensor], stride: int = 8, step: int = 2) -> float:
    """`diversity` at each pair's best circular shift: feature-grid shifts (relu4_1's stride, 8 px) by FFT, the
    pixels between them by rolling the second image in `step` px steps; 0 when the samples are one picture moved.
    Each image is wrapped around by relu4_1's receptive radius first, so that its features move as it does (the
    VGG's zero padding would otherwise mark the borders)."""
    pad = 32  # relu4_1's receptive field is 60 px across; a multiple of the stride keeps the grids aligned
    offsets = [(dy, dx) for dy in range(0, stride, step) for dx in range(0, stride, step)]

    def features(image: torch.Tensor) -> torch.Tensor:
        wrapped = F.pad(image, (pad,) * 4, mode="circular")
        cut = pad // stride
        return perceptual.extractor(wrapped, [DIVERSITY_LAYER])[DIVERSITY_LAYER][0, :, cut:-cut, cut:-cut]

    with torch.no_grad():
        feats = [[features(image.roll(offset, (-2, -1))) for offset in offsets] for image in images]
    norm = sum(f[0].double().norm() for f in feats) / len(feats)
    pairs = list(itertools.combinations(feats, 2))
    return (sum(min(shifted_distance(a[0], rolled) for rolled in b) for a, b in pairs) / len(pairs) / norm).item()


def patch_distance(perceptual, patches: PatchLoss, images: list[torch.Tensor]) -> float:
    """Mean over the images of `patches` (the texture's, at PATCH_LAYER): how far their local patches are from it."""
    with torch.no_grad():
        distances = [patches(perceptual.extractor(image, [PATCH_LAYER])[PATCH_LAYER]).item() for image in images]
    return sum(distances) / len(distances)


def texture_crops(texture: torch.Tensor, size: int, count: int, seed: int = 0) -> list[torch.Tensor]:
    """`count` random size x size crops of `texture` (1, 3, H, W), seeded; none if it is smaller than `size`."""
    height, width = texture.shape[-2:]
    if min(height, width) < size:
        return []
    rng = torch.Generator().manual_seed(seed)
    corners = torch.stack([torch.randint(0, n - size + 1, (count,), generator=rng) for n in (height, width)], dim=1)
    return [texture[..., y : y + size, x : x + size] for y, x in corners.tolist()]


def gatys_sample(
    texture: torch.Tensor, loss_cfg: dict, size: int, iterations: int, seed: int, tmp: Path
) -> tuple[torch.Tensor, list[list[float]]]:
    """Gatys synthesis from noise, cached by texture, loss, size, iterations and seed: the image and its curve
    ([iteration, style, seconds] after each iteration, as bench/quality_vs_gatys.py's)."""
    cached = CACHE_DIR / f"gatys_{gatys_key((texture,), loss_cfg, size, iterations, seed, GATYS_START)}.png"
    curve_file = cached.with_suffix(".json")
    if not (cached.is_file() and curve_file.is_file()):
        texture_file = save_image(texture, tmp / "texture.png", overwrite=True)
        result = synthesize(
            texture_file,
            tmp / f"gatys_{seed}",
            loss=loss_cfg,
            iterations=iterations,
            size=size,
            texture_size=max(texture.shape[-2:]),
            seed=seed,
            save_every=0,
            progress=False,
            overwrite=True,
        )
        log = list(csv.DictReader(result.log_path.read_text().splitlines()))
        cache_result(cached, load_image(result.image_path), curve_file, gatys_curve(log, "style"))
    return load_image(cached), json.loads(curve_file.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="a texture-mode network (model.mode=texture)")
    parser.add_argument("--size", type=int, default=256, help="side of the samples")
    parser.add_argument("--seeds", type=int, default=4, help="network samples (seeds 0..N-1)")
    parser.add_argument("--iterations", type=int, default=100, help="Gatys L-BFGS iterations")
    parser.add_argument("--crops", type=int, default=8, help="random crops of the texture itself to score")
    parser.add_argument("--picture", help="where to write texture | network | Gatys (default: bench/results/...png)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    if args.seeds < 2:
        raise SystemExit("error: --seeds must be >= 2 (diversity compares seeds)")

    ckpt = read_checkpoint(args.checkpoint)
    if ckpt["hyper_parameters"]["model"]["mode"] != "texture":
        raise SystemExit(f"error: {args.checkpoint} stylises photos: use bench/quality_vs_gatys.py for it")
    texture = checkpoint_texture(ckpt, args.checkpoint)  # shipped models keep it in 8 bits
    loss_cfg = {**default_loss_config(), "content_layers": [], "content_weights": []}
    perceptual = build_perceptual_loss(texture, **loss_cfg)
    stylizer = load(args.checkpoint, device="cpu", backend="eager")
    stylizer.generate(args.size, seed=0)  # warm-up: the timing below is per sample, as a user's second one
    start = time.perf_counter()
    net = [pil_to_tensor(stylizer.generate(args.size, seed=seed)[0]) for seed in range(args.seeds)]
    net_seconds = (time.perf_counter() - start) / args.seeds
    with tempfile.TemporaryDirectory() as tmp:
        runs = [gatys_sample(texture, loss_cfg, args.size, args.iterations, seed, Path(tmp)) for seed in (0, 1)]
    gatys, curves = [image for image, _ in runs], [curve for _, curve in runs]

    def mean_terms(images):
        terms = [style_terms(perceptual, image) for image in images]
        return {k: sum(t[k] for t in terms) / len(terms) for k in terms[0]}

    net_terms, gatys_terms = mean_terms(net), mean_terms(gatys)
    ratio = {k: net_terms[k] / max(gatys_terms[k], 1e-12) for k in net_terms}
    crops = texture_crops(texture, args.size, args.crops)
    crop_terms = mean_terms(crops) if crops else None
    keys = ["style", *sorted(k for k in net_terms if k != "style")]
    print(
        f"{args.size} px, {args.seeds} network seeds, Gatys x{args.iterations} from noise (2 seeds), "
        "style loss of texnet/resources/loss/default.yaml"
    )
    print(
        f"{'':18}"
        + "".join(f"{k.removeprefix('style/'):>11}" for k in keys)
        + f"{'diversity':>11}{'up to shift':>12}{'patch':>11}"
    )
    sets = {"network": net, "gatys": gatys, **({"texture_crops": crops} if crops else {})}
    compared = {name: images for name, images in sets.items() if len(images) > 1}  # --crops 1: no pair to compare
    div = {name: diversity(perceptual, images) for name, images in compared.items()}
    shifted = {name: diversity_up_to_shift(perceptual, images) for name, images in compared.items()}
    with torch.no_grad():
        patches = PatchLoss(perceptual.extractor(texture, [PATCH_LAYER])[PATCH_LAYER])
    patch = {name: patch_distance(perceptual, patches, images) for name, images in sets.items()}
    for label, terms, name in (("Gatys", gatys_terms, "gatys"), ("texture network", net_terms, "network")):
        print(
            f"{label:18}"
            + "".join(f"{terms[k]:11.4g}" for k in keys)
            + f"{div[name]:11.3f}{shifted[name]:12.3f}{patch[name]:11.3f}"
        )
    blank_diversity = " " * (11 + 12)  # the two diversity columns, blank for one crop (--crops 1: no pair)
    if crop_terms:
        print(
            f"{'texture crops':18}"
            + "".join(f"{crop_terms[k]:11.4g}" for k in keys)
            + (
                f"{div['texture_crops']:11.3f}{shifted['texture_crops']:12.3f}"
                if "texture_crops" in div
                else blank_diversity
            )
            + f"{patch['texture_crops']:11.3f}"
        )
    print(
        f"{'network / Gatys':18}"
        + "".join(f"{ratio[k]:11.2f}" for k in keys)
        + f"{div['network'] / div['gatys']:11.2f}{shifted['network'] / shifted['gatys']:12.2f}"
        + f"{patch['network'] / patch['gatys']:11.2f}"
    )
    if crop_terms:
        print(
            f"{'network / crops':18}"
            + "".join(f"{net_terms[k] / max(crop_terms[k], 1e-12):11.2f}" for k in keys)
            + (
                f"{div['network'] / div['texture_crops']:11.2f}{shifted['network'] / shifted['texture_crops']:12.2f}"
                if "texture_crops" in div
                else blank_diversity
            )
            + f"{patch['network'] / patch['texture_crops']:11.2f}"
        )
    else:
        print(f"(the texture is smaller than {args.size} px: no crops of it to score)")
    reached = {f"seed {seed}": iterations_to_reach(curve, net_terms["style"]) for seed, curve in enumerate(curves)}
    print(
        "the network's style loss is reached by Gatys after "
        + ", ".join(reach_text(n, args.iterations, "its smooth noise") for n in reached.values())
        + f" (seeds 0, 1); the network takes {net_seconds:.2f} s per {args.size} px sample"
    )
    layers = [k for k in keys if k != "style"]
    worst = max(layers, key=ratio.get)
    met = ratio[worst] <= TARGET_LAYER
    print(
        f"every style layer <= {TARGET_LAYER:g}x Gatys: {'met' if met else 'not met'} (worst {worst} {ratio[worst]:.2f}x)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "size": args.size,
                    "seeds": args.seeds,
                    "iterations": args.iterations,
                    "network": net_terms,
                    "gatys": gatys_terms,
                    "texture_crops": crop_terms,
                    "ratio": ratio,
                    "diversity": div,
                    "diversity_up_to_shift": shifted,
                    "patch": patch,
                    "target_met": met,
                    # the key bench/quality_vs_gatys.py writes: scripts/ship_model.py puts it on the model's card
                    "gatys_iterations_to_network_total": {name: n and n[0] for name, n in reached.items()},
                    "network_seconds": net_seconds,
                },
                indent=2,
            )
        )
    thumb = F.interpolate(texture, size=(args.size, args.size), mode="bilinear", align_corners=False).clamp(0, 1)
    out = (
        Path(args.picture)
        if args.picture
        else CACHE_DIR.parent / f"texture_{Path(args.checkpoint).parent.parent.name}.png"
    )
    path = save_image(torch.cat([thumb, *net, *gatys], dim=3), out, overwrite=True)
    print(f"picture (texture | network seeds | Gatys seeds): {path}")


if __name__ == "__main__":
    try:
        main()
    except TexnetError as err:  # a bad --checkpoint, --texture or photo: one line, as stylize.py says it
        raise SystemExit(f"error: {err}") from None
