"""What the ROS tests share: a stand-in for an arm's driver and task, waiting, and
setting parameters through the parameter service."""

import os
import time
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.parameter import Parameter
from rclpy.parameter_client import AsyncParameterClient
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


class FakeArm:
    """A test node standing in for a driver and a task: joint states and a target at 20 Hz;
    records the commands it receives."""

    def __init__(self, node, names=("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")):
        self.node, self.names = node, list(names)
        self.paused = False  # True: silence (no joint states, no target)
        self.commands: list[np.ndarray] = []
        self.q = np.zeros(len(names))
        self.states = node.create_publisher(JointState, "joint_states", 10)
        self.targets = node.create_publisher(PointStamped, "mbrl/target", 10)
        node.create_subscription(Float64MultiArray, "arm_controller/commands", lambda m: self.commands.append(np.array(m.data)), 10)
        node.create_timer(0.05, self.publish)

    def publish(self) -> None:
        if self.paused:
            return
        state = JointState()
        state.header.stamp = self.node.get_clock().now().to_msg()
        state.name, state.position, state.velocity = self.names, self.q.tolist(), [0.0] * len(self.q)
        self.states.publish(state)
        target = PointStamped()
        target.point.x, target.point.y, target.point.z = 0.2, 0.1, 0.15
        self.targets.publish(target)


def set_parameters(node, target: str, **values):
    client = AsyncParameterClient(node, target)
    assert client.wait_for_services(timeout_sec=10.0)
    future = client.set_parameters([Parameter(k, value=v) for k, v in values.items()])
    wait_for(future.done, 10, "the parameter service")
    return future.result().results


def stand_in_ros2(folder: Path, script: str, monkeypatch) -> None:
    """A `ros2` executable running ``script`` (bash), first on PATH, and a ros2bag module."""
    (folder / "ros2bag").mkdir(parents=True)
    (folder / "ros2bag" / "__init__.py").write_text("")
    ros2 = folder / "ros2"
    ros2.write_text(f"#!/bin/bash\n{script}\n")
    ros2.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.syspath_prepend(str(folder))


def stand_in_packages(monkeypatch, prefix: Path, *names: str, executables: dict[str, str] | None = None) -> None:
    """An ament prefix where packages ``names`` are installed, ahead of the environment's;
    ``executables`` maps ``package/executable`` to the script (with its #! line) to run."""
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    for name in names:
        (index / name).write_text("")
        (prefix / "share" / name).mkdir()
    for path, script in (executables or {}).items():
        executable = prefix / "lib" / path
        executable.parent.mkdir(parents=True, exist_ok=True)
        executable.write_text(script)
        executable.chmod(0o755)
    monkeypatch.setenv("AMENT_PREFIX_PATH", os.pathsep.join(filter(None, [str(prefix), os.environ.get("AMENT_PREFIX_PATH")])))
