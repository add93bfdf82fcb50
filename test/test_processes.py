"""ProcessSet.wait: a wait for one program that ends as soon as a program it needs has exited."""
import sys
import time

import pytest

from slarm_ros.ros.processes import ProcessFailed, ProcessSet


def test_wait_returns_the_programs_output_when_it_ends():
    procs = ProcessSet()
    try:
        job = procs.python("-c", "print('done')")
        needed = procs.python("-c", "import time; time.sleep(30)")
        out, err = procs.wait(job, "the job", 20, needed={"the server": needed})
        assert out.strip() == "done" and err == ""
    finally:
        procs.stop(grace=1.0)


def test_wait_fails_at_once_with_the_needed_programs_exit_code_and_error_output():
    procs = ProcessSet()
    try:
        job = procs.python("-c", "import time; time.sleep(30)")
        needed = procs.python("-c", "import sys; sys.exit('cannot load the model: bad file')")
        started = time.monotonic()
        with pytest.raises(ProcessFailed, match=r"the server exited with code 1 while waiting for the job:\n"
                                                r"cannot load the model: bad file"):
            procs.wait(job, "the job", 20, needed={"the server": needed})
        assert time.monotonic() - started < 10
    finally:
        procs.stop(grace=1.0)


def test_wait_fails_when_the_program_runs_past_its_limit():
    procs = ProcessSet()
    try:
        job = procs.start([sys.executable, "-c", "import time; time.sleep(30)"])
        with pytest.raises(ProcessFailed, match="the job did not finish within 1 s"):
            procs.wait(job, "the job", 1.0)
    finally:
        procs.stop(grace=1.0)
