"""The control loop shared by the planner and the policy controller: a timer at the
control rate, the newest joint state and target in, absolute joint commands out through
the safety layer (:mod:`mbrl_control.arm.safety`), tick statistics and interventions on
``/diagnostics``.

E-stop: ``true`` on ``mbrl/estop`` (std_msgs/Bool) or a call of ``~/estop``
(std_srvs/Trigger) latches a stop — the arm holds where it is and the controller is not
called — that only a call of ``~/reset_estop`` clears."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PointStamped
from rclpy.node import Node
from rclpy.time import Time
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray
from std_srvs.srv import Trigger

from mbrl_control.arm.interface import ArmInterface
from mbrl_control.arm.reach import observe
from mbrl_control.arm.safety import FAILED, STOPPED, SafetyConfig, SafetyLayer
from mbrl_control.nodes.common import (
    COMMANDS, CONTROL, DIAGNOSTICS, ESTOP, JOINT_STATES, NEWEST, TARGET, Throttle, status,
)
from mbrl_control.nodes.messages import joint_state_to_arrays
from mbrl_control.nodes.params import ParameterBinding


class ControlLoop:
    """Calls ``act(obs, new_episode) -> action | None`` every tick at ``rate()`` Hz (the
    node clock: simulated time under ``use_sim_time``; a changed rate applies from the
    next tick; a tick runs on the first joint state of each period) with the newest
    observation, and publishes the action's command as the
    safety layer passes it (None sends nothing: the arm holds). Keeps the command state
    (ArmReach actions integrate into joint targets, from the command last sent) and the
    statistics of the ticks. Declares the safety layer's read-only parameters.

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
        self.safety_params = ParameterBinding(node, SafetyConfig())
        self.safety = SafetyLayer(arm.low, arm.high, self.safety_params[SafetyConfig])
        self.holding: str | None = None  # the safety layer's hold reason at the last tick
        self.controller_failed = Throttle()
        self.q: np.ndarray | None = None
        self.qd: np.ndarray | None = None
        self.target: np.ndarray | None = None
        self.new_target = False
        self.awaiting_state = True
        self.bad_state, self.bad_target = Throttle(), Throttle()
        self.waiting = Throttle(10.0)
        self.state_stamp: Time | None = None  # header stamp of the newest joint state
        self.state_ages: list[float] = []  # s from that stamp to each command, node clock
        self.latencies: list[float] = []
        self.tick_times: list[float] = []
        self.misses = 0
        node.create_subscription(JointState, JOINT_STATES, self.on_joint_state, NEWEST)
        node.create_subscription(PointStamped, TARGET, self.on_target, NEWEST)
        node.create_subscription(Bool, ESTOP, self.on_estop, CONTROL)
        node.create_service(Trigger, "~/estop", self.on_estop_service)
        node.create_service(Trigger, "~/reset_estop", self.on_reset_estop)
        self.command_pub = node.create_publisher(Float64MultiArray, COMMANDS, CONTROL)
        self.diagnostics = node.create_publisher(DiagnosticArray, DIAGNOSTICS, CONTROL)
        self.period = 0.0
        self.timer = None
        self.last_tick = -float("inf")  # node clock, s
        self._restart_timer()

    def _restart_timer(self) -> None:
        """(Re)create the fallback timer when the rate changed."""
        period = 1.0 / self.rate()
        if period != self.period:
            if self.timer is not None:
                self.node.destroy_timer(self.timer)
            self.timer, self.period = self.node.create_timer(period / 2, self.on_timer), period

    def now(self) -> float:
        return self.node.get_clock().now().nanoseconds * 1e-9

    def on_timer(self) -> None:
        """Ticks when joint states do not come at the control rate (a slow driver, or
        none: the watchdog then holds the arm)."""
        if self.now() - self.last_tick >= 1.5 * self.period:
            self.tick()

    def tick(self) -> None:
        """Plan and command from the newest state. Runs on the first joint state of each
        control period (so a command leaves as soon after its state as planning allows,
        and reaches a driver that applies it at its next cycle: transitions stay Markov),
        or from the fallback timer."""
        started = time.monotonic()
        self._restart_timer()
        now = self.last_tick = self.now()
        self.say_what_is_missing()
        proposal = None
        if self.safety.must_hold(now) is None:  # held: the controller is not asked
            obs, new_episode = self.observation()
            if obs is None:
                return
            try:
                action = self.act(obs, new_episode)
                proposal = None if action is None else self.targets.step(action)
            except Exception as err:  # a controller bug must not leave the arm unattended
                self.controller_failed(self.node.get_logger().error, f"controller failed, holding: {type(err).__name__}: {err}")
                self.send(self.safety.hold(FAILED, now), started)
                return
        self.send(self.safety.command(proposal, now), started)

    def say_what_is_missing(self) -> None:
        """Log, every 10 s, what the loop waits for before it can command: the driver's joint
        states (a driver not started, or its topic not remapped) or a target."""
        if self.q is None:
            what = (f"no joint states on {self.node.resolve_topic_name(JOINT_STATES)} yet: is the arm's driver running, "
                    "and joint_states remapped to its topic?")
        elif self.target is None:
            what = f"no target on {self.node.resolve_topic_name(TARGET)} yet (geometry_msgs/PointStamped in the base frame)"
        else:
            return
        self.waiting(self.node.get_logger().info, f"{what}; commanding nothing, ticks")

    def on_joint_state(self, msg: JointState) -> None:
        clock_type = self.node.get_clock().clock_type
        stamp = Time.from_msg(msg.header.stamp, clock_type=clock_type)
        try:
            q, qd = joint_state_to_arrays(msg, self.arm.joint_names)
            fresh = self.safety.state_age(self.now()) <= self.safety.config.state_timeout
            if stamp.nanoseconds and self.state_stamp is not None and stamp < self.state_stamp and fresh:
                # out of order; after the watchdog's timeout a restarted driver's clock is taken
                raise ValueError(f"stamp {stamp.nanoseconds * 1e-9:.3f} s is older than the last state's "
                                 f"{self.state_stamp.nanoseconds * 1e-9:.3f} s")
        except ValueError as err:
            self.bad_state(self.node.get_logger().warning, f"joint state refused: {err}")
            return
        self.q, self.qd, self.state_stamp = q, qd, stamp
        self.safety.measured(q, self.now())
        self.awaiting_state = False
        if self.now() - self.last_tick >= 0.9 * self.period:  # the first state of this period
            self.tick()

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
            self.safety.restart()
        return observe(self.arm.kinematics, self.q, self.qd, self.target), new_episode

    def on_estop(self, msg: Bool) -> None:
        if msg.data:
            self.estop(f"{self.node.resolve_topic_name(ESTOP)} message")
        elif self.safety.stop_reason is not None:
            self.node.get_logger().warning(f"{ESTOP} false ignored: only ~/reset_estop clears the e-stop")

    def on_estop_service(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.estop("~/estop service")
        response.success, response.message = True, f"e-stop latched ({self.safety.stop_reason})"
        return response

    def on_reset_estop(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        reason = self.safety.reset()
        response.success = True
        response.message = "no e-stop was latched" if reason is None else f"e-stop ({reason}) cleared"
        self.node.get_logger().warning(response.message)
        self.report(force=True)
        return response

    def estop(self, reason: str) -> None:
        """Latch the stop and send the hold now, not at the next tick."""
        if self.safety.stop_reason is None:
            self.node.get_logger().error(f"E-STOP latched by {reason}: holding; call ~/reset_estop to resume")
        self.safety.estop(reason)
        self.send(self.safety.hold(STOPPED, self.now()), time.monotonic())

    def send(self, command: np.ndarray | None, started: float) -> None:
        """Publish ``command`` [n] (chain order; the safety layer's, or None: nothing to
        send); continue the command state from it; book the tick's latency."""
        if self.safety.holding != self.holding:
            self.holding = self.safety.holding
            log = self.node.get_logger()
            log.warning(f"holding position: {self.holding}") if self.holding else log.info("hold over, commanding again")
            self.report(force=True)
        if command is None:
            return
        self.targets.reset(command)
        msg = Float64MultiArray()
        msg.data = [float(x) for x in self.arm.to_controller(command)]
        self.command_pub.publish(msg)
        now = time.monotonic()
        if self.state_stamp is not None and self.state_stamp.nanoseconds:  # drivers that stamp their states
            self.state_ages.append((self.node.get_clock().now() - self.state_stamp).nanoseconds * 1e-9)
        self.latencies.append(now - started)
        self.tick_times.append(now)
        self.misses += int(now - started > self.period)
        self.report()

    def report(self, force: bool = False) -> None:
        """Tick statistics and the safety layer's interventions, every ``stats_every``
        commands (``force``: now, for a change of the safety state)."""
        if not self.latencies or (len(self.latencies) < self.stats_every() and not force):
            if force:
                self.diagnostics.publish(self._safety_status())
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
        array = status(self.node, "control loop", f"{rate:.1f} Hz", values, level)
        array.status += self._safety_status().status
        self.diagnostics.publish(array)
        self.latencies, self.state_ages, self.tick_times, self.misses = [], [], self.tick_times[-1:], 0

    def _safety_status(self) -> DiagnosticArray:
        """The safety layer's state (ERROR while e-stopped, WARN while holding) and its
        interventions so far, by reason."""
        safety = self.safety
        level = (DiagnosticStatus.ERROR if safety.stop_reason else DiagnosticStatus.WARN if safety.holding
                 else DiagnosticStatus.OK)
        message = (f"E-STOP ({safety.stop_reason})" if safety.stop_reason else f"holding: {safety.holding}"
                   if safety.holding else "commanding")
        values = {"estop": safety.stop_reason or "", "holding": safety.holding or "",
                  "state_age_s": safety.state_age(self.now()), **safety.interventions}
        return status(self.node, "safety", message, values, level)
