"""Start programs as separate process groups and stop them, children included."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


class ProcessFailed(RuntimeError):
    """A program exited or hung where the caller needed it."""


def _stderr_tail(proc: subprocess.Popen, chars: int = 2000) -> str:
    """The end of an exited program's standard error, where it is a pipe ("" where it went to a file)."""
    if proc.stderr is None or proc.stderr.closed:
        return ""
    text = proc.stderr.read()
    return f":\n{text[-chars:]}" if text else ""


class ProcessSet:
    """Programs started by one owner (the demo, a benchmark, a test), stopped together."""

    def __init__(self, env: dict[str, str] | None = None):
        self.env = dict(os.environ if env is None else env)
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], **popen) -> subprocess.Popen:
        """Start ``args`` in a new process group (so that stopping reaches its children too)."""
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        proc = subprocess.Popen([str(a) for a in args], env=self.env, text=True, start_new_session=True, **popen)
        self.procs.append(proc)
        return proc

    def python(self, *args: str, **popen) -> subprocess.Popen:
        """Start this interpreter with ``args`` (a script or ``-m module``)."""
        return self.start([sys.executable, *args], **popen)

    @staticmethod
    def wait(proc: subprocess.Popen, name: str, timeout: float,
             needed: dict[str, subprocess.Popen] | None = None) -> tuple[str, str]:
        """``proc.communicate()``, but raising ``ProcessFailed`` as soon as one of the ``needed``
        programs (by name) has exited, rather than at the end of ``timeout`` seconds, and when
        ``proc`` itself runs past ``timeout``. Returns ``proc``'s (stdout, stderr)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                # Retrying after a timeout loses no output (subprocess documents it).
                return proc.communicate(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
            for other_name, other in (needed or {}).items():
                if other.poll() is not None:
                    raise ProcessFailed(f"{other_name} exited with code {other.returncode} while waiting for "
                                        f"{name}{_stderr_tail(other)}")
            if time.monotonic() > deadline:
                raise ProcessFailed(f"{name} did not finish within {timeout:.0f} s")

    @staticmethod
    def interrupt(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def stop(self, grace: float = 5.0) -> None:
        """SIGINT every process group, then SIGKILL what is still there after ``grace`` seconds."""
        for proc in self.procs:
            if proc.poll() is None:
                self.interrupt(proc)
        deadline = time.monotonic() + grace
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
