"""scripts/tracker_measurements.py: what it reports of the tracker's measurements, on drives built here."""
import numpy as np
import pytest

from script_modules import load_script
from test_object_motion import box, road, views


def steps(network_speed: float, n=5, dt=0.1) -> list[dict]:
    """A car driving ahead at 8 m/s, a parked car and the road, from a camera driving at 5 m/s;
    the network moves the car at ``network_speed`` m/s. What the tracker would be given."""
    out = []
    for k in range(n):
        car, parked, ground = box([15.0 + 8.0 * k * dt, 0, 0.75]), box([12.0, -5, 0.75]), road()
        means = np.concatenate([car, parked, ground])
        truth = np.zeros_like(means)
        truth[: len(car)] = [8.0, 0, 0]
        network = np.zeros_like(means)
        network[: len(car)] = [network_speed, 0, 0]
        out.append(dict(stamp=k * dt, views=views([5.0 * k * dt, 0, 1.5]), movable=np.arange(len(means)) < len(car) + len(parked),
                        means=means, network=network, opacity=np.ones(len(means)), truth=truth))
    return out


@pytest.mark.parametrize("network_speed, where", [(2.0, "gated_in"), (0.2, "below_gate")])
def test_a_car_measured_exactly_and_placed_by_the_gate(network_speed, where):
    result = load_script("tracker_measurements").analyse(steps(network_speed), link=1.0, min_points=5, gate_speed=0.5)
    moving, standing = result["moving"], result["standing"]
    assert moving["count"] == 4 and standing["count"] == 4  # each car at each timestep after the first
    assert max(moving["median_error_m_s"].values()) < 0.3
    assert moving["median_share_found"] == pytest.approx(1.0, abs=0.05)
    assert max(standing["median_error_m_s"].values()) < 0.05
    assert result["moving_gaussians_by_where"][where] == pytest.approx(1.0)
    near, median, far = result["moving_gaussians_range_m_10_50_90th_percentile"]["in_object"]
    assert 12.0 < near < median < far < 18.5  # the car, 4.5 m long, its back 12.75 m or more ahead
    assert result["moving_gaussians_range_m_10_50_90th_percentile"]["no_object"] is None
    assert result["moving, past the gate"]["count"] == (4 if where == "gated_in" else 0)
    # one standing object per camera and timestep: no group to share a depth scale
    assert result["standing_radial_shift_share_of_range"]["rms_in_groups_of_two_or_more"] is None


def test_gaussians_the_tracker_never_groups_are_counted_as_such():
    drive = steps(2.0)
    for s in drive:
        s["movable"][:] = False  # the network named the car road
    result = load_script("tracker_measurements").analyse(drive, link=1.0, min_points=5, gate_speed=0.5)
    assert result["measurements"] == 0 and result["moving"]["count"] == 0
    assert result["moving_gaussians_by_where"]["never_grouped"] == pytest.approx(1.0)


@pytest.mark.parametrize("offline", [False, True])
def test_what_the_tracker_is_given_is_recorded_streaming_and_offline(tiny_world_bag, offline):
    steps, cfg = load_script("tracker_measurements").record(str(tiny_world_bag), None, max_steps=4, offline=offline)
    assert len(steps) == 4 and cfg.object_motion
    stamps = [s["stamp"] for s in steps]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4  # one record per timestep, in time order
    for s in steps:
        n = len(s["means"])
        assert s["truth"].shape == (n, 3) and s["network"].shape == (n, 3) and s["movable"].shape == (n,)
        assert np.isfinite(s["truth"]).all()
