"""A supervisor killed outright takes its node processes with it: nothing keeps commanding
the arm once ``mbrl-control bringup`` is gone."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rosutil import wait_for

pytest.importorskip("rclpy")
pytestmark = pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
                                reason="needs Linux's /proc/<pid>/task/<tid>/children")


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # an exited child not yet reaped is not running


def test_bringup_killed_by_sigkill_takes_its_nodes_with_it(tmp_path):
    supervisor = subprocess.Popen([sys.executable, "-m", "mbrl_control.cli", "bringup", "sim", "--out", str(tmp_path)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(children(supervisor.pid)) >= 4, 60, "the four node processes")
        nodes = children(supervisor.pid)
        wait_for(lambda: (tmp_path / "data").exists(), 60, "the nodes at work")
    finally:
        supervisor.kill()
        supervisor.wait()
    wait_for(lambda: not any(alive(pid) for pid in nodes), 10, f"nodes {nodes} to exit after their supervisor's SIGKILL")
