"""The control loop shared by the planner and the policy controller: the newest joint
state and target in, absolute joint commands out, tick statistics on ``/diagnostics``."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PointStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mbrl_control.arm.interface import ArmInterface
from mbrl_control.arm.reach import observe
from mbrl_control.nodes.common import COMMANDS, CONTROL, DIAGNOSTICS, JOINT_STATES, TARGET, Throttle, status
from mbrl_control.nodes.messages import joint_state_to_arrays


class ControlLoop:
    """The newest joint state and target, the command state (ArmReach actions integrate
    into joint targets) and the statistics of the ticks."""

    def __init__(self, node: Node, arm: ArmInterface) -> None:
        self.node, self.arm = node, arm
        self.targets = arm.targets()
        self.q: np.ndarray | None = None
        self.qd: np.ndarray | None = None
        self.state_time = 0.0
        self.target: np.ndarray | None = None
        self.new_target = False
        self.awaiting_state = True
        self.bad_state, self.bad_target = Throttle(), Throttle()
        self.latencies: list[float] = []
        self.tick_times: list[float] = []
        self.misses = 0
        node.create_subscription(JointState, JOINT_STATES, self.on_joint_state, CONTROL)
        node.create_subscription(PointStamped, TARGET, self.on_target, CONTROL)
        self.command_pub = node.create_publisher(Float64MultiArray, COMMANDS, CONTROL)
        self.diagnostics = node.create_publisher(DiagnosticArray, DIAGNOSTICS, CONTROL)

    def on_joint_state(self, msg: JointState) -> None:
        try:
            self.q, self.qd = joint_state_to_arrays(msg, self.arm.joint_names)
        except ValueError as err:
            self.bad_state(self.node.get_logger().warning, f"joint state refused: {err}")
            return
        self.state_time = time.monotonic()
        self.awaiting_state = False

    def on_target(self, msg: PointStamped) -> None:
        target = np.array([msg.point.x, msg.point.y, msg.point.z])
        if not np.all(np.isfinite(target)):
            self.bad_target(self.node.get_logger().warning, f"target refused: not finite {target.tolist()}")
            return
        if self.target is None or not np.array_equal(target, self.target):
            self.target, self.new_target = target, True
            self.awaiting_state = True  # the arm may have been reset with the new target

    def observation(self) -> tuple[np.ndarray | None, bool]:
        """The observation now, and whether a new episode starts: a new target restarts the
        command state from the measured joints, as ArmReach's reset does. None before the
        first joint state and target, and after a new target until a joint state follows it
        (a simulator resets the arm with the target: the state before it is stale)."""
        if self.q is None or self.target is None or self.awaiting_state:
            return None, False
        new_episode, self.new_target = self.new_target, False
        if new_episode:
            self.targets.reset(self.q)
        return observe(self.arm.kinematics, self.q, self.qd, self.target), new_episode

    def send(self, action: np.ndarray, started: float, period: float) -> None:
        """Publish the command of ``action`` [n]; book the tick's latency."""
        command = self.targets.step(action)
        msg = Float64MultiArray()
        msg.data = [float(x) for x in self.arm.to_controller(command)]
        self.command_pub.publish(msg)
        now = time.monotonic()
        self.latencies.append(now - started)
        self.tick_times.append(now)
        self.misses += int(now - started > period)

    def report(self, every: int, extra: dict[str, Any]) -> None:
        if len(self.latencies) < every:
            return
        latency = np.array(self.latencies) * 1e3
        intervals = np.diff(self.tick_times)
        rate = 1.0 / float(np.mean(intervals)) if len(intervals) else float("nan")
        values = {"latency_ms_p50": float(np.median(latency)), "latency_ms_p95": float(np.percentile(latency, 95)),
                  "rate_hz": rate, "deadline_misses": self.misses, **extra}
        level = DiagnosticStatus.WARN if self.misses else DiagnosticStatus.OK
        self.diagnostics.publish(status(self.node, "control loop", f"{rate:.1f} Hz", values, level))
        self.latencies, self.tick_times, self.misses = [], self.tick_times[-1:], 0
