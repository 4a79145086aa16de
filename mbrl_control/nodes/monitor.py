"""``EpisodeMonitor``: how the arm is doing, seen from the topics alone.

Listens to ``joint_states`` and ``mbrl/target`` and, at every target change, books the
episode that ended: the end effector's final distance to its target (by the arm's forward
kinematics, from the measured joints) and whether it was within ``success_distance``.
This is what ``mbrl-control bringup`` prints per episode and plots at the end. It also
keeps the newest ``/diagnostics`` of every status, and the simulator's per-episode report
(``late_ticks``: ticks whose command came a period late) by episode.
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
from mbrl_control.nodes.common import CONTROL, DIAGNOSTICS, JOINT_STATES, TARGET, bind_arm
from mbrl_control.nodes.messages import joint_state_to_arrays


@dataclass
class EpisodeRecord:
    index: int
    start_distance: float
    final_distance: float
    min_distance: float
    seconds: float


class EpisodeMonitor(Node):
    def __init__(self, callback: Callable[[EpisodeRecord], None] | None = None, success_distance: float = 0.02,
                 keep_motions: int = 2, **kwargs: Any) -> None:
        super().__init__("episode_monitor", **kwargs)
        params, self.arm = bind_arm(self)
        self.sim_config = params[SimConfig].replace(joints=tuple(self.arm.joint_names))
        self.callback, self.success_distance = callback, success_distance
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
            if self.callback is not None:
                self.callback(record)
        self.target, self.distances, self.positions, self.started = target, [], [], now

    @property
    def final_distances(self) -> list[float]:
        return [e.final_distance for e in self.episodes]
