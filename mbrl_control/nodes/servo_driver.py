"""``servo_driver``: an arm on a Feetech STS/SCS servo bus (SO-100/SO-101) behind the topics
a ros2_control driver offers, so every other node is unchanged.

Every tick (``rate``) one sync read of all servos goes out on ``joint_states`` (URDF joint
names, radians, rad/s, and efforts from the servo load); each ``arm_controller/commands``
(Float64MultiArray, the ``joints`` order, as a forward position controller takes it) is
one sync write of goal positions, clamped to the calibrated range
(:class:`mbrl_control.feetech.bus.FeetechBus`). Servos that overload, overheat, stall or
stop answering are held and reported on ``/diagnostics``; ``~/clear_faults`` releases them.
``mbrl/estop`` (true) holds the arm, or drops torque with ``torque_off_on_estop``, and
latches: commands are refused until ``~/reset_estop``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger

from mbrl_control.arm.servos import servo_profile
from mbrl_control.arm.sim import SimConfig
from mbrl_control.config import Config, ConfigError, param
from mbrl_control.feetech.bus import BusConfig, BusError, FeetechBus
from mbrl_control.feetech.calibration import load_calibration
from mbrl_control.nodes.common import COMMANDS, CONTROL, DIAGNOSTICS, ESTOP, JOINT_STATES, Throttle, bind_arm, spin, status
from mbrl_control.nodes.params import ParameterBinding


@dataclass(frozen=True)
class DriverConfig(Config):
    """Settings of the driver node itself."""

    rate: float = param(100.0, "Joint-state reads per second (at most: a sync read of 6 STS3215 at 1 Mbaud takes ~1 ms on the wire).", low=1.0, high=1000.0, read_only=True)
    connect_timeout: float = param(10.0, "Seconds to wait for the port and every servo at start.", low=0.0, high=600.0, read_only=True)
    diagnostics_period: float = param(1.0, "Seconds between bus reports on /diagnostics.", low=0.1, high=60.0)


class ServoDriverNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("servo_driver", **kwargs)
        self.arm_params, self.arm = bind_arm(self)
        self.params = ParameterBinding(self, BusConfig(), DriverConfig())
        bus_config, config = self.params[BusConfig], self.params[DriverConfig]
        if not bus_config.calibration:
            raise ConfigError("calibration: a calibration file is needed (LeRobot's, or mbrl-control calibrate's)")
        calibration = load_calibration(bus_config.calibration)
        self.bus = FeetechBus(bus_config, calibration, self.arm.controller_joints)
        self._connect(config.connect_timeout)
        self.stall_torque = np.array([servo_profile(SimConfig().servo).stall_torque] * len(calibration.names))
        self.state_pub = self.create_publisher(JointState, JOINT_STATES, CONTROL)
        self.diagnostics = self.create_publisher(DiagnosticArray, DIAGNOSTICS, CONTROL)
        self.create_subscription(Float64MultiArray, COMMANDS, self.on_command, CONTROL)
        self.create_subscription(Bool, ESTOP, self.on_estop, CONTROL)
        self.create_service(Trigger, "~/clear_faults", self.on_clear_faults)
        self.create_service(Trigger, "~/reset_estop", self.on_reset_estop)
        self.estopped = False
        self.bad_command, self.bad_read = Throttle(), Throttle()
        self.reported: set[str] = set()
        self.read_times: list[float] = []
        self.write_times: list[float] = []
        self.create_timer(1.0 / config.rate, self.tick)
        self.create_timer(config.diagnostics_period, self.report)
        self.get_logger().info(f"{len(calibration.names)} servos on {bus_config.port} at {bus_config.baudrate} baud: "
                               f"{', '.join(calibration.names)}; commands for {', '.join(self.arm.controller_joints)}")

    def _connect(self, timeout: float) -> None:
        """Open the bus, retrying until ``timeout`` (an adapter that appears late)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.bus.open()
                return
            except BusError as err:
                if time.monotonic() >= deadline:
                    raise ConfigError(f"servo bus: {err}") from None
                time.sleep(0.5)

    def tick(self) -> None:
        self.bus.config = self.params[BusConfig]  # the safety settings change live
        started = time.monotonic()
        try:
            state = self.bus.read()
        except BusError as err:
            self.bad_read(self.get_logger().error, f"bus read failed, arm held: {err}")
            self.report_faults()
            return
        self.read_times.append(time.monotonic() - started)
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = list(self.bus.names)
        msg.position = state.position.tolist()
        msg.velocity = state.velocity.tolist()
        msg.effort = (state.load * self.stall_torque).tolist()
        self.state_pub.publish(msg)
        self.report_faults()

    def on_command(self, msg: Float64MultiArray) -> None:
        started = time.monotonic()
        if self.estopped:
            self.bad_command(self.get_logger().warning, "command refused: e-stop latched (~/reset_estop)")
            return
        try:
            self.bus.write(np.asarray(msg.data, dtype=float))
        except ValueError as err:
            self.bad_command(self.get_logger().warning, f"command refused: {err}")
            return
        except BusError as err:
            self.bad_command(self.get_logger().error, f"command not sent: {err}")
            return
        self.write_times.append(time.monotonic() - started)

    def on_estop(self, msg: Bool) -> None:
        if msg.data:
            try:
                self.bus.estop()
            except BusError as err:  # latched all the same: no command goes out until ~/reset_estop
                self.get_logger().error(f"E-STOP could not reach the servos: {err}")
            if not self.estopped:
                self.get_logger().error("E-STOP: " + ("torque off" if self.bus.config.torque_off_on_estop else "holding")
                                        + "; commands refused until ~/reset_estop")
            self.estopped = True

    def on_reset_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        was, self.estopped = self.estopped, False
        if was and self.bus.config.torque_off_on_estop:
            try:
                self.bus.torque_on()
            except BusError as err:
                self.estopped = True
                response.success, response.message = False, f"e-stop kept: torque could not be re-enabled ({err})"
                return response
        response.success, response.message = True, "e-stop cleared" if was else "no e-stop was latched"
        self.get_logger().warning(response.message)
        return response

    def on_clear_faults(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            cleared = self.bus.clear_faults()
        except BusError as err:
            response.success, response.message = False, f"faults kept: {err}"
            return response
        self.reported.clear()
        response.success, response.message = True, f"released {', '.join(cleared) or 'nothing'}"
        self.get_logger().warning(response.message)
        return response

    def report_faults(self) -> None:
        for name, fault in self.bus.faults.items():
            if name not in self.reported:
                self.get_logger().error(f"servo {name} held: {fault.reason} (~/clear_faults releases it)")
                self.reported.add(name)

    def report(self) -> None:
        state, bus = self.bus.last, self.bus
        values: dict[str, object] = {"reads": bus.reads, "failed_reads": bus.failed_reads,
                                     "read_ms_p50": 1e3 * float(np.median(self.read_times)) if self.read_times else float("nan"),
                                     "write_ms_p50": 1e3 * float(np.median(self.write_times)) if self.write_times else float("nan")}
        if state is not None:
            for i, name in enumerate(bus.names):
                values[f"{name}.temperature"] = float(state.temperature[i])
                values[f"{name}.voltage"] = float(state.voltage[i])
                values[f"{name}.load"] = float(state.load[i])
        for name, fault in bus.faults.items():
            values[f"{name}.fault"] = fault.reason
        level = DiagnosticStatus.ERROR if bus.faults else DiagnosticStatus.OK
        message = "held: " + "; ".join(f"{n}: {f.reason}" for n, f in bus.faults.items()) if bus.faults else "ok"
        self.diagnostics.publish(status(self, "servo bus", message, values, level))
        self.read_times, self.write_times = self.read_times[-1000:], self.write_times[-1000:]

    def close(self) -> None:
        self.bus.close()


def main(args: list[str] | None = None) -> None:
    spin(ServoDriverNode, args)


if __name__ == "__main__":
    main()
