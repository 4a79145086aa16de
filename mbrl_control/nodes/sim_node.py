"""``sim_node``: the simulated arm (MuJoCo) behind the topics a real arm's driver offers.

Publishes ``joint_states`` (measured, names from the URDF) every control tick and the
task's ``mbrl/target``; executes absolute joint position commands from
``arm_controller/commands`` (the controller's joint order, ``joints``); draws a new target
every ``episode_length`` ticks (resetting the arm when ``reset_arm``) or on the
``~/reset`` service. After a reset, commands are dropped until the new episode's first
joint state has gone out (they were planned from the arm before the reset). At each
episode's end ``/diagnostics`` gets its ``late_ticks``: the
ticks at which no new command had come since the last (a controller slower than the
control rate, its command a period late), counted once the first command came.
Simulated time goes out on ``/clock`` at ``real_time_factor`` times
wall-clock speed, so nodes with ``use_sim_time`` tick with the simulation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PointStamped
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.time import Time
from rosgraph_msgs.msg import Clock as ClockMessage
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from std_srvs.srv import Trigger

from mbrl_control.arm.env import ArmReach
from mbrl_control.arm.reach import ReachConfig
from mbrl_control.arm.sim import SimConfig
from mbrl_control.config import Config, param
from mbrl_control.arm.interface import ArmInterface
from mbrl_control.nodes.common import COMMANDS, CONTROL, DIAGNOSTICS, JOINT_STATES, TARGET, Throttle, bind_joints, spin, status
from mbrl_control.nodes.params import ParameterBinding

TASK_FIELDS = ("episode_length", "target_min_height", "target_min_radius", "initial_pose_noise")


@dataclass(frozen=True)
class SimNodeConfig(Config):
    """Settings of the simulation node itself."""

    real_time_factor: float = param(1.0, "Simulated seconds per wall-clock second.", low=0.05, high=100.0)
    reset_arm: bool = param(True, "Put the arm back near its home pose at each new episode (False: only the target changes, as on a real arm).")
    seed: int = param(0, "Seed of targets, initial poses and sensor noise.", low=0, read_only=True)
    frame_id: str = param("base_link", "Frame of the published target.", read_only=True)


class SimNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("sim_node", **kwargs)
        sim_fields = tuple(n for n in SimConfig.field_names() if n != "joints")
        self.params = ParameterBinding(  # the simulator is built once: its settings cannot change live
            self, (SimConfig(), sim_fields), (ReachConfig(), TASK_FIELDS + ("max_joint_step",)), SimNodeConfig(),
            read_only=sim_fields + ("max_joint_step",),
        )
        sim_config, task = bind_joints(self, self.params[SimConfig]), self.params[ReachConfig]
        self.env = ArmReach(sim=sim_config, task=task)
        self.sim = self.env.sim
        self.arm = ArmInterface.from_configs(sim_config, task)
        self.joint_names = list(self.sim.joint_names) + [j.name for j in self.sim.description.gripper_joints]
        self.state_pub = self.create_publisher(JointState, JOINT_STATES, CONTROL)
        self.target_pub = self.create_publisher(PointStamped, TARGET, CONTROL)
        self.clock_pub = self.create_publisher(ClockMessage, "/clock", CONTROL)
        self.diagnostics = self.create_publisher(DiagnosticArray, DIAGNOSTICS, CONTROL)
        self.create_subscription(Float64MultiArray, COMMANDS, self.on_command, CONTROL)
        self.create_service(Trigger, "~/reset", self.on_reset)
        self.bad_command = Throttle()
        self.ticks = 0  # control ticks since start: the simulated clock
        self.episode = -1
        self.episode_ticks = 0
        self.commanded = False  # a command came in this episode
        self.fresh_command = False  # one came since the last tick
        self.late_ticks = 0  # ticks of this episode without a new command, after the first
        self.reset_pending = False  # the arm was reset and its new state not yet published
        self.rng = np.random.default_rng(self.params[SimNodeConfig].seed)
        self.env.np_random = self.sim.rng = self.rng  # targets, poses and sensor noise
        self.new_episode(reset_arm=True)
        self.period = 0.0
        self.timer = None
        self._restart_timer()

    def _restart_timer(self) -> None:
        """(Re)start the wall-clock timer at control_dt / real_time_factor when that changed."""
        period = self.sim.control_dt / self.params[SimNodeConfig].real_time_factor
        if period != self.period:
            if self.timer is not None:
                self.destroy_timer(self.timer)
            self.timer = self.create_timer(period, self.tick, clock=Clock(clock_type=ClockType.STEADY_TIME))
            self.period = period

    @property
    def sim_time(self) -> Time:
        return Time(nanoseconds=round(self.ticks * self.sim.control_dt * 1e9))

    def new_episode(self, reset_arm: bool) -> None:
        """A new target (and arm pose when ``reset_arm``); the command holds the arm still."""
        task = self.params[ReachConfig]
        self.env.config = self.env.config.replace(**{name: getattr(task, name) for name in TASK_FIELDS})
        if reset_arm:
            noise = task.initial_pose_noise
            self.sim.reset(self.rng.uniform(-noise, noise, size=self.sim.n_joints), self.env.sample_target())
            self.command = self.sim.joint_positions
            self.reset_pending = True
        else:
            self.sim.target = self.env.sample_target()
        if self.episode >= 0:
            self.diagnostics.publish(status(self, "episode", f"episode {self.episode}: {self.late_ticks} late ticks", {
                "episode": self.episode, "ticks": self.episode_ticks, "late_ticks": self.late_ticks}))
        self.commanded = self.fresh_command = False
        self.late_ticks = 0
        self.episode += 1
        self.episode_ticks = 0
        self.get_logger().info(f"episode {self.episode}: target {np.round(self.sim.target, 3).tolist()} m")
        self.publish(state=False)

    def on_command(self, msg: Float64MultiArray) -> None:
        command = np.asarray(msg.data, dtype=np.float64)
        if command.shape != (self.sim.n_joints,) or not np.all(np.isfinite(command)):
            self.bad_command(self.get_logger().warning,
                             f"command refused: need {self.sim.n_joints} finite values, got {command.tolist()}")
            return
        if self.reset_pending:  # planned from the arm before the reset
            return
        self.command = self.arm.from_controller(command)
        self.commanded = self.fresh_command = True

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.new_episode(reset_arm=self.params[SimNodeConfig].reset_arm)
        response.success, response.message = True, f"episode {self.episode}"
        return response

    def tick(self) -> None:
        self._restart_timer()
        self.late_ticks += int(self.commanded and not self.fresh_command)
        self.fresh_command = False
        self.sim.step(self.command)  # clipped to the joint limits inside
        self.ticks += 1
        self.episode_ticks += 1
        self.publish()
        self.reset_pending = False
        if self.episode_ticks >= self.params[ReachConfig].episode_length:
            self.new_episode(reset_arm=self.params[SimNodeConfig].reset_arm)

    def publish(self, state: bool = True) -> None:
        """Clock, target and (``state``) the joint state. A new episode publishes its target
        alone: its first joint state follows a tick later, so every listener hears the new
        target between the old episode's last state and the new episode's first (a node's
        executor takes ready messages of two topics in its own order, not in send order)."""
        stamp = self.sim_time.to_msg()
        self.clock_pub.publish(ClockMessage(clock=stamp))
        target = PointStamped()
        target.header.stamp, target.header.frame_id = stamp, self.params[SimNodeConfig].frame_id
        target.point.x, target.point.y, target.point.z = (float(v) for v in self.sim.target)
        self.target_pub.publish(target)
        if not state:
            return
        q, qd = self.sim.measure()
        gripper = [float(x) for x in self.sim.gripper_positions]
        state = JointState()
        state.header.stamp = stamp
        state.name = self.joint_names
        state.position = [float(x) for x in q] + gripper
        state.velocity = [float(x) for x in qd] + [0.0] * len(gripper)
        self.state_pub.publish(state)

    def close(self) -> None:
        self.env.close()


def main(args: list[str] | None = None) -> None:
    spin(SimNode, args)


if __name__ == "__main__":
    main()
