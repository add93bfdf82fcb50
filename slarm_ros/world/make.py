"""``slarm world make``: render a drive of the synthetic world into a ROS 2 bag with ground truth."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from tqdm import tqdm

from ..bag import messages, topics
from ..bag.writer import BagWriter
from .config import CLASSES, WorldConfig
from .raycast import render_camera
from .scene import build_scene

EPOCH = 1_700_000_000.0  # ROS time of the drive's start


def make_world_bag(cfg: WorldConfig, out: str | Path, storage: str = "mcap", progress: bool = True) -> dict:
    """Write the drive to the bag folder ``out`` (must not exist). Returns timing and size figures."""
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; choose another folder or remove it")
    started = time.perf_counter()
    scene = build_scene(cfg)
    steps = cfg.num_steps
    with BagWriter(out, storage=storage) as bag:
        bag.writer.set_custom_data("slarm.world_config", json.dumps(dataclasses.asdict(cfg)))
        t0 = EPOCH
        bag.write(topics.TF_STATIC, t0, messages.tf_message(
            t0, [(topics.BASE_LINK, topics.optical_frame(c.name), c.base_to_camera) for c in scene.cameras]),
            latched=True)
        bag.write(topics.CLASSES, t0, messages.string(json.dumps(list(CLASSES))), latched=True)
        render_s = 0.0
        for k in tqdm(range(steps), desc=f"world seed {cfg.seed}", unit="step", disable=not progress):
            t = k / cfg.hz
            stamp = EPOCH + t
            bag.write(topics.TF, stamp, messages.tf_message(stamp, [(topics.MAP, topics.BASE_LINK, scene.ego_pose(t))]))
            for cam in scene.cameras:
                r0 = time.perf_counter()
                img = render_camera(scene, cam, t)
                render_s += time.perf_counter() - r0
                frame = topics.optical_frame(cam.name)
                h, w = img.rgb.shape[:2]
                bag.write(topics.info_topic(cam.name), stamp, messages.camera_info(stamp, frame, img.K, w, h))
                bag.write(topics.image_topic(cam.name), stamp, messages.image(stamp, frame, img.rgb, "rgb8"))
                for kind, array, encoding in (("depth", img.depth, "32FC1"), ("semantic", img.semantic, "mono8"),
                                              ("flow", img.flow, "32FC3"), ("dynamic", img.dynamic, "mono8"),
                                              ("lidar", img.lidar, "32FC1")):
                    bag.write(topics.gt_topic(cam.name, kind), stamp, messages.image(stamp, frame, array, encoding))
    elapsed = time.perf_counter() - started
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"bag": str(out), "steps": steps, "cameras": cfg.cameras, "seconds": elapsed, "render_seconds": render_s,
            "bytes": size}
