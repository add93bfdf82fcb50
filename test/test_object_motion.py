"""Object motion: the reconstruction's movable objects tracked from timestep to timestep."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from slarm_ros.gaussians import Gaussians4D
from slarm_ros.model import SlarmConfig
from slarm_ros.stream.object_motion import (ALIGN_POINTS, START_SPEEDS, Objects, ObjectTracker, Views,
                                            align_translation, alignment_starts, group_points, measure, objects_within,
                                            thinned)

ROAD, CAR = 0, 1  # the test's classes: features are one-hot class scores
H, W = 80, 128
K = np.array([[60.0, 0, 63.5], [0, 60.0, 39.5], [0, 0, 1]])
# camera axes in the world (x forward, y left, z up): right = -y, down = -z, forward = the heading
LOOKING_FORWARD = np.array([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])
LOOKING_RIGHT = np.array([[-1.0, 0, 0], [0, 0, -1], [0, -1, 0]])


def views(position, rotation=LOOKING_FORWARD, height=H, width=W) -> Views:
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, position
    return Views.of(K[None], pose[None], height, width)


def box(centre, size=(4.5, 1.8, 1.5), spacing=0.25) -> np.ndarray:
    """Points on the surface of an axis-aligned box, (N, 3)."""
    axes = [np.arange(-s / 2, s / 2 + 1e-9, spacing) for s in size]
    g = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    on_surface = np.isclose(np.abs(g), np.array(size) / 2, atol=1e-6).any(axis=1)
    return g[on_surface] + np.asarray(centre)


def gaussians(parts: list[tuple[np.ndarray, int, np.ndarray]], stamp: float) -> Gaussians4D:
    """Gaussians from (points (N, 3), class, network velocity (3,)) parts; degree 3 motion."""
    means = np.concatenate([p for p, _, _ in parts])
    n = len(means)
    features = torch.zeros(n, 2)
    motion = torch.zeros(n, 3, 3)
    start = 0
    for points, cls, velocity in parts:
        features[start: start + len(points), cls] = 1.0
        motion[start: start + len(points), 0] = torch.as_tensor(velocity, dtype=torch.float32)
        motion[start: start + len(points), 1] = 1.0  # acceleration the tracker must drop
        start += len(points)
    return Gaussians4D(means=torch.as_tensor(means, dtype=torch.float32), quats=torch.tensor([[1.0, 0, 0, 0]]).repeat(n, 1),
                       scales=torch.full((n, 3), 0.1), opacities=torch.ones(n), colors=torch.full((n, 3), 0.5),
                       motion=motion, features=features, t0=torch.zeros(n), time_origin=stamp)


def tracker(**changes) -> ObjectTracker:
    settings = dict(link=1.0, min_points=5, filter_weight=0.3, gate_speed=0.5, gate_cosine=0.0)
    settings.update(changes)
    return ObjectTracker(lambda f: f, [CAR], **settings)


def road() -> np.ndarray:
    x, y = np.meshgrid(np.arange(3, 30, 0.5), np.arange(-8, 8, 0.5), indexing="ij")
    return np.stack([x.ravel(), y.ravel(), np.zeros(x.size)], -1)


def drive(track: ObjectTracker, car_x: list[float], network_velocity, dt=0.1, degree=3):
    """A car driving ahead (its centre at ``car_x`` m at each step), a parked car and the road,
    seen from a camera driving at 5 m/s."""
    out = []
    for k, x in enumerate(car_x):
        t = k * dt
        ego = np.array([5.0 * t, 0, 1.5])
        moving = box([x, 0, 0.75])
        parked = box([12.0, -5, 0.75])
        g = gaussians([(moving, CAR, network_velocity), (parked, CAR, (0, 0, 0)), (road(), ROAD, (0, 0, 0))], t)
        g = replace(g, motion=g.motion[:, :degree])
        out.append((track.update(g, t, views(ego)), len(moving), len(parked)))
    return out


def test_points_closer_than_the_link_are_one_object_and_small_groups_none():
    a, b = box([10, 0, 0.75]), box([10, 4, 0.75])  # 2.2 m apart
    label, centres = group_points(np.concatenate([a, b, [[30.0, 0, 0]]]), link=1.0, min_points=5)
    assert len(centres) == 2
    assert len(set(label[: len(a)])) == 1 and len(set(label[len(a): -1])) == 1 and label[0] != label[len(a)]
    assert label[-1] == -1
    np.testing.assert_allclose(centres[label[0]], a.mean(0), atol=1e-9)


def test_a_translated_box_is_aligned_to_its_translation_from_its_centres_offset():
    """From standing still, nearest neighbours along the faces stop the alignment short (a local
    minimum): that is why an object is aligned from both starts and the lower cost kept."""
    then = box([15, 0, 0.75])
    shift = np.array([0.8, 0.3, 0.0])
    now = then + shift + np.random.default_rng(0).normal(0, 0.02, then.shape)
    eye = views([0.0, 0, 1.5])
    t, cost = align_translation(now, then, now.mean(0) - then.mean(0), eye, eye)
    np.testing.assert_allclose(t, shift, atol=0.02)
    short, short_cost = align_translation(now, then, np.zeros(3), eye, eye)
    assert np.linalg.norm(short - shift) > 0.1 and short_cost > cost + 0.05


def test_earlier_objects_are_found_by_their_points_not_their_centres():
    """A car that now touches a long truck ahead is one object with it: the centre of the two lies
    far from where the car's was, but its points still lie within reach of the car's."""
    car, truck = box([15.0, 0, 0.75]), box([25.0, 0, 0.75], size=(12.0, 2.4, 3.0))
    label, centres = group_points(np.concatenate([car, truck]), link=1.0, min_points=5)
    earlier = Objects(np.concatenate([car, truck]), label, centres, np.full((2, 1, 3), np.nan), None, 0.0)
    now = np.concatenate([car + [0.8, 0, 0], truck + [-1.5, 0, 0]])  # one object now
    assert group_points(now, link=1.0, min_points=5)[1].shape == (1, 3)
    assert np.linalg.norm(now.mean(0) - centres[label[0]]) > 3.0  # its centre is beyond a step's reach
    assert set(objects_within(now, earlier, reach=3.0)) == {0, 1}
    assert set(objects_within(car + [20.0, 0, 0], earlier, reach=3.0)) == {1}
    assert len(objects_within(car + [0, 30.0, 0], earlier, reach=3.0)) == 0


def test_a_large_object_is_thinned_evenly_for_its_alignment():
    """Gaussians come in pixel order (camera, row, column): every k-th of a near car's is every k-th
    pixel along its image rows, so what is kept still covers the whole car."""
    v, u = np.meshgrid(np.arange(30), np.arange(45), indexing="ij")  # a car's rear, 30 x 45 pixels at 6 m
    rear = np.stack([np.full(v.size, 6.0), u.ravel() * 0.04 - 0.9, 1.5 - v.ravel() * 0.05], -1)
    kept = thinned(rear)
    assert len(rear) > 3 * ALIGN_POINTS and ALIGN_POINTS / 2 < len(kept) <= ALIGN_POINTS
    assert cKDTree(kept).query(rear)[0].max() < 0.2  # every pixel's point lies within 5 pixels of a kept one
    small = box([6.0, 0, 0.75], size=(1.0, 1.0, 1.0))
    assert thinned(small) is small


def test_the_alignment_also_starts_along_the_networks_direction():
    starts = alignment_starts(np.array([5.0, 1, 1]), np.array([4.0, 1, 1]), np.array([3.0, 4.0, 2.0]), dt=0.1)
    np.testing.assert_allclose(starts[0], 0.0)
    np.testing.assert_allclose(starts[1], [1.0, 0, 0])
    # horizontal, at each of the start speeds over dt
    np.testing.assert_allclose(starts[2:], [[0.6 * v * 0.1, 0.8 * v * 0.1, 0.0] for v in START_SPEEDS])
    assert len(alignment_starts(np.zeros(3), np.ones(3), None, 0.1)) == 2
    assert len(alignment_starts(np.zeros(3), np.ones(3), np.array([0, 0, 1.0]), 0.1)) == 2  # no horizontal direction


def test_a_car_leaving_the_view_is_measured_from_the_networks_direction():
    """A car driving out of a side camera's view at 10 m/s: what stays in view shrinks, so its
    centre moves less than the car, and from standing still or from the centres' offset the
    alignment stops short; a start along the network's direction reaches the true displacement."""
    view = views([0.0, 0, 1.0], LOOKING_RIGHT)
    then = box([3.0, -5, 0.75])
    now = then + [1.0, 0, 0]
    then, now = then[view.sees(then)], now[view.sees(now)]
    now = now + np.random.default_rng(0).normal(0, 0.05, now.shape)
    assert len(now) < len(then)
    earlier = Objects(then, np.zeros(len(then), int), then.mean(0)[None], np.full((1, 1, 3), np.nan), view, 0.0)
    short = measure(now, now.mean(0), earlier, view, dt=0.1)
    found = measure(now, now.mean(0), earlier, view, dt=0.1, direction=np.array([3.0, 0.5, 0]))  # 30 % of it
    assert short.velocity[0] < 9.0
    np.testing.assert_allclose(found.velocity, [10.0, 0, 0], atol=0.3)


def test_a_plain_surface_sliding_through_the_view_does_not_move():
    """A side camera driving along a long plain wall sees its visible part shift by the ego motion:
    without asking what the other timestep could see, the alignment slides with the view."""
    wall = np.stack(np.meshgrid(np.arange(-20, 20, 0.25), [-4.0], np.arange(0.0, 1.5, 0.25), indexing="ij"), -1)
    wall = wall.reshape(-1, 3)
    then_view, now_view = views([0.0, 0, 1.0], LOOKING_RIGHT), views([1.0, 0, 1.0], LOOKING_RIGHT)
    then, now = wall[then_view.sees(wall)], wall[now_view.sees(wall)]
    assert abs(now[:, 0].mean() - then[:, 0].mean() - 1.0) < 0.1  # what each saw moved with the camera
    slid, _ = align_translation(now, then, now.mean(0) - then.mean(0), views([0.0, 0, 1.0], LOOKING_RIGHT, 10**5, 10**5),
                                views([1.0, 0, 1.0], LOOKING_RIGHT, 10**5, 10**5))  # cameras that see everything
    assert abs(slid[0] - 1.0) < 0.1
    track = tracker()
    for k, (view, points) in enumerate([(then_view, then), (now_view, now)]):
        g = gaussians([(points, CAR, (5.0, 0, 0))], k * 0.1)  # even with the network moving it
        out = track.update(g, k * 0.1, view)
    assert out.motion.abs().max() == 0


def test_a_moving_car_gets_its_measured_velocity_and_what_stands_stays_still():
    out = drive(tracker(), [15.0, 15.8, 16.6, 17.4], network_velocity=(2.0, 0.2, 0))  # 8 m/s
    first, n_moving, n_parked = out[0]
    assert first.motion.abs().max() == 0  # nothing to track from yet
    for g, _, _ in out[1:]:
        np.testing.assert_allclose(g.motion[:n_moving, 0].mean(0).numpy(), [8.0, 0, 0], atol=0.2)
        assert g.motion[:, 1:].abs().max() == 0  # velocity only
        assert g.motion[n_moving:].abs().max() == 0  # the parked car and the road


@pytest.mark.parametrize("network_velocity", [(-2.0, 0, 0), (0.2, 0, 0), (0, 0, 0)])
def test_an_object_the_network_does_not_move_that_way_stands_still(network_velocity):
    out = drive(tracker(), [15.0, 15.8, 16.6], network_velocity=network_velocity)
    assert all(g.motion.abs().max() == 0 for g, _, _ in out)


def test_the_filter_weighs_each_new_measurement_and_reset_forgets_the_track():
    track = tracker(filter_weight=0.5)
    out = drive(track, [15.0, 15.8, 17.0], network_velocity=(2.0, 0, 0))  # 8 m/s, then 12 m/s
    speed = lambda step: step[0].motion[: step[1], 0, 0].mean().item()
    assert speed(out[1]) == pytest.approx(8.0, abs=0.2)  # a new track takes its first measurement
    assert speed(out[2]) == pytest.approx(0.5 * 12.0 + 0.5 * 8.0, abs=0.2)
    track.reset()
    again = drive(track, [17.8], network_velocity=(2.0, 0, 0))
    assert again[0][0].motion.abs().max() == 0


def test_what_lies_near_a_moving_object_moves_with_it():
    """The parts of a car the network names another class (here a 'road' strip along its side, 0.2 m
    off) take its motion within object_attach_m; the road farther from the car stands still."""
    track = tracker(attach_m=0.3)
    for k, x in enumerate([15.0, 15.8]):
        car = box([x, 0, 0.75])
        strip = np.stack([np.arange(x - 2, x + 2, 0.25), np.full(16, -1.1), np.full(16, 0.75)], -1)
        g = gaussians([(car, CAR, (2.0, 0, 0)), (strip, ROAD, (0, 0, 0)), (road(), ROAD, (0, 0, 0))], k * 0.1)
        out = track.update(g, k * 0.1, views([5.0 * k * 0.1, 0, 1.5]))
    n_car, n_strip = len(car), len(strip)
    np.testing.assert_allclose(out.motion[n_car: n_car + n_strip, 0].numpy(), np.tile([8.0, 0, 0], (n_strip, 1)), atol=0.2)
    ground = road()
    far = cKDTree(car).query(ground)[0] > 0.3
    assert far.sum() > 0.9 * len(ground)
    assert out.motion[n_car + n_strip:, 0][torch.as_tensor(far)].abs().max() == 0
    assert tracker().update(g, 0.0, views([0.0, 0, 1.5])).motion.abs().max() == 0  # 0: nothing attached, nothing tracked yet


@pytest.mark.parametrize("order", [2, 3])
def test_a_moving_cars_gaussians_take_the_orders_its_track_estimates(order):
    """A car accelerating from 8 m/s at 4 m/s^2 (exactly as the tracker measures it: noise-free boxes)."""
    t = np.arange(12) * 0.1
    x = 15.0 + 8.0 * t + 2.0 * t**2
    out = drive(tracker(filter_order=order, filter_weight=0.5), list(x), network_velocity=(2.0, 0, 0))
    g, n_moving, _ = out[-1]
    np.testing.assert_allclose(g.motion[:n_moving, 0].mean(0).numpy(), [8.0 + 4.0 * t[-1], 0, 0], atol=0.2)
    np.testing.assert_allclose(g.motion[:n_moving, 1].mean(0).numpy(), [4.0, 0, 0], atol=0.3)
    if order == 2:
        assert g.motion[:, 2].abs().max() == 0
    assert g.motion[n_moving:].abs().max() == 0
    # a network of degree 1 has room for the velocity only
    velocity_only = drive(tracker(filter_order=order, filter_weight=0.5), list(x), network_velocity=(2.0, 0, 0), degree=1)
    assert velocity_only[-1][0].motion.shape[1] == 1
    np.testing.assert_allclose(velocity_only[-1][0].motion[:n_moving, 0].numpy(), g.motion[:n_moving, 0].numpy())


def test_gaussians_with_no_finite_place_stand_still_and_the_rest_is_tracked():
    """A network output with NaN and infinite means (two of the car's Gaussians, one of the road's,
    with attach on): those stand still, the car moves, and nothing raises."""
    track = tracker(attach_m=0.3)
    for k in range(3):
        car = box([15.0 + 0.8 * k, 0, 0.75])
        g = gaussians([(car, CAR, (2.0, 0, 0)), (road(), ROAD, (0, 0, 0))], k * 0.1)
        broken = [3, 5, len(car) + 7]
        g.means[3], g.means[5], g.means[len(car) + 7] = float("nan"), float("inf"), float("nan")
        out = track.update(g, k * 0.1, views([0.0, 0, 1.5]))
    assert torch.isfinite(out.motion).all()
    assert out.motion[broken].abs().max() == 0
    fine = np.setdiff1d(np.arange(len(car)), broken)
    np.testing.assert_allclose(out.motion[fine, 0].mean(0).numpy(), [8.0, 0, 0], atol=0.2)


def test_in_dense_traffic_the_nearest_objects_are_aligned_and_the_farther_ones_stand_still():
    """Twelve cars in a line ahead at 10-87 m, all driving at 8 m/s and moved by the network; at most five
    objects are aligned per timestep."""
    ranges = 10.0 + 7.0 * np.arange(12)
    track = tracker(max_aligned=5)
    rng = np.random.default_rng(0)
    order = rng.permutation(12)  # the objects' order in the Gaussians is not their range's
    for k in range(2):
        cars = [box([x + 0.8 * k, 0, 0.75]) for x in ranges[order]]
        g = gaussians([(c, CAR, (2.0, 0, 0)) for c in cars], k * 0.1)
        out = track.update(g, k * 0.1, views([0.0, 0, 1.5], height=10**4, width=10**4))
    speed = out.motion[:, 0, 0].numpy()
    starts = np.cumsum([0] + [len(c) for c in cars])
    car_speed = {ranges[order[i]]: speed[starts[i]: starts[i + 1]].mean() for i in range(12)}
    assert all(car_speed[x] == pytest.approx(8.0, abs=0.2) for x in ranges[:5])
    assert all(car_speed[x] == 0 for x in ranges[5:])


@pytest.mark.parametrize("change, message", [
    ({"object_max_aligned": 0}, "object_max_aligned"),
    ({"object_filter_weight": 0.0}, "object_filter_weight"), ({"object_filter_order": 4}, "object_filter_order"), ({"object_link_m": 0.0}, "object_link_m"),
    ({"object_movable": ("bus",)}, "object_movable"), ({"object_gate_cosine": 1.0}, "object_gate_cosine"),
    ({"object_attach_m": -0.1}, "object_attach_m")])
def test_bad_object_settings_are_refused(change, message):
    with pytest.raises(ValueError, match=message):
        SlarmConfig(**change)


def test_object_lists_from_json_become_tuples():
    cfg = SlarmConfig.from_dict({"object_movable": ["car"], "object_motion": True})
    assert cfg.object_movable == ("car",) and SlarmConfig.from_json(cfg.to_json()) == cfg
