"""The control loop shared by the planner and the policy controller: a timer at the
control rate, the newest joint state and target in, absolute joint commands out, tick
statistics on ``/diagnostics``."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PointStamped
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray

from mbrl_control.arm.interface import ArmInterface
from mbrl_control.arm.reach import observe
from mbrl_control.nodes.common import COMMANDS, CONTROL, DIAGNOSTICS, JOINT_STATES, NEWEST, TARGET, Throttle, status
from mbrl_control.nodes.messages import joint_state_to_arrays


class ControlLoop:
    """Calls ``act(obs, new_episode) -> action | None`` every tick at ``rate()`` Hz (the
    node clock: simulated time under ``use_sim_time``; a changed rate applies from the
    next tick) with the newest observation, and publishes the action as a command (None
    sends nothing: the arm holds). Keeps the command state (ArmReach actions integrate
    into joint targets) and the statistics of the ticks.

    Args:
        act: the controller; ``new_episode`` is true on the first tick after a new target.
        rate: the control rate now (Hz), read each tick.
        extra: values added to each ``/diagnostics`` report.
        stats_every: ticks between reports, read each tick.
    """

    def __init__(
        self,
        node: Node,
        arm: ArmInterface,
        act: Callable[[np.ndarray, bool], np.ndarray | None],
        rate: Callable[[], float],
        stats_every: Callable[[], int],
        extra: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        self.node, self.arm = node, arm
        self.act, self.rate, self.stats_every, self.extra = act, rate, stats_every, extra
        self.targets = arm.targets()
        self.q: np.ndarray | None = None
        self.qd: np.ndarray | None = None
        self.target: np.ndarray | None = None
        self.new_target = False
        self.awaiting_state = True
        self.bad_state, self.bad_target = Throttle(), Throttle()
        self.state_stamp: Time | None = None  # header stamp of the newest joint state
        self.state_ages: list[float] = []  # s from that stamp to each command, node clock
        self.latencies: list[float] = []
        self.tick_times: list[float] = []
        self.misses = 0
        node.create_subscription(JointState, JOINT_STATES, self.on_joint_state, NEWEST)
        node.create_subscription(PointStamped, TARGET, self.on_target, NEWEST)
        self.command_pub = node.create_publisher(Float64MultiArray, COMMANDS, CONTROL)
        self.diagnostics = node.create_publisher(DiagnosticArray, DIAGNOSTICS, CONTROL)
        self.period = 0.0
        self.timer = None
        self._restart_timer()

    def _restart_timer(self) -> None:
        """(Re)create the timer when the rate changed."""
        period = 1.0 / self.rate()
        if period != self.period:
            if self.timer is not None:
                self.node.destroy_timer(self.timer)
            self.timer, self.period = self.node.create_timer(period, self.tick), period

    def tick(self) -> None:
        started = time.monotonic()
        self._restart_timer()
        obs, new_episode = self.observation()
        if obs is None:
            return
        action = self.act(obs, new_episode)
        if action is not None:
            self.send(action, started)
            self.report()

    def on_joint_state(self, msg: JointState) -> None:
        try:
            self.q, self.qd = joint_state_to_arrays(msg, self.arm.joint_names)
        except ValueError as err:
            self.bad_state(self.node.get_logger().warning, f"joint state refused: {err}")
            return
        self.state_stamp = Time.from_msg(msg.header.stamp, clock_type=self.node.get_clock().clock_type)
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

    def send(self, action: np.ndarray, started: float) -> None:
        """Publish the command of ``action`` [n]; book the tick's latency."""
        command = self.targets.step(action)
        msg = Float64MultiArray()
        msg.data = [float(x) for x in self.arm.to_controller(command)]
        self.command_pub.publish(msg)
        now = time.monotonic()
        if self.state_stamp is not None and self.state_stamp.nanoseconds:  # drivers that stamp their states
            self.state_ages.append((self.node.get_clock().now() - self.state_stamp).nanoseconds * 1e-9)
        self.latencies.append(now - started)
        self.tick_times.append(now)
        self.misses += int(now - started > self.period)

    def report(self) -> None:
        if len(self.latencies) < self.stats_every():
            return
        latency = np.array(self.latencies) * 1e3
        intervals = np.diff(self.tick_times)
        rate = 1.0 / float(np.mean(intervals)) if len(intervals) else float("nan")
        values = {"tick_ms_p50": float(np.median(latency)), "tick_ms_p95": float(np.percentile(latency, 95)),
                  "rate_hz": rate, "deadline_misses": self.misses, **self.extra()}
        if self.state_ages:  # how old the state a command was computed from is when it goes out
            age = np.array(self.state_ages) * 1e3
            values.update(state_age_ms_p50=float(np.median(age)), state_age_ms_p95=float(np.percentile(age, 95)),
                          state_age_ms_max=float(age.max()))
        level = DiagnosticStatus.WARN if self.misses else DiagnosticStatus.OK
        self.diagnostics.publish(status(self.node, "control loop", f"{rate:.1f} Hz", values, level))
        self.latencies, self.state_ages, self.tick_times, self.misses = [], [], self.tick_times[-1:], 0
