"""Shared fixtures."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from ros_processes import RosProcesses  # noqa: E402


@pytest.fixture
def ros_processes():
    """Processes in a ROS domain of this test's own; none may outlive the test."""
    procs = RosProcesses()
    try:
        yield procs
    finally:
        procs.stop()
    assert procs.survivors() == [], "processes left behind"


@pytest.fixture(scope="session")
def tiny_world_bag(tmp_path_factory):
    """A 0.6 s drive (6 timesteps, 3 cameras, 48x80) of the synthetic world, as an mcap bag."""
    from slarm_ros.world.config import WorldConfig
    from slarm_ros.world.make import make_world_bag

    cfg = WorldConfig(seed=5, seconds=0.6, hz=10, image_height=48, image_width=80)
    path = tmp_path_factory.mktemp("bags") / "tiny"
    make_world_bag(cfg, path, progress=False)
    return path
