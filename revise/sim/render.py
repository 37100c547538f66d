"""Anti-aliased rendering of world frames with signed distance fields (numpy only).

Every shape is a signed distance field evaluated at pixel centres in world units; coverage is
``clip(0.5 - d * pixels_per_unit, 0, 1)``, which is exact box-filter anti-aliasing for straight edges
and close to it for curves. Shapes are composited in draw order, then a light field (ambient times
lamp glows, white light so hues survive) multiplies the image.

While drawing, the renderer keeps each perceivable part's *visible* coverage (what later shapes did
not cover), so the annotations it returns (visible centroid and area, in pixels) are exactly what a
perfect perception of the video would recover. Pixel coordinates are continuous: the centre of
pixel column ``j`` is ``x = j + 0.5``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .physics import ObjectFrame, WorldFrame
from .scene import NEUTRALS, PALETTE, Static


def colour_rgb(name: str) -> np.ndarray:
    return np.asarray(PALETTE.get(name) or NEUTRALS[name], dtype=np.float32)


@dataclass
class PartAnnotation:
    x: float
    y: float
    area: float


class _Canvas:
    """One frame being drawn: the image, the pixel->world grid and the visible coverage of parts."""

    def __init__(self, height: int, width: int, world: tuple[float, float], camera, background: str):
        self.h, self.w = height, width
        cx, cy, zoom, mirror = camera
        self.mirror = bool(mirror)
        self.scale = min(width / world[0], height / world[1]) * zoom  # pixels per world unit
        self.cx, self.cy = cx, cy
        px = (np.arange(width, dtype=np.float32) + 0.5 - width / 2) / self.scale
        py = (np.arange(height, dtype=np.float32) + 0.5 - height / 2) / self.scale
        self.wx = (cx + (-px if self.mirror else px)).astype(np.float32)
        self.wy = (cy + py).astype(np.float32)
        self.image = np.empty((height, width, 3), dtype=np.float32)
        self.image[:] = colour_rgb(background)
        self.visible: dict[str, tuple[tuple[slice, slice], np.ndarray]] = {}

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        dx = (x - self.cx) * self.scale
        return (self.w / 2 + (-dx if self.mirror else dx), self.h / 2 + (y - self.cy) * self.scale)

    def window(self, x: float, y: float, radius: float):
        """Pixel slices covering a world disc, and the world grids inside them; None if off-screen."""
        px, py = self.to_pixel(x, y)
        r = radius * self.scale + 2
        x0, x1 = max(0, int(math.floor(px - r))), min(self.w, int(math.ceil(px + r)))
        y0, y1 = max(0, int(math.floor(py - r))), min(self.h, int(math.ceil(py + r)))
        if x0 >= x1 or y0 >= y1:
            return None
        sl = (slice(y0, y1), slice(x0, x1))
        return sl, self.wx[x0:x1][None, :], self.wy[y0:y1][:, None]

    def paint(self, sl, distance: np.ndarray, colour: str, part: str | None) -> None:
        """Composite a shape given its signed distance (world units) over the window ``sl``."""
        cov = np.clip(0.5 - distance * self.scale, 0.0, 1.0).astype(np.float32)
        if not cov.any():
            return
        keep = 1.0 - cov
        for (osl, vis) in self.visible.values():
            ys = slice(max(osl[0].start, sl[0].start), min(osl[0].stop, sl[0].stop))
            xs = slice(max(osl[1].start, sl[1].start), min(osl[1].stop, sl[1].stop))
            if ys.start < ys.stop and xs.start < xs.stop:
                vis[ys.start - osl[0].start:ys.stop - osl[0].start, xs.start - osl[1].start:xs.stop - osl[1].start] *= \
                    keep[ys.start - sl[0].start:ys.stop - sl[0].start, xs.start - sl[1].start:xs.stop - sl[1].start]
        region = self.image[sl]
        region *= keep[..., None]
        region += cov[..., None] * colour_rgb(colour)
        if part is not None:
            self.visible[part] = (sl, cov.copy())

    def annotations(self) -> dict[str, PartAnnotation]:
        out = {}
        for part, (sl, vis) in self.visible.items():
            area = float(vis.sum())
            if area <= 1e-6:
                out[part] = PartAnnotation(math.nan, math.nan, 0.0)
                continue
            xs = np.arange(sl[1].start, sl[1].stop, dtype=np.float64) + 0.5
            ys = np.arange(sl[0].start, sl[0].stop, dtype=np.float64) + 0.5
            out[part] = PartAnnotation(float((vis.sum(0) * xs).sum() / area), float((vis.sum(1) * ys).sum() / area), area)
        return out


# ---- signed distance fields (world units; negative inside) -------------------------------------

def sd_circle(X, Y, x, y, r):
    return np.hypot(X - x, Y - y) - r


def _local(X, Y, x, y, angle):
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = X - x, Y - y
    return c * dx + s * dy, -s * dx + c * dy


def sd_box_local(lx, ly, cx, cy, w, h, rounding=0.0):
    qx = np.abs(lx - cx) - (w / 2 - rounding)
    qy = np.abs(ly - cy) - (h / 2 - rounding)
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0) - rounding


def sd_polygon_local(lx, ly, points):
    """Convex polygon (counter-clockwise in y-down coordinates is fine: the sign is fixed by the centroid)."""
    pts = np.asarray(points, dtype=np.float32)
    centre = pts.mean(0)
    d = None
    for i in range(len(pts)):
        a, b = pts[i], pts[(i + 1) % len(pts)]
        nx, ny = b[1] - a[1], a[0] - b[0]
        norm = math.hypot(nx, ny)
        nx, ny = nx / norm, ny / norm
        if (centre[0] - a[0]) * nx + (centre[1] - a[1]) * ny > 0:
            nx, ny = -nx, -ny
        e = (lx - a[0]) * nx + (ly - a[1]) * ny
        d = e if d is None else np.maximum(d, e)
    return d


def sd_segment(X, Y, a, b, thickness):
    ax, ay = a
    bx, by = b
    vx, vy = bx - ax, by - ay
    denom = vx * vx + vy * vy or 1e-9
    t = np.clip(((X - ax) * vx + (Y - ay) * vy) / denom, 0.0, 1.0)
    return np.hypot(X - (ax + t * vx), Y - (ay + t * vy)) - thickness / 2


def sd_ellipse_approx(lx, ly, cx, cy, rx, ry):
    k = np.hypot((lx - cx) / rx, (ly - cy) / ry)
    return (k - 1.0) * min(rx, ry)


# ---- objects -------------------------------------------------------------------------------------

def _draw_static(canvas: _Canvas, s: Static) -> None:
    if not s.visible:
        return
    mx, my = (s.a[0] + s.b[0]) / 2, (s.a[1] + s.b[1]) / 2
    win = canvas.window(mx, my, math.hypot(s.b[0] - s.a[0], s.b[1] - s.a[1]) / 2 + s.thickness)
    if win is not None:
        sl, X, Y = win
        canvas.paint(sl, sd_segment(X, Y, s.a, s.b, s.thickness), s.colour, None)


def _draw_object(canvas: _Canvas, o: ObjectFrame) -> None:
    if not o.visible:
        return
    part = o.id if o.perceivable else None
    a = o.attrs
    if o.shape == "ball":
        win = canvas.window(o.x, o.y, o.w)
        if win:
            sl, X, Y = win
            canvas.paint(sl, sd_circle(X, Y, o.x, o.y, o.w), o.colour, part)
        return
    if o.shape in ("box", "triangle"):
        win = canvas.window(o.x, o.y, math.hypot(o.w, o.h) / 2)
        if win:
            sl, X, Y = win
            lx, ly = _local(X, Y, o.x, o.y, o.angle)
            if o.shape == "box":
                d = sd_box_local(lx, ly, 0.0, 0.0, o.w, o.h, rounding=min(o.w, o.h) * 0.08)
            else:
                d = sd_polygon_local(lx, ly, [(-o.w / 2, o.h / 2), (o.w / 2, o.h / 2), (0.0, -o.h / 2)])
            canvas.paint(sl, d, o.colour, part)
        return
    if o.shape == "character":
        _draw_character(canvas, o, part)
        return
    # Bottom-anchored props: (x, y) is the middle of the base.
    if o.shape == "candle":
        win = canvas.window(o.x, o.y - o.h / 2, math.hypot(o.w, o.h) / 2 + o.w * 2.2)
        if win:
            sl, X, Y = win
            canvas.paint(sl, sd_box_local(X, Y, o.x, o.y - o.h / 2, o.w, o.h, min(0.5, o.w * 0.1)), o.colour, part)
            wick_h = max(1.0, o.w * 0.3)
            canvas.paint(sl, sd_box_local(X, Y, o.x, o.y - o.h - wick_h / 2, max(0.8, o.w * 0.12), wick_h), "dark", None)
            if a.get("lit", 1) >= 0.5 and a.get("flame_colour"):
                # A teardrop: a round base over the wick tip and a point licking upwards.
                rf = o.w * 0.34
                fy = o.y - o.h - wick_h * 0.6 - rf
                flame = np.minimum(sd_circle(X, Y, o.x, fy, rf), sd_polygon_local(
                    X, Y, [(o.x - rf * 0.93, fy - rf * 0.35), (o.x + rf * 0.93, fy - rf * 0.35), (o.x, fy - rf * 2.6)]))
                canvas.paint(sl, flame, a["flame_colour"], f"{o.id}:flame" if part else None)
        return
    if o.shape == "plant":
        _draw_plant(canvas, o, part)
        return
    if o.shape == "glass":
        stream = a.get("stream_top")
        reach = o.h / 2 + 2 + (max(0.0, o.y - o.h - float(stream)) if stream is not None else 0.0)
        win = canvas.window(o.x, o.y - o.h / 2, math.hypot(o.w / 2, reach) + 2)
        if win:
            sl, X, Y = win
            wall = max(1.2, o.w * 0.08)
            fill = float(np.clip(a.get("fill", 0.0), 0.0, 1.0))
            inner_h = o.h - wall
            water_h = fill * inner_h
            water = None
            if fill > 0:
                water = sd_box_local(X, Y, o.x, o.y - wall - water_h / 2, o.w - 2 * wall, water_h)
            if stream is not None and a.get("running", 1) >= 0.5:
                # Water pouring in from above (a tap): a thin column down to the surface, part of the water.
                bottom = o.y - wall - water_h
                top = float(stream)
                if bottom > top:
                    column = sd_box_local(X, Y, o.x, (top + bottom) / 2, max(2.4, o.w * 0.15), bottom - top)
                    water = column if water is None else np.minimum(water, column)
            if water is not None:
                canvas.paint(sl, water, o.colour, part)
            outline = np.minimum.reduce([
                sd_box_local(X, Y, o.x - o.w / 2 + wall / 2, o.y - o.h / 2, wall, o.h),
                sd_box_local(X, Y, o.x + o.w / 2 - wall / 2, o.y - o.h / 2, wall, o.h),
                sd_box_local(X, Y, o.x, o.y - wall / 2, o.w, wall),
            ])
            canvas.paint(sl, outline, "glass", None)
        return
    if o.shape == "puddle":
        win = canvas.window(o.x, o.y - o.h / 2, o.w / 2 + 2)
        if win:
            sl, X, Y = win
            canvas.paint(sl, sd_ellipse_approx(X, Y, o.x, o.y - o.h / 2, o.w / 2, o.h / 2), o.colour, part)
        return
    if o.shape == "lamp":
        # A standing lamp: foot, pole of height h and a shade of width w centred at (x, y - h). The shade
        # shows its palette colour while lit (``attrs['lit']``, default on) and is plain white when off.
        win = canvas.window(o.x, o.y - o.h / 2, o.h / 2 + o.w)
        if win:
            sl, X, Y = win
            pole = np.minimum(sd_box_local(X, Y, o.x, o.y - o.h / 2, max(1.5, o.w * 0.15), o.h),
                              sd_box_local(X, Y, o.x, o.y - 1.0, o.w * 0.7, 2.0, 0.5))
            canvas.paint(sl, pole, "dark", None)
            lit = a.get("lit", 1) >= 0.5
            sh = o.w * 0.75
            shade = sd_polygon_local(X, Y, [(o.x - o.w * 0.3, o.y - o.h - sh / 2), (o.x + o.w * 0.3, o.y - o.h - sh / 2),
                                           (o.x + o.w / 2, o.y - o.h + sh / 2), (o.x - o.w / 2, o.y - o.h + sh / 2)])
            canvas.paint(sl, shade, o.colour if lit else "white", part if lit else None)
        return
    raise ValueError(f"cannot draw shape {o.shape!r}")


def _draw_character(canvas: _Canvas, o: ObjectFrame, part: str | None) -> None:
    """A body with a head and a face; ``attrs['expression']``: neutral, happy, surprised or sad.

    ``attrs['mouth_colour']`` draws the mouth in a palette colour (with dark lips around it), making it
    the perceivable part ``<id>:mouth``. The mouths differ in size so an expression is measurable from
    the mouth's visible area alone (in units of the head radius ``r``): neutral, a flat line (about
    0.11 r^2); sad, a frown arc (about 0.19 r^2); surprised, a round open "O" (about 0.32 r^2, ~3x
    neutral); happy, a wide open grin (about 0.68 r^2, ~6x neutral). Surprised eyes are wide open.
    """
    win = canvas.window(o.x, o.y, math.hypot(o.w, o.h) / 2 + 1)
    if not win:
        return
    sl, X, Y = win
    lx, ly = _local(X, Y, o.x, o.y, o.angle)
    r = o.h * 0.26
    head_y = -o.h / 2 + r
    torso_h = o.h - 2 * r * 0.9
    figure = np.minimum(sd_circle(lx, ly, 0.0, head_y, r),
                        sd_box_local(lx, ly, 0.0, o.h / 2 - torso_h / 2, o.w * 0.85, torso_h, rounding=o.w * 0.2))
    canvas.paint(sl, figure, o.colour, part)
    expression = o.attrs.get("expression", "neutral")
    eye_r = r * (0.2 if expression == "surprised" else 0.13)
    eye_y = head_y - 0.25 * r
    eyes = np.minimum(sd_circle(lx, ly, -0.38 * r, eye_y, eye_r), sd_circle(lx, ly, 0.38 * r, eye_y, eye_r))
    canvas.paint(sl, eyes, "dark", None)
    half = max(0.08 * r, 0.5 / canvas.scale)  # half the stroke width of line mouths, at least half a pixel
    if expression == "happy":
        top = head_y + 0.16 * r  # a lower half-disc: the flat top is the upper lip of an open grin
        mouth = np.maximum(sd_circle(lx, ly, 0.0, top, 0.66 * r), top - ly)
    elif expression == "sad":
        c = head_y + 0.82 * r  # the upper half of a ring: a frown
        mouth = np.maximum(np.abs(np.hypot(lx, ly - c) - 0.38 * r) - half, ly - c)
    elif expression == "surprised":
        mouth = sd_ellipse_approx(lx, ly, 0.0, head_y + 0.48 * r, 0.28 * r, 0.36 * r)
    else:
        mouth = sd_box_local(lx, ly, 0.0, head_y + 0.45 * r, 0.6 * r, 2.4 * half)
    mouth_colour = o.attrs.get("mouth_colour")
    if mouth_colour:
        # Dark lips around a coloured mouth: its edges then blend into grey, not into the face colour, so the
        # mouth keeps its hue (and perceived size) through chroma-subsampled video.
        canvas.paint(sl, mouth - max(0.1 * r, 1.0 / canvas.scale), "dark", None)
        canvas.paint(sl, mouth, mouth_colour, f"{o.id}:mouth" if part else None)
    else:
        canvas.paint(sl, mouth, "dark", None)


def _draw_plant(canvas: _Canvas, o: ObjectFrame, part: str | None) -> None:
    """A pot (``attrs['pot_colour']``) with a stem of height ``h`` and ``attrs['leaves']`` leaves."""
    pot_h, pot_w = o.w * 0.8, o.w
    win = canvas.window(o.x, o.y - (o.h + pot_h) / 2, (o.h + pot_h) / 2 + o.w)
    if not win:
        return
    sl, X, Y = win
    stem_w = max(1.2, o.w * 0.12)
    top = o.y - pot_h - o.h
    plant = sd_box_local(X, Y, o.x, o.y - pot_h - o.h / 2, stem_w, o.h)
    leaves = int(math.floor(float(o.attrs.get("leaves", 0))))
    for i in range(leaves):
        ly_ = o.y - pot_h - o.h * (i + 1) / (leaves + 1)
        side = -1 if i % 2 == 0 else 1
        plant = np.minimum(plant, sd_ellipse_approx(X, Y, o.x + side * o.w * 0.35, ly_, o.w * 0.3, o.w * 0.13))
    if o.h > 0:
        plant = np.minimum(plant, sd_circle(X, Y, o.x, top, stem_w * 1.2))
    canvas.paint(sl, plant, o.colour, part)
    pot = sd_polygon_local(X, Y, [(o.x - pot_w / 2, o.y - pot_h), (o.x + pot_w / 2, o.y - pot_h),
                                 (o.x + pot_w * 0.35, o.y), (o.x - pot_w * 0.35, o.y)])
    pot_colour = o.attrs.get("pot_colour")
    canvas.paint(sl, pot, pot_colour or "dark", f"{o.id}:pot" if (pot_colour and part) else None)


# ---- frames ---------------------------------------------------------------------------------------

def light_field(canvas: _Canvas, ambient: float, lamps) -> np.ndarray | float:
    """Per-pixel brightness: ambient plus Gaussian lamp glows (world units), clipped to [0, 1.15]."""
    if not lamps or all(i <= 0 for *_, i in lamps):
        return float(min(max(ambient, 0.0), 1.15))
    field_ = np.full((canvas.h, canvas.w), ambient, dtype=np.float32)
    for (x, y, radius, intensity) in lamps:
        if intensity > 0:
            d2 = (canvas.wx[None, :] - x) ** 2 + (canvas.wy[:, None] - y) ** 2
            field_ += intensity * np.exp(-d2 / (2 * radius * radius))
    return np.clip(field_, 0.0, 1.15)[..., None]


def render_frame(frame: WorldFrame, statics: list[Static], *, size: tuple[int, int], world: tuple[float, float],
                 background: str = "wall") -> tuple[np.ndarray, dict[str, PartAnnotation], float]:
    """Draw one world frame: ``(image uint8 (H, W, 3), part annotations, pixels per world unit)``."""
    canvas = _Canvas(size[0], size[1], world, frame.camera, background)
    for s in statics:
        _draw_static(canvas, s)
    for o in frame.objects:
        _draw_object(canvas, o)
    canvas.image *= light_field(canvas, frame.ambient, frame.lamps)
    image = np.clip(canvas.image + 0.5, 0, 255).astype(np.uint8)
    return image, canvas.annotations(), canvas.scale


def project_velocity(vx: float, vy: float, scale: float, mirror: bool) -> tuple[float, float]:
    """World velocity (units/s) to image velocity (pixels/s) under the camera."""
    return ((-vx if mirror else vx) * scale, vy * scale)
