"""Trained models shipped inside the package: stylise a photo before training anything.

A shipped model is a slim checkpoint (generator weights, the options inference needs, the texture image; no
optimiser state, no VGG) in ``texnet/resources/models/<name>.ckpt`` with its model card in ``cards.json``
(texture, the command that trained it, steps, minutes, held-out quality against Gatys-100, seconds per photo);
a stylise model also ships ``<name>.onnx``, its graph for stylising a photo without torch (texnet.graph_stylize).
Wherever texnet takes a checkpoint path it also takes a shipped model's name: ``texnet.load("mosaic")``,
``stylize.py checkpoint=mosaic``, ``train.py init_from=mosaic``. Shipped files are only ever read.

    python -m texnet.models          # lists the shipped models with their figures
    python -m texnet.models mosaic   # one model's whole card (held-out photos, per-layer style) and its file
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path

from texnet.errors import TexnetError

MODELS_DIR = Path(str(resources.files("texnet.resources") / "models"))
CARDS = MODELS_DIR / "cards.json"


def cards() -> dict[str, dict]:
    """Name -> model card of every shipped model (empty when none ships)."""
    return json.loads(CARDS.read_text()) if CARDS.is_file() else {}


def resolve_checkpoint(checkpoint: str | Path) -> Path:
    """A checkpoint file's path, or a shipped model's for its name; a one-line TexnetError listing the names otherwise."""
    path = Path(checkpoint).expanduser()
    if path.exists():
        return path
    names = cards()
    if str(checkpoint) in names:
        return MODELS_DIR / f"{checkpoint}.ckpt"
    if path.suffix or len(path.parts) > 1:  # meant as a file: read_checkpoint says it does not exist
        return path
    raise TexnetError(
        f"'{checkpoint}' is neither a checkpoint file nor a shipped model: use a .ckpt written by "
        f"train.py or one of {', '.join(sorted(names)) or '(none shipped)'} (python -m texnet.models)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m texnet.models", description="The trained models shipped with texnet: a table of all of them."
    )
    parser.add_argument("name", nargs="?", help="a shipped model: print its whole card and its file instead")
    name = parser.parse_args(argv).name
    shipped = cards()
    if name is None:
        print_table(shipped)
        return 0
    if name not in shipped:
        print(f"error: '{name}' is not a shipped model: use one of {', '.join(sorted(shipped))}", file=sys.stderr)
        return 1
    print(json.dumps({"name": name, "file": str(MODELS_DIR / f"{name}.ckpt"), **shipped[name]}, indent=2))
    return 0


def print_table(shipped: dict[str, dict]) -> None:
    """One row per shipped model (and per texture of a several-texture one) with its figures and command."""
    if not shipped:
        print("no shipped models in this installation")
        return
    w = max(len(name) for name in shipped)
    t = max(len("texture"), *(len(card["texture"]) for card in shipped.values()))
    print(
        f"{'name':{w}} {'texture':{t}} {'mode':8} {'steps':>6} {'minutes':>8} {'content':>8} {'style':>8} "
        f"{'total':>8} {'s/512px':>8}  command"
    )

    def ratios(card: dict) -> str:
        keys = ("content_vs_gatys", "style_vs_gatys", "total_vs_gatys")
        return " ".join(f"{card[key]:7.2f}x" if card.get(key) is not None else f"{'-':>8}" for key in keys)

    for name, card in sorted(shipped.items()):
        print(
            f"{name:{w}} {card['texture']:{t}} {card['mode']:8} {card['steps']:6d} {card['minutes']:8.1f} "
            f"{ratios(card)} {card['seconds_512px']:8.2f}  {card['command']}"
        )
        for texture, figures in card.get("textures", {}).items():  # several textures: the row above is their mean
            print(f"{'':{w}} {'- ' + texture:{t}} {'':8} {'':6} {'':8} {ratios(figures)}")
    print(
        "content, style and their total: network / Gatys-100 with the same loss (lower is better; stylise mode on "
        "held-out photos, target style <= 1x and content <= 1.25x; texture mode against Gatys synthesis from noise; "
        "several textures: their mean, then each one's); use a name wherever a checkpoint path goes: "
        "texnet.load('NAME'), stylize.py checkpoint=NAME, train.py init_from=NAME"
    )


if __name__ == "__main__":
    sys.exit(main())
