"""scripts/degree_bound.py: the least-squares velocities and the bound on a short drive of the world."""
import json
import subprocess
import sys

import numpy as np

from script_modules import SCRIPTS, load_script

SCRIPT = SCRIPTS / "degree_bound.py"


def test_horizons_are_the_other_context_timesteps_and_the_following_ones():
    bound = load_script("degree_bound")
    assert bound.horizons(4, 2).tolist() == [-3, -2, -1, 1, 2]
    assert bound.horizons(1, 1).tolist() == [1]


def test_degree_3_keeps_the_velocity_and_degree_1_takes_the_least_squares_slope():
    bound = load_script("degree_bound")
    h = bound.horizons(6, 2) * 0.1
    v, a, j = np.array([8.0, -1.0, 0.0]), np.array([-4.0, 2.0, 0.0]), np.array([1.5, 0.0, 0.0])
    x = (v * h[:, None] + a * h[:, None] ** 2 / 2 + j * h[:, None] ** 3 / 6)[None]  # (1, H, 3)
    np.testing.assert_allclose(bound.fitted_velocity(x, h, 3)[0], v, atol=1e-9)
    slope = v + a / 2 * (h ** 3).sum() / (h ** 2).sum() + j / 6 * (h ** 4).sum() / (h ** 2).sum()
    np.testing.assert_allclose(bound.fitted_velocity(x, h, 1)[0], slope, atol=1e-9)
    assert np.linalg.norm(slope - v) > 0.2  # braking at 4 m/s^2 biases a straight line by tenths of m/s


def test_bound_on_a_short_drive(tmp_path):
    out = tmp_path / "bound.json"
    subprocess.run([sys.executable, str(SCRIPT), "--seed", "21", "--seconds", "0.5", "--non-uniform-share", "1.0",
                    "--height", "40", "--width", "64", "--windows", "4,2", "6,2", "--out", str(out)],
                   check=True, capture_output=True)
    result = json.loads(out.read_text())
    assert result["points"] > 1000 and result["moving_share"] > 0
    assert result["velocity_check_m_s"]["p99"] < 0.01  # the trajectories agree with the rendered velocity
    short, long = result["windows"]["context 4, future 2"], result["windows"]["context 6, future 2"]
    for row in (short, long):
        assert row["degree3_epe3d"] < row["degree1_epe3d"] < result["zero_motion_epe3d"]
    assert long["degree1_epe3d"] > short["degree1_epe3d"]  # farther horizons bend a straight line more
