"""Real ROS 2 processes for tests.

Each test that goes live gets its own ``ROS_DOMAIN_ID`` (so parallel tests and runs do not hear
each other), discovery limited to this machine, and every process it starts is stopped, with its
children, when the test ends.
"""
from __future__ import annotations

import itertools
import json
import os
import subprocess
from pathlib import Path

import psutil

from slarm_ros.ros.processes import ProcessSet

PROCS_DIR = Path(__file__).parent / "procs"

# Domain ids 0-232 are valid for Fast DDS on one machine; spread runs by pid so that two test
# sessions running at once are unlikely to share one.
_domain_ids = itertools.count((os.getpid() % 23) * 10 + 1)


def next_domain_id() -> int:
    return next(_domain_ids) % 230 + 1


class RosProcesses(ProcessSet):
    """Programs in one ROS domain of their own; ``survivors`` tells whether any outlived ``stop``."""

    def __init__(self, domain_id: int | None = None):
        self.domain_id = domain_id if domain_id is not None else next_domain_id()
        super().__init__()
        self.env.update(
            ROS_DOMAIN_ID=str(self.domain_id),
            ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
            FASTDDS_BUILTIN_TRANSPORTS="LARGE_DATA",
            PYTHONUNBUFFERED="1",
        )

    @property
    def pids(self) -> set[int]:
        return {p.pid for p in self.procs}

    def start(self, program, *args, **popen) -> subprocess.Popen:
        """``start("name.py", args...)`` runs a program of test/procs; a list runs that command."""
        if isinstance(program, list):
            return super().start(program, **popen)
        path = Path(program)
        if not path.is_absolute():
            path = PROCS_DIR / path
        return self.python(str(path), *map(str, args), **popen)

    def start_module(self, module: str, *args: str) -> subprocess.Popen:
        """Start ``python -m module args...`` (e.g. slarm_ros.cli replay ...)."""
        return self.python("-m", module, *map(str, args))

    def run_json(self, program: str, *args: str, timeout: float = 60.0):
        """Run a program to completion and parse the JSON value it prints last."""
        proc = self.start(program, *args)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            out, err = proc.communicate()
            raise AssertionError(f"{program} timed out after {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
        assert proc.returncode == 0, f"{program} exited {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
        lines = [line for line in out.splitlines() if line.startswith(("{", "["))]
        assert lines, f"{program} printed no JSON\nstdout:\n{out}\nstderr:\n{err}"
        return json.loads(lines[-1])

    def survivors(self) -> list[int]:
        """Pids of started processes, or members of their groups, still alive."""
        alive = []
        for p in psutil.process_iter(["pid", "status"]):
            try:
                if p.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                if p.pid in self.pids or os.getpgid(p.pid) in self.pids:
                    alive.append(p.pid)
            except (psutil.Error, ProcessLookupError):
                continue
        return alive
