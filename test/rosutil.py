"""What the ROS tests share: a stand-in for an arm's driver and task, waiting, and
setting parameters through the parameter service."""

import time

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
