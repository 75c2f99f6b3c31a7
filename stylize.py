"""Stylise photos with a trained texture network, or with the Gatys baseline (see conf/stylize.yaml for every option).

    python stylize.py checkpoint=runs/mosaic/<date>/checkpoints/last.ckpt input=photos/ output=out/
    python stylize.py checkpoint=... export=onnx                 # a standalone model instead of images
    python stylize.py checkpoint=... input=... texture_mix='{mosaic: 0.7, starry: 0.3}'   # a network of several textures
    python stylize.py checkpoint=... input=... texture=starry    # ... one of them
    python stylize.py method=gatys input=photo.jpg texture=mosaic

Existing files are never replaced unless overwrite=true: a result whose name is taken gets the next free name
(photo-2.png, ...). Folders are searched recursively (hidden files and folders ignored) and their sub-folders mirrored
in the output; non-image files are skipped with one warning each, and an unreadable image is reported at the end
without stopping the others. Results are PNG unless output= names a single file; an animated GIF, WebP or PNG
becomes an animation in its own format and a video (MP4, MOV, MKV, WebM, AVI; PyAV) a video, every frame stylised
with noise that stays on the picture when the camera moves (texnet.animation, texnet.video, texnet.noise_field).

One photo (or a texture-mode network's textures) on a CPU with no seed, tiles or colour transfer runs the
checkpoint's ONNX graph without importing torch (texnet.graph_stylize): a shipped stylise model's ships beside it,
any other checkpoint's is cached the first time it runs through torch.
"""

from __future__ import annotations

import glob
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from texnet.cli import run_hydra_main
from texnet.config import STYLIZE_SCHEMAS, validate
from texnet.errors import TexnetError
from texnet.graph_stylize import GraphModel, checkpoint_digest
from texnet.grid import texture_shape
from texnet.image import IMAGE_EXTENSIONS, check_output, next_free_file, open_rgb, output_size, save_image
from texnet.models import cards, resolve_checkpoint
from texnet.video import VIDEO_SUFFIXES, is_clip, is_video

if TYPE_CHECKING:  # torch and the code that needs it are imported only when a run goes through texnet.inference
    from texnet.inference import Stylizer

log = logging.getLogger("texnet.stylize")
GPU_DEVICES = ("/dev/nvidiactl", "/dev/kfd", "/dev/dxg")  # CUDA, ROCm, WSL2: where device=auto might pick a GPU

TEXTURE_HINT = (
    "for a trained network's texture use texture_mix={value}, for an image (method=gatys) texture.image={value}"
)
EXPORT_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


def stylize(cfg: DictConfig) -> list[Path]:
    """Run what `cfg` asks for and return the written files (tests call this directly)."""
    validate(cfg, STYLIZE_SCHEMAS)
    if cfg.method == "gatys":
        return stylize_gatys(cfg)
    if cfg.method != "texnet":
        raise TexnetError(
            f"method='{cfg.method}' is unknown: use texnet (a trained checkpoint) or gatys (the baseline)"
        )
    if not cfg.checkpoint:
        raise TexnetError("checkpoint= is required: a .ckpt written by train.py (or method=gatys for the baseline)")
    if cfg.input and not cfg.export and resolve_checkpoint(cfg.checkpoint).is_file():
        input_path(cfg.input)  # a mistyped input answers before seconds of loading the model, not after
    checkpoint = graph_checkpoint(cfg)
    if checkpoint is not None:
        model = GraphModel.find(checkpoint, checkpoint_digest(checkpoint), cfg.threads)
        written = run_graph(model, cfg) if model is not None else None
        if written is not None:
            return written
        checkpoint = checkpoint if model is None else None  # no graph yet: make one below for the next run
    import torch

    from texnet.inference import load

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    stylizer = load(cfg.checkpoint, device=cfg.device, backend=cfg.backend, precision=cfg.precision)
    log.info("loaded %s from %s", stylizer, cfg.checkpoint)
    check_texture_mix(stylizer, cfg)
    if cfg.export:
        return [export_model(stylizer, cfg)]
    written = generate_textures(stylizer, cfg) if stylizer.mode == "texture" else stylize_photos(stylizer, cfg)
    if checkpoint is not None and stylizer.backend == "onnxruntime":
        from texnet.export import cache_checkpoint_graph

        log.info("cached its graph for the next run without torch: %s", cache_checkpoint_graph(stylizer))
    return written


def graph_checkpoint(cfg: DictConfig) -> Path | None:
    """The checkpoint file when `cfg` may be what texnet.graph_stylize does without torch: no seed, on a CPU
    (device=cpu, or auto on a machine without a GPU device), float32, no export, tiles or colour transfer (and,
    run_graph checks, one photo file or a texture-mode network). None otherwise: texnet.inference does the rest."""
    if (
        cfg.export
        or cfg.seed is not None
        or cfg.tile_size
        or cfg.preserve_color
        or cfg.backend not in ("auto", "onnxruntime")
        or str(cfg.precision) != "32"
        or not (cfg.device == "cpu" or (cfg.device == "auto" and not any(Path(p).exists() for p in GPU_DEVICES)))
    ):
        return None
    checkpoint = resolve_checkpoint(cfg.checkpoint)
    return checkpoint if checkpoint.is_file() else None


def run_graph(model: GraphModel, cfg: DictConfig) -> list[Path] | None:
    """Stylise cfg.input or generate cfg.num textures with `model` (texnet.graph_stylize); None, with nothing
    written, when texnet.inference has to: the input is not one readable photo (texnet.batch reports unreadable
    ones), it is a video or animation (texnet.batch stylises its frames with noise that stays on the picture), or
    the image is too small for the graph's padding or too large for memory."""
    mix = texture_mix(cfg)
    check_texture_mix(model, cfg)
    if model.mode == "texture":
        height, width = texture_size(cfg)
        return generate_textures(model, cfg) if model.fits(width, height) else None
    src = Path(str(cfg.input)).expanduser() if cfg.input else None
    if src is None or not src.is_file():
        return None
    single, folder = output_target(cfg, Path("runs/stylized") / model.texture_name, 1)
    try:
        if is_clip(src):
            return None
        photo = open_rgb(src, "image")
    except TexnetError:
        return None
    check_image_output(single, f"'{src}' is a photo")  # not a clip: that was looked at above
    target = output_size(*photo.size, cfg.max_size, photo_size(cfg))
    if not model.fits(*target):
        return None
    if target != photo.size:
        photo = photo.resize(target, Image.Resampling.LANCZOS)
    log_graph(model, cfg)
    out = save_image(
        model.stylize(photo, cfg.noise_factor, mix),
        OutputNames(cfg.overwrite)(single or folder / f"{src.stem}.png"),
        overwrite=True,
    )
    log.info("wrote 1 image(s) to %s", folder)
    return [out]


def check_texture_mix(model: Stylizer | GraphModel, cfg: DictConfig) -> None:
    """A bad texture name or mix weight: one line before any work. ``texture=<name>`` on the command line (see
    pick_texture) for a network without that texture names the shipped network of that texture, if there is one."""
    typed = typed_texture(cfg)
    if typed is not None and cfg.texture_mix == typed and typed not in model.textures:
        shipped = f"; the shipped network for {typed} is checkpoint={typed}" if typed in cards() else ""
        raise TexnetError(f"texture={typed} is not a texture of this network: use {', '.join(model.textures)}{shipped}")
    model.mix_weights(texture_mix(cfg), "texture_mix")


def texture_mix(cfg: DictConfig) -> str | dict[str, float] | None:
    """cfg.texture_mix as plain data: null, a texture's name or {name: weight}."""
    mix = cfg.get("texture_mix")
    return OmegaConf.to_container(mix) if OmegaConf.is_config(mix) else mix


def collect_inputs(spec: str | None) -> list[tuple[Path, Path]]:
    """(image file, its path relative to the output folder) for a file, a folder (sub-folders mirrored) or a glob (flat)."""
    path = input_path(spec)
    if path.is_file():
        return [(path, Path(path.name))]
    if path.is_dir():
        files = [
            p
            for p in sorted(path.rglob("*"))
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
        ]
        candidates = [(p, p.relative_to(path)) for p in files]
    else:
        files = [Path(p) for p in sorted(glob.glob(str(path), recursive=True)) if Path(p).is_file()]
        candidates = [(p, Path(p.name)) for p in files]
    images, readable = [], " ".join((*IMAGE_EXTENSIONS, *VIDEO_SUFFIXES))
    for file, name in candidates:
        if file.suffix.lower() in IMAGE_EXTENSIONS or is_video(file):
            images.append((file, name))
        else:
            log.warning("skipping '%s': not an image or video (%s files are read)", file, readable)
    if not images:
        raise TexnetError(f"input '{spec}' holds no images or videos ({readable})")
    return images


def input_path(spec: str | None) -> Path:
    """`spec` as a path: a file, a folder or a glob; a one-line error if it is empty or none of them (nothing is
    listed here, so it is cheap enough to check before the model loads)."""
    if not spec:
        raise TexnetError("input= is required: a photo, a folder of photos or a glob such as 'photos/*.jpg'")
    path = Path(str(spec)).expanduser()
    if not (path.is_file() or path.is_dir() or glob.has_magic(str(path))):
        raise TexnetError(f"input '{spec}' does not exist: give a photo, a folder or a glob such as 'photos/*.jpg'")
    return path


def check_photo_output(single: Path | None, src: Path) -> None:
    """A photo's result is an image (videos and animations check their own outputs: texnet.video, texnet.animation;
    an unreadable input is reported where it is read)."""
    if single is None or not is_video(single):
        return
    try:
        clip = is_clip(src)
    except TexnetError:
        return
    if not clip:
        check_image_output(single, f"'{src}' is a photo")


def check_image_output(single: Path | None, why: str) -> None:
    """A video named as the only output of an image is one line before any work."""
    if single is not None and is_video(single):
        raise TexnetError(f"output '{single}' is a video but {why}: name an image file (.png, .jpg, ...) or a folder")


class OutputNames:
    """Output paths that never replace an existing file (unless `overwrite`) nor one written earlier in this run."""

    def __init__(self, overwrite: bool) -> None:
        self.overwrite, self.claimed = overwrite, set()

    def __call__(self, path: Path) -> Path:
        candidate = next_free_file(path, taken=lambda p: p in self.claimed or (p.exists() and not self.overwrite))
        if candidate != path:
            log.info("'%s' exists: writing '%s'", path, candidate)
        self.claimed.add(candidate)
        return candidate


def output_target(
    cfg: DictConfig, default: Path, count: int, items: str = "images in the input"
) -> tuple[Path | None, Path]:
    """(single output file or None, output folder) from cfg.output, checked to be writable before any work; a
    name with another suffix (out.txt) is refused rather than made a folder, unless that folder exists."""
    out = Path(str(cfg.output)).expanduser() if cfg.output else default
    if cfg.output and (out.suffix.lower() in IMAGE_EXTENSIONS or is_video(out)):
        if count > 1:
            raise TexnetError(f"output '{out}' is a file but there are {count} {items}: give a folder")
        check_output(out, folder=False)
        return out, out.parent
    if cfg.output and out.suffix and not out.is_dir():
        raise TexnetError(
            f"output '{out}' ends in {out.suffix}, which texnet cannot write: name an image "
            f"(.png, .jpg, .webp, ...), a video ({' '.join(VIDEO_SUFFIXES)}) or a folder (one that exists may have any name)"
        )
    check_output(out)
    return None, out


def stylize_photos(stylizer: Stylizer, cfg: DictConfig) -> list[Path]:
    """Stylise every input (texnet.batch: photos of equal resized size are batched up to cfg.batch_size)."""
    from texnet.batch import check_failures, stylize_files

    inputs = collect_inputs(cfg.input)
    single, folder = output_target(cfg, Path("runs/stylized") / stylizer.texture_name, len(inputs))
    check_photo_output(single, inputs[0][0])
    names = OutputNames(cfg.overwrite)
    result = stylize_files(
        stylizer,
        inputs,
        lambda rel: names(single or folder / rel),
        noise_factor=cfg.noise_factor,
        seed=cfg.seed,
        max_size=cfg.max_size,
        size=photo_size(cfg),
        preserve_color=cfg.preserve_color,
        batch_size=cfg.batch_size,
        progress=cfg.progress,
        tile_size=cfg.tile_size,
        mix=texture_mix(cfg),
    )
    check_failures(result.failures, len(inputs))
    log.info("wrote %d file(s) to %s", len(result.done), folder)
    return [item.output for item in result.done]


def log_graph(model: GraphModel, cfg: DictConfig) -> None:
    log.info("loaded the graph %s (onnxruntime, torch not needed) for %s", model.path, cfg.checkpoint)


def photo_size(cfg: DictConfig) -> int | None:
    """cfg.size for photos: the output's longer side in pixels, or None (the photo's own size, up to max_size)."""
    size = cfg.size
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        shown = list(size) if OmegaConf.is_list(size) else size
        raise TexnetError(
            f"size={shown} is not a photo size: give the output's longer side in pixels (size=1024; the aspect is "
            "kept), or null for the photo's own"
        )
    return size


def texture_size(cfg: DictConfig) -> tuple[int, int]:
    """(H, W) of the textures to generate: cfg.size, N or [H, W], default 256."""
    size = cfg.size if cfg.size is not None else 256
    return texture_shape(OmegaConf.to_object(size) if OmegaConf.is_list(size) else size, "[H, W]", "size=[256,512]")


def generate_textures(stylizer: Stylizer | GraphModel, cfg: DictConfig) -> list[Path]:
    """Texture-mode networks: cfg.num textures of cfg.size (N or [H, W], default 256)."""
    if cfg.input:
        log.warning("input= is ignored: '%s' holds a texture-mode network, which needs no photo", cfg.checkpoint)
    if isinstance(stylizer, GraphModel):
        log_graph(stylizer, cfg)
    size = texture_size(cfg)
    single, folder = output_target(
        cfg, Path("runs/stylized") / stylizer.texture_name, cfg.num, f"textures to generate (num={cfg.num})"
    )
    check_image_output(single, "a texture-mode network draws still images")
    names = OutputNames(cfg.overwrite)
    images = stylizer.generate(size=size, num=cfg.num, seed=cfg.seed, mix=texture_mix(cfg))
    written = [
        save_image(img, names(single or folder / f"{stylizer.texture_name}_{i:03d}.png"), overwrite=True)
        for i, img in enumerate(images)
    ]
    log.info("wrote %d texture(s) of %dx%d px to %s", len(written), size[1], size[0], folder)
    return written


def export_model(stylizer: Stylizer, cfg: DictConfig) -> Path:
    """export=onnx|torchscript: the network as a standalone model file."""
    from texnet.export import export_onnx, export_torchscript

    if cfg.export not in EXPORT_SUFFIXES:
        raise TexnetError(f"export='{cfg.export}' is unknown: use onnx or torchscript")
    suffix = EXPORT_SUFFIXES[cfg.export]
    out = Path(str(cfg.output)).expanduser() if cfg.output else Path("runs/exported")
    target = OutputNames(cfg.overwrite)(out if out.suffix else out / f"{stylizer.texture_name}{suffix}")
    check_output(target, folder=False)
    export = export_onnx if cfg.export == "onnx" else export_torchscript
    return export(stylizer, target, noise_inputs=cfg.export_noise_inputs, overwrite=True)


def stylize_gatys(cfg: DictConfig) -> list[Path]:
    """method=gatys: one run_gatys optimisation per input photo, each in its own folder (result.png, losses.csv)."""
    from texnet.batch import check_failures
    from texnet.gatys import check_options, run_gatys
    from texnet.textures import texture_name

    check_options(cfg.gatys.optimizer, cfg.gatys.init, cfg.gatys.iterations)  # once, not once per photo
    inputs = collect_inputs(cfg.input)
    name = texture_name(cfg.texture.image)
    if cfg.output and Path(str(cfg.output)).suffix.lower() in IMAGE_EXTENSIONS:
        raise TexnetError(f"output '{cfg.output}' is a file, but method=gatys writes a folder per photo: give a folder")
    folder = Path(str(cfg.output)).expanduser() if cfg.output else Path("runs/gatys") / name
    check_output(folder)
    accelerator = {"auto": "auto", "cpu": "cpu"}.get(str(cfg.device), "gpu")
    loss = OmegaConf.to_container(cfg.loss, resolve=True)
    written, failures = [], []
    for src, rel in inputs:
        try:
            if is_clip(src):
                raise TexnetError(
                    f"'{src}' is a video or animation: method=gatys optimises one photo for minutes, not every frame; "
                    "stylise it with a trained network (checkpoint=)"
                )
            result = run_gatys(
                str(cfg.texture.image),
                folder / rel.with_suffix(""),
                content=src,
                loss=loss,
                texture_size=cfg.texture.size,
                accelerator=accelerator,
                overwrite=cfg.overwrite,
                progress=cfg.progress,
                **OmegaConf.to_container(cfg.gatys, resolve=True),
            )
        except TexnetError as err:
            failures.append((src, str(err)))
            continue
        log.info("%s: %d iterations in %.1f s -> %s", src, result.iterations, result.seconds, result.image_path)
        written.append(result.image_path)
    check_failures(failures, len(inputs))
    return written


def typed_texture(cfg: DictConfig) -> str | None:
    """The name in ``texture=<name>`` on the command line of method=texnet, else None: the texture group is the
    Gatys baseline's, whose default (mosaic) must not count as a choice."""
    if cfg.method != "texnet" or not HydraConfig.initialized():
        return None
    chosen = [o.split("=", 1)[1] for o in HydraConfig.get().overrides.task if o.startswith("texture=")]
    return chosen[-1] if chosen else None


def pick_texture(cfg: DictConfig) -> None:
    """``texture=starry`` on the command line picks that texture of a trained network (texture_mix=starry)."""
    if cfg.texture_mix is None:
        cfg.texture_mix = typed_texture(cfg)


@hydra.main(version_base="1.3", config_path="conf", config_name="stylize")
def main(cfg: DictConfig) -> None:
    try:
        pick_texture(cfg)
        stylize(cfg)
    except TexnetError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    run_hydra_main(main, {"texture": TEXTURE_HINT})
