"""The synthetic driving world's description: one small dataclass, deterministic by seed."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

# Semantic classes: plain words, so that they can be queried by language. Index = class id.
CLASSES = ("sky", "road", "sidewalk", "building", "vegetation", "pole", "car", "pedestrian")
CLASS_ID = {name: i for i, name in enumerate(CLASSES)}
GROUND_CLASSES = ("road", "sidewalk")  # excluded from scene-flow metrics, as in STORM/SLARM
MOVABLE_CLASSES = ("car", "pedestrian")  # the scene-flow metrics' foreground: what can move, parked or not


@dataclass(frozen=True)
class WorldConfig:
    """A drive through a procedural town.

    Lengths in metres, times in seconds, angles in radians, images in pixels.
    """

    seed: int = 0
    seconds: float = 20.0
    hz: float = 10.0
    cameras: int = 3  # 3: front, front-left, front-right; up to 6 adds sides and rear
    image_height: int = 240
    image_width: int = 384
    horizontal_fov: float = 1.35  # ~77 degrees
    # the road
    lane_width: float = 3.5
    lanes_per_direction: int = 2
    sidewalk_width: float = 3.0
    road_curve_amplitude: float = 12.0  # lateral swing of the road's centre line
    road_curve_length: float = 220.0  # wavelength of that swing
    # the ego vehicle
    ego_speed: float = 9.0  # mean speed, m/s
    ego_speed_swing: float = 3.0  # speed varies by +- this over the drive
    camera_height: float = 1.6
    # the town
    building_spacing: float = 14.0
    tree_spacing: float = 11.0
    pole_spacing: float = 25.0
    parked_car_share: float = 0.35  # chance of a parked car per 8 m of kerb
    moving_cars: int = 14
    pedestrians: int = 16
    non_uniform_share: float = 0.7  # share of actors that accelerate, brake, turn or zig-zag
    # the sensors
    lidar_beams: int = 32  # image rows carrying LiDAR-like depth
    lidar_top: float = 0.25  # the highest beam's row as a share of the image height (~ +12 deg, as 32-beam units)
    lidar_columns_stride: int = 2  # every n-th column of those rows
    # the cameras' read noise: zero-mean Gaussian, its standard deviation in 8-bit levels, drawn
    # afresh per camera and timestep from noise_seed (the same drive with other noise: another noise_seed)
    image_noise: float = 0.0
    noise_seed: int = 0

    def __post_init__(self):
        if not 1 <= self.cameras <= 6:
            raise ValueError(f"cameras must be 1..6, got {self.cameras}")
        if self.seconds <= 0 or self.hz <= 0:
            raise ValueError("seconds and hz must be positive")
        if self.image_height < 16 or self.image_width < 16:
            raise ValueError("images must be at least 16x16")
        if not 0.0 <= self.image_noise <= 64.0:
            raise ValueError(f"image_noise is a standard deviation in 8-bit levels, 0..64; got {self.image_noise}")
        if self.noise_seed < 0:
            raise ValueError(f"noise_seed must be >= 0, got {self.noise_seed}")

    @property
    def num_steps(self) -> int:
        return int(round(self.seconds * self.hz))

    @property
    def road_half_width(self) -> float:
        return self.lane_width * self.lanes_per_direction

    def replace(self, **changes) -> "WorldConfig":
        return dataclasses.replace(self, **changes)
