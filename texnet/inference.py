"""Use a trained texture network: ``texnet.load("last.ckpt").stylize("photo.jpg")``.

Checkpoints are read by :mod:`texnet.checkpoint` (``torch.load(weights_only=True)``: a file can never run code
on load). Inference needs neither the VGG nor Lightning, and imports no training code.

Speed: on CPU the generator runs in onnxruntime (``backend="auto"``): the generator traced by
:mod:`texnet.export` in memory on first use (about a second) runs a 512 px photo several times faster than
eager PyTorch (bench/stylize_speed.py prints the ratio). The noise is drawn by the generator's own
``draw_noise`` and fed to the graph, so for the same seed both backends give the same image (to ~1e-5).
stylize.py stylises one unseeded photo without importing torch, through the exported graph that draws its own noise
(:mod:`texnet.graph_stylize`).
``backend="eager"`` is the plain generator (also used on CUDA, with ``precision`` 16/bf16, and for
images no larger than ``generator.multiple`` px on a side, which the exported graph cannot pad).

Memory: an image is processed whole, at full resolution, when it fits; photos that do not (or ``tile_size=``) go
by tiles that share whole-image instance-norm statistics (:mod:`texnet.tiling`). Whole, it takes about
``full_res_channels * 4 bytes * 4`` per pixel with onnxruntime and ``* 7`` eagerly (measured: ~0.65 and ~1.2 KB
per pixel for the default pyramid; ~1.2 and ~0.9 KB for the residual net, see texnet.memory.PEAK_MAPS); a tensor
that needs more than the available memory is refused with a message giving the limit in megapixels and a
``max_size`` that fits.

Networks of several textures (conditional instance norm): ``stylize(photo, mix={"mosaic": 0.7, "starry": 0.3})`` blends
them, ``mix="starry"`` picks one (default: the first; :attr:`Stylizer.textures` lists them); the mix weights are an
input of the exported graph, so onnxruntime runs any mix with one session.

Inputs (paths or PIL images) go through :mod:`texnet.image`: EXIF rotation applied, grayscale/palette/16-bit
converted, and transparent pixels composited onto white (the generator has no alpha channel).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn

from texnet.checkpoint import (  # noqa: F401 - public here too
    checkpoint_generator,
    checkpoint_texture,
    checkpoint_texture_name,
    checkpoint_textures,
    read_checkpoint,
    read_checkpoint_file,
)
from texnet.conditional_norm import mix_weights, selected
from texnet.errors import TexnetError
from texnet.export import GraphInputs, ort_session
from texnet.grid import texture_shape, whole
from texnet.image import (
    check_unit_range,
    numpy_to_pil,
    open_rgb,
    output_size,
    pil_to_numpy_like,
    pil_to_tensor,
    source_size,
    tensor_to_pil,
    to_rgb,
)
from texnet.memory import bytes_per_pixel, cpu_memory_available
from texnet.noise_generator import NoiseGenerator

log = logging.getLogger(__name__)

BACKENDS = ("auto", "onnxruntime", "eager")
IMAGE_KINDS = "pass a path, a PIL image, a tensor or a numpy image"
PRECISIONS = {"32": None, "16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str = "auto") -> torch.device:
    """auto -> cuda when a GPU is visible, else cpu; asking for cuda without one is a one-line error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise TexnetError(f"device={device} but no CUDA GPU is available: use device=cpu or device=auto")
    try:
        return torch.device(device)
    except RuntimeError:
        raise TexnetError(f"device='{device}' is unknown: use auto, cpu or cuda") from None


def load(checkpoint: str | Path, device: str = "auto", backend: str = "auto", precision: str | int = "32") -> Stylizer:
    """Load a trained texture network for inference (see :class:`Stylizer`).

    Args:
        checkpoint: a ``.ckpt`` written by train.py.
        device: auto | cpu | cuda.
        backend: auto (onnxruntime on CPU at float32 when installed, else eager) | onnxruntime | eager.
        precision: 32 | 16 | bf16; 16-bit runs the eager generator under autocast (faster on GPUs and
            AMX CPUs, outputs differ from float32 by a few grey levels).
    """
    ckpt, digest = read_checkpoint_file(checkpoint)
    return Stylizer(
        checkpoint_generator(ckpt, checkpoint),
        checkpoint_textures(ckpt, checkpoint),
        checkpoint_texture_name(ckpt),
        device=device,
        backend=backend,
        precision=precision,
        source=str(checkpoint),
        checkpoint_sha256=digest,
    )


def transfer_luminance(stylized: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """Keep `original`'s colours: the stylised luma Y with the original's chroma Cb, Cr (JPEG / BT.601 YCbCr)."""
    luma = 0.299 * stylized[:, 0] + 0.587 * stylized[:, 1] + 0.114 * stylized[:, 2]
    r, g, b = original.unbind(1)
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    rgb = torch.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], dim=1)
    return rgb.clamp_(0, 1)


def available_memory(device: torch.device) -> int:
    """Bytes free for tensors on `device` (CPU: texnet.memory.cpu_memory_available)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return cpu_memory_available()


class Stylizer:
    """A trained generator in eval mode, ready to stylise photos or (texture mode) generate textures.

    Use :func:`load` to make one. ``backend`` is the resolved backend ("onnxruntime" or "eager"). `texture` is the
    texture image, or the list of them of a network of several textures.
    """

    def __init__(
        self,
        generator: NoiseGenerator,
        texture: torch.Tensor | list[torch.Tensor],
        texture_name: str,
        device: str = "auto",
        backend: str = "auto",
        precision: str | int = "32",
        source: str = "",
        checkpoint_sha256: str | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise TexnetError(f"backend='{backend}' is unknown: use one of {', '.join(BACKENDS)}")
        precision = str(precision)
        if precision not in PRECISIONS:
            raise TexnetError(f"precision={precision} is unknown: use 32, 16 or bf16")
        self.device = resolve_device(device)
        self.generator = generator.to(self.device).eval().requires_grad_(False)
        self.texture_tensors = [
            t.detach().cpu() for t in (texture if isinstance(texture, (list, tuple)) else [texture])
        ]
        self.texture_tensor = self.texture_tensors[0]
        self.texture_name, self.precision, self.source = texture_name, precision, source
        self.checkpoint_sha256 = checkpoint_sha256  # of the checkpoint file's bytes (load() reads one): names its graph
        self.backend = self._resolve_backend(backend)
        self._session = None

    def _resolve_backend(self, backend: str) -> str:
        fast_ok = self.device.type == "cpu" and self.precision == "32"
        if backend == "eager" or (backend == "auto" and not fast_ok):
            return "eager"
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            if backend == "onnxruntime":
                raise TexnetError(
                    "backend=onnxruntime needs the onnxruntime package: pip install onnxruntime (or use backend=eager)"
                ) from None
            log.info(
                "onnxruntime is not installed: running the generator eagerly (pip install onnxruntime for ~5x faster CPU inference)"
            )
            return "eager"
        if not fast_ok:
            raise TexnetError(
                f"backend=onnxruntime runs float32 on CPU only (device={self.device.type}, precision={self.precision}): use backend=auto"
            )
        return "onnxruntime"

    def __repr__(self) -> str:
        return f"Stylizer(texture={self.texture_name!r}, mode={self.mode!r}, device={self.device.type}, backend={self.backend})"

    @property
    def mode(self) -> str:
        """ "stylize" (photo -> stylised photo) or "texture" (noise -> texture)."""
        return self.generator.mode

    @property
    def noise_factor(self) -> float:
        """The noise factor the network was trained with (the default of :meth:`stylize`)."""
        return self.generator.noise_factor

    @property
    def texture(self) -> Image.Image:
        """The texture (style) image the network was trained on (the first of several)."""
        return tensor_to_pil(self.texture_tensor)

    @property
    def textures(self) -> list[str]:
        """The names of the network's textures (one for a single-texture network): what ``mix`` takes."""
        return list(self.generator.textures) or [self.texture_name]

    def mix_weights(self, mix: str | dict[str, float] | None, option: str = "mix") -> torch.Tensor | None:
        """The generator's mix weights for `mix` (a name or {name: weight}; see conditional_norm.mix_weights), checked
        with a one-line TexnetError naming `option`; None for a single-texture network."""
        weights = mix_weights(self.textures, mix, option)
        return weights.to(self.device) if self.generator.textures else None

    def _rng(self, seed: int | None) -> torch.Generator | None:
        """The random source of the noise: seeded on the generator's device, or None for torch's global one."""
        return None if seed is None else torch.Generator(device=self.device).manual_seed(int(seed))

    def _field_noise(
        self, content: torch.Tensor, noise_factor: float, seed: int, origin: tuple[float, float]
    ) -> list[torch.Tensor]:
        """The noise of `content` lying at `origin` of the scene (texnet.noise_field's plane `seed`)."""
        g = self.generator
        shapes = g.image_noise_shapes(content.shape[0], *content.shape[-2:])
        return g.plane_noise(shapes, g.noise_ratios, origin, int(seed), noise_factor)

    def _check_memory(self, batch: int, height: int, width: int, what: str) -> None:
        """Refuse an image whose full-resolution forward pass would not fit in memory (see module doc)."""
        full_h, full_w = self.generator.padded_size(height, width)
        per_pixel = bytes_per_pixel(self.generator.arch, self.generator.full_res_channels, self.backend)
        need, free = batch * full_h * full_w * per_pixel, available_memory(self.device)
        if need > free:
            limit = free / per_pixel / batch
            fit = int(max(height, width) * math.sqrt(limit / (height * width)))
            raise TexnetError(
                f"{what} is {width}x{height} px ({width * height / 1e6:.0f} MP): stylising it whole needs about {need / 2**30:.1f} GB "
                f"but {free / 2**30:.1f} GB is free on {self.device.type} (limit here: about {limit / 1e6:.0f} MP); pass max_size={fit // 64 * 64} to downscale it"
            )

    def _forward(
        self,
        content: torch.Tensor | None,
        noise_factor: float,
        rng: torch.Generator | None,
        size: tuple[int, int] | None = None,
        mix: torch.Tensor | None = None,
        noise: list[torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """One batch through the generator on the resolved backend; returns a CPU float tensor (B, 3, H, W). `noise`:
        the noise maps (draw_noise's shapes, scaled) instead of a draw."""
        g = self.generator
        if content is not None and len(content) > 1 and any(isinstance(m, nn.BatchNorm2d) for m in g.modules()):
            # batch norm would mix the images' statistics: one at a time, so outputs never depend on other photos
            return torch.cat(
                [
                    self._forward(c[None], noise_factor, rng, mix=mix, noise=noise and [m[i : i + 1] for m in noise])
                    for i, c in enumerate(content)
                ]
            )
        height, width = content.shape[-2:] if content is not None else size
        batch = content.shape[0] if content is not None else 1
        if self.backend == "onnxruntime" and min(height, width) > g.multiple:
            if self._session is None:
                self._session = ort_session(GraphInputs(g, noise_inputs=True))
            feed = {"content": content.contiguous().numpy()} if content is not None else {}
            if g.noise_channels:
                feed.update(
                    {
                        f"noise_{i}": n.numpy()
                        for i, n in enumerate(noise or g.draw_noise(batch, height, width, noise_factor, rng))
                    }
                )
            if g.textures:
                feed["mix"] = mix.cpu().numpy()
            out = torch.from_numpy(self._session.run(None, feed)[0])
            return out[..., :height, :width]
        dtype = PRECISIONS[self.precision]
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
        ):
            if content is None:
                out = g(size=(height, width), noise_factor=noise_factor, rng=rng, texture=mix)
            else:
                out = g(content.to(self.device), noise_factor=noise_factor, rng=rng, noise=noise, texture=mix)
        return out.float().cpu()

    def stylize(
        self,
        image: Image.Image | torch.Tensor | str | Path,
        noise_factor: float | None = None,
        seed: int | None = None,
        max_size: int | None = None,
        preserve_color: bool = False,
        size: int | None = None,
        tile_size: int | None = None,
        mix: str | dict[str, float] | None = None,
        noise_at: tuple[float, float] | None = None,
    ) -> Image.Image | torch.Tensor:
        """Stylise one photo (or a batch tensor).

        Args:
            image: a path, a PIL image (EXIF rotation, alpha onto white, any mode), a tensor of shape (3, H, W)
                or (B, 3, H, W), float in [0, 1] or uint8, or a numpy image (H, W[, 3|4]), uint8 or float in [0, 1]
                (texnet.image.numpy_to_pil): tensors come back as tensors of the same shape and dtype, numpy images
                as (H, W, 3) arrays of their dtype, everything else as an RGB PIL image.
            noise_factor: style strength via the noise amplitude (default: the trained value; 0 = deterministic).
            seed: seeds the noise, for reproducible outputs (None: torch's global generator).
            max_size: downscale so the longer side is at most this (aspect kept); `size`: rescale so it is exactly this.
            preserve_color: keep the photo's colours, take only the luminance from the network.
            tile_size: stylise in tiles of this size (texnet.tiling); images too large for memory are tiled anyway.
            mix: a network of several textures: one texture's name, or a convex mix ``{"mosaic": 0.7, "starry": 0.3}``
                (weights >= 0 summing to 1); default the first texture (:attr:`textures`).
            noise_at: a frame of a moving camera: where its top-left pixel lies in the scene, (y, x) in its own pixels
                (texnet.motion.SceneTracker); its noise is that place's in a plane fixed to the scene (texnet.noise_field,
                seeded by `seed`, default 0), so the texture moves with the picture (tiled images too).
        """
        if self.mode != "stylize":
            raise TexnetError(
                f"the network in '{self.source}' generates textures (model.mode=texture): use generate(size=..., num=...)"
            )
        if not isinstance(image, (Image.Image, torch.Tensor, str, Path, np.ndarray)):
            raise TexnetError(f"cannot stylise a {type(image).__name__}: {IMAGE_KINDS}")
        if isinstance(image, np.ndarray) or (isinstance(image, torch.Tensor) and image.dtype == torch.uint8):
            options = dict(
                noise_factor=noise_factor,
                seed=seed,
                max_size=max_size,
                preserve_color=preserve_color,
                size=size,
                tile_size=tile_size,
                mix=mix,
                noise_at=noise_at,
            )
            if isinstance(image, np.ndarray):  # through PIL, so that large arrays are tiled as large photos are
                return pil_to_numpy_like(self.stylize(numpy_to_pil(image), **options), image)
            return (self.stylize(image.float() / 255, **options) * 255).round().to(torch.uint8)
        from texnet import tiling
        from texnet.animation import frame_count

        weights = self.mix_weights(mix)
        place = None
        if noise_at is not None:  # in the given image's pixels; the network sees the image resized
            seed = 0 if seed is None else seed  # one plane for every frame, as texnet.batch.frame_stylizer's
            width, height = source_size(image)
            scale = max(output_size(width, height, max_size, size)) / max(width, height)
            place = (noise_at[0] * scale, noise_at[1] * scale)
        if isinstance(image, (str, Path)) and frame_count(image) > 1:
            log.warning(
                "'%s' is an animation: only its first frame is stylised here; for all of them use "
                "texnet.animation.stylize_animation (or stylize.py)",
                image,
            )
        if tile_size or tiling.needs_tiles(self, image, max_size, size):
            with selected(self.generator, weights):  # the tiles run through the eager generator
                return tiling.stylize(self, image, noise_factor, seed, max_size, size, preserve_color, tile_size, place)
        content = prepare_image(image, max_size, size)
        what = f"image '{image}'" if isinstance(image, (str, Path)) else "the image"
        self._check_memory(content.shape[0], *content.shape[-2:], what)
        factor = self.noise_factor if noise_factor is None else float(noise_factor)
        noise = None if place is None else self._field_noise(content, factor, seed, place)
        out = self._forward(content, factor, self._rng(seed), mix=weights, noise=noise)
        if preserve_color:
            out = transfer_luminance(out, content)
        if isinstance(image, torch.Tensor):
            return out if image.dim() == 4 else out[0]
        return tensor_to_pil(out)

    def generate(
        self,
        size: int | tuple[int, int] = (256, 256),
        num: int = 1,
        seed: int | None = None,
        mix: str | dict[str, float] | None = None,
    ) -> list[Image.Image]:
        """`num` new textures of `size` (H, W) (an int means square) from a texture-mode network (`mix`: as in stylize)."""
        if self.mode != "texture":
            raise TexnetError(
                f"the network in '{self.source}' stylises photos (model.mode=stylize): use stylize(photo)"
            )
        height, width = texture_shape(size, "(H, W)", "generate(size=(256, 512))")
        if not whole(num):
            raise TexnetError(f"num={num!r} is not a number of textures: give a whole number >= 1")
        self._check_memory(1, height, width, f"a {width}x{height} texture")
        rng, weights = self._rng(seed), self.mix_weights(mix)
        return [
            tensor_to_pil(self._forward(None, self.noise_factor, rng, (height, width), weights)) for _ in range(num)
        ]


def prepare_image(
    image: Image.Image | torch.Tensor | str | Path, max_size: int | None = None, size: int | None = None
) -> torch.Tensor:
    """Any supported input as a (B, 3, H, W) float CPU tensor in [0, 1], resized by `size` or `max_size` (aspect kept)."""
    if isinstance(image, torch.Tensor):
        content = image[None] if image.dim() == 3 else image
        if content.dim() != 4 or content.shape[1] != 3:
            raise TexnetError(
                f"image tensor has shape {tuple(image.shape)}: expected (3, H, W) or (B, 3, H, W) RGB in [0, 1]"
            )
        if not content.is_floating_point():
            raise TexnetError(
                f"image tensor has dtype {content.dtype}: expected float RGB in [0, 1] or uint8 in 0..255"
            )
        content = content.detach().float().cpu()
        check_unit_range(*(float(v) for v in content.aminmax()), "image tensor")
        height, width = content.shape[-2:]
        new_w, new_h = output_size(width, height, max_size, size)
        if (new_w, new_h) != (width, height):
            content = F.interpolate(
                content, size=(new_h, new_w), mode="bicubic", antialias=True, align_corners=False
            ).clamp_(0, 1)
        return content
    if isinstance(image, Image.Image):
        pil = to_rgb(ImageOps.exif_transpose(image))
    elif isinstance(image, (str, Path)):
        pil = open_rgb(image, "image")
    else:
        raise TexnetError(f"cannot stylise a {type(image).__name__}: {IMAGE_KINDS}")
    target = output_size(*pil.size, max_size, size)
    if target != pil.size:
        pil = pil.resize(target, Image.Resampling.LANCZOS)
    return pil_to_tensor(pil)
