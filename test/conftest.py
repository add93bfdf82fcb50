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
