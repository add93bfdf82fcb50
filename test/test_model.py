"""The network learns through rendering: gradients reach every part from a frame at another time."""
import pytest
import torch
import torch.nn.functional as F

from slarm_ros.gaussians import Gaussians4D
from slarm_ros.geometry import grid_pixels, pixel_rays, quat_multiply, rotmat_to_quat
from slarm_ros.model import SlarmConfig, SlarmNet, ViewBatch
from slarm_ros.model.heads import SPEED_DEAD_ZONE, SPEED_MAX, speed_direction_motion
from slarm_ros.model.matching import MatchState, MotionMatcher
from slarm_ros.model.relative import RelativeFrames, decode_output, encode_values, split_channels
from slarm_ros.model.smoothing import smooth_motion
from slarm_ros.render.scene import render_gaussians
from slarm_ros.random_drive import frame_sets

CFG = SlarmConfig(name="test", image_height=32, image_width=48, patch_size=8, dim=32, depth=4, num_heads=2,
                  gaussian_stride=2, semantic_dim=8, text_dim=16, motion_degree=3, attention="full")


def batch_from(seq, cfg):
    anchor = torch.as_tensor(seq[0].cameras[0].cam_to_world, dtype=torch.float64).inverse()
    images = torch.stack([torch.stack([torch.from_numpy(c.image).permute(2, 0, 1).float() / 255 for c in fs.cameras])
                          for fs in seq])
    K = torch.stack([torch.stack([torch.as_tensor(c.K, dtype=torch.float32) for c in fs.cameras]) for fs in seq])
    poses = torch.stack([torch.stack([(anchor @ torch.as_tensor(c.cam_to_world)).float() for c in fs.cameras])
                         for fs in seq])
    times = torch.tensor([fs.stamp - seq[0].stamp for fs in seq], dtype=torch.float32)
    return ViewBatch(images, K, poses, times)


@pytest.mark.parametrize("matching, gate, gate_hidden, form", [(False, False, 0, "linear"), (True, False, 0, "linear"),
                                                               (True, True, 0, "linear"), (True, True, 8, "linear"),
                                                               (False, False, 0, "speed"), (True, True, 8, "speed")])
def test_gradients_reach_every_parameter_group_through_rendering_at_another_timestamp(matching, gate, gate_hidden, form):
    torch.manual_seed(0)
    net = SlarmNet(CFG.replace(motion_matching=matching, motion_gate=gate, match_gate_hidden=gate_hidden,
                               motion_form=form))
    seq = frame_sets(3, height=32, width=48, seed=1)
    batch = batch_from(seq, CFG)
    pred = net(ViewBatch(batch.images[:2], batch.K[:2], batch.cam_to_anchor[:2], batch.times[:2]))

    context = Gaussians4D.cat(pred.gaussians)
    target_time = float(batch.times[2])  # a timestep the network never saw
    sky_token = pred.sky_tokens[-1]
    render = render_gaussians(
        context, target_time, batch.cam_to_anchor[2], batch.K[2], 48, 32,
        sky=lambda d: net.sky_head(d, sky_token), affine=pred.affine[-1], with_features=True, backend="torch",
    )
    target = batch.images[2].permute(0, 2, 3, 1)
    text = torch.randn(3, 32, 48, CFG.text_dim)
    semantic = 1 - F.cosine_similarity(net.semantic_projection(render.features), text, dim=-1).mean()
    loss = F.l1_loss(render.rgb, target) + 0.1 * semantic + 0.01 * render.depth.mean()
    loss.backward()

    for group, params in net.parameter_groups().items():
        grads = [p.grad for p in params if p.grad is not None]
        assert grads, f"no gradient reaches {group}"
        assert all(torch.isfinite(g).all() for g in grads), f"non-finite gradient in {group}"
        assert sum(g.abs().sum() for g in grads) > 0, f"zero gradient in {group}"
    # the motion channels of the head get gradient only because the target is at another time
    motion_rows = slice(12, 12 + (4 if form == "speed" else 3) * CFG.motion_degree)  # after depth ... rgb
    assert net.gaussian_head.out.weight.grad[motion_rows].abs().sum() > 0
    if gate:  # the gate channel (the last) too
        assert net.gaussian_head.out.weight.grad[-1].abs().sum() > 0
    if gate_hidden:  # the matcher's gate is a small MLP over its evidence, the velocity's size included
        first, _, last = net.matcher.gate
        assert first.in_channels == 32 + 5 and last.weight.grad.abs().sum() > 0


def test_the_motion_gate_scales_all_motion_matched_included_and_can_stop_it():
    torch.manual_seed(0)
    cfg = CFG.replace(motion_matching=True, motion_gate=True)
    net = SlarmNet(cfg)
    batch = batch_from(frame_sets(3, height=32, width=48, seed=1), cfg)
    with torch.no_grad():
        pred = net(batch)
        h, w = cfg.gaussian_grid
        assert pred.dynamic.shape == (3, cfg.num_cameras * h * w)
        assert ((pred.dynamic > 0) & (pred.dynamic < 1)).all()
        moving = torch.stack([g.motion for g in pred.gaussians])
        net.gaussian_head.out.bias[-1] = -40.0  # gate ~4e-18 everywhere
        stopped = torch.stack([g.motion for g in net(batch).gaussians])
    assert moving.abs().max() > 1e-4
    assert stopped.abs().max() < 1e-12
    assert SlarmNet(CFG).gaussian_head.out.out_channels == net.gaussian_head.out.out_channels - 1


def test_the_speed_form_starts_nearly_still_can_stand_exactly_still_and_follows_its_direction():
    cfg = CFG.replace(motion_form="speed")
    net = SlarmNet(cfg)
    assert net.gaussian_head.out.out_channels == SlarmNet(CFG).gaussian_head.out.out_channels + cfg.motion_degree
    raw = torch.zeros(5, 3, 4)  # 5 Gaussians, 3 orders, direction xyz + speed logit
    raw[..., 0] = 2.0  # along +x
    start = speed_direction_motion(raw)
    assert torch.allclose(start, torch.tensor([0.1 - SPEED_DEAD_ZONE, 0.0, 0.0]).expand(5, 3, 3), atol=1e-4)
    raw[0, :, 3] = -30.0  # far down the sigmoid: exactly still
    raw[1, :, 3] = 4.5  # about 8 m/s^k, reached by a logit as far from the start as stillness nearly is
    raw[2, :, :3] = torch.tensor([0.0, -3.0, 4.0])
    motion = speed_direction_motion(raw)
    assert torch.equal(motion[0], torch.zeros(3, 3))
    assert 7.5 < float(motion[1, 0, 0]) < 8.5
    assert torch.allclose(motion[2, 0], (0.1 - SPEED_DEAD_ZONE) * torch.tensor([0.0, -0.6, 0.8]), atol=1e-5)
    assert float(speed_direction_motion(torch.full((1, 1, 4), 50.0)).norm()) <= SPEED_MAX
    with pytest.raises(ValueError, match="motion_form"):
        CFG.replace(motion_form="bases")


def test_with_head_velocity_scale_zero_the_velocity_is_the_matched_one_alone():
    torch.manual_seed(0)
    cfg = CFG.replace(motion_matching=True, head_velocity_scale=0.0)
    net = SlarmNet(cfg)
    batch = batch_from(frame_sets(3, height=32, width=48, seed=1), cfg)
    with torch.no_grad():
        net.matcher.gate.bias.fill_(-40.0)  # matched velocity ~4e-18 of itself
        motion = torch.stack([g.motion for g in net(batch).gaussians])  # (T, N, degree, 3)
        net.cfg = cfg.replace(head_velocity_scale=1.0)
        with_head = torch.stack([g.motion for g in net(batch).gaussians])
    assert motion[:, :, 0].abs().max() < 1e-12  # no velocity but the matcher's
    assert with_head[:, :, 0].abs().max() > 1e-4  # which the head's would otherwise add to
    assert torch.equal(motion[:, :, 1:], with_head[:, :, 1:])  # acceleration and jerk still come from the head
    with pytest.raises(ValueError, match="head_velocity_scale"):
        CFG.replace(head_velocity_scale=1.5)


@pytest.mark.parametrize("value_time", [False, True])
def test_with_relative_pose_encoding_the_output_moves_rigidly_with_the_anchor(value_time):
    """The same drive given relative to another anchor (turned, moved, later): depth, features, colour
    transforms and the sky agree, and Gaussians and motion are the same world points and vectors,
    also with values turned by time."""
    torch.manual_seed(0)
    net = SlarmNet(CFG.replace(pose_encoding="relative", motion_matching=True, attention="window:3",
                               relative_value_time=value_time)).eval()
    batch = batch_from(frame_sets(4, height=32, width=48, speed=10.0), CFG)
    angle = torch.tensor(0.7)
    move = torch.eye(4)
    move[:3, :3] = torch.tensor([[angle.cos(), 0, angle.sin()], [0, 1, 0], [-angle.sin(), 0, angle.cos()]])
    move[:3, 3] = torch.tensor([25.0, -1.0, -40.0])
    other = ViewBatch(batch.images, batch.K, move @ batch.cam_to_anchor, batch.times - 3.0)
    with torch.no_grad():
        a, b = net(batch), net(other)
    R, t = move[:3, :3], move[:3, 3]
    torch.testing.assert_close(a.depth, b.depth, rtol=1e-4, atol=1e-4)
    for ga, gb in zip(a.gaussians, b.gaussians):
        torch.testing.assert_close(ga.means @ R.T + t, gb.means, rtol=1e-4, atol=1e-3)
        torch.testing.assert_close(ga.motion @ R.T, gb.motion, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(quat_multiply(rotmat_to_quat(R).expand_as(ga.quats), ga.quats).abs(), gb.quats.abs(),
                                   rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ga.features, gb.features, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(ga.t0 - 3.0, gb.t0)
    torch.testing.assert_close(a.affine, b.affine, rtol=1e-4, atol=1e-4)
    directions = F.normalize(torch.randn(50, 3), dim=-1)  # the same world directions, in each anchor frame
    with torch.no_grad():
        sky_a = net.sky_colour(directions, a.sky_tokens[-1], a.sky_frames[-1])
        sky_b = net.sky_colour(directions @ R.T, b.sky_tokens[-1], b.sky_frames[-1])
    torch.testing.assert_close(sky_a, sky_b, rtol=1e-4, atol=1e-4)
    if value_time:  # turning values by time changes what the same weights compute
        plain = SlarmNet(net.cfg.replace(relative_value_time=False)).eval()
        plain.load_state_dict(net.state_dict())
        with torch.no_grad():
            assert (plain(batch).depth - a.depth).abs().max() > 1e-5
    # the anchor-encoded network sees the anchor: the same drive gives other Gaussians
    anchored = SlarmNet(CFG.replace(motion_matching=True, attention="window:3")).eval()
    with torch.no_grad():
        assert not torch.allclose(anchored(batch).depth, anchored(other).depth, atol=1e-3)
    with pytest.raises(ValueError, match="pose_encoding"):
        CFG.replace(pose_encoding="absolute")
    with pytest.raises(ValueError, match="relative_value_time"):
        CFG.replace(relative_value_time=True)  # an anchor-encoded network has no relative times to turn by


def test_values_turned_by_time_reach_a_query_turned_by_the_time_between_them():
    """With value_time, a value of a timestep at t_k reaches a query at t_q with its time channels turned
    by t_k - t_q alone: the same gap anywhere gives the same, no gap gives the value back, and its pose
    channels pass unchanged. Without value_time values pass as they are."""
    torch.manual_seed(0)
    v = torch.randn(1, 2, 5, 16)
    pose = torch.eye(4)[None]

    def passed(t_key: float, t_query: float, value_time: bool = True) -> torch.Tensor:
        key = RelativeFrames(pose, torch.tensor([t_key]), value_time=value_time)
        query = RelativeFrames(pose, torch.tensor([t_query]), value_time=value_time)
        return decode_output(encode_values(v, key), query)

    torch.testing.assert_close(passed(0.7, 0.2), passed(3.5, 3.0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(passed(1.3, 1.3), v, rtol=1e-5, atol=1e-5)
    n_pose, n_time = split_channels(16)
    turned = passed(0.7, 0.2)
    torch.testing.assert_close(turned[..., :n_pose], v[..., :n_pose])
    assert not torch.allclose(turned[..., n_pose:n_pose + n_time], v[..., n_pose:n_pose + n_time], atol=1e-3)
    torch.testing.assert_close(passed(0.7, 0.2, value_time=False), v)


def test_attention_reach_keeps_a_full_pass_from_listening_to_far_timesteps():
    """With a fall-off of 0.1 s, what a full pass over 12 timesteps (1.1 s) gives the first one is what a
    pass over its first 6 gives (the rest lie 0.6 s or more away: logits lowered by 18 or more); without
    the fall-off, or with a wide one, the later timesteps change it. Times are only ever differenced."""
    seq = frame_sets(12, height=32, width=48, speed=10.0)
    first = {}
    for reach in (0.0, 0.1, 10.0):
        torch.manual_seed(0)
        net = SlarmNet(CFG.replace(pose_encoding="relative", attention="full", attention_reach_s=reach)).eval()
        with torch.no_grad():
            long, short = net(batch_from(seq, CFG)), net(batch_from(seq[:6], CFG))
        first[reach] = long.depth[0]
        # an untrained network's attention is nearly even, so what far timesteps add is small but clear
        near = torch.allclose(long.depth[0], short.depth[0], rtol=0, atol=1e-5)
        assert near == (reach == 0.1), reach
    assert not torch.allclose(first[0.0], first[0.1], rtol=0, atol=1e-5)
    for bad in (dict(attention_reach_s=-1.0, pose_encoding="relative"), dict(attention_reach_s=1.0)):
        with pytest.raises(ValueError, match="attention_reach_s"):
            CFG.replace(**bad)


def test_shipped_configs_build_and_have_the_documented_sizes():
    tiny, base = SlarmConfig.named("slarm-tiny"), SlarmConfig.named("slarm-base")
    assert (base.dim, base.depth, base.patch_size) == (768, 12, 8)
    assert tiny.num_cameras == 3 and tiny.motion_degree == 3
    assert sum(p.numel() for p in SlarmNet(tiny).parameters()) < 5_000_000


MOVING = CFG.replace(motion_matching=True, motion_gate=True)


def moving_net_and_batch() -> tuple[SlarmNet, ViewBatch]:
    """An untrained network in eval mode whose Gaussians move at speeds of all sizes, and a batch for it."""
    torch.manual_seed(0)
    net = SlarmNet(MOVING).eval()
    with torch.no_grad():
        net.gaussian_head.out.bias[12:12 + 3 * CFG.motion_degree] += 0.5
    return net, batch_from(frame_sets(3, height=32, width=48, seed=1), CFG)


def test_gaussians_slower_than_the_static_speed_stand_still_and_faster_ones_keep_all_their_motion():
    """At inference; in training mode the setting is ignored, since the threshold passes no gradient."""
    net, batch = moving_net_and_batch()
    with torch.no_grad():
        free = net(batch).gaussians[-1].motion  # (N, D, 3)
        speed = free[:, 0].norm(dim=-1)
        floor = float(speed.median())
        net.cfg = MOVING.replace(static_speed=floor)
        snapped = net(batch).gaussians[-1].motion
        training = net.train()(batch).gaussians[-1].motion
    slow = speed < floor
    assert 0 < slow.sum() < len(slow)
    assert (snapped[slow] == 0).all()
    torch.testing.assert_close(snapped[~slow], free[~slow])
    torch.testing.assert_close(training, free)
    with pytest.raises(ValueError, match="static_speed"):
        CFG.replace(static_speed=-1.0)


def test_the_motion_gain_scales_what_the_static_speed_leaves_moving_and_only_at_inference():
    net, batch = moving_net_and_batch()
    with torch.no_grad():
        free = net(batch).gaussians[-1].motion
        floor = float(free[:, 0].norm(dim=-1).median())
        net.cfg = MOVING.replace(static_speed=floor)
        held = net(batch).gaussians[-1].motion
        net.cfg = MOVING.replace(static_speed=floor, motion_gain=1.5)
        scaled = net(batch).gaussians[-1].motion
        training = net.train()(batch).gaussians[-1].motion
    still = (held == 0).all(dim=(1, 2))
    assert 0 < still.sum() < len(still)  # the gain is applied after the hold, to the speeds it compares
    torch.testing.assert_close(scaled, held * 1.5)
    torch.testing.assert_close(training, free)
    for bad in (0.0, -1.0, 11.0):
        with pytest.raises(ValueError, match="motion_gain"):
            CFG.replace(motion_gain=bad)


CAR_GRID = (8, 12)


def car_before_wall() -> tuple[torch.Tensor, torch.Tensor]:
    """Range (1, 8, 12), metres, and colours (8, 12, 3) of one camera's Gaussian grid: a grey car
    10 m ahead (rows 2-5, columns 3-8) before a green wall at 40 m."""
    h, w = CAR_GRID
    depth = torch.full((1, h, w), 40.0)
    depth[0, 2:6, 3:9] = 10.0
    colours = torch.tensor([0.1, 0.6, 0.1]).repeat(h, w, 1)
    colours[2:6, 3:9] = 0.5
    return depth, colours


def test_smoothing_gives_a_cars_plain_parts_the_motion_its_clear_parts_found_and_leaves_the_wall_still():
    """A grey car 10 m ahead before a green wall at 40 m; every other column of the car moves at 8 m/s
    (with 1 m/s^2), the rest of it and the wall stand still. Smoothed over two cells, the car's still
    columns take most of its motion, and the wall beside it, though next to moving Gaussians, stays still."""
    h, w = CAR_GRID
    depth, colours = car_before_wall()
    motion = torch.zeros(h, w, 3, 3)
    motion[2:6, 3:9:2, 0] = torch.tensor([8.0, 0.0, 0.0])
    motion[2:6, 3:9:2, 1] = torch.tensor([1.0, 0.0, 0.0])
    smoothed = smooth_motion(motion.reshape(-1, 3, 3), depth, colours.reshape(-1, 3), radius=2).reshape(h, w, 3, 3)
    car, wall = smoothed[2:6, 3:9], torch.cat([smoothed[:2].flatten(0, 1), smoothed[6:].flatten(0, 1),
                                                    smoothed[2:6, :3].flatten(0, 1), smoothed[2:6, 9:].flatten(0, 1)])
    assert (car[..., 0, 0] > 0.8 * 8.0).all() and (car[..., 0, 0] <= 8.0 + 1e-5).all()
    torch.testing.assert_close(car[..., 1, 0], car[..., 0, 0] / 8.0)  # every order shares alike
    assert car[..., 1:].abs().max() < 1e-6  # across the motion: nothing
    assert wall.abs().max() < 1e-6
    uniform = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.0, 0.0], [0.0, 0.0, 0.0]]).expand(h * w, 3, 3)
    torch.testing.assert_close(smooth_motion(uniform, depth, colours.reshape(-1, 3), radius=2), uniform)
    with pytest.raises(ValueError, match="grids"):
        smooth_motion(motion.reshape(-1, 3, 3)[1:], depth, colours.reshape(-1, 3)[1:], radius=2)


def test_smoothing_taken_every_other_cell_reaches_twice_as_far_for_the_same_cost():
    """The car and wall above, with only the car's two left columns moving. Over 2 cells, every cell,
    its right end stays still; over 4 cells, every other cell (the same 5x5 neighbours), it takes
    more than half of the motion, and the wall stays still. A radius that is not a multiple of the
    step is refused."""
    h, w = CAR_GRID
    depth, colours = car_before_wall()
    motion = torch.zeros(h, w, 3, 3)
    motion[2:6, 3:5, 0] = torch.tensor([8.0, 0.0, 0.0])
    flat = motion.reshape(-1, 3, 3), depth, colours.reshape(-1, 3)
    near = smooth_motion(*flat, radius=2).reshape(h, w, 3, 3)
    far = smooth_motion(*flat, radius=4, step=2).reshape(h, w, 3, 3)
    torch.testing.assert_close(smooth_motion(*flat, radius=2, step=1), near.reshape(-1, 3, 3))
    assert near[2:6, 7:9].abs().max() < 1e-6
    assert (far[2:6, 7:9, 0, 0] > 0.5 * 8.0).all()
    wall = torch.ones(h, w, dtype=torch.bool)
    wall[2:6, 3:9] = False
    assert far[wall].abs().max() < 1e-6
    with pytest.raises(ValueError, match="multiple of its step"):
        smooth_motion(*flat, radius=3, step=2)
    with pytest.raises(ValueError, match="motion_smoothing_step"):
        CFG.replace(motion_smoothing_radius=3, motion_smoothing_step=2)


def test_smoothing_before_a_hold_skips_only_gaussians_that_no_neighbour_could_lift_to_it():
    """The car and wall above, the car's two left columns at 8 m/s and the whole wall drifting at
    0.3 m/s. With a 1 m/s hold to follow, the wall beyond the car's reach is left at zero without
    its mean (it would have been a 0.3 m/s one, held still); within reach every Gaussian gets what
    smoothing without the skip gives, so after the hold the two agree everywhere."""
    h, w = CAR_GRID
    depth, colours = car_before_wall()
    motion = torch.zeros(h, w, 3, 3)
    motion[..., 0, 1] = 0.3
    motion[2:6, 3:9] = 0.0
    motion[2:6, 3:5, 0] = torch.tensor([8.0, 0.0, 0.0])
    flat = motion.reshape(-1, 3, 3), depth, colours.reshape(-1, 3)
    full = smooth_motion(*flat, radius=2).reshape(h, w, 3, 3)
    skipped = smooth_motion(*flat, radius=2, hold_speed=1.0).reshape(h, w, 3, 3)
    reach = torch.zeros(h, w, dtype=torch.bool)
    reach[0:8, 1:7] = True  # within 2 cells of the moving columns
    torch.testing.assert_close(skipped[reach], full[reach])
    wall = torch.ones(h, w, dtype=torch.bool)
    wall[2:6, 3:9] = False
    assert (skipped[~reach] == 0).all() and (full[wall & ~reach][..., 0, 1] > 0.29).all()
    held = lambda m: m * (m[..., :1, :].norm(dim=-1, keepdim=True) >= 1.0)
    torch.testing.assert_close(held(skipped), held(full))
    assert (held(full)[2:6, 3:5, 0, 0] > 1.0).all()


def test_the_network_smooths_motion_before_the_hold_and_only_at_inference():
    net, batch = moving_net_and_batch()
    with torch.no_grad():
        free = net(batch)
        expected = smooth_motion(free.gaussians[-1].motion, free.depth[-1], free.gaussians[-1].colors, radius=2)
        floor = float(expected[:, 0].norm(dim=-1).median())
        expected = expected * (expected[:, :1].norm(dim=-1, keepdim=True) >= floor)
        net.cfg = MOVING.replace(motion_smoothing_radius=2, static_speed=floor)
        smoothed = net(batch).gaussians[-1].motion
        net.cfg = MOVING.replace(motion_smoothing_radius=4, motion_smoothing_step=2)
        stepped = net(batch).gaussians[-1].motion
        training = net.train()(batch).gaussians[-1].motion
    torch.testing.assert_close(smoothed, expected)
    torch.testing.assert_close(stepped, smooth_motion(free.gaussians[-1].motion, free.depth[-1],
                                                      free.gaussians[-1].colors, radius=4, step=2))
    assert not torch.allclose(smoothed, free.gaussians[-1].motion)
    torch.testing.assert_close(training, free.gaussians[-1].motion)
    with pytest.raises(ValueError, match="motion_smoothing_radius"):
        CFG.replace(motion_smoothing_radius=-1)


def test_query_scores_in_feature_space_equal_the_projected_cosine():
    from slarm_ros.semantics.scores import language_embeddings, query_scores

    torch.manual_seed(1)
    net = SlarmNet(CFG)
    features = torch.randn(50, CFG.semantic_dim)
    text = F.normalize(torch.randn(4, CFG.text_dim), dim=-1)
    expected = language_embeddings(features, net.semantic_projection) @ text.T
    torch.testing.assert_close(query_scores(features, net.semantic_projection, text), expected, rtol=1e-4, atol=1e-5)


def _textured_plane(K: torch.Tensor, camera_z: float, object_shift_x: float, height: int, width: int, stride: int):
    """Cell centres (h, w, 3) of the plane z = 10 m seen from a camera at (0, 0, camera_z) looking
    along +z, and their colours (3, h, w) from a smooth texture that moves with the plane by x."""
    pose = torch.eye(4)
    pose[2, 3] = camera_z
    origins, dirs = pixel_rays(K, pose, grid_pixels(height, width, stride))
    means = origins + dirs * ((10.0 - origins[..., 2]) / dirs[..., 2])[..., None]
    x, y = means[..., 0] - object_shift_x, means[..., 1]
    colours = torch.stack([0.5 + 0.5 * torch.sin(1.7 * x + 0.3), 0.5 + 0.5 * torch.cos(1.3 * y),
                           0.5 + 0.5 * torch.sin(0.9 * (x + y))])
    return means, colours, pose


@pytest.mark.parametrize("camera_z, shift_x", [(0.5, 0.0), (0.0, 1.0), (0.5, 1.0)])
def test_matching_finds_a_moving_surface_and_leaves_a_static_one_still(camera_z, shift_x):
    """Untrained (colour and small offsets only): the camera drives 0.5 m forward and/or the
    textured plane moves 1 m sideways in 0.1 s. Static: about 0 m/s despite the ego-motion;
    moving: most of the 10 m/s, in the right direction."""
    cfg = SlarmConfig(num_cameras=1, image_height=32, image_width=48, gaussian_stride=1, motion_matching=True)
    matcher = MotionMatcher(cfg, channels=8)
    stride = cfg.gaussian_stride * matcher.pool
    h, w = cfg.image_height // stride, cfg.image_width // stride
    K = torch.tensor([[30.0, 0, 24], [0, 30.0, 16], [0, 0, 1]])
    before_means, before_colours, before_pose = _textured_plane(K, 0.0, 0.0, 32, 48, stride)
    means, colours, _ = _textured_plane(K, camera_z, shift_x, 32, 48, stride)
    no_descriptors = torch.zeros(1, 1, matcher.describe.out_channels, h, w)
    before = MatchState(before_means[None, None], no_descriptors, before_colours[None, None], K[None, None],
                        before_pose[None, None], torch.tensor([0.0]))
    with torch.no_grad():
        velocity, valid = matcher._match(means[None, None], no_descriptors, colours[None, None], torch.tensor([0.1]),
                                         before)
    inner = velocity[0, 0, 2:-2, 2:-2].reshape(-1, 3).median(0).values  # away from the image borders
    assert valid[0, 0, 2:-2, 2:-2].all()
    if shift_x == 0:
        assert inner.norm() < 0.5, inner
    else:
        assert 5.0 < inner[0] < 11.0 and inner[1:].abs().max() < 1.0, inner


@pytest.mark.parametrize("pool, radius, reaches", [(2, 2, False), (2, 4, True), (4, 2, True)])
def test_matching_reaches_as_far_as_its_pool_and_radius(pool, radius, reaches):
    """A plane 10 m ahead moves 8/3 m sideways in 0.1 s: 8 pixels, 4 cells of 2 pixels or 2 of 4.
    Descriptors that move with it (distinct per cell) make the match unambiguous. A 5x5
    neighbourhood of 2-pixel cells cannot reach the plane's earlier self; nine cells across, or
    cells of 4 pixels, find it: 26.7 m/s."""
    cfg = SlarmConfig(num_cameras=1, image_height=32, image_width=48, gaussian_stride=1, motion_matching=True,
                      match_pool=pool, match_radius=radius)
    matcher = MotionMatcher(cfg, channels=8)
    h, w = cfg.image_height // pool, cfg.image_width // pool
    K = torch.tensor([[30.0, 0, 24], [0, 30.0, 16], [0, 0, 1]])
    means, _, pose = _textured_plane(K, 0.0, 0.0, 32, 48, pool)  # a static camera: the same rays both times
    shift = 8 // pool  # cells
    earlier = 5.0 * torch.randn(1, 1, matcher.describe.out_channels, h, w, generator=torch.Generator().manual_seed(0))
    now = torch.roll(earlier, shifts=shift, dims=-1)
    grey = torch.zeros(1, 1, 3, h, w)
    before = MatchState(means[None, None], earlier, grey, K[None, None], pose[None, None], torch.tensor([0.0]))
    with torch.no_grad():
        velocity, _ = matcher._match(means[None, None], now, grey, torch.tensor([0.1]), before)
    inner = velocity[0, 0, radius:-radius, shift + radius:-radius].reshape(-1, 3).median(0).values
    if reaches:
        assert 25.0 < inner[0] < 28.0 and inner[1:].abs().max() < 1.0, inner
    else:
        assert inner[0] < 15.0, inner


def _cells_at_depth(K: torch.Tensor, depth: torch.Tensor, stride: int) -> torch.Tensor:
    """Cell centres (h, w, 3) of a camera at the origin looking along +z, at camera z ``depth`` (h, w) m."""
    h, w = depth.shape
    origins, dirs = pixel_rays(K, torch.eye(4), grid_pixels(h * stride, w * stride, stride))
    return origins + dirs * (depth / dirs[..., 2])[..., None]


@pytest.mark.parametrize("range_weight", [0.0, 5.0])
def test_range_agreement_keeps_an_approaching_car_from_matching_the_background_it_uncovers(range_weight):
    """Untrained, everything grey: a car 12 m ahead comes to 10 m and two cells to the right in
    0.1 s, before a wall at 40 m. Its right edge now projects where the earlier frame saw the wall.
    By offsets alone that edge matches the wall, 300 m/s towards the camera; with the range term it
    matches the car's earlier self within reach, about the true 20 m/s."""
    cfg = SlarmConfig(num_cameras=1, image_height=32, image_width=48, gaussian_stride=1, motion_matching=True,
                      match_range_weight=range_weight)
    matcher = MotionMatcher(cfg, channels=8)
    h, w = cfg.image_height // matcher.pool, cfg.image_width // matcher.pool
    K = torch.tensor([[30.0, 0, 24], [0, 30.0, 16], [0, 0, 1]])
    earlier_depth, now_depth = torch.full((h, w), 40.0), torch.full((h, w), 40.0)
    earlier_depth[5:11, 8:14] = 12.0
    now_depth[5:11, 10:16] = 10.0
    grey, nothing = torch.full((1, 1, 3, h, w), 0.5), torch.zeros(1, 1, matcher.describe.out_channels, h, w)
    earlier, now = _cells_at_depth(K, earlier_depth, matcher.pool), _cells_at_depth(K, now_depth, matcher.pool)
    before = MatchState(earlier[None, None], nothing, grey, K[None, None], torch.eye(4)[None, None], torch.tensor([0.0]))
    with torch.no_grad():
        velocity, _ = matcher._match(now[None, None], nothing, grey, torch.tensor([0.1]), before)
    edge = velocity[0, 0, 7:9, 15]  # (2, 3) the car's right edge, uncovered wall behind it earlier
    true = (now[7:9, 15] - earlier[7:9, 13]) / 0.1  # about (11.7, 0, -20) m/s
    if range_weight:
        torch.testing.assert_close(edge, true, atol=1.0, rtol=0.0)
    else:
        assert (edge[:, 2] < -200.0).all(), edge


def test_matching_settings_are_checked_the_pool_divides_the_grid_and_the_radius_is_not_negative():
    with pytest.raises(ValueError, match="pools"):
        MotionMatcher(SlarmConfig(num_cameras=1, image_height=32, image_width=48, gaussian_stride=2,
                                  motion_matching=True, match_pool=3), channels=8)
    with pytest.raises(ValueError, match="match_radius"):
        SlarmConfig(match_radius=-1)
    with pytest.raises(ValueError, match="match_range_weight"):
        SlarmConfig(match_range_weight=-1.0)


@pytest.mark.parametrize("steps_back, previous, expected", [
    (1, 0, [0.0, 0.1, 0.2, 0.3]),  # offline: timestep i matches i - 1
    (3, 0, [0.0, 0.0, 0.0, 0.1]),  # three back, or the oldest there is
    (3, 2, [-0.2, -0.2, -0.1, 0.0, 0.1]),  # streaming: the states carried over count as earlier timesteps
])
def test_each_timestep_matches_the_one_steps_back_or_the_oldest(steps_back, previous, expected):
    cfg = SlarmConfig(num_cameras=1, image_height=32, image_width=48, gaussian_stride=2, motion_matching=True,
                      match_steps_back=steps_back)
    matcher = MotionMatcher(cfg, channels=8)
    h, w = cfg.gaussian_grid
    t = len(expected) + (1 if previous == 0 else 0)
    times = torch.arange(t, dtype=torch.float32) * 0.1
    means = torch.randn(t, 1, h, w, 3) + torch.tensor([0.0, 0.0, 10.0])
    K, pose = torch.tensor([[30.0, 0, 24], [0, 30.0, 16], [0, 0, 1]]).expand(t, 1, 3, 3), torch.eye(4).expand(t, 1, 4, 4)
    carried = [MatchState(means[0, :, ::2, ::2], torch.zeros(1, 8, h // 2, w // 2), torch.zeros(1, 3, h // 2, w // 2),
                          K[0], pose[0], torch.tensor(-0.1 * (previous - i))) for i in range(previous)]
    matched_times = []
    match = matcher._match

    def recording_match(*args):
        matched_times.extend(args[-1].time.tolist())  # the earlier states each timestep is matched against
        return match(*args)

    matcher._match = recording_match
    _, state = matcher(torch.zeros(t, 8, h, w), torch.zeros(t, 3, h, w), means, K, pose, times, carried)
    assert matched_times == pytest.approx(expected)
    assert len(state) == min(steps_back, previous + t)
    assert state[-1].time == times[-1]
