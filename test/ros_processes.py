"""Real ROS 2 processes for tests.

Each test that goes live gets its own ``ROS_DOMAIN_ID`` (so parallel tests and runs do not hear
each other), discovery limited to this machine, and every process it starts is stopped, with its
children, when the test ends.
"""
from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

PROCS_DIR = Path(__file__).parent / "procs"

# Domain ids 0-232 are valid for Fast DDS on one machine; spread runs by pid so that two test
# sessions running at once are unlikely to share one.
_domain_ids = itertools.count((os.getpid() % 23) * 10 + 1)


def next_domain_id() -> int:
    return next(_domain_ids) % 230 + 1


class RosProcesses:
    """Starts Python programs in one ROS domain and guarantees they are gone afterwards."""

    def __init__(self, domain_id: int | None = None):
        self.domain_id = domain_id if domain_id is not None else next_domain_id()
        self.env = dict(os.environ)
        self.env.update(
            ROS_DOMAIN_ID=str(self.domain_id),
            ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
            FASTDDS_BUILTIN_TRANSPORTS="LARGE_DATA",
            PYTHONUNBUFFERED="1",
        )
        self.procs: list[subprocess.Popen] = []
        self.pids: set[int] = set()

    def start(self, program: str | Path, *args: str, **popen) -> subprocess.Popen:
        """Start ``python program args...``; ``program`` may name a file in test/procs."""
        path = Path(program)
        if not path.is_absolute():
            path = PROCS_DIR / path
        proc = subprocess.Popen(
            [sys.executable, str(path), *map(str, args)],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: stopped as a whole
            **popen,
        )
        self.procs.append(proc)
        self.pids.add(proc.pid)
        return proc

    def start_module(self, module: str, *args: str) -> subprocess.Popen:
        """Start ``python -m module args...`` (e.g. slarm_ros.cli replay ...)."""
        proc = subprocess.Popen([sys.executable, "-m", module, *map(str, args)], env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.procs.append(proc)
        self.pids.add(proc.pid)
        return proc

    def run_json(self, program: str, *args: str, timeout: float = 60.0) -> dict:
        """Run a program to completion and parse the JSON object it prints last."""
        proc = self.start(program, *args)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            out, err = proc.communicate()
            raise AssertionError(f"{program} timed out after {timeout} s\nstdout:\n{out}\nstderr:\n{err}")
        assert proc.returncode == 0, f"{program} exited {proc.returncode}\nstdout:\n{out}\nstderr:\n{err}"
        lines = [line for line in out.splitlines() if line.startswith("{")]
        assert lines, f"{program} printed no JSON\nstdout:\n{out}\nstderr:\n{err}"
        return json.loads(lines[-1])

    def stop(self, grace: float = 5.0) -> None:
        """SIGINT each process group, then SIGKILL what is still there."""
        for proc in self.procs:
            if proc.poll() is None:
                _signal_group(proc.pid, signal.SIGINT)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()

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


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass
