"""``EpisodeMonitor``: how the arm is doing, seen from the topics alone.

Listens to ``joint_states`` and ``mbrl/target`` and, at every target change, books the
episode that ended: the end effector's final distance to its target (by the arm's forward
kinematics, from the measured joints) and whether it was within ``success_distance``.
It also keeps the newest ``/diagnostics`` of every status, and the simulator's per-episode
report (``late_ticks``: ticks whose command came a period late) by episode.

Run as a node (``ros2 run mbrl_control episode_monitor``; the launch files start one), it
logs a line per episode: final and closest distance, success, the success rate of the last
``window`` episodes, and the controller's rate and model. ``mbrl-control bringup`` prints
the same lines (it runs its own monitor, and plots them at the end).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from rclpy.node import Node
from sensor_msgs.msg import JointState

from mbrl_control.arm.clip import EpisodeMotion
from mbrl_control.arm.sim import SimConfig
from mbrl_control.nodes.common import CONTROL, DIAGNOSTICS, JOINT_STATES, TARGET, bind_arm, spin
from mbrl_control.config import Config, param
from mbrl_control.nodes.graph import CONTROLLERS  # whose "control loop" report a line quotes
from mbrl_control.nodes.messages import joint_state_to_arrays
from mbrl_control.nodes.params import ParameterBinding



@dataclass(frozen=True)
class MonitorConfig(Config):
    """Settings of the episode monitor."""

    success_distance: float = param(0.02, "m: an episode that ends this close to its target is a success.", low=0.0, high=10.0)
    window: int = param(10, "Episodes the logged success rate counts.", low=1, high=100_000)


@dataclass
class EpisodeRecord:
    index: int
    start_distance: float
    final_distance: float
    min_distance: float
    seconds: float


class EpisodeMonitor(Node):
    """Args:
        callback: called with each episode that ended; None logs its line (:meth:`describe`).
        keep_motions: how many of the last episodes' joint positions to keep, to render.
    """

    def __init__(self, callback: Callable[[EpisodeRecord], None] | None = None, keep_motions: int = 2, **kwargs: Any) -> None:
        super().__init__("episode_monitor", **kwargs)
        params, self.arm = bind_arm(self)
        self.sim_config = params[SimConfig].replace(joints=tuple(self.arm.joint_names))
        self.params = ParameterBinding(self, MonitorConfig())
        self.callback = callback or (lambda record: self.get_logger().info(self.describe(record)))
        self.episodes: list[EpisodeRecord] = []
        self.motions: deque[EpisodeMotion] = deque(maxlen=keep_motions)  # the last episodes' joint positions, to render
        self.target: np.ndarray | None = None
        self.distances: list[float] = []
        self.positions: list[np.ndarray] = []
        self.started = 0.0
        self.create_subscription(JointState, JOINT_STATES, self.on_joint_state, CONTROL)
        self.create_subscription(PointStamped, TARGET, self.on_target, CONTROL)
        self.diagnostics: dict[str, dict[str, str]] = {}  # newest values of each status
        self.sim_episodes: dict[int, dict[str, str]] = {}  # the simulator's report of each episode
        self.create_subscription(DiagnosticArray, DIAGNOSTICS, self.on_diagnostics, CONTROL)

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        for entry in msg.status:
            values = self.diagnostics[entry.name] = {"message": entry.message, **{kv.key: kv.value for kv in entry.values}}
            if entry.name.endswith("sim_node: episode"):
                self.sim_episodes[int(values["episode"])] = values

    def on_joint_state(self, msg: JointState) -> None:
        if self.target is None:
            return
        try:
            q, _ = joint_state_to_arrays(msg, self.arm.joint_names)
        except ValueError:
            return
        self.distances.append(float(np.linalg.norm(self.arm.kinematics(q) - self.target)))
        self.positions.append(q)

    def on_target(self, msg: PointStamped) -> None:
        target = np.array([msg.point.x, msg.point.y, msg.point.z])
        if self.target is not None and np.array_equal(target, self.target):
            return
        now = self.get_clock().now().nanoseconds * 1e-9
        if self.target is not None and self.distances:
            record = EpisodeRecord(len(self.episodes), self.distances[0], self.distances[-1], min(self.distances), now - self.started)
            self.episodes.append(record)
            self.motions.append(EpisodeMotion(record.index, np.array(self.positions), self.target))
            self.callback(record)
        self.target, self.distances, self.positions, self.started = target, [], [], now

    @property
    def final_distances(self) -> list[float]:
        return [e.final_distance for e in self.episodes]

    def success(self, record: EpisodeRecord) -> bool:
        return record.final_distance < self.params[MonitorConfig].success_distance

    def control_loop(self) -> dict[str, str]:
        """The newest "control loop" report of the graph's controller ({} before one)."""
        return next((self.diagnostics[f"{name}: control loop"] for name in CONTROLLERS if f"{name}: control loop" in self.diagnostics), {})

    def describe(self, record: EpisodeRecord) -> str:
        """One line on ``record``: distances, success, the recent success rate, and the
        controller's mode, rate, tick p95 and model (as it last reported them)."""
        recent = self.episodes[-self.params[MonitorConfig].window:]
        rate = sum(self.success(e) for e in recent) / max(1, len(recent))
        loop = self.control_loop()
        control = f"  {loop.get('mode', '')} {loop['message']}, tick p95 {float(loop['tick_ms_p95']):.0f} ms" if loop else ""
        model = f", model of {loop['model_transitions']} transitions" if loop.get("model_transitions", "0") != "0" else ""
        return (f"episode {record.index:3d}  final distance {record.final_distance:.3f} m  closest {record.min_distance:.3f} m  "
                f"success {self.success(record)} ({rate:.0%} of the last {len(recent)}){control}{model}")


def main(args: list[str] | None = None) -> None:
    spin(EpisodeMonitor, args)


if __name__ == "__main__":
    main()
