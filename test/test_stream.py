"""The streaming engine: equal to one offline pass with the same mask, bounded window, bad input."""
import dataclasses

import numpy as np
import pytest
import torch

from slarm_ros.frames import FrameError, FrameSet
from slarm_ros.model import SlarmConfig, SlarmNet
from slarm_ros.stream import Reconstructor, point_products
from slarm_ros.random_drive import frame_sets

TINY = SlarmConfig(name="test", image_height=32, image_width=48, patch_size=8, dim=32, depth=4, num_heads=2,
                   gaussian_stride=2, semantic_dim=8, attention="window:3")


def engine(attention="window:3", motion_matching=False, match_steps_back=1, motion_smoothing_radius=0, **kwargs):
    torch.manual_seed(0)
    net = SlarmNet(TINY.replace(attention=attention, motion_matching=motion_matching, match_steps_back=match_steps_back,
                                motion_smoothing_radius=motion_smoothing_radius))
    return Reconstructor(net, device="cpu", **kwargs)


def assert_same(stream, offline):
    assert len(stream) == len(offline)
    for a, b in zip(stream, offline):
        assert a.stamp == b.stamp
        torch.testing.assert_close(a.gaussians.means, b.gaussians.means, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(a.gaussians.motion, b.gaussians.motion, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(a.gaussians.features, b.gaussians.features, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(a.depth, b.depth, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(a.affine, b.affine, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("attention, matching, steps_back, smoothing", [
    ("window:3", False, 1, 0), ("window:1", False, 1, 0), ("causal", False, 1, 0),
    ("window:3", True, 1, 0), ("window:1", True, 1, 0), ("window:3", True, 3, 0), ("window:3", True, 1, 2)])
def test_streaming_equals_one_offline_pass_with_the_same_mask(attention, matching, steps_back, smoothing):
    """With motion matching, each timestep matches the same earlier one in both modes, whatever the mask;
    motion smoothing works within one timestep's images, so it keeps the two equal."""
    seq = frame_sets(7, height=64, width=96)
    eng = engine(attention, matching, steps_back, smoothing)
    stream = [eng.step(fs) for fs in seq]
    assert_same(stream, eng.run_offline(seq, attention))


def test_full_attention_differs_from_the_window_once_the_sequence_is_longer_than_it():
    seq = frame_sets(6, height=32, width=48)
    eng = engine()
    full = eng.run_offline(seq, "full")
    window = eng.run_offline(seq, "window:3")
    assert not torch.allclose(full[-1].depth, window[-1].depth, atol=1e-5)


def test_the_cache_never_holds_more_than_the_window():
    eng = engine("window:3")
    fills, cached = [], []
    for fs in frame_sets(12, height=32, width=48):
        fills.append(eng.step(fs).window_fill)
        cached.append(eng.window_fill)
    assert fills == [1, 2, 3] + [3] * 9
    assert cached == [1, 2] + [2] * 10  # W - 1 kept between steps; W in use during a step
    assert len(eng.window_gaussians().means) == 3 * 3 * 16 * 24  # W timesteps x 3 cameras x cells
    eng.reset()
    assert eng.window_fill == 0 and eng.cache_bytes() == 0


def test_memory_per_step_is_bounded_over_a_long_sequence():
    eng = engine("window:3")
    seq = frame_sets(30, height=32, width=48)
    sizes = []
    for fs in seq:
        eng.step(fs)
        sizes.append(eng.cache_bytes())
    assert len(set(sizes[3:])) == 1, "cache size must stop growing once the window is full"
    assert len(eng.window_results) == 3


def test_reset_starts_a_new_sequence_that_reproduces_the_first():
    seq = frame_sets(4, height=32, width=48)
    eng = engine()
    first = [eng.step(fs) for fs in seq]
    eng.reset()
    again = [eng.step(fs) for fs in seq]
    assert_same(first, again)


def test_object_motion_streams_as_one_offline_pass_and_reset_forgets_its_tracks():
    """The tracker is causal in both modes; a stream's first timestep has nothing to track from,
    so it stands still whatever the network's motion, and later ones move by velocity only."""
    torch.manual_seed(0)
    net = SlarmNet(TINY.replace(object_motion=True, object_gate_speed=0.0, object_gate_cosine=-1.0))
    eng = Reconstructor(net, device="cpu")
    seq = frame_sets(5, height=64, width=96)
    stream = [eng.step(fs) for fs in seq]
    assert_same(stream, eng.run_offline(seq, "window:3"))
    eng.reset()
    assert_same(stream, [eng.step(fs) for fs in seq])
    assert stream[0].gaussians.motion.abs().max() == 0
    assert all(r.gaussians.motion[:, 1:].abs().max() == 0 for r in stream)
    untracked = Reconstructor(SlarmNet(TINY), device="cpu").step(seq[0])
    assert untracked.gaussians.motion.abs().max() > 0


def test_the_anchor_moves_after_driving_far_and_outputs_stay_in_the_world_frame():
    eng = engine(anchor_max_distance=2.0)
    seq = frame_sets(8, height=32, width=48, speed=10.0)  # 1 m per step
    results = [eng.step(fs) for fs in seq]
    assert eng.rebases >= 2
    # Gaussians are in front of the camera that made them, in the world frame, before and after
    for fs, res in zip(seq, results):
        cam0 = np.asarray(fs.cameras[0].cam_to_world)
        pts = res.gaussians.means[: 16 * 24].double().numpy()
        in_cam = (np.linalg.inv(cam0) @ np.c_[pts, np.ones(len(pts))].T)[:3]
        assert (in_cam[2] > TINY.near * 0.99).all()


@pytest.mark.parametrize("back", [2, 4])  # the engine's window (window:3), and a longer training window
def test_a_network_trained_without_anchor_lag_is_anchored_where_training_anchored_it_every_step(back):
    """Trained without lag on windows of back + 1 timesteps, a network only saw a last frame `back`
    steps after its anchor: the engine re-anchors there at every step, beyond its own window too, so
    each step equals an offline pass starting at that anchor."""
    seq = frame_sets(8, height=32, width=48)  # 10 Hz
    age = back * 0.1
    torch.manual_seed(0)
    eng = Reconstructor(SlarmNet(TINY.replace(anchor_min_age=age, anchor_max_age=age)), device="cpu")
    stream = [eng.step(fs) for fs in seq]
    assert eng.rebases == len(seq) - back - 1
    for i, result in enumerate(stream):
        offline = eng.run_offline(seq[max(0, i - back): i + 1], TINY.attention)[-1]
        assert_same([result], [offline])
    assert len(eng.past_poses) <= back + 2  # the poses kept for anchoring stay bounded
    # an engine may re-anchor sooner than its network was trained for, never later
    assert Reconstructor(eng.model, device="cpu", anchor_max_age=5.0).anchor_max_age == age
    assert engine(anchor_max_age=3.0).anchor_max_age == 3.0 and engine().anchor_max_age == TINY.anchor_max_age


@pytest.mark.parametrize("encoding, reach, value_time", [("relative", 0.0, False), ("relative", 0.15, False),
                                                        ("relative", 0.15, True), ("anchor", 0.0, False)])
def test_a_relative_network_moves_its_anchor_without_re_encoding_and_equals_one_offline_pass(encoding, reach,
                                                                                             value_time, monkeypatch):
    """Anchored 0.2 s back at every step, a network with relative pose encoding moves its cache (keys,
    and values turned by time where it turns them), and the times its attention falls off with, to each
    new anchor (one network pass per frame) and gives, in the world frame, what one offline pass
    anchored at the first frame gives; a network that sees its anchor is re-encoded and differs."""
    seq = frame_sets(8, height=64, width=96, speed=10.0)
    torch.manual_seed(0)
    net = SlarmNet(TINY.replace(pose_encoding=encoding, motion_matching=True, anchor_min_age=0.2, anchor_max_age=0.2,
                                attention_reach_s=reach, relative_value_time=value_time))
    eng = Reconstructor(net, device="cpu")
    passes = []
    step = net.step
    monkeypatch.setattr(net, "step", lambda *args: passes.append(1) or step(*args))
    stream = [eng.step(fs) for fs in seq]
    offline = eng.run_offline(seq, TINY.attention)
    assert eng.rebases == len(seq) - 3
    if encoding == "relative":
        assert len(passes) == len(seq)
        assert_same(stream, offline)
    else:
        assert len(passes) == len(seq) + 2 * eng.rebases
        assert not torch.allclose(stream[-1].depth, offline[-1].depth, atol=1e-3)


def test_point_products_are_world_points_with_colour_velocity_and_features():
    eng = engine()
    res = None
    for fs in frame_sets(3, height=32, width=48):
        res = eng.step(fs)
    pts = point_products(res, min_opacity=0.0)
    n = 3 * 16 * 24
    assert pts.xyz.shape == (n, 3) and pts.rgb.shape == (n, 3) and pts.velocity.shape == (n, 3)
    assert pts.features.shape == (n, TINY.semantic_dim) and pts.camera.shape == (n,)
    assert set(pts.camera.tolist()) == {0, 1, 2}
    assert np.isfinite(pts.xyz).all() and (pts.rgb >= 0).all() and (pts.rgb <= 1).all()
    assert point_products(res, min_opacity=1.0).num == 0
    # a threshold keeps exactly the Gaussians at least that opaque, each with its own values
    g = res.gaussians
    threshold = float(g.opacities.median())
    kept = point_products(res, min_opacity=threshold)
    mask = (g.opacities >= threshold).numpy()
    assert 0 < kept.num < n and kept.num == mask.sum()
    np.testing.assert_array_equal(kept.xyz, g.means.numpy()[mask])
    np.testing.assert_array_equal(kept.velocity, g.velocities_at(res.stamp).numpy()[mask])
    np.testing.assert_array_equal(kept.features, g.features.numpy()[mask])
    np.testing.assert_array_equal(kept.opacity, g.opacities.numpy()[mask])
    np.testing.assert_array_equal(kept.camera, np.repeat(np.arange(3), n // 3)[mask])


# --- bad input ---------------------------------------------------------------------------------
def with_camera(fs: FrameSet, index: int, **changes) -> FrameSet:
    cams = list(fs.cameras)
    cams[index] = dataclasses.replace(cams[index], **changes)
    return FrameSet(fs.stamp, tuple(cams))


@pytest.mark.parametrize("change, message", [
    (dict(image=np.zeros((32, 48), np.uint8)), "H x W x 3"),
    (dict(image=np.zeros((32, 48, 4), np.uint8)), "H x W x 3"),
    (dict(image=np.zeros((32, 48, 3), np.float32)), "uint8"),
    (dict(K=np.full((3, 3), np.nan)), "finite 3x3"),
    (dict(K=np.array([[0.0, 0, 1], [0, 10, 1], [0, 0, 1]])), "positive focal"),
    (dict(cam_to_world=np.full((4, 4), np.inf)), "finite 4x4"),
    (dict(cam_to_world=np.diag([2.0, 1, 1, 1])), "orthonormal"),
])
def test_bad_camera_data_is_rejected_with_a_message_naming_the_problem(change, message):
    fs = frame_sets(1, height=32, width=48)[0]
    eng = engine()
    with pytest.raises(FrameError, match=message) as err:
        eng.step(with_camera(fs, 1, **change))
    assert "cam1" in str(err.value)
    eng.step(fs)  # the engine is still usable


def test_camera_count_and_names_must_match():
    fs = frame_sets(2, height=32, width=48)
    eng = engine()
    with pytest.raises(FrameError, match="2 cameras.*built for 3"):
        eng.step(FrameSet(fs[0].stamp, fs[0].cameras[:2]))
    eng.step(fs[0])
    renamed = with_camera(fs[1], 2, name="rear")
    with pytest.raises(FrameError, match="rear"):
        eng.step(renamed)


def test_timestamps_must_increase():
    seq = frame_sets(3, height=32, width=48)
    eng = engine()
    eng.step(seq[1])
    with pytest.raises(FrameError, match="timestamps must increase"):
        eng.step(seq[0])
    with pytest.raises(FrameError, match="timestamps must increase"):
        eng.step(seq[1])
    with pytest.raises(FrameError, match="timestamps must increase"):
        eng.run_offline([seq[2], seq[1]])


def test_images_of_another_size_are_resized_with_their_intrinsics():
    small = frame_sets(1, height=32, width=48)[0]
    big = frame_sets(1, height=64, width=96)[0]
    eng = engine()
    a = eng.step(small)
    eng.reset()
    b = eng.step(big)
    # same rig, same field of view: the rays and hence the point directions agree
    assert a.gaussians.means.shape == b.gaussians.means.shape
