"""Regenerate the procedural textures shipped in texnet/resources/textures/ (deterministic, seeded).

The classic style images (mosaic.jpg etc.) cannot be redistributed, so texnet ships
textures drawn by this script: a stained-glass mosaic, swirling brush strokes and pebbles.
Run: python scripts/make_textures.py

It also draws three textures that no default was tuned on, for measuring how the defaults carry over
to new textures (bench/textures/: stained glass with thick leading, curved brush strokes, a woven
pattern, and terrazzo, added later to test a finding on a texture chosen before its results); they are not
built-in textures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.spatial import cKDTree

SIZE = 512
OUT = Path(__file__).resolve().parents[1] / "texnet" / "resources" / "textures"
HELD_OUT = Path(__file__).resolve().parents[1] / "bench" / "textures"


def voronoi(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest-site index and distances to the two nearest sites on a tiling (wrap-around) grid."""
    sites = rng.uniform(0, SIZE, size=(n, 2))
    tiled = np.concatenate([sites + [dx, dy] for dx in (-SIZE, 0, SIZE) for dy in (-SIZE, 0, SIZE)])
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    dist, idx = cKDTree(tiled).query(np.stack([xx.ravel(), yy.ravel()], 1), k=2)
    return (idx[:, 0] % n).reshape(SIZE, SIZE), dist[:, 0].reshape(SIZE, SIZE), dist[:, 1].reshape(SIZE, SIZE)


def mosaic(rng: np.random.Generator) -> np.ndarray:
    palette = (
        np.array(
            [
                [214, 64, 42],
                [240, 160, 40],
                [250, 214, 80],
                [40, 120, 170],
                [30, 160, 150],
                [120, 60, 140],
                [230, 230, 220],
                [90, 170, 70],
            ]
        )
        / 255.0
    )
    cell, d1, d2 = voronoi(rng, 260)
    colours = palette[rng.integers(0, len(palette), cell.max() + 1)]
    colours *= rng.uniform(0.8, 1.15, size=(len(colours), 1))
    img = colours[cell]
    shade = 1.0 - 0.25 * np.clip(d1 / 18.0, 0, 1)[..., None]  # glass is brighter at its centre
    grout = np.clip((d2 - d1 - 1.5) / 2.5, 0, 1)[..., None]  # dark outlines between cells
    img = img * shade * grout + 0.08 * (1 - grout)
    return img + rng.normal(0, 0.025, img.shape)


def swirls(rng: np.random.Generator) -> np.ndarray:
    """Brush strokes following a field of vortices (line-integral convolution of noise)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    vx, vy = np.ones_like(xx) * 0.6, np.zeros_like(yy)
    for _ in range(7):
        cx, cy, r = rng.uniform(0, SIZE), rng.uniform(0, SIZE), rng.uniform(40, 110)
        dx, dy = xx - cx, yy - cy
        fall = np.exp(-(dx**2 + dy**2) / (2 * r**2)) * rng.choice([-2.5, 2.5])
        vx, vy = vx - dy / r * fall, vy + dx / r * fall
    norm = np.hypot(vx, vy) + 1e-6
    vx, vy = vx / norm, vy / norm
    noise = rng.uniform(0, 1, (SIZE, SIZE))
    noise = np.where(noise > 0.9, 1.0, 0.0) + 0.5 * noise
    acc, px, py = np.zeros_like(noise), xx.copy(), yy.copy()
    for sign in (1, -1):
        px, py = xx.copy(), yy.copy()
        for _ in range(14):
            acc += map_coordinates(noise, [py % SIZE, px % SIZE], order=1, mode="wrap")
            fx = map_coordinates(vx, [py % SIZE, px % SIZE], order=1, mode="wrap")
            fy = map_coordinates(vy, [py % SIZE, px % SIZE], order=1, mode="wrap")
            px, py = px + sign * fx, py + sign * fy
    lic = (acc - acc.min()) / (acc.max() - acc.min())
    tone = gaussian_filter(rng.normal(0, 1, (SIZE, SIZE)), 40, mode="wrap")
    tone = (tone - tone.min()) / (tone.max() - tone.min())
    deep, mid, light = np.array([0.05, 0.12, 0.35]), np.array([0.15, 0.35, 0.7]), np.array([0.98, 0.85, 0.3])
    t = np.clip(1.6 * (lic - 0.5) + 1.1 * (tone - 0.5) + 0.5, 0, 1)[..., None]
    return np.where(t < 0.5, deep + (mid - deep) * (t / 0.5), mid + (light - mid) * ((t - 0.5) / 0.5))


def pebbles(rng: np.random.Generator) -> np.ndarray:
    cell, d1, d2 = voronoi(rng, 90)
    base = rng.uniform(0.35, 0.8, size=(cell.max() + 1, 1)) * np.array([[1.0, 0.85, 0.7]])
    base += rng.normal(0, 0.06, base.shape)
    edge = np.clip((d2 - d1) / 14.0, 0, 1)
    dome = np.sqrt(edge)[..., None]  # rounded stones: bright centre, dark rim
    grain = gaussian_filter(rng.normal(0, 1, (SIZE, SIZE)), 1.2, mode="wrap")[..., None] * 0.05
    return base[cell] * (0.25 + 0.85 * dome) + grain


def stained(rng: np.random.Generator) -> np.ndarray:
    """Large glass cells in jewel colours with thick dark leading lines."""
    palette = (
        np.array([[180, 20, 40], [20, 60, 170], [230, 180, 20], [20, 140, 60], [140, 30, 150], [240, 110, 20]]) / 255.0
    )
    cell, d1, d2 = voronoi(rng, 70)
    colours = palette[rng.integers(0, len(palette), cell.max() + 1)] * rng.uniform(0.75, 1.1, size=(cell.max() + 1, 1))
    streak = gaussian_filter(rng.normal(0, 1, (SIZE, SIZE)), (1, 12), mode="wrap")[..., None] * 0.08
    lead = np.clip((d2 - d1 - 4.0) / 2.0, 0, 1)[..., None]
    return (colours[cell] + streak) * lead + 0.04 * (1 - lead)


def strokes(rng: np.random.Generator) -> np.ndarray:
    """Short curved brush strokes of a few colours on a pale ground, in many directions."""
    img = np.ones((SIZE, SIZE, 3)) * np.array([0.93, 0.9, 0.82])
    colours = np.array([[0.1, 0.2, 0.5], [0.75, 0.2, 0.1], [0.1, 0.45, 0.3], [0.95, 0.7, 0.1], [0.15, 0.1, 0.1]])
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    for _ in range(420):
        cx, cy = rng.uniform(0, SIZE, 2)
        r, a0, span = rng.uniform(25, 60), rng.uniform(0, 2 * np.pi), rng.uniform(0.6, 1.4)
        width = rng.uniform(2.5, 5.0)
        ox, oy = cx - r * np.cos(a0), cy - r * np.sin(a0)  # the arc's centre
        dx, dy = (xx - ox + SIZE / 2) % SIZE - SIZE / 2, (yy - oy + SIZE / 2) % SIZE - SIZE / 2
        ang = (np.arctan2(dy, dx) - a0 + np.pi) % (2 * np.pi) - np.pi
        on = (np.abs(np.hypot(dx, dy) - r) < width) & (ang > 0) & (ang < span)
        img[on] = colours[rng.integers(0, len(colours))] * rng.uniform(0.85, 1.1)
    return img + rng.normal(0, 0.02, img.shape)


def weave(rng: np.random.Generator) -> np.ndarray:
    """Basket weave: alternating horizontal and vertical bands with shading across each band."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    period = 32
    cx, cy = (xx // period).astype(int), (yy // period).astype(int)
    horizontal = (cx + cy) % 2 == 0
    u = np.where(horizontal, yy % period, xx % period) / period
    shade = 0.55 + 0.45 * np.sin(np.pi * u)
    warm, cool = np.array([0.78, 0.55, 0.3]), np.array([0.35, 0.42, 0.5])
    img = np.where(horizontal[..., None], warm, cool) * shade[..., None]
    fibre = gaussian_filter(rng.normal(0, 1, (SIZE, SIZE)), (0.6, 5), mode="wrap")
    fibre = np.where(horizontal, fibre, gaussian_filter(rng.normal(0, 1, (SIZE, SIZE)), (5, 0.6), mode="wrap"))
    return img + 0.05 * fibre[..., None]


def terrazzo(rng: np.random.Generator) -> np.ndarray:
    """Terrazzo: small stone chips of a few colours, many sizes and orientations, set in a pale speckled ground."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    img = np.ones((SIZE, SIZE, 3)) * np.array([0.9, 0.88, 0.83])
    img += gaussian_filter(rng.normal(0, 1, (SIZE, SIZE)), 0.7, mode="wrap")[..., None] * 0.03
    colours = np.array([[0.72, 0.32, 0.2], [0.35, 0.42, 0.5], [0.12, 0.12, 0.13], [0.5, 0.6, 0.42], [0.85, 0.62, 0.25]])
    for _ in range(700):
        cx, cy = rng.uniform(0, SIZE, 2)
        a, b, theta = rng.uniform(3, 14), rng.uniform(0.45, 0.9), rng.uniform(0, np.pi)
        dx, dy = (xx - cx + SIZE / 2) % SIZE - SIZE / 2, (yy - cy + SIZE / 2) % SIZE - SIZE / 2
        u, v = dx * np.cos(theta) + dy * np.sin(theta), -dx * np.sin(theta) + dy * np.cos(theta)
        on = np.abs(u) / a + np.abs(v) / (a * b) < 1  # a rhombus-like chip with sharp corners
        img[on] = colours[rng.integers(0, len(colours))] * rng.uniform(0.85, 1.12)
    return img + rng.normal(0, 0.015, img.shape)


def save(img: np.ndarray, path: Path) -> None:
    pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8), "RGB").filter(ImageFilter.SMOOTH)
    pil.save(path, quality=92)
    print("wrote", path)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for seed, (name, draw) in enumerate({"mosaic": mosaic, "starry": swirls, "pebbles": pebbles}.items()):
        save(draw(np.random.default_rng(seed)), OUT / f"{name}.jpg")
    HELD_OUT.mkdir(parents=True, exist_ok=True)
    for seed, (name, draw) in enumerate(
        {"stained": stained, "strokes": strokes, "weave": weave, "terrazzo": terrazzo}.items(), start=10
    ):
        save(draw(np.random.default_rng(seed)), HELD_OUT / f"{name}.jpg")


if __name__ == "__main__":
    main()
