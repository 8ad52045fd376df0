"""A procedural 3D-Shapes-style dataset, rendered in vectorised numpy.

Same factor structure as DeepMind's 3D Shapes (Burgess & Kim 2018): floor hue (10),
wall hue (10), object hue (10), scale (8), shape (4: cube, cylinder, sphere, capsule)
and orientation (15, -30..30 degrees), on 64x64 RGB images. Optionally a 7th factor,
``background_fade`` (5 levels), blends floor and walls towards white.

The scene is drawn with an orthographic camera looking slightly down at an object that
stands on the floor in the centre of a room corner. Orientation turns the camera around
the vertical axis: it rotates the cube and moves the room corner, so it is visible for
every shape (as in the original, where the whole room turns).

    >>> from latentdirs.data.shapes3d import make_dataset
    >>> images, factors, masks = make_dataset(1000, seed=0)   # uint8 (N,64,64,3), int (N,6), bool (N,64,64)
"""
from __future__ import annotations

import numpy as np

FACTOR_NAMES: tuple[str, ...] = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
FACTOR_SIZES: tuple[int, ...] = (10, 10, 10, 8, 4, 15)
FADE_NAME = "background_fade"
FADE_SIZE = 5
SHAPE_NAMES: tuple[str, ...] = ("cube", "cylinder", "sphere", "capsule")
IMAGE_SIZE = 64

# Physical value of each factor index.
HUES = np.linspace(0.0, 1.0, 10, endpoint=False)
SCALES = np.linspace(0.75, 1.25, 8)
ORIENTATIONS_DEG = np.linspace(-30.0, 30.0, 15)
FADES = np.linspace(0.0, 1.0, FADE_SIZE)

_ELEVATION = np.deg2rad(25.0)        # camera looks down by this much
_BASE_ROW = 50.0                     # image row of the object's footprint centre
_UNIT_PX = 9.0                       # object half-size in pixels at scale 1
_LIGHT = np.array([-0.45, 0.6, 0.65]) / np.linalg.norm([-0.45, 0.6, 0.65])  # view coords (u right, v up, w to camera)
_CHUNK = 256                         # images rendered at once; bounds memory to a few hundred MB


def factor_names(with_fade: bool = False) -> tuple[str, ...]:
    return FACTOR_NAMES + ((FADE_NAME,) if with_fade else ())


def factor_sizes(with_fade: bool = False) -> tuple[int, ...]:
    return FACTOR_SIZES + ((FADE_SIZE,) if with_fade else ())


def sample_factors(num: int, seed: int | np.random.Generator = 0, with_fade: bool = False) -> np.ndarray:
    """``num`` factor index vectors drawn uniformly, shape (num, 6) or (num, 7) with fade."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    sizes = factor_sizes(with_fade)
    return np.stack([rng.integers(0, s, size=num) for s in sizes], axis=1).astype(np.int64)


def _hue_to_rgb(hue: np.ndarray, saturation: float = 0.8, value: float = 1.0) -> np.ndarray:
    """HSV -> RGB for an array of hues in [0, 1); returns shape hue.shape + (3,)."""
    channels = []
    for n in (5.0, 3.0, 1.0):
        k = (n + hue * 6.0) % 6.0
        channels.append(value - value * saturation * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0))
    return np.stack(channels, axis=-1)


def _pixel_grid() -> tuple[np.ndarray, np.ndarray]:
    """Screen coordinates of pixel centres: u to the right, v up, origin at the object's footprint."""
    cols = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    rows = np.arange(IMAGE_SIZE, dtype=np.float32) + 0.5
    u = np.broadcast_to(cols[None, :] - IMAGE_SIZE / 2, (IMAGE_SIZE, IMAGE_SIZE))
    v = np.broadcast_to(_BASE_ROW - rows[:, None], (IMAGE_SIZE, IMAGE_SIZE))
    return u.astype(np.float32), v.astype(np.float32)


def _lambert(normal_u, normal_v, normal_w) -> np.ndarray:
    lit = normal_u * _LIGHT[0] + normal_v * _LIGHT[1] + normal_w * _LIGHT[2]
    return (0.35 + 0.65 * np.clip(lit, 0.0, 1.0)).astype(np.float32)


def _draw_cube(u, v, half, yaw):
    """Mask and shade of a cube of half-edge ``half`` turned by ``yaw``; args broadcast (n,1,1)."""
    sin_e, cos_e = np.sin(_ELEVATION), np.cos(_ELEVATION)
    mask = np.zeros(np.broadcast(u, half).shape, dtype=bool)
    shade = np.zeros(mask.shape, dtype=np.float32)
    # Four side faces with outward normal (sin b, 0, cos b); only those facing the camera are drawn,
    # and a convex solid's visible faces never overlap, so the drawing order does not matter.
    for k in range(4):
        beta = yaw + k * np.pi / 2
        facing = np.cos(beta) > 1e-3
        # Face = parallelogram P0 + a*e1 + b*e2 (a, b in [0, 1]); e2 is the vertical edge.
        p0_u = half * np.sin(beta) - half * np.cos(beta)
        p0_v = -(half * np.cos(beta) + half * np.sin(beta)) * sin_e
        e1_u = 2 * half * np.cos(beta)
        e1_v = 2 * half * np.sin(beta) * sin_e
        e2_v = 2 * half * cos_e
        a = (u - p0_u) / np.where(facing, e1_u, 1.0)
        b = (v - p0_v - a * e1_v) / e2_v
        inside = facing & (a >= 0) & (a <= 1) & (b >= 0) & (b <= 1)
        face_shade = _lambert(np.sin(beta), -np.cos(beta) * sin_e, np.cos(beta) * cos_e)
        shade = np.where(inside, face_shade, shade)
        mask |= inside
    # Top face: centre (0, 2*half*cos_e), edges e1 = 2h(cos y, sin y sin_e), e2 = 2h(sin y, -cos y sin_e).
    du = u
    dv = v - 2 * half * cos_e
    e1 = (2 * half * np.cos(yaw), 2 * half * np.sin(yaw) * sin_e)
    e2 = (2 * half * np.sin(yaw), -2 * half * np.cos(yaw) * sin_e)
    det = e1[0] * e2[1] - e1[1] * e2[0]
    a = (du * e2[1] - dv * e2[0]) / det
    b = (e1[0] * dv - e1[1] * du) / det
    top = (np.abs(a) <= 0.5) & (np.abs(b) <= 0.5)
    shade = np.where(top, _lambert(0.0, cos_e, sin_e), shade)
    return mask | top, shade


def _draw_cylinder(u, v, radius, height):
    sin_e, cos_e = np.sin(_ELEVATION), np.cos(_ELEVATION)
    x = u / radius
    across = np.clip(1.0 - x * x, 0.0, 1.0)
    top_v = height * cos_e
    side = (np.abs(x) < 1) & (v >= -radius * sin_e * np.sqrt(across)) & (v <= top_v)
    top = x * x + ((v - top_v) / (radius * sin_e)) ** 2 <= 1
    depth = np.sqrt(across)
    side_shade = _lambert(x, -depth * sin_e, depth * cos_e)
    shade = np.where(top, _lambert(0.0, cos_e, sin_e), np.where(side, side_shade, 0.0)).astype(np.float32)
    return side | top, shade


def _draw_capsule(u, v, radius, height):
    """A vertical capsule (a sphere when height == 2*radius): the screen-space stadium of its axis."""
    cos_e = np.cos(_ELEVATION)
    low = radius * cos_e
    high = (height - radius) * cos_e
    nearest_v = np.clip(v, low, high)
    du, dv = u / radius, (v - nearest_v) / radius
    dist2 = du * du + dv * dv
    mask = dist2 <= 1
    shade = np.where(mask, _lambert(du, dv, np.sqrt(np.clip(1 - dist2, 0, 1))), 0.0).astype(np.float32)
    return mask, shade


def _render_chunk(factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = len(factors)
    u, v = _pixel_grid()
    u, v = u[None], v[None]
    col = u + IMAGE_SIZE / 2  # pixel column centre
    row = _BASE_ROW - v

    floor_rgb = _hue_to_rgb(HUES[factors[:, 0]]).astype(np.float32)[:, None, None, :]
    wall_rgb = _hue_to_rgb(HUES[factors[:, 1]]).astype(np.float32)[:, None, None, :]
    object_rgb = _hue_to_rgb(HUES[factors[:, 2]]).astype(np.float32)[:, None, None, :]
    scale = SCALES[factors[:, 3]][:, None, None].astype(np.float32)
    shape = factors[:, 4]
    yaw = np.deg2rad(ORIENTATIONS_DEG[factors[:, 5]])[:, None, None].astype(np.float32)

    # Room: two walls meet in a corner that slides sideways as the camera turns; the floor-wall
    # boundary rises towards the corner because the corner is the farthest floor point.
    corner_col = IMAGE_SIZE / 2 + 40.0 * np.sin(yaw)
    boundary_row = 27.0 + 0.3 * np.abs(col - corner_col)
    is_floor = row >= boundary_row
    left_wall = col < corner_col
    wall_shade = np.where(left_wall, 0.72, 0.92) + 0.08 * np.sin(yaw) * np.where(left_wall, 1, -1) + 0.1 * row / IMAGE_SIZE
    # Floor is lit more strongly near the camera; a soft shadow sits under and right of the object.
    floor_shade = 0.6 + 0.4 * np.clip((row - boundary_row) / (IMAGE_SIZE - 27.0), 0, 1)
    half = _UNIT_PX * scale
    shadow = ((u - 0.35 * half) / (1.5 * half)) ** 2 + ((v + 0.5) / (0.6 * half)) ** 2
    floor_shade = floor_shade * (1.0 - 0.35 * np.clip(1.3 - shadow, 0, 1))
    background_shade = np.where(is_floor, floor_shade, wall_shade).astype(np.float32)
    image = np.where(is_floor[..., None], floor_rgb, wall_rgb)
    image *= background_shade[..., None]
    if factors.shape[1] > 6:
        fade = FADES[factors[:, 6]].astype(np.float32)[:, None, None, None]
        image = image * (1 - fade) + fade

    mask = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    object_shade = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for shape_id in range(4):
        idx = np.nonzero(shape == shape_id)[0]
        if len(idx) == 0:
            continue
        h = half[idx]
        if shape_id == 0:
            m, s = _draw_cube(u, v, 0.85 * h, yaw[idx])
        elif shape_id == 1:
            m, s = _draw_cylinder(u, v, 1.1 * h, 1.2 * h)  # a wide drum, unlike the cube's square
        elif shape_id == 2:
            m, s = _draw_capsule(u, v, 1.05 * h, 2.1 * h)
        else:
            m, s = _draw_capsule(u, v, 0.65 * h, 3.0 * h)
        mask[idx], object_shade[idx] = m, s
    image = np.where(mask[..., None], object_rgb * object_shade[..., None], image)
    image *= 255
    return np.clip(np.round(image, out=image), 0, 255, out=image).astype(np.uint8), mask


def render(factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N,64,64,3) and object masks bool (N,64,64) for factor indices (N,6) or (N,7)."""
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[1] not in (6, 7):
        raise ValueError(f"factors must have shape (N, 6) or (N, 7) with background fade, got {factors.shape}")
    sizes = factor_sizes(factors.shape[1] == 7)
    if (factors < 0).any() or (factors >= np.array(sizes)).any():
        raise ValueError(f"factor indices out of range; sizes are {dict(zip(factor_names(True), sizes))}")
    factors = factors.astype(np.int64)
    images = np.empty((len(factors), IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
    masks = np.empty((len(factors), IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    for start in range(0, len(factors), _CHUNK):
        images[start:start + _CHUNK], masks[start:start + _CHUNK] = _render_chunk(factors[start:start + _CHUNK])
    return images, masks


def make_dataset(num: int, seed: int = 0, with_fade: bool = False):
    """``num`` random scenes: (images uint8 (N,64,64,3), factors int (N,6|7), masks bool (N,64,64))."""
    factors = sample_factors(num, seed, with_fade=with_fade)
    images, masks = render(factors)
    return images, factors, masks


def to_tensor(images: np.ndarray):
    """uint8 NHWC images -> float32 torch tensor NCHW in [-1, 1] (the generator convention)."""
    import torch
    return torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
