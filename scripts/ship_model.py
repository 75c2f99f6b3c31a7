"""Ship a trained checkpoint as a named model inside the package (texnet/resources/models/), with its model card.

The card records what a user needs to trust the model: the texture, the exact training command, steps, training
minutes (from the run folder: config.yaml written at the start, the checkpoint at the end) and the machine they
were measured on, quality against Gatys-100 (the --quality JSON of `bench/quality_vs_gatys.py --json` on held-out
photos, or of `bench/texture_vs_gatys.py --json` for a texture-mode model) and seconds per 512 px photo or texture
(measured here, onnxruntime on this machine, median of 5). `make models` runs it for every shipped model.

    python scripts/ship_model.py --checkpoint runs/models/mosaic/checkpoints/last.ckpt --name mosaic \\
        --command "python train.py texture=mosaic" --quality runs/models/mosaic/quality.json

When the yardstick changes (e.g. the Gatys reference), `--rescore` replaces a shipped model's quality figures by a new
--quality JSON and leaves its weights, minutes and command as they are:

    python scripts/ship_model.py --name mosaic-texture --rescore --quality runs/mosaic-texture.json

A network of several textures takes one JSON per texture (`bench/quality_vs_gatys.py --mix <texture> --json ...`):
its card holds each texture's figures under ``textures`` and their mean where one texture's figures go.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from texnet.checkpoint import describe_checkpoint, read_checkpoint
from texnet.export import export_onnx
from texnet.inference import load
from texnet.models import CARDS, MODELS_DIR, cards

KEEP = ("state_dict", "hyper_parameters", "texnet", "global_step", "epoch", "pytorch-lightning_version")


def slim_checkpoint(ckpt: dict) -> dict:
    """What inference and init_from need of a training checkpoint: generator weights, texture, options; nothing else.
    Texture images are stored in 8 bits (texnet.checkpoint reads them back as floats): a 512 px texture is 0.8 MB
    instead of 3.1 MB, and it came from an 8-bit file."""
    state = {}
    for key, value in ckpt["state_dict"].items():
        if key == "texture" or key.startswith("texture_images."):
            state[key] = value.mul(255).round().clamp(0, 255).to(torch.uint8)
        elif key.startswith("generator."):
            state[key] = value
    return {**{k: ckpt[k] for k in KEEP if k in ckpt}, "state_dict": state}


def ship(checkpoint: Path, name: str, card: dict) -> Path:
    """Write `checkpoint` as the shipped model `name` (texnet/resources/models/) and add its card to cards.json."""
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    target = MODELS_DIR / f"{name}.ckpt"
    torch.save(slim_checkpoint(read_checkpoint(checkpoint)), target)
    ship_graph(target)
    write_card(name, card)
    return target


def write_card(name: str, card: dict) -> dict:
    """Set model `name`'s card in cards.json, the other cards as they are."""
    all_cards = cards()
    all_cards[name] = card
    CARDS.write_text(json.dumps(all_cards, indent=2, sort_keys=True) + "\n")
    return card


def ship_graph(target: Path) -> Path | None:
    """Write the ONNX graph beside a shipped stylise-mode model (texnet.graph_stylize: one photo without importing
    torch); texture-mode models get none (a stale one is removed)."""
    graph = target.with_suffix(".onnx")
    graph.unlink(missing_ok=True)
    if describe_checkpoint(read_checkpoint(target))["mode"] != "stylize":
        return None
    return export_onnx(target, graph)


def rescore(name: str, figures: dict) -> dict:
    """Replace the quality figures on shipped model `name`'s card; its weights and the rest of its card stay."""
    return write_card(name, {**cards()[name], **figures})


def seconds_per_image(checkpoint: Path, side: int = 512, repeats: int = 5) -> float:
    """Median seconds to stylise a side x side photo (or, in texture mode, to generate a side x side texture)."""
    stylizer = load(checkpoint, device="cpu")
    photo = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    run = (
        (lambda: stylizer.generate(side, seed=0))
        if stylizer.mode == "texture"
        else (lambda: stylizer.stylize(photo, seed=0))
    )
    run()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def quality_fields(quality: dict) -> dict:
    """The card's quality figures from a bench JSON: stylise mode (held-out photos) or texture mode (diversity)."""
    fields = {
        "content_vs_gatys": round(quality["ratio"]["content"], 2) if "content" in quality["ratio"] else None,
        "style_vs_gatys": round(quality["ratio"]["style"], 2),
        "total_vs_gatys": round(quality["ratio"]["total"], 2) if "total" in quality["ratio"] else None,
        "style_layers_vs_gatys": {
            k.removeprefix("style/"): round(v, 2) for k, v in quality["ratio"].items() if k.startswith("style/")
        },
        "held_out_photos": quality.get("photos"),
        "quality_target_met": quality["target_met"],
    }
    if "gatys_iterations_to_network_total" in quality:  # where Gatys' loss first gets down to the network's
        fields["gatys_iterations_to_match"] = quality["gatys_iterations_to_network_total"]
    if "diversity" in quality:
        fields["diversity_vs_gatys"] = round(quality["diversity"]["network"] / quality["diversity"]["gatys"], 2)
    if quality.get("texture_crops"):  # texture mode: what the texture's own crops score (bench/texture_vs_gatys.py)
        fields["style_layers_vs_texture_crops"] = {
            k.removeprefix("style/"): round(quality["network"][k] / quality["texture_crops"][k], 2)
            for k in quality["texture_crops"]
            if k.startswith("style/")
        }
    return fields


def several_textures_fields(textures: list[str], qualities: list[dict]) -> dict:
    """The card's quality figures of a network of several textures: each texture's (keyed by the texture the
    JSON scored) and, where a single texture's figures go, their mean (the target met only if met for every one)."""
    per_texture = {q.get("texture"): quality_fields(q) for q in qualities}
    if sorted(per_texture, key=str) != sorted(textures):
        raise SystemExit(
            f"error: --quality needs one bench/quality_vs_gatys.py --mix <texture> --json file per texture of this "
            f"network ({', '.join(textures)}); got {', '.join(str(t) for t in per_texture)}"
        )
    ordered = [per_texture[name] for name in textures]
    return {
        **{
            key: round(statistics.mean(f[key] for f in ordered), 2)
            for key in ("content_vs_gatys", "style_vs_gatys", "total_vs_gatys")
        },
        "held_out_photos": ordered[0]["held_out_photos"],
        "quality_target_met": all(f["quality_target_met"] for f in ordered),
        "textures": {name: per_texture[name] for name in textures},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="the trained run's checkpoint (not with --rescore)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--command", help="the command that trained it, as a user would type it (not with --rescore)")
    parser.add_argument(
        "--rescore", action="store_true", help="only replace the shipped model's quality figures by --quality's"
    )
    parser.add_argument(
        "--quality",
        required=True,
        type=Path,
        nargs="+",
        help="bench/quality_vs_gatys.py --json output (bench/texture_vs_gatys.py's for texture mode); a network of "
        "several textures: one per texture (--mix <texture>)",
    )
    parser.add_argument(
        "--trained-on",
        default=f"{os.cpu_count()} CPU cores",
        help="the machine the training minutes were measured on (default: this one's cores)",
    )
    args = parser.parse_args()
    if args.rescore and (args.checkpoint or args.command):
        raise SystemExit("error: --rescore keeps the shipped weights and command: leave out --checkpoint and --command")
    if not args.rescore and not (args.checkpoint and args.command):
        raise SystemExit("error: shipping a model needs --checkpoint and --command (or --rescore for a shipped one)")
    if args.rescore and args.name not in cards():
        raise SystemExit(f"error: --name {args.name} is not a shipped model: use one of {', '.join(sorted(cards()))}")
    qualities = [json.loads(path.read_text()) for path in args.quality]
    ckpt = read_checkpoint(MODELS_DIR / f"{args.name}.ckpt" if args.rescore else args.checkpoint)
    textures = ckpt["hyper_parameters"]["model"].get("textures")
    if textures:
        figures = several_textures_fields(list(textures), qualities)
    elif len(qualities) == 1:
        figures = quality_fields(qualities[0])
    else:
        raise SystemExit("error: a network of one texture takes one --quality file")
    if args.rescore:
        print(f"rescored {args.name}:\n{json.dumps(rescore(args.name, figures), indent=2)}")
        return
    run = args.checkpoint.resolve().parent.parent
    minutes = (args.checkpoint.stat().st_mtime - (run / "config.yaml").stat().st_mtime) / 60
    about = describe_checkpoint(ckpt)
    card = {
        "texture": about["texture"],
        "mode": about["mode"],
        "arch": about["arch"],
        "steps": int(about["steps"]),
        "minutes": round(minutes, 1),
        "trained_on": args.trained_on,
        "command": args.command,
        **figures,
        "seconds_512px": round(seconds_per_image(args.checkpoint), 3),
    }
    path = ship(args.checkpoint, args.name, card)
    print(f"shipped {args.name}: {path} ({path.stat().st_size / 1e6:.2f} MB)\n{json.dumps(card, indent=2)}")


if __name__ == "__main__":
    main()
