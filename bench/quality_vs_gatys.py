"""The texture network against the Gatys baseline on the same photos, the same loss and weights.

For each fixed validation photo of the built-in set: the trained network's content/style loss and
forward time, and Gatys L-BFGS (from the photo) losses after 50 and 100 iterations and its time.
Prints per-photo rows, the means, and the ratios measured in this one run. Gatys results are cached in
bench/results/quality_vs_gatys/ (keyed by photo, size, iterations, loss config and texture), so comparing
further checkpoints costs only their forward passes; --no-cache recomputes them.

Both are scored with the checkpoint's training loss, or with `--loss default` (conf/loss/default.yaml, the
weights of the Gatys baseline) for a network trained with other weights, e.g. `loss.style_scale=3`.

    .venv/bin/python bench/quality_vs_gatys.py --checkpoint runs/mosaic/<date>/checkpoints/last.ckpt [--size 256]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import tempfile
import time
from pathlib import Path

import torch

from texnet.data import ContentDataModule
from texnet.gatys import run_gatys
from texnet.image import save_image
from texnet.inference import load, read_checkpoint
from texnet.losses import build_perceptual_loss, default_loss_config

CACHE_DIR = Path(__file__).parent / "results" / "quality_vs_gatys"


def gatys_key(photo: torch.Tensor, texture: torch.Tensor, loss_cfg: dict, iterations: int) -> str:
    """Identifies one Gatys run: same photo, texture, loss and iteration count give the same result."""
    digest = hashlib.sha1(json.dumps(loss_cfg, sort_keys=True).encode())
    for tensor in (photo, texture):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.contiguous().numpy().tobytes())
    digest.update(str(iterations).encode())
    return digest.hexdigest()[:16]


def run_baseline(photo: torch.Tensor, texture_path: Path, texture_size: int, loss_cfg: dict, iterations: int, tmp: Path,
                 name: str) -> dict:
    """Gatys L-BFGS from the photo: content/style at iterations/2 and at the end, and its seconds."""
    photo_path = save_image(photo, tmp / f"{name}.png")
    result = run_gatys(texture_path, tmp / f"gatys_{name}", content=photo_path, loss=loss_cfg, iterations=iterations,
                       max_size=max(photo.shape[-2:]), texture_size=texture_size, save_every=0, progress=False)
    log = [line.split(",") for line in result.log_path.read_text().splitlines()[1:]]
    half = {int(r[0]): r for r in log}[iterations // 2]
    return {"g50_content": float(half[1]), "g50_style": float(half[2]),
            "g_content": result.final["content"], "g_style": result.final["style"], "g_s": result.seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--size", type=int, default=256, help="side of the validation crops")
    parser.add_argument("--photos", type=int, default=4)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--no-cache", action="store_true", help="recompute the Gatys results even if cached")
    parser.add_argument("--loss", choices=["checkpoint", "default"], default="checkpoint",
                        help="weights both are scored with: the network's training loss or conf/loss/default.yaml")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)

    ckpt = read_checkpoint(args.checkpoint)
    trained_with = ckpt["hyper_parameters"]["loss"]
    loss_cfg = trained_with if args.loss == "checkpoint" else default_loss_config()
    texture = ckpt["state_dict"]["texture"]
    stylizer = load(args.checkpoint, device="cpu", backend="eager")
    perceptual = build_perceptual_loss(texture, **loss_cfg)
    photos = ContentDataModule(num_val=args.photos, val_size=args.size).val_images()

    rows, cached = [], 0
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        texture_path = save_image(texture, Path(tmp) / "texture.png")
        for i, photo in enumerate(photos):
            photo = photo[None]
            stylizer.stylize(photo, seed=0)  # warm-up
            start = time.perf_counter()
            output = stylizer.stylize(photo, seed=0)
            net_seconds = time.perf_counter() - start
            with torch.no_grad():
                net = perceptual(output, perceptual.content_targets(photo))
            cache = CACHE_DIR / f"gatys_{gatys_key(photo, texture, loss_cfg, args.iterations)}.json"
            if cache.is_file() and not args.no_cache:
                gatys, source = json.loads(cache.read_text()), f" (cached: {cache.name})"
                cached += 1
            else:
                gatys, source = run_baseline(photo, texture_path, max(texture.shape[-2:]), loss_cfg, args.iterations, Path(tmp),
                                              f"photo{i}"), ""
                cache.write_text(json.dumps(gatys))
            rows.append({"net_content": net["content"].item(), "net_style": net["style"].item(), "net_s": net_seconds, **gatys})
            r = rows[-1]
            print(f"photo {i}: network content {r['net_content']:.1f} style {r['net_style']:.1f} ({r['net_s'] * 1e3:.0f} ms) | "
                  f"Gatys@{args.iterations // 2} content {r['g50_content']:.1f} style {r['g50_style']:.1f} | "
                  f"Gatys@{args.iterations} content {r['g_content']:.1f} style {r['g_style']:.1f} ({r['g_s']:.1f} s){source}",
                  flush=True)

    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    source = "the checkpoint's" if args.loss == "checkpoint" else "conf/loss/default.yaml's"
    print(f"\n{len(rows)} validation photos at {args.size} px, scored with {source} loss weights (the same for both)")
    if loss_cfg != trained_with:
        changed = sorted(k for k in {*loss_cfg, *trained_with} if loss_cfg.get(k) != trained_with.get(k))
        print(f"the network was trained with other loss settings: {', '.join(f'{k}={trained_with.get(k)}' for k in changed)}")
    print(f"{'':22} {'content':>9} {'style':>9} {'s/image':>9}")
    print(f"{'texture network':22} {mean['net_content']:9.2f} {mean['net_style']:9.2f} {mean['net_s']:9.3f}")
    print(f"{'Gatys L-BFGS x' + str(args.iterations // 2):22} {mean['g50_content']:9.2f} {mean['g50_style']:9.2f}")
    print(f"{'Gatys L-BFGS x' + str(args.iterations):22} {mean['g_content']:9.2f} {mean['g_style']:9.2f} {mean['g_s']:9.1f}")
    print(f"ratios (network / Gatys x{args.iterations}): style {mean['net_style'] / mean['g_style']:.2f}, "
          f"content {mean['net_content'] / mean['g_content']:.2f}, time {mean['g_s'] / mean['net_s']:.0f}x faster"
          + (f" (Gatys seconds of {cached} photo(s) come from an earlier run: --no-cache to time both now)" if cached else ""))
    target = mean["net_style"] <= mean["g_style"] and mean["net_content"] <= 1.5 * mean["g_content"]
    print(f"quality target (style <= Gatys x{args.iterations}, content <= 1.5x): {'met' if target else 'not met'}")


if __name__ == "__main__":
    main()
