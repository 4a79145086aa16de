"""``emulated_arm``: the simulated arm behind an emulated Feetech servo bus, for trying the
real-arm path (``servo_driver`` and everything after it) without hardware.

Opens a pseudo-terminal that answers the Feetech protocol for the calibration's servos
(:class:`mbrl_control.feetech.emulator.EmulatedBus`, MuJoCo stepped in real time) and links
it at ``port`` for ``servo_driver`` to open. Publishes the reaching task's ``mbrl/target``
every control tick and draws a new one every ``episode_length`` ticks, as a person
pointing at targets would; the arm is never reset (it is a real arm now).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from geometry_msgs.msg import PointStamped
from rclpy.node import Node

from mbrl_control.arm.env import ArmReach
from mbrl_control.arm.reach import ReachConfig
from mbrl_control.arm.sim import SimConfig
from mbrl_control.config import Config, param
from mbrl_control.feetech.calibration import calibration_for, load_calibration
from mbrl_control.feetech.emulator import EmulatedBus
from mbrl_control.nodes.common import CONTROL, TARGET, bind_joints, spin
from mbrl_control.nodes.params import ParameterBinding
from mbrl_control.nodes.sim_node import TASK_FIELDS


@dataclass(frozen=True)
class EmulatedArmConfig(Config):
    """Settings of the emulated bus."""

    port: str = param("/tmp/mbrl_control_bus", "Where to link the emulated bus's pseudo-terminal (servo_driver's port).", read_only=True)
    calibration: str = param("", "The emulated arm's calibration (default: ids 1…n, ranges from the URDF limits).", read_only=True)
    baudrate: int = param(1_000_000, "Bits per second on the emulated wire.", low=9600, high=4_000_000, read_only=True)
    return_delay: int = param(0, "Each servo's Return_Delay_Time register (× 2 µs).", low=0, high=254, read_only=True)
    target_rate: float = param(20.0, "Target publications per second; episode_length counts them.", low=1.0, high=100.0, read_only=True)
    seed: int = param(0, "Seed of the targets.", low=0, read_only=True)
    frame_id: str = param("base_link", "Frame of the published target.", read_only=True)


class EmulatedArmNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("emulated_arm", **kwargs)
        sim_fields = tuple(n for n in SimConfig.field_names() if n != "joints")
        self.params = ParameterBinding(self, (SimConfig(), sim_fields), (ReachConfig(), TASK_FIELDS), EmulatedArmConfig(),
                                       read_only=sim_fields + TASK_FIELDS)
        sim, task, config = bind_joints(self, self.params[SimConfig]), self.params[ReachConfig], self.params[EmulatedArmConfig]
        self.env = ArmReach(sim=sim, task=task)  # samples targets in the workspace
        self.env.reset(seed=config.seed)
        calibration = load_calibration(config.calibration) if config.calibration else calibration_for(self.env.sim.description)
        self.bus = EmulatedBus(calibration, sim, baudrate=config.baudrate, return_delay=config.return_delay).start()
        if os.path.lexists(config.port):
            os.unlink(config.port)
        os.symlink(self.bus.port, config.port)
        self.target_pub = self.create_publisher(PointStamped, TARGET, CONTROL)
        self.ticks, self.episode = 0, -1
        self.new_target()
        self.create_timer(1.0 / config.target_rate, self.tick)
        self.get_logger().info(f"emulated bus of {len(calibration.names)} servos at {config.port} ({self.bus.port})")

    def new_target(self) -> None:
        self.target = self.env.sample_target()
        with self.bus.lock:
            self.bus.sim.target = self.target
        self.episode += 1
        self.get_logger().info(f"episode {self.episode}: target {np.round(self.target, 3).tolist()} m")

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks % self.params[ReachConfig].episode_length == 0:
            self.new_target()
        msg = PointStamped()
        msg.header.stamp, msg.header.frame_id = self.get_clock().now().to_msg(), self.params[EmulatedArmConfig].frame_id
        msg.point.x, msg.point.y, msg.point.z = (float(v) for v in self.target)
        self.target_pub.publish(msg)

    def close(self) -> None:
        self.bus.close()
        port = self.params[EmulatedArmConfig].port
        if os.path.islink(port):
            os.unlink(port)


def main(args: list[str] | None = None) -> None:
    spin(EmulatedArmNode, args)


if __name__ == "__main__":
    main()
