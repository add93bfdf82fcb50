"""Image messages to arrays: supported encodings, padded rows, and clear errors."""
from types import SimpleNamespace

import numpy as np
import pytest

from slarm_ros.bag import images


def message(array, encoding, step=None, pad=0):
    enc = images.encode(array, encoding)
    data = enc["data"].tobytes()
    if pad:
        row = enc["step"]
        data = b"".join(data[i:i + row] + b"\0" * pad for i in range(0, len(data), row))
        enc["step"] = row + pad
    if step is not None:
        enc["step"] = step
    enc["data"] = data
    return SimpleNamespace(**enc)


RGB = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)


@pytest.mark.parametrize("encoding, make", [
    ("rgb8", lambda a: a), ("bgr8", lambda a: a[..., ::-1]),
    ("rgba8", lambda a: np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], 2)),
    ("bgra8", lambda a: np.concatenate([a[..., ::-1], np.zeros(a.shape[:2] + (1,), np.uint8)], 2)),
])
def test_colour_encodings_become_rgb(encoding, make):
    assert np.array_equal(images.to_rgb(message(make(RGB), encoding)), RGB)


def test_mono_and_padded_rows():
    mono = RGB[..., 0]
    assert np.array_equal(images.to_rgb(message(mono, "mono8")), np.repeat(mono[..., None], 3, 2))
    assert np.array_equal(images.to_rgb(message(RGB, "rgb8", pad=3)), RGB)
    depth = np.linspace(0, 50, 20, dtype=np.float32).reshape(4, 5)
    assert np.array_equal(images.decode(message(depth, "32FC1")), depth)


def test_bad_images_are_rejected_with_the_reason():
    with pytest.raises(images.ImageError, match="unsupported camera encoding '32FC1'"):
        images.to_rgb(message(np.zeros((4, 5), np.float32), "32FC1"))
    bayer = message(RGB[..., 0], "mono8")
    bayer.encoding = "bayer_rggb8"
    with pytest.raises(images.ImageError, match="unsupported image encoding 'bayer_rggb8'"):
        images.decode(bayer)
    with pytest.raises(images.ImageError, match="step 10 is smaller than a row"):
        images.decode(message(RGB, "rgb8", step=10))
    short = message(RGB, "rgb8")
    short.data = short.data[:-7]
    with pytest.raises(images.ImageError, match="data has 53 bytes"):
        images.decode(short)
    empty = message(RGB, "rgb8")
    empty.height = 0
    with pytest.raises(images.ImageError, match="no pixels"):
        images.decode(empty)
