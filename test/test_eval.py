"""slarm eval on a tiny bag: every metric present and in its valid range; report and figures written."""
import json
import math

import pytest

from slarm_ros.eval.evaluate import evaluate

KEYS = ["depth_absrel", "depth_rmse", "flow_epe3d", "flow_acc5", "flow_acc10", "miou", "psnr_next",
        "psnr_next_dynamic", "ssim_next", "step_p50_ms", "peak_mem_mb"]


@pytest.fixture(scope="module")
def evaluated(tiny_world_bag, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    return evaluate(tiny_world_bag, out, device="cpu", panels=1, progress=False), out


def in_range(key, value):
    if key in ("flow_acc5", "flow_acc10", "miou", "flow_outliers", "semantic_accuracy"):
        return 0.0 <= value <= 1.0
    if key == "ssim_next":
        return -1.0 <= value <= 1.0
    if key.startswith("psnr"):
        return 0.0 < value < 100.0
    return value >= 0.0 and math.isfinite(value)


def test_every_metric_is_present_and_valid(evaluated):
    result, out = evaluated
    on_disk = json.loads((out / "metrics.json").read_text())
    assert on_disk.keys() == result.keys()
    for key in KEYS:
        value = on_disk[key]
        if key == "psnr_next_dynamic" and value is None:
            continue  # no dynamic pixels in the next frames of this bag
        assert value is not None and in_range(key, value), (key, value)
    for baseline in ("zero_motion", "copy_last"):
        b = on_disk["baselines"][baseline]
        for key in ("flow_epe3d", "flow_acc5", "psnr_next", "ssim_next"):
            assert in_range(key, b[key]), (baseline, key, b[key])
    assert on_disk["baselines"]["copy_last"]["depth_absrel"] is None
    # zero motion predicts no flow: its EPE is the mean ground-truth displacement
    assert on_disk["baselines"]["zero_motion"]["flow_epe3d"] >= 0
    assert on_disk["run"]["timesteps"] == 6


def test_three_way_flow_split_agrees_with_the_moving_static_split(evaluated):
    result, out = evaluated
    # in the synthetic world only cars and pedestrians move, so the moving points are the moving foreground
    # and the static points' error is a mean of the standing foreground's and the background's
    assert result["flow_epe3d_fg_dynamic"] == pytest.approx(result["flow_epe3d_moving"])
    low, high = sorted((result["flow_epe3d_fg_static"], result["flow_epe3d_background"]))
    assert low - 1e-9 <= result["flow_epe3d_static"] <= high + 1e-9
    parts = [result[k] for k in ("flow_epe3d_fg_dynamic", "flow_epe3d_fg_static", "flow_epe3d_background")]
    assert result["flow_epe3d_threeway"] == pytest.approx(sum(parts) / 3)
    assert result["baselines"]["zero_motion"]["flow_epe3d_background"] == 0.0  # no motion, and none is true
    assert "| three-way EPE3D" in (out / "report.md").read_text()


def test_report_and_figures_are_written(evaluated):
    _, out = evaluated
    report = (out / "report.md").read_text()
    assert "| depth AbsRel |" in report and "last frame copied" in report
    for name in ("panel_0.png", "bev.png", "timing.png"):
        assert (out / name).stat().st_size > 10_000, name
        assert name in report


def test_a_bag_without_ground_truth_is_refused(tmp_path):
    import numpy as np

    from slarm_ros.bag import messages, topics
    from slarm_ros.bag.writer import BagWriter

    path = tmp_path / "plain"
    with BagWriter(path) as bag:
        for k in range(3):
            s = 1.0 + 0.1 * k
            bag.write(topics.TF, s, messages.tf_message(s, [("map", "c_optical_frame", np.eye(4))]))
            for cam in ("a", "b", "c"):
                bag.write(topics.info_topic(cam), s, messages.camera_info(s, "c_optical_frame", np.diag([9.0, 9, 1]), 16, 16))
                bag.write(topics.image_topic(cam), s, messages.image(s, "c_optical_frame", np.zeros((16, 16, 3), np.uint8), "rgb8"))
    with pytest.raises(ValueError, match="no /gt/<camera>/depth"):
        evaluate(path, tmp_path / "out", device="cpu", progress=False)


def test_a_benchmark_worker_past_its_limit_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    """`slarm bench engine` with a limit no worker can meet (a hundredth of a second to start a Python
    process and load the model): the command says which worker ran past which limit and exits 1."""
    from slarm_ros.cli import main

    assert main(["bench", "engine", "--lengths", "2", "--budget-s", "0.0025", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "error: benchmark worker streaming T=2 did not finish within 0 s" in err
    assert "Traceback" not in err


def test_an_offline_causal_pass_over_a_window_scores_as_streaming(tiny_world_bag, tmp_path):
    """`slarm eval --offline causal` on 4 timesteps, the shipped window: each timestep attends to
    every earlier one, as the stream's, so every score is streaming's; a full pass sees later ones too."""
    from slarm_ros.cli import main

    runs = {}
    for name, args in (("stream", []), ("causal", ["--offline", "causal"]), ("full", ["--offline"])):
        assert main(["eval", "--bag", str(tiny_world_bag), "--device", "cpu", "--max-steps", "4",
                     "--out", str(tmp_path / name), *args]) == 0
        runs[name] = json.loads((tmp_path / name / "metrics.json").read_text())
    assert runs["causal"]["run"]["mode"] == "offline, causal attention"
    assert runs["full"]["run"]["mode"] == "offline, full attention"
    for key in ("depth_absrel", "flow_epe3d", "miou", "psnr_next"):
        assert runs["causal"][key] == pytest.approx(runs["stream"][key], rel=1e-4), key
    assert runs["full"]["depth_absrel"] != pytest.approx(runs["stream"]["depth_absrel"], rel=1e-4)
