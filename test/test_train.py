"""Training: losses fall, runs resume exactly, bad states are refused, several processes agree,
and overfitting one scene learns depth and motion through rendering alone (no flow loss)."""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from slarm_ros.model import SlarmNet, ViewBatch
from slarm_ros.model.checkpoint import CheckpointError, load_checkpoint
from slarm_ros.model.config import CONFIG_DIR
from slarm_ros.train.config import TrainConfig
from slarm_ros.train.data import (TrainWindow, cached_drive, drive_cache_path, render_missing_drives, sample_window,
                                   window_at)
from slarm_ros.train.losses import (LossWeights, motion_energy, motion_magnitude, rgb_l1, semantic_losses,
                                     static_miss_weights)
from slarm_ros.train.objective import window_loss
from slarm_ros.train.teacher import ClassNameTeacher
from slarm_ros.train.trainer import TrainError, learning_rate, train
from slarm_ros.train.validate import score_window
from slarm_ros.world.config import CLASS_ID, CLASSES, GROUND_CLASSES

# A network and world small enough to train in seconds on a CPU: one front camera at 40x64, scored
# on its own motion (slarm-tiny's static_speed would hold its slow Gaussians still, and its smoothing
# share motion between neighbours).
SMALL_NET = dict(num_cameras=1, image_height=40, image_width=64, dim=64, depth=2, num_heads=2, static_speed=0.0,
                 motion_smoothing_radius=0)
OVERFIT_STEPS = 2000  # about 6 minutes on one CPU core
SMALL_WORLD = dict(cameras=1, moving_cars=30, lidar_top=0.0, lidar_beams=40)  # LiDAR rows over the whole image


def small_config(tmp_path, **changes) -> TrainConfig:
    base = dict(model_overrides=SMALL_NET, first_seed=0, num_drives=1, drive_seconds=1.0, world=SMALL_WORLD,
                cache_dir=str(tmp_path / "cache"), context=4, future=2, steps=6, minutes=0, warmup_steps=2,
                log_every=2, checkpoint_every=2, threads=1)
    base.update(changes)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def drive_cache(tmp_path_factory):
    """The small drive, rendered once for the module."""
    path = tmp_path_factory.mktemp("drives")
    cfg = small_config(path)
    cached_drive(cfg.drive(0), SMALL_NET["image_height"], SMALL_NET["image_width"], path)
    return path


def small_model_and_window(drive_cache) -> tuple[SlarmNet, TrainWindow]:
    """A freshly seeded small network and one window of the small drive (context 1-4, targets 4 and 5)."""
    cfg = small_config(drive_cache, cache_dir=str(drive_cache))
    net_cfg = cfg.network()
    clip = cached_drive(cfg.drive(0), net_cfg.image_height, net_cfg.image_width, drive_cache)
    window = window_at(clip, 1, 4, [(4, 1), (5, 2)], net_cfg.gaussian_stride)
    torch.manual_seed(0)
    return SlarmNet(net_cfg), window


def test_a_few_steps_lower_the_loss_with_finite_gradients_everywhere(drive_cache):
    model, window = small_model_and_window(drive_cache)
    teacher = ClassNameTeacher(CLASSES)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    totals = []
    for i in range(15):
        result = window_loss(model, window, teacher, LossWeights(), CLASS_ID["sky"],
                             generator=torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        result.total.backward()
        if i == 0:
            for group, params in model.parameter_groups().items():
                grads = [p.grad for p in params if p.grad is not None]
                assert grads, f"no gradient reaches {group}"
                assert all(torch.isfinite(g).all() for g in grads), f"non-finite gradient in {group}"
                assert sum(float(g.abs().sum()) for g in grads) > 0, f"zero gradient in {group}"
        optimizer.step()
        totals.append(float(result.total.detach()))
    assert all(np.isfinite(totals))
    assert np.mean(totals[-3:]) < 0.8 * np.mean(totals[:3]), totals


def test_windows_hold_the_asked_targets_and_no_flow(drive_cache):
    cfg = small_config(drive_cache)
    clip = cached_drive(cfg.drive(0), 40, 64, drive_cache)
    rng = np.random.default_rng(0)
    lags = set()
    for _ in range(40):
        w = sample_window(clip, rng, context=4, future=2, other_scale=2, gaussian_stride=2, max_anchor_lag=3)
        own, other = w.targets
        assert own.step in w.context_steps and own.images.shape == (1, 40, 64, 3)
        assert other.step != own.step and w.context_steps[0] <= other.step <= w.context_steps[-1] + 2
        assert other.images.shape == (1, 20, 32, 3)
        assert w.context_lidar.shape == (4, 1, 20, 32)
        assert not hasattr(other, "flow")  # targets carry no motion ground truth
        lag = round(float(w.context.times[0]) / 0.1)
        assert 0 <= lag <= min(3, w.context_steps[0])
        lags.add(lag)
        if lag == 0:
            assert torch.allclose(w.context.cam_to_anchor[0, 0], torch.eye(4), atol=1e-5)
    assert lags == {0, 1, 2, 3}


def test_windows_with_targets_on_both_sides_hold_an_earlier_and_a_following_one(drive_cache):
    cfg = small_config(drive_cache)
    clip = cached_drive(cfg.drive(0), 40, 64, drive_cache)
    rng = np.random.default_rng(0)
    earlier, following = set(), set()
    for _ in range(40):
        w = sample_window(clip, rng, context=4, future=2, other_scale=2, gaussian_stride=2, other_target="both")
        own, before, after = w.targets
        assert own.step == w.context_steps[-1]
        assert before.step in w.context_steps[:-1] and after.step in (own.step + 1, own.step + 2)
        assert before.images.shape == after.images.shape == (1, 20, 32, 3)
        earlier.add(before.step - w.context_steps[0])
        following.add(after.step - own.step)
    assert earlier == {0, 1, 2} and following == {1, 2}
    one_step = sample_window(clip, rng, context=1, future=2, gaussian_stride=2, other_target="both")
    assert len(one_step.targets) == 2  # no earlier timestep: one target, as "any" draws it
    with pytest.raises(ValueError, match="other_target"):
        sample_window(clip, rng, context=4, future=2, other_target="all")
    with pytest.raises(ValueError, match="other_target"):
        TrainConfig(other_target="all")
    # the objective renders and scores each of the three targets alike
    model, window = small_model_and_window(drive_cache)
    own, after = window.targets
    before = window_at(clip, 1, 4, [(2, 2)], model.cfg.gaussian_stride).targets[0]  # the same anchor, timestep 2

    def loss(*targets):
        return window_loss(model, replace(window, targets=list(targets)), ClassNameTeacher(CLASSES), LossWeights(),
                           CLASS_ID["sky"], generator=torch.Generator().manual_seed(0))

    with torch.no_grad():
        alone = float(loss(own).parts["rgb_l1"])
        b = 2 * float(loss(own, before).parts["rgb_l1"]) - alone
        a = 2 * float(loss(own, after).parts["rgb_l1"]) - alone
    result = loss(own, before, after)
    assert float(result.parts["rgb_l1"]) == pytest.approx((alone + b + a) / 3, rel=1e-4)
    result.total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_a_share_of_windows_is_longer_as_asked_and_trains(tmp_path, drive_cache):
    cfg = small_config(tmp_path, cache_dir=str(drive_cache), long_context=6, long_share=0.25, steps=4)
    rng = np.random.default_rng(0)
    lengths = [cfg.window_length(rng) for _ in range(4000)]
    assert set(lengths) == {4, 6} and lengths.count(6) / 4000 == pytest.approx(0.25, abs=0.02)
    rng = np.random.default_rng(0)
    assert small_config(tmp_path).window_length(rng) == 4
    assert rng.uniform() == np.random.default_rng(0).uniform()  # no long windows: nothing drawn
    for bad in (dict(long_context=4), dict(long_share=0.5), dict(long_context=6, long_share=1.5)):
        with pytest.raises(ValueError, match="long_"):
            small_config(tmp_path, **bad)
    # every window long: the run trains on windows of 6 timesteps
    summary = train(cfg.replace(long_share=1.0), tmp_path / "long", progress=False)
    assert summary["steps"] == 4
    assert all(np.isfinite(float(r["loss"])) for r in read_csv(tmp_path / "long" / "log.csv"))


def test_learning_rate_warms_up_then_decays_by_steps_or_time():
    cfg = TrainConfig(lr=1e-3, warmup_steps=10, steps=100, min_lr_ratio=0.1)
    assert learning_rate(cfg, 0, 0) == pytest.approx(1e-4, rel=0.01)
    assert learning_rate(cfg, 9, 0) == pytest.approx(1e-3, rel=0.03)  # warm, the cosine barely started
    assert learning_rate(cfg, 100, 0) == pytest.approx(1e-4, rel=1e-6)
    timed = cfg.replace(minutes=1.0)
    assert learning_rate(timed, 20, 60.0) == pytest.approx(1e-4, rel=1e-6)  # the time budget is used up


def test_the_network_carries_the_anchor_ages_it_was_trained_with():
    """The streaming engine reads them from the checkpoint: a window's last frame lies (context - 1)
    timesteps after the window's start, which lies 0..anchor_lag_s after the anchor."""
    net = TrainConfig(anchor_lag_s=2.5, context=6).network()
    assert net.anchor_min_age == pytest.approx(0.5) and net.anchor_max_age == pytest.approx(3.0)
    net = TrainConfig(anchor_lag_s=0.0, context=4, world={"hz": 20.0}).network()
    assert net.anchor_min_age == pytest.approx(0.15) and net.anchor_max_age == pytest.approx(0.15)
    for name in ("anchor_max_age", "anchor_min_age"):
        with pytest.raises(ValueError, match="anchor_lag_s"):
            TrainConfig(model_overrides={name: 1.0})
    with pytest.raises(ValueError, match="anchor_max_age"):
        TrainConfig(anchor_lag_s=30.0).network()  # beyond the time embedding's horizon


@pytest.mark.parametrize("recipe", sorted(p.name for p in [*CONFIG_DIR.glob("train-*.yaml"), *CONFIG_DIR.glob("finetune-*.yaml")]))
def test_every_shipped_recipe_loads_and_its_network_runs_one_window(recipe):
    cfg = TrainConfig.from_yaml(recipe)  # a shipped recipe by name, as `slarm train --config NAME` finds it
    net = SlarmNet(cfg.network()).eval()
    n = cfg.network()
    views = ViewBatch(images=torch.rand(cfg.context, n.num_cameras, 3, n.image_height, n.image_width),
                      K=torch.tensor([[n.image_width, 0.0, n.image_width / 2], [0.0, n.image_width, n.image_height / 2],
                                      [0.0, 0.0, 1.0]]).expand(cfg.context, n.num_cameras, 3, 3),
                      cam_to_anchor=torch.eye(4).expand(cfg.context, n.num_cameras, 4, 4),
                      times=torch.arange(cfg.context) * 0.1)
    with torch.inference_mode():
        prediction = net(views)
    assert len(prediction.gaussians) == cfg.context
    assert all(torch.isfinite(g.means).all() and torch.isfinite(g.motion).all() for g in prediction.gaussians)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_run_writes_its_files_and_resumes_exactly(tmp_path, drive_cache):
    straight = small_config(tmp_path, cache_dir=str(drive_cache))
    summary = train(straight, tmp_path / "straight", progress=False)
    assert summary["steps"] == 6
    platform = json.loads((tmp_path / "straight" / "summary.json").read_text())["platform"]
    assert platform["torch"] == torch.__version__ and summary["device"] == "cpu" and platform["gpu"] is None
    assert platform["cpu_capability"] and platform["threads"] >= 1
    for name in ("model.safetensors", "state.pt", "log.csv", "train_config.yaml", "summary.json", "curves.png"):
        assert (tmp_path / "straight" / name).is_file(), name
    rows = read_csv(tmp_path / "straight" / "log.csv")
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    assert all(np.isfinite(float(r["loss"])) for r in rows)

    train(straight, tmp_path / "split", progress=False, stop_after=3)  # as if the job ended there
    with open(tmp_path / "split" / "log.csv", "a") as f:  # and had logged step 4 before being killed
        f.write("4" + ",99" * (len(read_csv(tmp_path / "straight" / "log.csv")[0]) - 1) + "\n")
    train(straight, tmp_path / "split", resume=True, progress=False)
    a = load_checkpoint(tmp_path / "straight" / "model.safetensors").state_dict()
    b = load_checkpoint(tmp_path / "split" / "model.safetensors").state_dict()
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4), f"{k} differs after resuming"
    split_rows = read_csv(tmp_path / "split" / "log.csv")
    assert [int(r["step"]) for r in split_rows] == [2, 3, 4, 6]
    assert float(split_rows[2]["loss"]) != 99, "the killed process's row after its checkpoint is kept"


def test_bad_runs_and_states_are_refused_with_a_reason(tmp_path, drive_cache):
    cfg = small_config(tmp_path, cache_dir=str(drive_cache), steps=2)
    run = tmp_path / "run"
    train(cfg, run, progress=False)
    with pytest.raises(TrainError, match="--resume"):
        train(cfg, run, progress=False)  # would overwrite a run
    with pytest.raises(TrainError, match="no training state"):
        train(cfg, tmp_path / "empty", resume=True, progress=False)
    other = cfg.replace(model_overrides={**SMALL_NET, "motion_degree": 1})
    with pytest.raises(CheckpointError, match="motion_degree"):
        train(other.replace(steps=4), run, resume=True, progress=False)
    (run / "state.pt").write_bytes(b"not a torch file")
    with pytest.raises(TrainError, match="state.pt"):
        train(cfg.replace(steps=4), run, resume=True, progress=False)
    with pytest.raises(ValueError, match="unknown training config keys"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match=r"unknown loss weight keys: \['dept'\]"):
        TrainConfig.from_dict({"losses": {"dept": 1.0}})


def test_fine_tuning_starts_from_a_checkpoint_and_trains_only_the_asked_parts(tmp_path, drive_cache):
    base = small_config(tmp_path, cache_dir=str(drive_cache), steps=2,
                        model_overrides={**SMALL_NET, "motion_matching": True})
    train(base, tmp_path / "base", progress=False)
    start = load_checkpoint(tmp_path / "base" / "model.safetensors").state_dict()
    tuned = base.replace(init_from=str(tmp_path / "base" / "model.safetensors"), steps=3, train_parts=["matcher"],
                         model_overrides={**base.model_overrides, "match_gate_hidden": 4})
    train(tuned, tmp_path / "tuned", progress=False)
    after = load_checkpoint(tmp_path / "tuned" / "model.safetensors").state_dict()
    assert "matcher.gate.0.weight" in after and "matcher.gate.weight" not in after
    for k in set(start) & set(after):
        if not k.startswith("matcher."):  # frozen: exactly the checkpoint's
            assert torch.equal(after[k], start[k]), k
    assert not torch.equal(after["matcher.describe.weight"], start["matcher.describe.weight"])
    with pytest.raises(TrainError, match=r"train_parts \['matchr'\] are not parts"):
        train(tuned.replace(train_parts=["matchr"]), tmp_path / "typo", progress=False)
    with pytest.raises(TrainError, match="init_from: checkpoint .* does not exist"):
        train(tuned.replace(init_from=str(tmp_path / "none.safetensors")), tmp_path / "bad", progress=False)
    narrower = tuned.replace(model_overrides={**tuned.model_overrides, "dim": 32})
    with pytest.raises(TrainError, match="shape mismatches"):
        train(narrower, tmp_path / "narrower", progress=False)


def test_slarm_train_needs_neither_rosbags_nor_rclpy():
    # training machines (a GPU box) need not have the ROS side installed
    code = ("import sys; sys.modules['rosbags'] = sys.modules['rclpy'] = None\n"
            "from slarm_ros.cli import build_parser\n"
            "args = build_parser('train').parse_args(['train', '--out', 'x', '--steps', '3'])\n"
            "import slarm_ros.train.trainer\n"
            "assert args.steps == 3 and args.func.__name__ == '_train'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_corrupt_cached_drive_is_rendered_again(tmp_path):
    cfg = small_config(tmp_path)
    first = cached_drive(cfg.drive(0), 40, 64, tmp_path / "cache")
    (cached,) = (tmp_path / "cache").glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:1000])
    again = cached_drive(cfg.drive(0), 40, 64, tmp_path / "cache")
    assert np.array_equal(first.images, again.images)


def test_missing_drives_render_in_parallel_processes_into_the_cache(tmp_path, drive_cache):
    cfg = small_config(tmp_path, num_drives=3)
    worlds = [cfg.drive(i) for i in range(3)]
    cache = tmp_path / "cache"
    shutil.copytree(drive_cache, cache)  # drive 0 is there already: only 1 and 2 are rendered
    assert render_missing_drives(worlds, 40, 64, cache, workers=2) == 2
    assert render_missing_drives(worlds, 40, 64, cache, workers=2) == 0
    assert all(drive_cache_path(w, 40, 64, cache).exists() for w in worlds)
    from_cache = cached_drive(worlds[2], 40, 64, cache)
    assert np.array_equal(from_cache.images, cached_drive(worlds[2], 40, 64, None).images)


@pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")),
                    reason="torchrun not installed")
def test_two_processes_train_one_model_with_ddp(tmp_path, drive_cache):
    """torchrun with 2 processes on the CPU (gloo): both step together and one model is written."""
    cfg = small_config(tmp_path, cache_dir=str(drive_cache), steps=3, log_every=1)
    config_path = tmp_path / "train.yaml"
    import yaml

    config_path.write_text(yaml.safe_dump(cfg.to_dict()))
    torchrun = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", "-m", "slarm_ros.cli", "train",
                           "--config", str(config_path), "--out", str(tmp_path / "ddp")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 3
    load_checkpoint(tmp_path / "ddp" / "model.safetensors")


def test_overfitting_one_scene_learns_depth_and_motion_without_flow_loss(tmp_path, drive_cache):
    """Motion is only ever supervised by rendering other timestamps; it must beat standing still.

    The scene's LiDAR-like depth is dense and rendered at the network's resolution (supersample 1),
    so that depth supervision and the dense ground truth agree pixel for pixel: what is measured is
    the fit, not the sampling offset of a sparse sensor.
    """
    world = {**SMALL_WORLD, "lidar_beams": 40, "lidar_columns_stride": 1}
    cfg = small_config(tmp_path, cache_dir=str(drive_cache), world=world, supersample=1, steps=OVERFIT_STEPS,
                       anchor_lag_s=0.0, own_last_share=1.0,
                       warmup_steps=20, lr=2e-3, log_every=100, checkpoint_every=10**6,
                       losses=LossWeights(depth=1.0, context_depth=1.0),
                       model_overrides={**SMALL_NET, "gaussian_stride": 1})
    train(cfg, tmp_path / "overfit", progress=False)
    model = load_checkpoint(tmp_path / "overfit" / "model.safetensors")
    clip = cached_drive(cfg.drive(0), 40, 64, drive_cache, supersample=1)
    scores = [score_window(model, clip, start, 4) for start in (0, 2, 4)]
    mean = {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}
    assert mean["depth_absrel"] < 0.05, scores
    assert mean["flow_epe3d"] < mean["zero_motion_epe3d"], scores
    assert mean["dynamic_epe3d"] < mean["dynamic_zero_epe3d"], scores


def test_scores_of_one_camera_count_that_camera_only(tmp_path):
    cfg = small_config(tmp_path, world={**SMALL_WORLD, "cameras": 2}, model_overrides={**SMALL_NET, "num_cameras": 2})
    clip = cached_drive(cfg.drive(0), 40, 64, tmp_path / "cache")
    model = SlarmNet(cfg.network())
    last, dt = 3, float(clip.times[1] - clip.times[0])
    scored = (clip.depth[last] > 0) & ~np.isin(clip.semantic[last], [CLASS_ID[c] for c in GROUND_CLASSES])
    speed = np.linalg.norm(clip.flow[last], axis=-1) * dt
    assert speed[0][scored[0]].mean() != pytest.approx(speed[1][scored[1]].mean())  # the two cameras differ
    for camera in (0, 1):
        zero = score_window(model, clip, 0, 4, camera=camera)["zero_motion_epe3d"]
        assert zero == pytest.approx(speed[camera][scored[camera]].mean(), rel=1e-5)
    assert score_window(model, clip, 0, 4)["zero_motion_epe3d"] == pytest.approx(speed[scored].mean(), rel=1e-5)
    with pytest.raises(ValueError, match="camera 2 does not exist"):
        score_window(model, clip, 0, 4, camera=2)


def test_the_semantic_class_term_weighs_every_class_equally_and_rewards_the_right_name():
    torch.manual_seed(0)
    vocabulary = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)
    projection = torch.nn.Linear(8, 8)
    with torch.no_grad():
        projection.weight.copy_(torch.eye(8))
        projection.bias.zero_()
    labels = torch.zeros(1, 10, 10, dtype=torch.long)
    labels[0, 0, 0] = 1  # one pixel of a thin class among 99 of a large one
    teacher = vocabulary[labels]
    alpha = torch.ones(1, 10, 10)

    def class_loss(features):
        return float(semantic_losses(features, alpha, teacher, projection, 1000, vocabulary).classes.detach())

    right = class_loss(teacher.clone())
    thin_wrong = teacher.clone()
    thin_wrong[0, 0, 0] = vocabulary[0]  # the thin pixel named as the large class
    large_wrong = teacher.clone()
    large_wrong[0, 1, 0] = vocabulary[1]  # one pixel of the large class named as the thin one
    assert right < 0.05
    # both classes count equally, so the one thin pixel weighs as much as all 99 large ones
    assert class_loss(thin_wrong) > 50 * class_loss(large_wrong)
    assert float(semantic_losses(teacher, alpha, teacher, projection, 1000, None).classes) == 0.0


def test_the_same_velocity_costs_the_same_at_every_motion_degree():
    velocity = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])  # (N, 3) m/s
    degree1 = velocity[:, None]
    degree3 = torch.cat([degree1, torch.zeros(2, 2, 3)], dim=1)
    for price in (motion_magnitude, motion_energy):
        assert torch.isclose(price(degree1), price(degree3))
        # higher orders add to the price; for degree 3 it is the mean over every coefficient
        moving = degree3 + torch.tensor([0.0, 0.5, 0.25])[None, :, None]
        assert price(moving) > price(degree3)
        per_coefficient = moving.abs().mean() if price is motion_magnitude else moving.square().mean()
        assert torch.isclose(price(moving), per_coefficient)
    assert motion_magnitude(torch.zeros(5, 0, 3)) == 0


def test_the_static_miss_emphasis_weighs_what_standing_still_cannot_explain():
    target = torch.full((2, 8, 10, 3), 0.5)
    static = target.clone()
    static[0, 2:4, 3:6] = 0.9  # an actor the motionless render leaves behind
    weights = static_miss_weights(static, target, emphasis=2.0)
    assert weights.shape == (2, 8, 10)
    assert torch.all(weights[1] == 1) and torch.all(weights[0, 0] == 1)  # nothing missed: plain weight
    assert torch.allclose(weights[0, 2:4, 3:6], torch.tensor(1 + 2.0 * 80 / 6))  # miss / mean miss = 80 / 6
    # weighted L1: uniform weights change nothing; an error where the motionless render missed costs more
    pred = target.clone()
    assert torch.isclose(rgb_l1(pred + 0.1, target, torch.ones(2, 8, 10)), rgb_l1(pred + 0.1, target))
    on_actor, elsewhere = pred.clone(), pred.clone()
    on_actor[0, 2, 3] += 0.3
    elsewhere[0, 6, 8] += 0.3
    assert rgb_l1(on_actor, target, weights) > 5 * rgb_l1(elsewhere, target, weights)
    assert torch.isclose(rgb_l1(on_actor, target), rgb_l1(elsewhere, target))


def test_the_static_miss_emphasis_trains_with_finite_gradients(drive_cache):
    model, window = small_model_and_window(drive_cache)
    losses = {}
    for emphasis in (0.0, 2.0):
        result = window_loss(model, window, ClassNameTeacher(CLASSES), LossWeights(static_miss_emphasis=emphasis),
                             CLASS_ID["sky"], generator=torch.Generator().manual_seed(0))
        model.zero_grad()
        result.total.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        losses[emphasis] = result.parts
    # only the L1 of the other-time targets is reweighed
    assert not torch.isclose(losses[0.0]["rgb_l1"], losses[2.0]["rgb_l1"])
    for name in ("rgb_ssim", "depth", "semantic", "motion"):
        assert torch.isclose(losses[0.0][name], losses[2.0][name]), name
