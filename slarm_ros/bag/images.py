"""sensor_msgs/Image payloads <-> numpy arrays, for bags and for the node alike.

Works on any message object with the Image fields (rclpy's or rosbags'). Camera images are
converted to RGB uint8 from rgb8, bgr8, rgba8, bgra8 and mono8; other encodings are rejected.
"""
from __future__ import annotations

import numpy as np

# encoding -> (channels, dtype)
ENCODINGS = {
    "rgb8": (3, np.uint8), "bgr8": (3, np.uint8), "rgba8": (4, np.uint8), "bgra8": (4, np.uint8),
    "mono8": (1, np.uint8), "8UC1": (1, np.uint8), "32FC1": (1, np.float32), "32FC3": (3, np.float32),
    "32SC1": (1, np.int32),
}
CAMERA_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8", "mono8")


class ImageError(ValueError):
    """An Image message that cannot be decoded; the message says why."""


def decode(msg) -> np.ndarray:
    """The image as (H, W) or (H, W, C) numpy array in its own encoding (a copy)."""
    encoding = msg.encoding
    if encoding not in ENCODINGS:
        raise ImageError(f"unsupported image encoding '{encoding}' (supported: {', '.join(ENCODINGS)})")
    channels, dtype = ENCODINGS[encoding]
    dtype = np.dtype(dtype).newbyteorder(">" if msg.is_bigendian else "<")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    row = w * channels * dtype.itemsize
    if h <= 0 or w <= 0:
        raise ImageError(f"image has no pixels ({w}x{h})")
    if step < row:
        raise ImageError(f"image step {step} is smaller than a row of {w} {encoding} pixels ({row} bytes)")
    data = msg.data if isinstance(msg.data, np.ndarray) else np.frombuffer(bytes(msg.data), np.uint8)
    data = data.view(np.uint8).reshape(-1)
    if data.size < step * (h - 1) + row:
        raise ImageError(f"image data has {data.size} bytes, {w}x{h} {encoding} with step {step} needs {step * h}")
    rows = np.lib.stride_tricks.as_strided(data, shape=(h, row), strides=(step, 1))
    array = np.ascontiguousarray(rows).view(dtype).reshape(h, w, channels).astype(dtype.newbyteorder("="))
    return array[..., 0] if channels == 1 else array


def to_rgb(msg) -> np.ndarray:
    """A camera image as RGB uint8 (H, W, 3)."""
    if msg.encoding not in CAMERA_ENCODINGS:
        raise ImageError(f"unsupported camera encoding '{msg.encoding}' (supported: {', '.join(CAMERA_ENCODINGS)})")
    array = decode(msg)
    if msg.encoding == "mono8":
        return np.repeat(array[..., None], 3, axis=2)
    if msg.encoding in ("bgr8", "bgra8"):
        return np.ascontiguousarray(array[..., 2::-1])
    return np.ascontiguousarray(array[..., :3])


def encode(array: np.ndarray, encoding: str) -> dict:
    """Fields height, width, encoding, is_bigendian, step, data for an Image message."""
    channels, dtype = ENCODINGS[encoding]
    array = np.ascontiguousarray(array, dtype=dtype)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[2] != channels:
        raise ImageError(f"{encoding} needs {channels} channels, array has {array.shape[2]}")
    h, w = array.shape[:2]
    return {"height": h, "width": w, "encoding": encoding, "is_bigendian": 0,
            "step": w * channels * array.itemsize, "data": array.reshape(-1).view(np.uint8)}
