"""A fuzzing campaign against a live controller: the MPC planner in its own process (as
launch starts it), fed for ``--seconds`` by a driver stand-in that mixes good joint states
with bad ones of every kind, goes silent, latches and resets the e-stop, sends targets
that are not finite and checkpoints that are not checkpoints. Counted: what was sent, by
kind; commands received, outside the joint limits and not finite; the node's safety
interventions (its /diagnostics); whether the node survived.

    python benchmarks/fault_injection.py [--seconds 60] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PointStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray, UInt8MultiArray  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from mbrl_control.arm.interface import ArmInterface  # noqa: E402
from mbrl_control.arm.reach import ReachConfig  # noqa: E402
from mbrl_control.arm.sim import SimConfig  # noqa: E402
from mbrl_control.nodes.bringup import RunningGraph  # noqa: E402
from mbrl_control.nodes.common import LATCHED  # noqa: E402
from mbrl_control.nodes.graph import Graph  # noqa: E402

ARM = ArmInterface.from_configs(SimConfig(), ReachConfig())
NAMES = list(ARM.joint_names)


class Fuzzer:
    """At 100 Hz: a good joint state (a random walk, at times beyond the joint limits) or,
    with probability ``p_bad``, a bad one; a target every 2 s (1 in 10 not finite); a
    silence of 0.3-1 s every ~5 s; an e-stop (topic or service) every ~7 s, reset 1 s
    later; a broken checkpoint on mbrl/model every ~10 s."""

    def __init__(self, node, seed: int, p_bad: float = 0.3) -> None:
        self.node, self.rng, self.p_bad = node, np.random.default_rng(seed), p_bad
        self.sent: Counter[str] = Counter()
        self.commands: list[np.ndarray] = []
        self.safety: dict[str, str] = {}
        self.q = np.zeros(len(NAMES))
        self.newest_stamp = node.get_clock().now()
        self.quiet_until = self.reset_at = 0.0
        self.next_target = self.next_silence = self.next_estop = self.next_model = 0.0
        self.states = node.create_publisher(JointState, "joint_states", 10)
        self.targets = node.create_publisher(PointStamped, "mbrl/target", 10)
        self.estop = node.create_publisher(Bool, "mbrl/estop", 10)
        self.models = node.create_publisher(UInt8MultiArray, "mbrl/model", LATCHED)
        self.estop_service = node.create_client(Trigger, "/mpc_planner/estop")
        self.reset_service = node.create_client(Trigger, "/mpc_planner/reset_estop")
        node.create_subscription(Float64MultiArray, "arm_controller/commands", lambda m: self.commands.append(np.array(m.data)), 100)
        node.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, 10)
        self.start = time.monotonic()
        node.create_timer(0.01, self.tick)

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        for entry in msg.status:
            if entry.name.endswith("safety"):
                self.safety = {kv.key: kv.value for kv in entry.values}

    def state(self, names, position, velocity=None, stamp=None) -> JointState:
        msg = JointState()
        msg.header.stamp = (stamp or self.node.get_clock().now()).to_msg()
        msg.name, msg.position = list(names), [float(x) for x in position]
        msg.velocity = [float(x) for x in (velocity if velocity is not None else np.zeros(len(position)))]
        return msg

    def bad_state(self) -> tuple[str, JointState]:
        n, q = len(NAMES), self.q
        kinds = {
            "NaN position": lambda: self.state(NAMES, np.where(np.arange(n) == self.rng.integers(n), np.nan, q)),
            "inf velocity": lambda: self.state(NAMES, q, np.where(np.arange(n) == self.rng.integers(n), -np.inf, 0.0)),
            "wrong number of positions": lambda: self.state(NAMES, np.zeros(n + int(self.rng.choice([-2, -1, 1, 3])))),
            "wrong number of velocities": lambda: self.state(NAMES, q, np.zeros(n + 1)),
            "a joint missing": lambda: self.state(np.delete(NAMES, self.rng.integers(n)), q[:-1]),
            "unknown joint names": lambda: self.state([f"joint_{i}" for i in range(n)], q),
            "a repeated joint": lambda: self.state(NAMES + NAMES[:1], np.append(q, 0.0)),
            "empty": lambda: JointState(),
            "stamp going backwards": lambda: self.state(NAMES, q, stamp=self.newest_stamp - rclpy.duration.Duration(seconds=0.5)),
        }
        kind = str(self.rng.choice(list(kinds)))
        return kind, kinds[kind]()

    def tick(self) -> None:
        now = time.monotonic() - self.start
        if now >= self.next_target:
            self.next_target = now + 2.0
            point = self.rng.uniform([-0.2, -0.2, 0.05], [0.25, 0.25, 0.3])
            kind = "target"
            if self.rng.random() < 0.1:
                point[self.rng.integers(3)] = self.rng.choice([np.nan, np.inf])
                kind = "target not finite"
            msg = PointStamped()
            msg.point.x, msg.point.y, msg.point.z = (float(x) for x in point)
            self.targets.publish(msg)
            self.sent[kind] += 1
        if now >= self.next_estop and not self.reset_at:
            self.next_estop = now + self.rng.uniform(5.0, 9.0)
            if self.rng.random() < 0.5:
                self.estop.publish(Bool(data=True))
                self.sent["e-stop (topic)"] += 1
            else:
                self.estop_service.call_async(Trigger.Request())
                self.sent["e-stop (service)"] += 1
            self.reset_at = now + 1.0
        if self.reset_at and now >= self.reset_at:
            self.estop.publish(Bool(data=False))  # ignored: only the service resets
            self.reset_service.call_async(Trigger.Request())
            self.sent["e-stop reset"] += 1
            self.reset_at = 0.0
        if now >= self.next_model:
            self.next_model = now + self.rng.uniform(8.0, 12.0)
            data = bytes(self.rng.integers(0, 256, int(self.rng.integers(0, 5000)), dtype=np.uint8))
            self.models.publish(UInt8MultiArray(data=data))
            self.sent["broken checkpoint"] += 1
        if now >= self.next_silence:
            self.next_silence = now + self.rng.uniform(4.0, 6.0)
            self.quiet_until = now + self.rng.uniform(0.3, 1.0)
            self.sent["silence"] += 1
        if now < self.quiet_until:
            return
        if self.rng.random() < self.p_bad:
            kind, msg = self.bad_state()
        else:
            self.q = self.q + self.rng.normal(0.0, 0.05, len(NAMES))
            beyond = np.any(self.q < ARM.low) or np.any(self.q > ARM.high)
            kind = "good, beyond the joint limits" if beyond else "good"
            if np.any(np.abs(self.q) > 3.5):
                self.q = np.zeros(len(NAMES))
            msg = self.state(NAMES, self.q)
            self.newest_stamp = self.node.get_clock().now()
        self.states.publish(msg)
        self.sent[f"joint state: {kind}"] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    graph = Graph(("mpc_planner",), "sim.yaml", False)
    with RunningGraph(graph, {"mpc_planner": {"use_sim_time": False}}, processes=True) as running:
        node = rclpy.create_node("fuzzer", context=running.context)
        fuzzer = Fuzzer(node, args.seed)
        running.spin(node)
        for second in range(int(args.seconds)):
            time.sleep(1.0)
            running.check_children()
            if second % 10 == 9:
                print(f"  {second + 1:4d} s: {sum(fuzzer.sent.values())} messages sent, {len(fuzzer.commands)} commands back",
                      flush=True)
        alive = not running.errors and all(child.poll() is None for child in running.children.values())
        node.destroy_node()
    commands = np.array(fuzzer.commands)
    finite = np.all(np.isfinite(commands), axis=1)
    outside = ~finite | np.any(commands < ARM.low, axis=1) | np.any(commands > ARM.high, axis=1)
    result = {"seconds": args.seconds, "sent": dict(sorted(fuzzer.sent.items())), "commands": len(commands),
              "commands_not_finite": int((~finite).sum()), "commands_outside_limits": int(outside.sum()),
              "node_crashed": not alive, "interventions": fuzzer.safety}
    print(f"\n| sent ({args.seconds:.0f} s) | count |\n|---|---:|")
    for kind, count in result["sent"].items():
        print(f"| {kind} | {count} |")
    print(f"\ncommands received: {len(commands)}; not finite: {result['commands_not_finite']}; "
          f"outside the joint limits: {result['commands_outside_limits']}; planner crashed: {result['node_crashed']}")
    print("the planner's safety status at the end:", {k: v for k, v in fuzzer.safety.items() if v})
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
