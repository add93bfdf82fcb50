"""Reading ROS 2 bags (ours or anyone's with the same message types) into FrameSets.

Images and CameraInfo per camera, synchronised across cameras by approximate time; each
camera's pose looked up in the bag's TF (``/tf``, ``/tf_static``) at the image stamp. Ground
truth (``/gt/<camera>/<kind>``), where present, comes with each set. Unreadable bags, missing
topics and images without camera_info are clear errors; sets whose pose cannot be looked up are
skipped and listed in ``skipped``.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from rosbags.rosbag2 import Reader

from ..frames import CameraFrame, FrameError, FrameSet
from ..sync import ApproximateSync
from ..tf_buffer import TransformBuffer, TransformError
from . import images, topics
from .messages import TYPESTORE, intrinsics, to_seconds, transform_matrix

_IMAGE_TOPIC = re.compile(r"^/cameras/([^/]+)/image_raw$")


class BagError(RuntimeError):
    """A bag that cannot be used as asked; the message names the bag and the problem."""


@dataclass(frozen=True)
class Sample:
    """One synchronised timestep of a bag."""

    frame_set: FrameSet
    ground_truth: dict[str, dict[str, np.ndarray]]  # camera -> kind -> array (empty without ground truth)


def open_reader(path: str | Path) -> Reader:
    path = Path(path)
    if not path.exists():
        raise BagError(f"bag {path} does not exist")
    try:
        reader = Reader(path)
        reader.open()
    except Exception as e:  # rosbags raises several types for damaged files
        raise BagError(f"bag {path} cannot be read: {e}") from e
    return reader


def _custom_data(path: Path) -> dict[str, str]:
    """The custom_data of a bag's metadata.yaml (rosbags' Reader does not expose it)."""
    import yaml

    try:
        meta = yaml.safe_load((path / "metadata.yaml").read_text())
        return dict(meta["rosbag2_bagfile_information"].get("custom_data") or {})
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return {}


def bag_cameras(reader: Reader) -> list[str]:
    """Camera names of the bag's /cameras/<name>/image_raw topics, in topics.CAMERA_ORDER, others after."""
    names = [m.group(1) for t in reader.topics if (m := _IMAGE_TOPIC.match(t))]
    order = topics.CAMERA_ORDER
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


class BagReader:
    """Iterate a bag as Samples. ``cameras`` defaults to every /cameras/<name>/image_raw topic."""

    def __init__(self, path: str | Path, cameras: list[str] | None = None, world_frame: str = topics.MAP,
                 slop: float = 0.01, ground_truth: bool = True):
        self.path = Path(path)
        self.world_frame = world_frame
        self.slop = slop
        self.want_ground_truth = ground_truth
        reader = open_reader(self.path)
        try:
            self.topics = dict(reader.topics)
            self.cameras = list(cameras) if cameras else bag_cameras(reader)
            self.duration_s = reader.duration / 1e9
            self.start_s = reader.start_time / 1e9
            self.custom_data = _custom_data(self.path)
        finally:
            reader.close()
        if not self.cameras:
            raise BagError(f"bag {self.path} has no /cameras/<name>/image_raw topics (topics: {sorted(self.topics)})")
        missing = [t for c in self.cameras for t in (topics.image_topic(c), topics.info_topic(c)) if t not in self.topics]
        if missing:
            raise BagError(f"bag {self.path} lacks topics {missing}: every camera needs image_raw and camera_info")
        if topics.TF not in self.topics and topics.TF_STATIC not in self.topics:
            raise BagError(f"bag {self.path} has no /tf or /tf_static: camera poses cannot be looked up")
        self.skipped: list[str] = []
        self.classes = self._read_classes()
        self.tf = self._read_tf()

    @property
    def has_ground_truth(self) -> bool:
        return all(topics.gt_topic(c, "depth") in self.topics for c in self.cameras)

    def world_config(self) -> dict | None:
        """The synthetic world's config stored in the bag, if it is one of ours."""
        text = self.custom_data.get("slarm.world_config")
        return json.loads(text) if text else None

    def _messages(self, wanted: list[str]):
        reader = open_reader(self.path)
        try:
            conns = [c for c in reader.connections if c.topic in wanted]
            for conn, timestamp, raw in reader.messages(connections=conns):
                try:
                    msg = TYPESTORE.deserialize_cdr(raw, conn.msgtype)
                except Exception as e:
                    raise BagError(f"bag {self.path}: a {conn.msgtype} message on {conn.topic} at "
                                   f"{timestamp / 1e9:.3f} s cannot be decoded: {e}") from e
                yield conn.topic, timestamp, msg
        except BagError:
            raise
        except Exception as e:
            raise BagError(f"bag {self.path} is damaged or truncated: {e}") from e
        finally:
            reader.close()

    def _read_classes(self) -> list[str] | None:
        if topics.CLASSES not in self.topics:
            return None
        for _, _, msg in self._messages([topics.CLASSES]):
            return list(json.loads(msg.data))
        return None

    def _read_tf(self) -> TransformBuffer:
        buffer = TransformBuffer(cache_time=float("inf"))
        for topic, _, msg in self._messages([topics.TF, topics.TF_STATIC]):
            for ts in msg.transforms:
                try:
                    buffer.set_transform(ts.header.frame_id, ts.child_frame_id, to_seconds(ts.header.stamp),
                                         transform_matrix(ts), static=topic == topics.TF_STATIC)
                except ValueError as e:
                    self.skipped.append(f"transform {ts.header.frame_id} -> {ts.child_frame_id} rejected: {e}")
        return buffer

    def __iter__(self) -> Iterator[Sample]:
        sync = ApproximateSync(tuple(self.cameras), slop=self.slop, queue_size=20)
        latest_info: dict[str, object] = {}
        gt: dict[tuple[str, int], dict[str, np.ndarray]] = {}
        pending: list[tuple[int, dict]] = []
        camera_of = {topics.image_topic(c): c for c in self.cameras}
        info_of = {topics.info_topic(c): c for c in self.cameras}
        gt_of = {topics.gt_topic(c, k): (c, k) for c in self.cameras for k in topics.GROUND_TRUTH}
        wanted = list(camera_of) + list(info_of) + (list(gt_of) if self.want_ground_truth else [])

        def release(before_ns: int):
            while pending and pending[0][0] < before_ns:
                _, matched = pending.pop(0)
                truth = {}
                for camera in self.cameras:
                    stamp = matched[camera][0].header.stamp
                    truth[camera] = gt.pop((camera, stamp.sec * 1_000_000_000 + stamp.nanosec), None)
                newest = max(to_seconds(m[0].header.stamp) for m in matched.values())
                for key in [k for k in gt if k[1] <= newest * 1e9]:
                    del gt[key]  # ground truth of images the synchroniser dropped
                sample = self._sample(matched, {c: t for c, t in truth.items() if t is not None})
                if sample is not None:
                    yield sample

        for topic, timestamp, msg in self._messages(wanted):
            yield from release(timestamp)
            if topic in info_of:
                latest_info[info_of[topic]] = msg
            elif topic in gt_of:
                camera, kind = gt_of[topic]
                stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                gt.setdefault((camera, stamp_ns), {})[kind] = images.decode(msg)
            else:
                camera = camera_of[topic]
                info = latest_info.get(camera)
                if info is None:
                    self.skipped.append(f"{topic} at {to_seconds(msg.header.stamp):.3f} s: no camera_info yet")
                    continue
                stamp = to_seconds(msg.header.stamp)
                for _, matched in sync.add(camera, stamp, (msg, info)):
                    pending.append((timestamp, matched))
        yield from release(1 << 62)

    def _sample(self, matched: dict, truth: dict) -> Sample | None:
        cams = []
        for camera in self.cameras:
            msg, info = matched[camera]
            stamp = to_seconds(msg.header.stamp)
            try:
                pose = self.tf.lookup(self.world_frame, msg.header.frame_id, stamp)
                cams.append(CameraFrame(camera, images.to_rgb(msg), intrinsics(info), pose, stamp))
            except (TransformError, images.ImageError) as e:
                self.skipped.append(f"{camera} at {stamp:.3f} s: {e}")
                return None
        frame_set = FrameSet(max(c.stamp for c in cams), tuple(cams))
        try:
            frame_set.validate()
        except FrameError as e:
            self.skipped.append(f"set at {frame_set.stamp:.3f} s: {e}")
            return None
        return Sample(frame_set, truth)

    def frame_sets(self) -> Iterator[FrameSet]:
        for sample in self:
            yield sample.frame_set
