"""Vectorised ray casting of the synthetic world: RGB and exact ground truth per pixel.

Every ray is tested against the ground plane and every primitive near the camera at once
(torch, rays x primitives); the nearest hit decides the pixel. Ground truth comes from the same
hit: camera depth z, class, instance, whether the object is moving, and its scene flow, the
velocity of the surface point (v + omega x r for a rigid actor turning at rate omega).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..geometry import grid_pixels, pixel_rays, pixels_in_boxes
from .config import CLASS_ID
from .scene import (GROUND_INSTANCE, PARKING_STRIP, TEXTURE_CAR, TEXTURE_FACADE, TEXTURE_PERSON, Camera, Scene)

FAR_M = 400.0
CULL_M = 180.0
EPS = 1e-4
_NOISE_W = torch.tensor([[1.7, 0.3, 2.1], [-0.9, 2.9, 0.4], [3.7, -1.3, 1.1], [0.5, 0.8, -4.3], [7.1, 5.3, 2.2]])
_NOISE_PHASE = torch.tensor([0.3, 1.9, 4.1, 2.6, 5.0])


@dataclass(frozen=True)
class CameraImage:
    """One camera at one time: the image and its ground truth (H x W)."""

    name: str
    stamp: float  # seconds since the drive started
    K: np.ndarray  # (3, 3)
    cam_to_world: np.ndarray  # (4, 4) optical frame -> world
    rgb: np.ndarray  # uint8 (H, W, 3)
    depth: np.ndarray  # float32 (H, W) camera z, metres; 0 where the ray sees sky
    semantic: np.ndarray  # uint8 (H, W) class ids (config.CLASSES)
    instance: np.ndarray  # int32 (H, W) 0 sky, 1 ground, >= 2 objects
    dynamic: np.ndarray  # uint8 (H, W) 1 where a moving actor is seen
    flow: np.ndarray  # float32 (H, W, 3) velocity of the seen surface point, m/s, world frame
    lidar: np.ndarray  # float32 (H, W) sparse LiDAR-like depth (camera z), 0 where none


def noise(p: Tensor) -> Tensor:
    """Smooth pseudo-random texture in [-1, 1] of world points (..., 3)."""
    return torch.sin(p @ _NOISE_W.T.to(p) + _NOISE_PHASE.to(p)).mean(-1)


def _frac(x: Tensor) -> Tensor:
    return x - torch.floor(x)


class _Hits:
    """Nearest hit so far per ray, with what the shader needs."""

    def __init__(self, n: int):
        self.t = torch.full((n,), FAR_M)
        self.normal = torch.zeros(n, 3)
        self.cls = torch.zeros(n, dtype=torch.long)  # sky
        self.instance = torch.zeros(n, dtype=torch.long)
        self.color = torch.zeros(n, 3)
        self.texture = torch.full((n,), -1, dtype=torch.long)  # -1 sky, -2 ground
        self.velocity = torch.zeros(n, 3)
        self.local = torch.zeros(n, 3)  # hit point in the primitive's frame, from its base
        self.size = torch.zeros(n, 3)  # primitive extent along its local axes (length, width, height), m
        self.dynamic = torch.zeros(n, dtype=torch.bool)

    def update(self, t: Tensor, normal: Tensor, cls, instance, color, texture, velocity, local, size, dynamic):
        closer = t < self.t
        for name, value in (("t", t), ("normal", normal), ("cls", cls), ("instance", instance), ("color", color),
                            ("texture", texture), ("velocity", velocity), ("local", local), ("size", size),
                            ("dynamic", dynamic)):
            current = getattr(self, name)
            mask = closer if current.dim() == 1 else closer[:, None]
            setattr(self, name, torch.where(mask, value, current))


def _box_hits(o: Tensor, d: Tensor, centre: Tensor, half: Tensor, yaw: Tensor):
    """Rays against yaw-oriented boxes, pairwise (P,). Returns t, normal, local point from the min corner."""
    c, s = torch.cos(yaw), torch.sin(yaw)
    rel = o - centre
    ol = torch.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1], rel[:, 2]], -1)
    dl = torch.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1], d[:, 2]], -1)
    dl = torch.where(dl.abs() < 1e-9, torch.full_like(dl, 1e-9), dl)
    t1, t2 = (-half - ol) / dl, (half - ol) / dl
    tmin, axis = torch.minimum(t1, t2).max(-1)
    tmax = torch.maximum(t1, t2).min(-1).values
    t = torch.where((tmax >= tmin) & (tmin > EPS), tmin, torch.full_like(tmin, FAR_M))
    rows = torch.arange(len(o))
    n_local = torch.zeros_like(ol)
    n_local[rows, axis] = -torch.sign(dl[rows, axis])
    normal = torch.stack([c * n_local[:, 0] - s * n_local[:, 1], s * n_local[:, 0] + c * n_local[:, 1], n_local[:, 2]], -1)
    return t, normal, ol + dl * t[:, None] + half


def _cylinder_hits(o: Tensor, d: Tensor, centre: Tensor, half: Tensor):
    """Rays against vertical cylinders (side only), pairwise. half: radius in x, half height in z."""
    rel = o[:, :2] - centre[:, :2]
    a = (d[:, :2] ** 2).sum(-1).clamp_min(1e-12)
    b = 2 * (rel * d[:, :2]).sum(-1)
    disc = b * b - 4 * a * ((rel ** 2).sum(-1) - half[:, 0] ** 2)
    t = (-b - torch.sqrt(disc.clamp_min(0))) / (2 * a)
    z = o[:, 2] + t * d[:, 2]
    ok = (disc >= 0) & (t > EPS) & (z >= centre[:, 2] - half[:, 2]) & (z <= centre[:, 2] + half[:, 2])
    t = torch.where(ok, t, torch.full_like(t, FAR_M))
    p = o + d * t[:, None]
    normal = torch.cat([p[:, :2] - centre[:, :2], torch.zeros_like(t)[:, None]], -1)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-9)
    local = p - centre + torch.stack([torch.zeros_like(t), torch.zeros_like(t), half[:, 2]], -1)
    return t, normal, local


def _sphere_hits(o: Tensor, d: Tensor, centre: Tensor, half: Tensor):
    """Rays against spheres of radius half[:, 0], pairwise."""
    rel = o - centre
    b = (rel * d).sum(-1)
    disc = b * b - (rel ** 2).sum(-1) + half[:, 0] ** 2
    t = -b - torch.sqrt(disc.clamp_min(0))
    t = torch.where((disc >= 0) & (t > EPS), t, torch.full_like(t, FAR_M))
    p = o + d * t[:, None]
    return t, (p - centre) / half[:, :1], p - centre + half


_CORNERS = torch.tensor([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=torch.float32)
_EDGES = torch.tensor([[i, j] for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count("1") == 1])


def _screen_pairs(centre: Tensor, half: Tensor, yaw: Tensor, world_to_cam: Tensor, K: Tensor, height: int,
                  width: int):
    """(ray, primitive) pairs whose pixel lies in the screen box of the primitive's oriented bounding box.

    The box is clipped at the near plane first (its 12 edges cut where they cross it), so boxes
    beside or around the camera get their true, finite screen extent.
    """
    near = 0.05
    c, s = torch.cos(yaw), torch.sin(yaw)
    local = _CORNERS[None] * half[:, None]  # (B, 8, 3)
    world = torch.stack([c[:, None] * local[..., 0] - s[:, None] * local[..., 1],
                         s[:, None] * local[..., 0] + c[:, None] * local[..., 1], local[..., 2]], -1) + centre[:, None]
    p = world @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    p0, p1 = p[:, _EDGES[:, 0]], p[:, _EDGES[:, 1]]
    z0, z1 = p0[..., 2], p1[..., 2]
    crossing = (z0 - near) * (z1 - near) < 0
    cut = p0 + ((near - z0) / torch.where(crossing, z1 - z0, torch.ones_like(z0)))[..., None] * (p1 - p0)
    points = torch.cat([p, cut], dim=1)  # (B, 20, 3)
    valid = torch.cat([p[..., 2] > near, crossing], dim=1)
    z = points[..., 2].clamp_min(near)
    u = K[0, 0] * points[..., 0] / z + K[0, 2]
    v = K[1, 1] * points[..., 1] / z + K[1, 2]
    inf = torch.tensor(float("inf"))
    keep = valid.any(dim=1) & (centre - world_to_cam.inverse()[:3, 3]).norm(dim=-1).lt(CULL_M)

    def span(values, size):
        first = torch.floor(torch.where(valid, values, inf).amin(dim=1)).clamp(0, size)
        last = torch.ceil(torch.where(valid, values, -inf).amax(dim=1)).clamp(-1, size - 1)
        return first.long(), torch.where(keep, last, torch.full_like(last, -1)).long()

    x0, x1 = span(u, width)
    y0, y1 = span(v, height)
    owner, px, py = pixels_in_boxes(x0, x1, y0, y1)
    return py * width + px, owner


def _nearest(n: int, ray: Tensor, t: Tensor) -> Tensor:
    """For each of n rays the index of its nearest pair (-1: none)."""
    best = torch.full((n,), FAR_M).scatter_reduce(0, ray, t, "amin")
    winner = (t < FAR_M) & (t == best[ray])
    index = torch.arange(len(t))
    return torch.full((n,), -1, dtype=torch.long).scatter_reduce(0, ray[winner], index[winner], "amax")


def _tensors(group: dict[str, np.ndarray]) -> dict[str, Tensor]:
    return {k: torch.as_tensor(v, dtype=torch.float32 if v.dtype == np.float64 else torch.long)
            for k, v in group.items()}


def _actor_boxes(scene: Scene, t: float) -> dict[str, np.ndarray]:
    """The actors as boxes at time t, with their velocity and yaw rate."""
    rows = {k: [] for k in ("centre", "half", "yaw", "cls", "instance", "color", "texture", "velocity", "yaw_rate")}
    for actor in scene.actors:
        (x, y), yaw, v, w = actor.trajectory.state(t)
        rows["centre"].append([x, y, actor.half[2]])
        rows["half"].append(list(actor.half))
        rows["yaw"].append(yaw)
        rows["cls"].append(actor.cls)
        rows["instance"].append(actor.instance)
        rows["color"].append(list(actor.color))
        rows["texture"].append(actor.texture)
        rows["velocity"].append([v[0], v[1], 0.0])
        rows["yaw_rate"].append(w)
    out = {k: np.asarray(v, dtype=np.int64 if k in ("cls", "instance", "texture") else np.float64)
           for k, v in rows.items()}
    for k in ("centre", "half", "color", "velocity"):
        out[k] = out[k].reshape(-1, 3)
    return out


def render_camera(scene: Scene, camera: Camera, t: float) -> CameraImage:
    """Render one camera of the rig at drive time t (seconds)."""
    cfg = scene.cfg
    cam_to_world = scene.ego_pose(t) @ camera.base_to_camera
    K = torch.as_tensor(camera.K, dtype=torch.float32)
    pose = torch.as_tensor(cam_to_world, dtype=torch.float32)
    world_to_cam = torch.as_tensor(np.linalg.inv(cam_to_world), dtype=torch.float32)
    pixels = grid_pixels(cfg.image_height, cfg.image_width)
    origins, dirs = pixel_rays(K, pose, pixels)
    o, d = origins.reshape(-1, 3), dirs.reshape(-1, 3)
    n = len(o)
    hits = _Hits(n)
    zeros3 = torch.zeros(n, 3)

    # the ground: road, parking strip and sidewalk painted by lateral offset, grass beyond
    tg = torch.where(d[:, 2] < -1e-6, -o[:, 2] / d[:, 2].clamp(max=-1e-6), torch.full((n,), FAR_M))
    tg = torch.where(tg > EPS, tg, torch.full_like(tg, FAR_M))
    pg = o + d * tg[:, None]
    lateral = scene.road.lateral(pg[:, 0], pg[:, 1]).abs()
    road_edge = cfg.road_half_width + PARKING_STRIP
    ground_cls = torch.where(lateral < road_edge, CLASS_ID["road"],
                             torch.where(lateral < road_edge + cfg.sidewalk_width, CLASS_ID["sidewalk"],
                                         CLASS_ID["vegetation"]))
    hits.update(tg, torch.tensor([0.0, 0.0, 1.0]).expand(n, 3), ground_cls, torch.full((n,), GROUND_INSTANCE),
                zeros3, torch.full((n,), -2), zeros3, torch.stack([lateral, pg[:, 0], pg[:, 1]], -1),
                zeros3, torch.zeros(n, dtype=torch.bool))

    families = [(scene.boxes, "box"), (_actor_boxes(scene, t), "actor"), (scene.cylinders, "cylinder"),
                (scene.spheres, "sphere")]
    for group, kind in families:
        if len(group["centre"]) == 0:
            continue
        g = _tensors(group)
        yaw = g["yaw"] if kind in ("box", "actor") else torch.zeros(len(g["centre"]))
        ray, prim = _screen_pairs(g["centre"], g["half"], yaw, world_to_cam, K, cfg.image_height, cfg.image_width)
        if len(ray) == 0:
            continue
        if kind in ("box", "actor"):
            t_pair, normal, local = _box_hits(o[ray], d[ray], g["centre"][prim], g["half"][prim], g["yaw"][prim])
        elif kind == "cylinder":
            t_pair, normal, local = _cylinder_hits(o[ray], d[ray], g["centre"][prim], g["half"][prim])
        else:
            t_pair, normal, local = _sphere_hits(o[ray], d[ray], g["centre"][prim], g["half"][prim])
        choice = _nearest(n, ray, t_pair)
        hit = choice >= 0
        pick = choice.clamp_min(0)
        idx = prim[pick]
        th = torch.where(hit, t_pair[pick], torch.full((n,), FAR_M))
        velocity, moving = zeros3, torch.zeros(n, dtype=torch.bool)
        if kind == "actor":
            r = o + d * th[:, None] - g["centre"][idx]
            w = g["yaw_rate"][idx]
            velocity = g["velocity"][idx] + torch.stack([-w * r[:, 1], w * r[:, 0], torch.zeros_like(w)], -1)
            moving = velocity.norm(dim=-1) > 0.05
        texture = g["texture"][idx] if "texture" in g else torch.zeros_like(idx)
        hits.update(th, normal[pick], g["cls"][idx], g["instance"][idx], g["color"][idx], texture, velocity,
                    local[pick], 2 * g["half"][idx], moving)

    rgb = _shade(scene, hits, o, d)
    rgb = (rgb * torch.as_tensor(camera.gain, dtype=torch.float32)).clamp(0, 1)
    sky = hits.t >= FAR_M
    p = o + d * hits.t[:, None]
    depth = torch.where(sky, torch.zeros(n), (p - o) @ pose[:3, 2])
    hw = (cfg.image_height, cfg.image_width)
    depth_img = depth.reshape(hw).numpy()
    lidar = np.zeros(hw, dtype=np.float32)
    rows = np.linspace(int(cfg.lidar_top * hw[0]), hw[0] - 1, cfg.lidar_beams).round().astype(int)[:, None]
    cols = np.arange(0, hw[1], cfg.lidar_columns_stride)[None]
    lidar[rows, cols] = depth_img[rows, cols]
    return CameraImage(
        name=camera.name, stamp=t, K=camera.K.copy(), cam_to_world=cam_to_world,
        rgb=_quantised(rgb.reshape(*hw, 3).numpy(), cfg.image_noise, [cfg.noise_seed, cfg.seed, round(t * 1e6),
                                                                        zlib.crc32(camera.name.encode())]),
        depth=depth_img.astype(np.float32),
        semantic=torch.where(sky, torch.zeros_like(hits.cls), hits.cls).reshape(hw).numpy().astype(np.uint8),
        instance=torch.where(sky, torch.zeros_like(hits.instance), hits.instance).reshape(hw).numpy().astype(np.int32),
        dynamic=(hits.dynamic & ~sky).reshape(hw).numpy().astype(np.uint8),
        flow=torch.where(sky[:, None], zeros3, hits.velocity).reshape(*hw, 3).numpy().astype(np.float32),
        lidar=lidar,
    )


def _quantised(rgb: np.ndarray, noise: float, entropy: list[int]) -> np.ndarray:
    """(H, W, 3) colours in [0, 1] -> uint8, with read noise of standard deviation ``noise`` levels
    drawn from ``entropy`` (so a drive, a camera and a time always get the same noise)."""
    levels = rgb * 255.0
    if noise > 0:
        levels = levels + np.random.default_rng(entropy).normal(0.0, noise, levels.shape)
    return np.clip(levels + 0.5, 0, 255).astype(np.uint8)


def _car_albedo(body: Tensor, hits: _Hits) -> Tensor:
    """A car's paint with what marks it along its length (n, 3): side windows split by pillars, two wheels,
    a door line, head and tail lights. Without them a car seen from the side is the same along each image
    row, and its motion along its length could not be seen in the images."""
    along = hits.local[:, 0] / hits.size[:, 0].clamp_min(1e-6)  # 0 at the rear, 1 at the front
    across = hits.local[:, 1] / hits.size[:, 1].clamp_min(1e-6)
    rel = hits.local[:, 2] / hits.size[:, 2].clamp_min(1e-6)
    glass = (rel > 0.62) & (((along > 0.17) & (along < 0.47)) | ((along > 0.53) & (along < 0.83)))
    wheel = (rel < 0.3) & (((along - 0.2).abs() < 0.09) | ((along - 0.8).abs() < 0.09))
    sill = (rel < 0.22) & ~wheel
    door_line = (rel > 0.22) & (rel < 0.62) & ((hits.local[:, 0] - 0.5 * hits.size[:, 0]).abs() < 0.03)
    lamp_row = (rel > 0.35) & (rel < 0.5) & ((across < 0.22) | (across > 0.78))
    albedo = torch.where(glass[:, None], torch.tensor([0.12, 0.14, 0.17]), body)
    albedo = torch.where((sill | door_line)[:, None], body * 0.4, albedo)
    albedo = torch.where(wheel[:, None], torch.tensor([0.06, 0.06, 0.06]), albedo)
    albedo = torch.where((lamp_row & (along > 0.99))[:, None], torch.tensor([0.95, 0.95, 0.85]), albedo)
    return torch.where((lamp_row & (along < 0.01))[:, None], torch.tensor([0.8, 0.1, 0.08]), albedo)


def _shade(scene: Scene, hits: _Hits, o: Tensor, d: Tensor) -> Tensor:
    """Albedo from procedural textures, lit by the sun and the sky; the sky itself where nothing was hit."""
    cfg = scene.cfg
    p = o + d * hits.t[:, None]
    car = hits.texture == TEXTURE_CAR
    person = hits.texture == TEXTURE_PERSON
    # Cars and people carry their texture in their own frame, so that it moves with them: painted in
    # world coordinates it would stand still while they drive through it, a photometric cue against
    # their true motion.
    texture_noise = noise(torch.where((car | person)[:, None], hits.local, p))
    albedo = hits.color * (0.85 + 0.15 * texture_noise[:, None])

    # facades: a grid of windows above the ground floor
    u = hits.local[:, 0] + hits.local[:, 1]
    z = hits.local[:, 2]
    window = (_frac(u / 3.0) > 0.25) & (_frac(u / 3.0) < 0.75) & (_frac(z / 3.2) > 0.3) & (_frac(z / 3.2) < 0.8) & (z > 2.5)
    facade = hits.texture == TEXTURE_FACADE
    albedo = torch.where((facade & window)[:, None], torch.tensor([0.18, 0.22, 0.3]) + 0.05 * texture_noise[:, None], albedo)
    albedo = torch.where(car[:, None], _car_albedo(albedo, hits), albedo)
    # people: skin, shirt, trousers
    rel = z / hits.size[:, 2].clamp_min(1e-6)
    albedo = torch.where((person & (rel > 0.87))[:, None], torch.tensor([0.8, 0.62, 0.5]), albedo)
    albedo = torch.where((person & (rel < 0.5))[:, None], hits.color * 0.35, albedo)

    # the ground
    ground = hits.texture == -2
    lateral, gx = hits.local[:, 0], hits.local[:, 1]
    road_edge = cfg.road_half_width + PARKING_STRIP
    asphalt = 0.3 + 0.04 * texture_noise
    marks = torch.zeros_like(lateral, dtype=torch.bool)
    for k in range(1, cfg.lanes_per_direction):
        marks |= ((lateral - k * cfg.lane_width).abs() < 0.08) & (_frac(gx / 9.0) < 0.5)  # dashed lane lines
    marks |= (lateral < 0.1) | ((lateral - cfg.road_half_width).abs() < 0.1)  # centre and edge lines
    road_color = torch.where(marks[:, None], torch.tensor([0.85, 0.85, 0.8]), asphalt[:, None].expand(-1, 3))
    tiles = (_frac(gx / 1.2) < 0.05) | (_frac(lateral / 1.2) < 0.05)
    walk_color = torch.where(tiles[:, None], torch.tensor([0.45, 0.45, 0.45]), torch.tensor([0.62, 0.6, 0.57]) +
                             0.04 * texture_noise[:, None])
    grass = torch.tensor([0.2, 0.42, 0.15]) * (0.8 + 0.2 * texture_noise[:, None])
    ground_color = torch.where((lateral < road_edge)[:, None], road_color,
                               torch.where((lateral < road_edge + cfg.sidewalk_width)[:, None], walk_color, grass))
    albedo = torch.where(ground[:, None], ground_color, albedo)

    sun = torch.as_tensor(scene.sun, dtype=torch.float32)
    light = 0.55 + 0.45 * (hits.normal @ sun).clamp_min(0)
    lit = albedo * light[:, None]

    elevation = d[:, 2].clamp(-1, 1)
    sky = torch.tensor([0.85, 0.88, 0.92]) * (1 - elevation[:, None]) + torch.tensor([0.32, 0.5, 0.82]) * elevation[:, None]
    clouds = (noise(d * 6.0) * 0.5 + 0.5) ** 3 * (elevation > 0.02)
    sky = sky * (1 - 0.5 * clouds[:, None]) + 0.5 * clouds[:, None]
    return torch.where((hits.t >= FAR_M)[:, None], sky, lit)
