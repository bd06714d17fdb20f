"""The suite's own helpers: a command that runs past its time leaves no process behind,
its children included, and the test fails saying which command it was."""

import os
import sys
import time
from pathlib import Path

import pytest

from tests.servers import run_command

# A command whose child outlives it unless its whole process group is killed.
SPAWNS_A_CHILD = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
open(sys.argv[1], "w").write(str(child.pid))
time.sleep(300)
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


def test_a_command_past_its_time_is_killed_with_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"

    with pytest.raises(AssertionError, match="did not finish in time"):
        run_command([sys.executable, "-c", SPAWNS_A_CHILD, str(pid_file)], timeout_s=3)

    child = int(pid_file.read_text())
    for _ in range(50):  # the kernel reaps it shortly after the group's SIGKILL
        if not alive(child):
            break
        time.sleep(0.1)
    assert not alive(child)
