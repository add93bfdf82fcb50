"""The town and its traffic, built deterministically from a WorldConfig.

Static geometry: yaw-oriented boxes (buildings, hedges), vertical cylinders (poles, trunks) and
spheres (tree crowns) beside the road. Moving geometry: cars and pedestrians as boxes on
trajectories. The ego vehicle carries the camera rig.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..bag.topics import CAMERA_ORDER
from ..geometry import OPTICAL_TO_BODY
from .config import CLASS_ID, WorldConfig
from .motion import Trajectory, along_road, lateral_profile, speed_profile, time_grid
from .road import Road


CAMERA_YAWS = (0.0, 0.95, -0.95, 1.9, -1.9, np.pi)

TEXTURE_PLAIN, TEXTURE_FACADE, TEXTURE_CAR, TEXTURE_PERSON = 0, 1, 2, 3
PARKING_STRIP = 2.2  # metres between the outer lane and the kerb, class road
GROUND_INSTANCE = 1


@dataclass
class Boxes:
    centre: list = field(default_factory=list)  # (3,) metres
    half: list = field(default_factory=list)  # (3,) half extents along the box's own axes
    yaw: list = field(default_factory=list)
    cls: list = field(default_factory=list)
    instance: list = field(default_factory=list)
    color: list = field(default_factory=list)
    texture: list = field(default_factory=list)

    def add(self, centre, half, yaw, cls, instance, color, texture=TEXTURE_PLAIN):
        self.centre.append(centre)
        self.half.append(half)
        self.yaw.append(yaw)
        self.cls.append(cls)
        self.instance.append(instance)
        self.color.append(color)
        self.texture.append(texture)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, dtype=np.float64 if k in ("centre", "half", "yaw", "color") else np.int64)
                .reshape((len(v), -1) if k in ("centre", "half", "color") else (len(v),))
                for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Actor:
    trajectory: Trajectory
    half: tuple[float, float, float]
    cls: int
    instance: int
    color: tuple[float, float, float]
    texture: int


@dataclass(frozen=True)
class Camera:
    name: str
    base_to_camera: np.ndarray  # (4, 4) base_link -> optical frame
    K: np.ndarray  # (3, 3)
    gain: np.ndarray  # (3,) exposure x white balance


@dataclass
class Scene:
    cfg: WorldConfig
    road: Road
    ego: Trajectory
    cameras: list[Camera]
    boxes: dict[str, np.ndarray]  # static
    cylinders: dict[str, np.ndarray]
    spheres: dict[str, np.ndarray]
    actors: list[Actor]
    sun: np.ndarray  # (3,) unit, towards the sun

    def ego_pose(self, t: float) -> np.ndarray:
        """(4, 4) base_link -> world at time t."""
        (x, y), yaw, _, _ = self.ego.state(t)
        T = np.eye(4)
        c, s = np.cos(yaw), np.sin(yaw)
        T[:2, :2] = [[c, -s], [s, c]]
        T[:3, 3] = [x, y, 0.0]
        return T


def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    T = np.eye(4)
    T[:2, :2] = [[c, -s], [s, c]]
    return T


def build_cameras(cfg: WorldConfig, rng: np.random.Generator) -> list[Camera]:
    fx = cfg.image_width / 2 / np.tan(cfg.horizontal_fov / 2)
    K = np.array([[fx, 0, (cfg.image_width - 1) / 2], [0, fx, (cfg.image_height - 1) / 2], [0, 0, 1]])
    cams = []
    for name, yaw in list(zip(CAMERA_ORDER, CAMERA_YAWS))[: cfg.cameras]:
        mount = _yaw_matrix(yaw)
        mount[:3, 3] = [1.2 * np.cos(yaw) + 0.3, 0.5 * np.sin(yaw), cfg.camera_height]
        gain = rng.uniform(0.85, 1.15) * rng.uniform(0.93, 1.07, size=3)
        cams.append(Camera(name, mount @ OPTICAL_TO_BODY, K.copy(), gain))
    return cams


def build_scene(cfg: WorldConfig) -> Scene:
    rng = np.random.default_rng(cfg.seed)
    road = Road(cfg)
    t = time_grid(cfg.seconds)
    phase = rng.uniform(0, 2 * np.pi)
    ego_speed = cfg.ego_speed + cfg.ego_speed_swing * np.sin(2 * np.pi * t / 13.0 + phase)
    ego = along_road(road, t, 0.0, +1, ego_speed, np.full_like(t, -cfg.lane_width / 2), "ego")
    s_end = float(np.interp(cfg.seconds, t, np.concatenate([[0.0], np.cumsum(
        (ego_speed[1:] + ego_speed[:-1]) / 2 * np.diff(t))])))
    s_lo, s_hi = -60.0, s_end + 140.0

    kerb = cfg.road_half_width + PARKING_STRIP
    boxes, cyl, sph = Boxes(), Boxes(), Boxes()
    instance = GROUND_INSTANCE + 1

    def next_instance():
        nonlocal instance
        instance += 1
        return instance - 1

    for side in (-1, 1):
        # buildings, in a row behind a verge of varying width
        s = s_lo + rng.uniform(0, cfg.building_spacing)
        while s < s_hi:
            length, depth, height = rng.uniform(8, 20), rng.uniform(8, 14), rng.uniform(6, 24)
            d = side * (kerb + cfg.sidewalk_width + rng.uniform(2.5, 7.0) + depth / 2)
            x, y, heading = road.to_world(s + length / 2, d)
            color = rng.uniform(0.35, 0.85, 3) * np.array([1.0, 0.95, 0.9])
            boxes.add([x, y, height / 2], [length / 2, depth / 2, height / 2], heading, CLASS_ID["building"],
                      next_instance(), color, TEXTURE_FACADE)
            s += length + rng.uniform(1, cfg.building_spacing)
        # trees on the verge: trunk + crown
        s = s_lo + rng.uniform(0, cfg.tree_spacing)
        while s < s_hi:
            d = side * (kerb + cfg.sidewalk_width + rng.uniform(0.8, 1.8))
            x, y, _ = road.to_world(s, d)
            inst = next_instance()
            trunk = rng.uniform(1.8, 3.0)
            radius = rng.uniform(1.1, 2.2)
            cyl.add([x, y, trunk / 2], [0.15, 0.15, trunk / 2], 0.0, CLASS_ID["vegetation"], inst, [0.35, 0.25, 0.15])
            sph.add([x, y, trunk + radius * 0.7], [radius] * 3, 0.0, CLASS_ID["vegetation"], inst,
                    rng.uniform([0.15, 0.35, 0.1], [0.3, 0.6, 0.2]))
            s += cfg.tree_spacing * rng.uniform(0.6, 1.4)
        # hedges in some gaps
        for s in rng.uniform(s_lo, s_hi, size=int((s_hi - s_lo) / 40)):
            d = side * (kerb + cfg.sidewalk_width + 0.6)
            x, y, heading = road.to_world(s, d)
            boxes.add([x, y, 0.5], [rng.uniform(2, 5), 0.4, 0.5], heading, CLASS_ID["vegetation"], next_instance(),
                      rng.uniform([0.1, 0.3, 0.08], [0.25, 0.5, 0.15]))
        # poles at the kerb
        s = s_lo + rng.uniform(0, cfg.pole_spacing)
        while s < s_hi:
            x, y, _ = road.to_world(s, side * (kerb + 0.3))
            height = rng.uniform(5, 8)
            cyl.add([x, y, height / 2], [0.1, 0.1, height / 2], 0.0, CLASS_ID["pole"], next_instance(),
                    [0.55, 0.55, 0.58])
            s += cfg.pole_spacing * rng.uniform(0.8, 1.2)

    actors = []
    car_half, person_half = (2.2, 0.9, 0.75), (0.25, 0.3, 0.87)
    # parked cars in the parking strips
    for side in (-1, 1):
        for s in np.arange(s_lo, s_hi, 8.0):
            if rng.uniform() < cfg.parked_car_share:
                d = side * (cfg.road_half_width + PARKING_STRIP / 2)
                x, y, heading = road.to_world(s + rng.uniform(-1, 1), d)
                boxes.add([x, y, car_half[2]], list(car_half), heading + rng.uniform(-0.05, 0.05), CLASS_ID["car"],
                          next_instance(), rng.uniform(0.1, 0.9, 3), TEXTURE_CAR)

    def kinds(non_uniform: list[str], uniform: str) -> str:
        return str(rng.choice(non_uniform)) if rng.uniform() < cfg.non_uniform_share else uniform

    # moving cars: the outer lane of the ego's direction and both oncoming lanes
    lanes = [(-cfg.lane_width * (i + 0.5), +1) for i in range(1, cfg.lanes_per_direction)]
    lanes += [(cfg.lane_width * (i + 0.5), -1) for i in range(cfg.lanes_per_direction)]
    for _ in range(cfg.moving_cars):
        d0, direction = lanes[rng.integers(len(lanes))]
        s0 = rng.uniform(s_lo + 20, s_hi - 20)
        speed_kind = kinds(["accelerate", "brake", "surge", "stop_and_go"], "cruise")
        lateral_kind = "weave" if speed_kind == "cruise" and rng.uniform() < cfg.non_uniform_share else "keep"
        if direction < 0:
            s0 = rng.uniform(s_lo + 60, s_hi + 40)
        v0 = rng.uniform(6, 13)
        traj = along_road(road, t, s0, direction, speed_profile(speed_kind, t, v0, rng),
                          lateral_profile(lateral_kind, t, d0, rng), f"{speed_kind}+{lateral_kind}")
        actors.append(Actor(traj, car_half, CLASS_ID["car"], next_instance(), tuple(rng.uniform(0.1, 0.9, 3)),
                            TEXTURE_CAR))
    # pedestrians on the sidewalks
    for _ in range(cfg.pedestrians):
        side = rng.choice([-1, 1])
        d0 = side * (kerb + cfg.sidewalk_width / 2)
        direction = int(rng.choice([-1, 1]))
        s0 = rng.uniform(s_lo + 10, s_hi - 10)
        speed_kind = kinds(["stop_and_go", "surge", "accelerate"], "cruise")
        lateral_kind = "zigzag" if rng.uniform() < cfg.non_uniform_share else "keep"
        traj = along_road(road, t, s0, direction, speed_profile(speed_kind, t, rng.uniform(0.9, 1.7), rng),
                          lateral_profile(lateral_kind, t, d0, rng), f"{speed_kind}+{lateral_kind}")
        actors.append(Actor(traj, person_half, CLASS_ID["pedestrian"], next_instance(),
                            tuple(rng.uniform(0.1, 0.9, 3)), TEXTURE_PERSON))

    sun = np.array([0.4, -0.3, 0.85])
    return Scene(cfg=cfg, road=road, ego=ego, cameras=build_cameras(cfg, rng), boxes=boxes.arrays(),
                 cylinders=cyl.arrays(), spheres=sph.arrays(), actors=actors, sun=sun / np.linalg.norm(sun))
