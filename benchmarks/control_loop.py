"""End-to-end control loop over DDS on this machine, for the MPC planner (PE ensemble, GP)
and the policy controller, each in its own process as launch starts them.

A driver stand-in publishes joint states at 100 Hz, each stamped with its send time, and a
target. Measured:

* state age: from the stamp of the joint state a command was computed from to that
  command's publication (the node measures it for every command and reports percentiles
  per 20 ticks on /diagnostics): the state's DDS hop, its wait for the next tick, and the
  planning. The command's own DDS hop back (well under a millisecond here) is not in it.
* tick: the node's compute per tick (reading the state to publishing the command).
* rate and interval jitter of the commands as the driver receives them.

"learner fitting" rows run a ``dynamics_learner`` next to the planner, fitting an ensemble
on 2 000 transitions for the whole measurement (a fit that neither converges nor times
out, so no model of its own reaches the planner), at the
learner's default ``nice`` (its fitting thread yields the CPU) and at ``nice`` 0: what a
fit costs the planner on a 2-core computer.

    python benchmarks/control_loop.py [--seconds 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 100 + 1))

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PointStamped  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

from mbrl_control.arm.env import ArmReach  # noqa: E402
from mbrl_control.arm.interface import ArmInterface  # noqa: E402
from mbrl_control.arm.reach import ReachConfig  # noqa: E402
from mbrl_control.arm.sim import SimConfig  # noqa: E402
from mbrl_control.loops.mbrl import explore  # noqa: E402
from mbrl_control.models import make_model  # noqa: E402
from mbrl_control.nodes.bringup import RunningGraph  # noqa: E402
from mbrl_control.nodes.graph import Graph  # noqa: E402


ARM = ArmInterface.from_configs(SimConfig(), ReachConfig())  # the layout the nodes give ArmReach's models


class Driver:
    """Stamped joint states at 100 Hz and a target; records command arrivals and the
    control loop's /diagnostics reports."""

    def __init__(self, node) -> None:
        self.node = node
        self.arrivals: list[float] = []
        self.reports: list[dict[str, float]] = []
        self.names = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll"]
        self.states = node.create_publisher(JointState, "joint_states", 10)
        self.target = node.create_publisher(PointStamped, "mbrl/target", 10)
        node.create_subscription(Float64MultiArray, "arm_controller/commands", lambda _: self.arrivals.append(time.monotonic()), 10)
        node.create_subscription(DiagnosticArray, "/diagnostics", self.on_diagnostics, 10)
        node.create_timer(0.01, self.publish)

    def publish(self) -> None:
        msg = JointState()
        msg.header.stamp = self.node.get_clock().now().to_msg()
        msg.name, msg.position, msg.velocity = self.names, [0.1, -0.2, 0.3, 0.1, 0.0], [0.0] * 5
        self.states.publish(msg)
        target = PointStamped()
        target.point.x, target.point.y, target.point.z = 0.2, 0.1, 0.15
        self.target.publish(target)

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        for entry in msg.status:
            if entry.name.endswith("control loop"):
                values = {kv.key: kv.value for kv in entry.values}
                self.reports.append({k: float(values[k]) for k in values if k.startswith(("state_age", "tick_ms"))})


def measure(name: str, node_name: str, overrides: dict, seconds: float, learner: dict | None = None) -> dict:
    """One loop's row; ``learner``: the overrides of a dynamics_learner fitting alongside."""
    graph = Graph((node_name,) + (("dynamics_learner",) if learner else ()), "sim.yaml", False)
    with RunningGraph(graph, {node_name: overrides, "dynamics_learner": learner or {}}, processes=True) as running:
        node = rclpy.create_node("bench_driver", context=running.context)
        driver = Driver(node)
        running.spin(node)
        deadline = time.monotonic() + 60
        while not driver.reports and time.monotonic() < deadline:  # warmed up: a first full report
            time.sleep(0.1)
        driver.arrivals.clear(), driver.reports.clear()
        time.sleep(seconds)
        arrivals, reports = np.array(driver.arrivals), list(driver.reports)
        node.destroy_node()
    intervals = np.diff(arrivals) * 1e3
    window = lambda key, f: float(f([r[key] for r in reports])) if reports else float("nan")  # noqa: E731
    row = {
        "loop": name, "commands": len(arrivals), "rate_hz": len(arrivals) / seconds,
        # per-20-tick percentiles from the node: the median window, and the worst
        "state_age_p50_ms": window("state_age_ms_p50", np.median), "state_age_p95_ms": window("state_age_ms_p95", np.median),
        "state_age_max_ms": window("state_age_ms_max", np.max),
        "tick_p50_ms": window("tick_ms_p50", np.median), "tick_p95_ms": window("tick_ms_p95", np.median),
        "interval_std_ms": float(np.std(intervals)) if len(intervals) > 1 else float("nan"),
        "interval_p99_ms": float(np.percentile(intervals, 99)) if len(intervals) > 1 else float("nan"),
    }
    print(f"  {name}: {row['rate_hz']:.1f} Hz, state age p50 {row['state_age_p50_ms']:.1f} ms, "
          f"p95 {row['state_age_p95_ms']:.1f} ms", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="control_loop_"))
    print("fitting models on 500 random transitions and training a small policy ...", flush=True)
    env = ArmReach()
    data = explore(env, episodes=5)
    env.close()
    paths = {}
    for kind in ("ensemble", "gp"):
        model = make_model(kind, 16, 5, derive=ARM.derive, bounds=ARM.model_bounds, **ARM.MODEL_LAYOUT)
        model.fit(data)
        paths[kind] = str(model.save(work / f"{kind}.pt"))
    from mbrl_control.policies.train import save_policy, train_policy

    policy = train_policy("mbrl_control/ArmReach-v0", algo="ppo", total_steps=2048, eval_every=2048, eval_episodes=1)
    paths["policy"] = str(save_policy(policy, work / "policy.pt"))
    env = ArmReach()
    explore(env, episodes=20, seed=1).save(work / "learner" / "dataset.npz")  # the learner fits on it from the start
    env.close()
    fitting = {"out_dir": str(work / "learner"), "model.type": "ensemble", "min_transitions": 10, "fit_seconds": 0.0,
               "model.max_epochs": 100000, "model.max_steps": 1000000, "model.patience": 10000}

    rows = [
        measure("MPC, PE ensemble (cem, defaults)", "mpc_planner", {"model_path": paths["ensemble"]}, args.seconds),
        measure("MPC, GP (cem, expectation)", "mpc_planner", {"model_path": paths["gp"]}, args.seconds),
        measure("policy (PPO MLP 64x64)", "policy_controller", {"policy_path": paths["policy"]}, args.seconds),
        measure("MPC, PE ensemble, learner fitting", "mpc_planner", {"model_path": paths["ensemble"]}, args.seconds, fitting),
        measure("MPC, PE ensemble, fitting at nice 0", "mpc_planner", {"model_path": paths["ensemble"]}, args.seconds,
                {**fitting, "nice": 0}),
        measure("MPC, GP, learner fitting", "mpc_planner", {"model_path": paths["gp"]},
                args.seconds, fitting),
        measure("MPC, GP, fitting at nice 0", "mpc_planner", {"model_path": paths["gp"]},
                args.seconds, {**fitting, "nice": 0}),
    ]
    header = (f"| {'loop':34s} | commands | rate Hz | state age p50 ms | p95 ms | max ms | tick p50 ms | tick p95 ms "
              "| interval std ms | interval p99 ms |")
    print("\n" + header + "\n|" + "---|" * 10)
    for r in rows:
        print(f"| {r['loop']:34s} | {r['commands']:8d} | {r['rate_hz']:7.1f} | {r['state_age_p50_ms']:16.1f} | "
              f"{r['state_age_p95_ms']:6.1f} | {r['state_age_max_ms']:6.1f} | {r['tick_p50_ms']:11.1f} | {r['tick_p95_ms']:11.1f} | "
              f"{r['interval_std_ms']:15.1f} | {r['interval_p99_ms']:15.1f} |")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
